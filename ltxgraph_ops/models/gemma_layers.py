"""The layers of a Gemma 3 / Gemma 4 text decoder (:mod:`ltxgraph_ops.models.gemma`), in the order data flows:
RMSNorm, token embedding, rotary tables, attention, MLP, decoder layer, and the additive attention bias.

Per layer: x + post_norm(attn(pre_norm(x))), then x + post_ff_norm(mlp(pre_ff_norm(x))). Norms are Gemma's
RMSNorm (``x / rms(x) * (1 + w)``, float32). Attention: grouped-query heads, per-head RMSNorm of q and k, rotary
embeddings (rotate-half layout) with a local base on sliding-window layers and a global base with linear
position scaling on the others (every ``sliding_window_pattern``-th layer is global), scores scaled by
``query_pre_attn_scalar^-1/2``, causal and padding masks; the soft tokens of one image also see each other (both
directions), on sliding layers within the window. MLP: down(gelu_tanh(gate(x)) * up(x)).

Gemma 4 differs in: norms scale by ``w`` (not ``1 + w``); values get a per-head RMSNorm without weight; scores
are not scaled (the q / k norms set their size); global layers have their own head width and key/value heads, may
take values from the key projection (``attention_k_eq_v``) and rotate only the first quarter of their frequencies
(proportional RoPE: the other frequencies are zero, no position scaling); every layer's output is multiplied by a
stored ``layer_scalar``. Gemma 4 E2B / E4B layers add ``post_norm(proj(gelu_tanh(gate(x)) * input_l))`` (their
per-layer input) before the layer scalar; their last ``kv_shared_layers`` layers take the keys and values of the
last earlier layer of their kind instead of computing their own.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.gemma_config import GemmaConfig
from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.weights.int8 import dequantize_int8


class GemmaRMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * (offset + weight)``, computed in float32: offset 1 in Gemma 3, 0 in Gemma 4;
    ``scaled=False``: no weight at all (Gemma 4's value norm)."""

    def __init__(self, dim: int, eps: float, offset: float = 1.0, scaled: bool = True) -> None:
        super().__init__()
        self.eps, self.offset = eps, offset
        self.weight = nn.Parameter(torch.zeros(dim), requires_grad=False) if scaled else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        out = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.weight is not None:
            out = out * (self.offset + self.weight.float())
        return out.to(x.dtype)


