"""Multi-head attention of the LTX-2 transformer: q and k RMS-normalised over the whole inner dimension,
optional RoPE (separate tables for queries and keys in audio<->video attention), additive bias, and the
value-only path that Spatio-Temporal Guidance uses in place of attention. Gated attention (LTX-2.3) scales each
head's output by ``2 sigmoid(to_gate_logits(x))``, a gate per head and query token.

Attention is exact per query: with ``token_chunk`` set (:func:`attention_chunks`), the queries run in near-equal
parts against all keys, and the keys are projected, normalised and rotated in such parts into one tensor, so the
temporaries of those steps exist for one part only; what remains whole is the keys, the values and the output."""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models import native_attention
from ltxgraph_ops.models.elementwise import EAGER, ElementwiseKernels, rms_norm, split_heads
from ltxgraph_ops.models.layers import Linear, layers_set
from ltxgraph_ops.models.rope import RopeTable


class RMSNorm(nn.Module):
    """``x / rms(x) * weight`` over the last dimension."""

    def __init__(self, dim: int, eps: float, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim, device=device), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.eps, self.weight)


class Attention(nn.Module):
    """``to_out(gate * softmax(q k^T / sqrt(d) + bias) v)`` with q = rope(rms(to_q(x))), k = rope(rms(to_k(ctx)))
    and, when ``gated``, gate = 2 sigmoid(to_gate_logits(x)) per head (else 1). ``kernels``: how the q/k norms
    and rotations run (:mod:`ltxgraph_ops.models.elementwise`)."""

    kernels: ElementwiseKernels = EAGER

    def __init__(self, query_dim: int, context_dim: int, heads: int, head_dim: int, eps: float,
                 device: torch.device | str | None = None, gated: bool = False) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.q_norm = RMSNorm(inner, eps, device=device)
        self.k_norm = RMSNorm(inner, eps, device=device)
        self.to_q = Linear(query_dim, inner, device=device)
        self.to_k = Linear(context_dim, inner, device=device)
        self.to_v = Linear(context_dim, inner, device=device)
        self.to_out = nn.ModuleList([Linear(inner, query_dim, device=device)])
        self.to_gate_logits = Linear(query_dim, heads, device=device) if gated else None
        self.token_chunk: int | None = None

    def keys_values(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Un-rotated keys rms(to_k(context)) and values to_v(context): [B, S, inner] each. For a context that
        does not change between calls (text), compute once and pass as ``keys_values`` to :meth:`forward` (the
        same kernels as :meth:`forward`'s own keys, so the same bits)."""
        return self._normalized(self.to_k(context), self.k_norm, None), self.to_v(context)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                q_rope: RopeTable | None = None, k_rope: RopeTable | None = None,
                keep_attention: torch.Tensor | None = None, values_only: bool = False,
                keys_values: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """x [B, T, query_dim], context [B, S, context_dim] (None: self-attention) -> [B, T, query_dim].

        bias: additive, broadcastable to [B, heads, T, S]. keep_attention [B, 1, 1] in {0, 1} mixes attention
        (1) with the plain value projection (0) per sample; ``values_only`` takes the value path for all.
        keys_values: precomputed :meth:`keys_values` of the context (then ``context`` is not read).
        """
        if keys_values is not None:
            k, v = keys_values
        else:
            context = x if context is None else context
            v = self.to_v(context)                                      # [B, S, inner]
        if values_only:
            return self.to_out[0](self._gated(v, self._gates(x)))
        k_rope = None if q_rope is None else k_rope or q_rope
        chunk = self.token_chunk
        if keys_values is None:
            k = by_token_parts(context.shape[1], chunk, lambda rows: self._normalized(
                self.to_k(context[:, rows]), self.k_norm, token_rows(k_rope, rows)))
        elif k_rope is not None:
            k = k_rope.rotate(k)
        gates = self._gates(x)                    # of all tokens at once: the same bits as unchunked
        return by_token_parts(x.shape[1], chunk, lambda rows: self._attend_queries(
            x[:, rows], k, v, bias if bias is None or bias.ndim < 2 or bias.shape[-2] == 1 else bias[..., rows, :],
            token_rows(q_rope, rows), None if gates is None else gates[:, rows], keep_attention,
            None if keep_attention is None else v[:, rows]))

    def _attend_queries(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None,
                        q_rope: RopeTable | None, gates: torch.Tensor | None, keep_attention: torch.Tensor | None,
                        own_values: torch.Tensor | None = None) -> torch.Tensor:
        """The output [B, T, query_dim] of the queries of x [B, T, query_dim] against keys and values [B, S,
        inner], scaled by their ``gates`` [B, T, heads] (:meth:`_gates`); ``own_values``: the value path mixed in
        by ``keep_attention`` (default ``v``, self-attention)."""
        q = self._normalized(self.to_q(x), self.q_norm, q_rope, heads=self.heads)     # [B, H, T, d]
        out = self._attend(q, k, v, bias)
        if keep_attention is not None:
            own_values = v if own_values is None else own_values
            out = out * keep_attention + own_values * (1 - keep_attention)
        return self.to_out[0](self._gated(out, gates))

    def _normalized(self, x: torch.Tensor, norm: RMSNorm, rope: RopeTable | None,
                    heads: int | None = None) -> torch.Tensor:
        """rope(norm(x)) for x [B, T, inner], through this module's element-wise kernels; with ``heads``, as
        [B, heads, T, d] (queries: the native kernels write them head by head, which attention reads ~15 %
        faster than the strided view of [B, T, inner])."""
        if rope is None:
            return self.kernels.normalized(x, norm.weight, norm.eps, heads=heads)
        if not rope.split:
            return split_heads(rope.rotate(norm(x)), heads)
        return self.kernels.normalized_rotated(x, norm.weight, norm.eps, rope.cos, rope.sin, heads=heads)

    def _gates(self, x: torch.Tensor) -> torch.Tensor | None:
        """Per-head gates 2 sigmoid(to_gate_logits(x)) [B, T, heads] of x [B, T, query_dim]; None without."""
        return None if self.to_gate_logits is None else 2 * torch.sigmoid(self.to_gate_logits(x))

    def _gated(self, heads_out: torch.Tensor, gates: torch.Tensor | None) -> torch.Tensor:
        """heads_out [B, T, inner] scaled per head by ``gates`` [B, T, heads]; unchanged without."""
        if gates is None:
            return heads_out
        return (heads_out.unflatten(-1, (self.heads, -1)) * gates[..., None]).flatten(-2)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Queries q [B, H, T, d] against keys and values [B, S, H d] -> [B, T, H d]: torch's attention, or in
        bf16 or float32 the native kernel where :mod:`~ltxgraph_ops.models.native_attention` picks it."""
        native = native_attention.attend(q, k, v, bias)
        if native is not None:
            return native
        batch, heads, tokens, head_dim = q.shape
        k, v = (split_heads(t, heads) for t in (k, v))                                   # [B, H, S, d]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return out.transpose(1, 2).reshape(batch, tokens, heads * head_dim)


def token_parts(tokens: int, chunk: int) -> list[slice]:
    """Near-equal consecutive parts of ``tokens`` tokens, at most ``chunk`` each."""
    parts = -(-tokens // chunk)
    bounds = [round(k * tokens / parts) for k in range(parts + 1)]
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]


def by_token_parts(tokens: int, chunk: int | None, part: Callable[[slice], torch.Tensor]) -> torch.Tensor:
    """``part(rows)`` [B, n, ...] for the token rows of near-equal parts of at most ``chunk`` tokens, joined into
    one [B, tokens, ...] tensor; ``part(slice(None))`` when all fit one chunk (or ``chunk`` is None)."""
    if chunk is None or tokens <= chunk:
        return part(slice(None))
    out = None
    for rows in token_parts(tokens, chunk):
        values = part(rows)
        out = values.new_empty(values.shape[0], tokens, *values.shape[2:]) if out is None else out
        out[:, rows] = values
    return out


def token_rows(rope: RopeTable | None, rows: slice) -> RopeTable | None:
    """The table of the tokens ``rows`` of ``rope`` (None stays None)."""
    return None if rope is None else RopeTable(rope.cos[:, rows], rope.sin[:, rows], rope.split)


def attention_chunks(model: nn.Module, token_chunk: int | None) -> AbstractContextManager[None]:
    """Within it, every :class:`Attention` of ``model`` makes its keys and runs its queries ``token_chunk``
    tokens at a time (None: all at once); the previous setting comes back after."""
    return layers_set(model, Attention, "token_chunk", token_chunk)
