"""Blocks of the LTX-2.5 diffusion video decoder, channels-last [B, T, H, W, C], in the checkpoint's names.

- :class:`NeighbourhoodSelfAttention`: fused ``qkv`` projection, per-head RMS norm of q and k, q scaled by
  1/sqrt(head_dim), absolute 3-D RoPE, 3-D neighbourhood attention, output ``proj``.
- :class:`SwiGLU`: ``w_down(silu(w_gate x) * w_up x)``, evaluated a bounded number of tokens at a time.
- :class:`NABlock`: pre-norm attention + SwiGLU residual block of the deterministic upsampling stages.
- :class:`PixelShuffleUpsample`: Linear to ``stride`` x the channels, then depth-to-space in T, H, W.
- :class:`AdaLNZero`: the timestep embedding to seven modulation vectors, shared by the diffusion blocks.
- :class:`DiffusionNABlock`: the stage-5 block: context injection, then the AdaLN-modulated attention and MLP.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.attention import RMSNorm
from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.models.neighbourhood_attention import neighbourhood_attention, rope_3d

EPS = 1e-6
MLP_TOKENS_PER_CALL = 16384   # tokens per SwiGLU call: bounds the three hidden-width intermediates
MODULATION_CHUNKS = 7         # scale/shift/gate for attention and MLP, and a context gate (gates unused here)


def swiglu_hidden(dim: int, ratio: float = 4.0) -> int:
    """SwiGLU hidden width: ``dim * ratio`` rounded up to a multiple of 16."""
    return (int(dim * ratio) + 15) // 16 * 16


class NeighbourhoodSelfAttention(nn.Module):
    """Multi-head self-attention over each cell's 3-D ``kernel`` window; [B, T, H, W, C] -> same."""

    def __init__(self, dim: int, kernel: tuple[int, int, int], head_dim: int) -> None:
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"width {dim} is not a multiple of head_dim {head_dim}")
        self.heads, self.head_dim, self.kernel = dim // head_dim, head_dim, tuple(kernel)
        self.qkv = Linear(dim, 3 * dim)
        self.q_norm = RMSNorm(head_dim, EPS)
        self.k_norm = RMSNorm(head_dim, EPS)
        self.proj = Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, self.head_dim)).unbind(-3)  # [B, T, H, W, heads, d]
        q = rope_3d(self.q_norm(q) * self.head_dim ** -0.5)
        k = rope_3d(self.k_norm(k))
        attended = neighbourhood_attention(q, k, v.contiguous(), self.kernel)
        return self.proj(attended.flatten(-2))