class Embedding(nn.Module):
    """Token embeddings kept in their stored dtype (a 262k x 3840 table is 2 GB in bf16, 4 GB in float32);
    rows are upcast when looked up. ``weight_scale`` as in :class:`Linear` for scaled fp8 files; an int8 table
    (ComfyUI's int8_tensorwise) has one scale per row and, with convrot, its rows rotated by groups of
    ``weight_rotation`` columns: looked-up rows are dequantised exactly (:mod:`ltxgraph_ops.weights.int8`). With
    :meth:`leave_on_disk` the table is not held at all: looked-up rows are read from the file."""

    KEEP_STORAGE_DTYPE = ("weight",)
    LOGIT_ROWS = 16384  # table rows read at a time for the output head of an on-disk table

    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab, dim), requires_grad=False)
        self.weight_scale: torch.Tensor | None = None
        self.weight_rotation = 0
        self._disk: tuple[object, str] | None = None

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def leave_on_disk(self, file, key: str) -> None:
        """Read rows of tensor ``key`` from ``file`` (anything with ``read_rows``) when needed."""
        self._disk = (file, key)

    def _rows(self, start: int, stop: int) -> torch.Tensor:
        if self._disk is None:
            return self.weight[start:stop]
        file, key = self._disk
        return file.read_rows(key, start, stop)

    def _scaled(self, rows: torch.Tensor, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Stored ``rows`` [n, D] of table rows ``ids`` [n] as values in ``dtype``."""
        if rows.dtype == torch.int8:
            scale = self.weight_scale if self.weight_scale.ndim == 0 else self.weight_scale[ids]
            return dequantize_int8(rows, torch.float32, scale, self.weight_rotation).to(dtype)
        rows = rows.to(dtype)
        return rows if self.weight_scale is None else rows * self.weight_scale.to(dtype)

    def forward(self, ids: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if self._disk is None:
            flat = ids.reshape(-1)
            return self._scaled(self.weight[flat], flat, dtype).reshape(*ids.shape, -1)
        unique, where = torch.unique(ids, return_inverse=True)
        table = torch.stack([self._rows(int(i), int(i) + 1)[0] for i in unique])
        return self._scaled(table, unique, dtype)[where]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Tied output head: hidden [B, T, D] -> logits [B, T, vocab]."""
        vocab = self.out_features
        rows = vocab if self._disk is None and self.weight.dtype != torch.int8 else self.LOGIT_ROWS
        return torch.cat([hidden @ self._scaled(self._rows(start, min(start + rows, vocab)),
                                                torch.arange(start, min(start + rows, vocab)), hidden.dtype).T
                          for start in range(0, vocab, rows)], dim=-1)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def rope_tables(positions: torch.Tensor, head_dim: int, base: float, scale: float, dtype: torch.dtype,
                rotating: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos / sin [T, head_dim] for integer ``positions`` [T] (linear scaling divides the positions); only the first
    ``rotating`` share of the head_dim / 2 frequencies turn, the others are zero (Gemma 4's proportional RoPE)."""
    inverse = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)) / scale
    inverse[int(rotating * head_dim // 2):] = 0.0
    angles = positions.float()[:, None] * inverse[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


class GemmaAttention(nn.Module):
    def __init__(self, cfg: GemmaConfig, layer: int) -> None:
        super().__init__()
        self.cfg, self.is_global = cfg, cfg.is_global(layer)
        self.kv_source = cfg.kv_source(layer)
        self.head_dim = d = cfg.head_dim_of(self.is_global)
        kv_heads = cfg.key_value_heads_of(self.is_global)
        self.q_proj = Linear(cfg.hidden_size, cfg.num_attention_heads * d, bias=False)
        self.o_proj = Linear(cfg.num_attention_heads * d, cfg.hidden_size, bias=False)
        self.q_norm = GemmaRMSNorm(d, cfg.rms_norm_eps, cfg.norm_offset)
        self.k_proj = self.v_proj = self.k_norm = self.v_norm = None
        if self.kv_source is None or cfg.shared_layers_hold_kv:     # (a sharing layer's own are never used)
            self.k_proj = Linear(cfg.hidden_size, kv_heads * d, bias=False)
            if not cfg.shares_keys_and_values(self.is_global):
                self.v_proj = Linear(cfg.hidden_size, kv_heads * d, bias=False)
            self.k_norm = GemmaRMSNorm(d, cfg.rms_norm_eps, cfg.norm_offset)
            self.v_norm = GemmaRMSNorm(d, cfg.rms_norm_eps, scaled=False) if cfg.value_norm else None

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], bias: torch.Tensor,
                cache: list[torch.Tensor] | None = None) -> torch.Tensor:
        """x [B, T, D]; rope cos/sin [T, head_dim] of the new tokens; bias [B, 1, T, S] additive over all keys
        (cached + new); ``cache`` [k, v] is extended in place with the new keys and values (a key/value-sharing
        layer's ``cache`` is its source layer's, already extended: it is read only)."""
        b, t, _ = x.shape
        d = self.head_dim
        cos, sin = rope
        q = self.q_norm(self.q_proj(x).view(b, t, -1, d)).transpose(1, 2)   # [B, H, T, d]
        q = q * cos + rotate_half(q) * sin
        if self.kv_source is not None:
            k, v = cache
        else:
            keys = self.k_proj(x).view(b, t, -1, d)                           # [B, T, Hkv, d]
            v = keys if self.v_proj is None else self.v_proj(x).view(b, t, -1, d)
            k = self.k_norm(keys).transpose(1, 2)                             # [B, Hkv, T, d]
            v = (v if self.v_norm is None else self.v_norm(v)).transpose(1, 2)
            k = k * cos + rotate_half(k) * sin
            if cache is not None:
                if cache:
                    k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
                cache[:] = [k, v]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.cfg.query_pre_attn_scalar ** -0.5,
                                             enable_gqa=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class GemmaMLP(nn.Module):
    def __init__(self, cfg: GemmaConfig, layer: int) -> None:
        super().__init__()
        width = cfg.intermediate_size_of(layer)
        self.gate_proj = Linear(cfg.hidden_size, width, bias=False)
        self.up_proj = Linear(cfg.hidden_size, width, bias=False)
        self.down_proj = Linear(width, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.gate_proj(x, activation="gelu_tanh") * self.up_proj(x))   # GELU(tanh) gate


class GemmaLayer(nn.Module):
    def __init__(self, cfg: GemmaConfig, layer: int) -> None:
        super().__init__()
        eps, offset = cfg.rms_norm_eps, cfg.norm_offset
        self.self_attn = GemmaAttention(cfg, layer)
        self.mlp = GemmaMLP(cfg, layer)
        self.input_layernorm = GemmaRMSNorm(cfg.hidden_size, eps, offset)
        self.post_attention_layernorm = GemmaRMSNorm(cfg.hidden_size, eps, offset)
        self.pre_feedforward_layernorm = GemmaRMSNorm(cfg.hidden_size, eps, offset)
        self.post_feedforward_layernorm = GemmaRMSNorm(cfg.hidden_size, eps, offset)
        self.layer_scalar = nn.Parameter(torch.ones(1), requires_grad=False) if cfg.layer_scalar else None
        self.per_layer_input_gate = self.per_layer_projection = self.post_per_layer_input_norm = None
        if cfg.per_layer_input_size:
            self.per_layer_input_gate = Linear(cfg.hidden_size, cfg.per_layer_input_size, bias=False)
            self.per_layer_projection = Linear(cfg.per_layer_input_size, cfg.hidden_size, bias=False)
            self.post_per_layer_input_norm = GemmaRMSNorm(cfg.hidden_size, eps, offset)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], bias: torch.Tensor,
                cache: list[torch.Tensor] | None = None, layer_input: torch.Tensor | None = None) -> torch.Tensor:
        """``layer_input`` [B, T, P]: this layer's per-layer input (models that have them)."""
        x = x + self.post_attention_layernorm(self.self_attn(self.input_layernorm(x), rope, bias, cache))
        x = x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        if self.per_layer_input_gate is not None:
            gated = self.per_layer_input_gate(x, activation="gelu_tanh") * layer_input.to(x.dtype)
            x = x + self.post_per_layer_input_norm(self.per_layer_projection(gated))
        return x if self.layer_scalar is None else x * self.layer_scalar.to(x.dtype)


def attention_bias(mask: torch.Tensor, new_tokens: int, window: int | None, dtype: torch.dtype,
                   blocks: torch.Tensor | None = None) -> torch.Tensor:
    """Additive bias [B, 1, T_new, S] for the last ``new_tokens`` queries over all S keys of ``mask`` [B, S]
    (1 = token): causal, padding keys hidden, and only the last ``window`` keys for sliding layers. ``blocks``
    [B, S] (image index per token, -1 for text) also opens keys of the query's own image, later ones too. A
    padding query sees nothing valid and gets uniform weights (its output is never used)."""
    total = mask.shape[1]
    query = torch.arange(total - new_tokens, total)[:, None]
    key = torch.arange(total)[None, :]
    visible = (key <= query)[None]
    if blocks is not None:
        query_block = blocks[:, total - new_tokens:, None]
        visible = visible | ((query_block == blocks[:, None, :]) & (query_block >= 0))
    if window is not None:
        visible = visible & (key > query - window)
    visible = visible & mask.bool()[:, None, :]
    return torch.where(visible, 0.0, torch.finfo(dtype).min).to(dtype)[:, None]