class SwiGLU(nn.Module):
    """``w_down(silu(w_gate x) * w_up x)`` (no biases), [..., C] -> [..., C]; pointwise over tokens, so
    evaluating :data:`MLP_TOKENS_PER_CALL` tokens at a time only bounds memory."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w_up = Linear(dim, hidden, bias=False)
        self.w_gate = Linear(dim, hidden, bias=False)
        self.w_down = Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.reshape(-1, x.shape[-1])
        out = torch.empty_like(tokens)
        for start in range(0, tokens.shape[0], MLP_TOKENS_PER_CALL):
            part = tokens[start:start + MLP_TOKENS_PER_CALL]
            out[start:start + MLP_TOKENS_PER_CALL] = self.w_down(F.silu(self.w_gate(part)) * self.w_up(part))
        return out.reshape(x.shape)


class NABlock(nn.Module):
    """``x + attn(norm1 x)``, then ``x + mlp(norm2 x)``."""

    def __init__(self, dim: int, kernel: tuple[int, int, int], head_dim: int) -> None:
        super().__init__()
        self.norm1 = RMSNorm(dim, EPS)
        self.attn = NeighbourhoodSelfAttention(dim, kernel, head_dim)
        self.norm2 = RMSNorm(dim, EPS)
        self.mlp = SwiGLU(dim, swiglu_hidden(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PixelShuffleUpsample(nn.Module):
    """[B, T, H, W, C] -> [B, sT*T, sH*H, sW*W, C'] with C' = C / reduction: ``proj`` to ``prod(stride) * C'``
    channels, each cell's channels laid out as a (sT, sH, sW) block. A temporal stride of 2 makes the first
    latent frame two frames; the first is dropped (``drop_leading_frame``) to keep the causal 1 + 8(F-1) frame
    count: a temporal tile that does not start the clip keeps it."""

    def __init__(self, channels: int, stride: tuple[int, int, int], reduction: int) -> None:
        super().__init__()
        self.stride = tuple(stride)
        self.out_channels = channels // reduction
        self.proj = Linear(channels, math.prod(self.stride) * self.out_channels)

    def forward(self, x: torch.Tensor, drop_leading_frame: bool = True) -> torch.Tensor:
        batch, frames, height, width, _ = x.shape
        st, sh, sw = self.stride
        x = self.proj(x).reshape(batch, frames, height, width, self.out_channels, st, sh, sw)
        x = x.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(batch, frames * st, height * sh, width * sw, -1)
        return x[:, 1:] if st == 2 and drop_leading_frame else x


class AdaLNZero(nn.Module):
    """Timestep embedding [B, E] -> :data:`MODULATION_CHUNKS` vectors [B, 1, 1, 1, C]: ``proj(silu(e))``."""

    def __init__(self, dim: int, embedding_dim: int) -> None:
        super().__init__()
        self.proj = Linear(embedding_dim, MODULATION_CHUNKS * dim)

    def forward(self, embedding: torch.Tensor) -> list[torch.Tensor]:
        return [c[:, None, None, None, :] for c in self.proj(F.silu(embedding)).chunk(MODULATION_CHUNKS, -1)]


class DiffusionNABlock(nn.Module):
    """Stage-5 block: ``x += context_proj(context)``; ``x += attn(norm1(x) (1 + scale) + shift)``;
    ``x += mlp(norm2(x) (1 + scale') + shift')``, where scale/shift are the shared modulation plus this
    block's ``scale_shift_table`` rows 0, 1 (attention) and 3, 4 (MLP). Residuals are ungated unless the file
    carries the static gates ``gate_ctx``, ``gate_msa``, ``gate_mlp`` ([C] each, ``static_gates``) that
    ltx-core folds into the following linear layers at load time (the same product)."""

    def __init__(self, dim: int, kernel: tuple[int, int, int], context_channels: int, head_dim: int,
                 static_gates: bool = False) -> None:
        super().__init__()
        self.context_proj = Linear(context_channels, dim)
        self.scale_shift_table = nn.Parameter(torch.empty(MODULATION_CHUNKS, dim), requires_grad=False)
        self.norm1 = RMSNorm(dim, EPS)
        self.attn = NeighbourhoodSelfAttention(dim, kernel, head_dim)
        self.norm2 = RMSNorm(dim, EPS)
        self.mlp = SwiGLU(dim, swiglu_hidden(dim))
        self.static_gates = static_gates
        if static_gates:
            for name in ("gate_ctx", "gate_msa", "gate_mlp"):
                setattr(self, name, nn.Parameter(torch.empty(dim), requires_grad=False))

    def _gated(self, name: str, residual: torch.Tensor) -> torch.Tensor:
        return residual * getattr(self, name).to(residual.dtype) if self.static_gates else residual

    def forward(self, x: torch.Tensor, context: torch.Tensor, modulation: list[torch.Tensor]) -> torch.Tensor:
        """x [B, T, H, W, C], context [B, T, H, W, C_ctx], modulation from :class:`AdaLNZero`."""
        scale_msa, shift_msa, _, scale_mlp, shift_mlp, _, _ = (
            m + row.to(m.dtype) for m, row in zip(modulation, self.scale_shift_table))
        x = x + self._gated("gate_ctx", self.context_proj(context))
        x = x + self._gated("gate_msa", self.attn(self.norm1(x) * (1 + scale_msa) + shift_msa))
        return x + self._gated("gate_mlp", self.mlp(self.norm2(x) * (1 + scale_mlp) + shift_mlp))
