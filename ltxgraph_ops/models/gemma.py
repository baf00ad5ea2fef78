"""Gemma 3 and Gemma 4 text decoders, as LTX-2 uses them: all hidden states of a prompt for the text features, and
greedy or sampled generation (prompt enhancement). LTX-2.0 / 2.3 encode with Gemma 3, LTX-2.5 with Gemma 4 12B
(transformers' ``gemma4_unified`` text model); config fields switch between the two.

Per layer: x + post_norm(attn(pre_norm(x))), then x + post_ff_norm(mlp(pre_ff_norm(x))). Norms are Gemma's
RMSNorm (``x / rms(x) * (1 + w)``, float32). Attention: grouped-query heads, per-head RMSNorm of q and k, rotary
embeddings (rotate-half layout) with a local base on sliding-window layers and a global base with linear
position scaling on the others (every ``sliding_window_pattern``-th layer is global), scores scaled by
``query_pre_attn_scalar^-1/2``, causal and padding masks; the soft tokens of one image also see each other (both
directions), on sliding layers within the window. MLP: down(gelu_tanh(gate(x)) * up(x)). Embeddings are
scaled by sqrt(hidden). The last hidden state is taken after the final norm. Image soft
tokens (:class:`ImageTokens`) take the vision tower's projected features in place of their (scaled) embeddings.

Gemma 4 differs in: norms scale by ``w`` (not ``1 + w``); values get a per-head RMSNorm without weight; scores
are not scaled (the q / k norms set their size); global layers have their own head width and key/value heads, may
take values from the key projection (``attention_k_eq_v``) and rotate only the first quarter of their frequencies
(proportional RoPE: the other frequencies are zero, no position scaling); every layer's output is multiplied by a
stored ``layer_scalar``; the logits are capped softly (``30 tanh(logits / 30)``, as ComfyUI's Gemma 4 and
transformers' ``final_logit_softcapping``).

Gemma 4 E2B / E4B (transformers' ``gemma4``, LTX-2.5's prompt enhancer) also have per-layer inputs: each token's
input embedding projected to L x P (times D^-1/2, RMSNorm per layer's slice) plus its row of a second table (times
sqrt(P); an image soft token reads the padding token's row), the sum times 2^-1/2; layer l adds
``post_norm(proj(gelu_tanh(gate(x)) * input_l))`` to its output before the layer scalar. Their last
``kv_shared_layers`` layers take the keys and values of the last earlier layer of their kind (sliding or global)
instead of computing their own, and may have wider feed-forwards (per-layer sizes read from the tensors).

The ComfyUI text-encoder file has no config: sizes come from the tensors, the generation from the keys (only Gemma 4
layers hold ``layer_scalar``), the rest (window, bases, scaling) are the 12B values of that generation unless the
file's ``config`` metadata says otherwise.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.models.next_token import TokenSampling, next_token
from ltxgraph_ops.models.progress import Counter, counted
from ltxgraph_ops.weights.int8 import dequantize_int8


@dataclass(frozen=True)
class ImageTokens:
    """Images placed in a prompt: ``slots`` [B, T] bool marks the soft-token positions (row-major order),
    ``features`` [N_images, n, D] their projected embeddings (N_images * n = number of slots). ``bidirectional``:
    an image's soft tokens attend to each other both ways (Gemma 3's processor, transformers) or, False, causally
    like text (ComfyUI's Gemma 3)."""

    slots: torch.Tensor
    features: torch.Tensor
    bidirectional: bool = True

    def blocks(self) -> torch.Tensor:
        """[B, T] index of the image each soft token belongs to (a run of consecutive slots), -1 for text."""
        previous = F.pad(self.slots, (1, 0), value=False)[:, :-1]
        starts = self.slots & ~previous
        return torch.where(self.slots, starts.long().cumsum(dim=1) - 1, -1)


@dataclass(frozen=True)
class GemmaConfig:
    vocab_size: int = 262208
    hidden_size: int = 3840
    intermediate_size: int = 15360
    num_hidden_layers: int = 48
    num_attention_heads: int = 16
    num_key_value_heads: int = 8
    head_dim: int = 256
    query_pre_attn_scalar: float = 256
    rms_norm_eps: float = 1e-6
    sliding_window: int = 1024
    sliding_window_pattern: int = 6
    rope_local_base_freq: float = 10000.0
    rope_theta: float = 1_000_000.0
    rope_scaling_factor: float = 8.0
    # Gemma 4 switches (the defaults are Gemma 3)
    norm_offset: float = 1.0            # RMSNorm scales by (norm_offset + w)
    value_norm: bool = False            # per-head RMSNorm (no weight) of the values
    layer_scalar: bool = False          # each layer's output times a stored scalar
    global_head_dim: int = 0            # head width of global layers (0: head_dim)
    num_global_key_value_heads: int = 0  # key/value heads of global layers (0: num_key_value_heads)
    attention_k_eq_v: bool = False      # global layers use the key projection for the values too
    global_rope_fraction: float = 1.0   # share of a global head's frequencies that rotate (the rest are zero)
    layer_types: tuple[str, ...] = ()   # "sliding_attention" / "full_attention" per layer (empty: the pattern)
    final_logit_softcapping: float | None = None  # logits -> cap tanh(logits / cap) (None or 0: none)
    per_layer_input_size: int = 0       # P of the per-layer inputs (0: none)
    per_layer_vocab_size: int = 0       # rows of the per-layer input table
    kv_shared_layers: int = 0           # the last layers that reuse an earlier layer's keys and values
    shared_layers_hold_kv: bool = False  # the file still stores key/value projections for those layers
    layer_intermediate_sizes: tuple[int, ...] = ()  # feed-forward width per layer (empty: intermediate_size)

    def is_global(self, layer: int) -> bool:
        if self.layer_types:
            return self.layer_types[layer] == "full_attention"
        return (layer + 1) % self.sliding_window_pattern == 0

    def intermediate_size_of(self, layer: int) -> int:
        return self.layer_intermediate_sizes[layer] if self.layer_intermediate_sizes else self.intermediate_size

    def kv_source(self, layer: int) -> int | None:
        """The earlier layer whose keys and values ``layer`` reuses (the last one of its kind before the shared
        ones), None for a layer that computes its own."""
        first_shared = self.num_hidden_layers - self.kv_shared_layers
        if layer < first_shared:
            return None
        return max(i for i in range(first_shared) if self.is_global(i) == self.is_global(layer))

    def head_dim_of(self, is_global: bool) -> int:
        return self.global_head_dim if is_global and self.global_head_dim else self.head_dim

    def key_value_heads_of(self, is_global: bool) -> int:
        if is_global and self.num_global_key_value_heads:
            return self.num_global_key_value_heads
        return self.num_key_value_heads

    def shares_keys_and_values(self, is_global: bool) -> bool:
        return self.attention_k_eq_v and is_global

    @classmethod
    def from_tensors(cls, shapes: dict[str, tuple[int, ...]], overrides: dict | None = None) -> "GemmaConfig":
        """Sizes from the tensor shapes of a text model (keys without prefix), the rest from ``overrides``
        (transformers' Gemma3TextConfig / Gemma4UnifiedTextConfig names, at the top or under ``text_config``;
        ``rope_scaling: {"factor": f}`` and per-layer-type ``rope_parameters`` accepted) or the 12B values."""
        vocab, hidden = shapes["embed_tokens.weight"]
        layers = 1 + max(int(m.group(1)) for key in shapes if (m := re.match(r"layers\.(\d+)\.", key)))
        head_dim = shapes["layers.0.self_attn.q_norm.weight"][0]
        values = dict(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, head_dim=head_dim,
                      intermediate_size=shapes["layers.0.mlp.gate_proj.weight"][0],
                      num_attention_heads=shapes["layers.0.self_attn.q_proj.weight"][0] // head_dim,
                      num_key_value_heads=shapes["layers.0.self_attn.k_proj.weight"][0] // head_dim,
                      query_pre_attn_scalar=head_dim)
        overrides = _flat_overrides(overrides or {})
        sized = ("vocab_size", "hidden_size", "num_hidden_layers", "head_dim", "intermediate_size",
                 "num_attention_heads", "num_key_value_heads", "per_layer_input_size", "per_layer_vocab_size",
                 "layer_intermediate_sizes")
        if "layers.0.layer_scalar" in shapes:
            values.update(GEMMA4_DEFAULTS)
            values.update(_gemma4_layer_sizes(shapes, layers))
        known = {f.name for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if k in known and k not in sized})
        if "layers.0.layer_scalar" in shapes:
            values.update(_global_layer_sizes(shapes, cls(**values)))
        return cls(**values)


# Gemma 4 12B (gemma4_unified) values a file without config gets
GEMMA4_DEFAULTS = dict(norm_offset=0.0, value_norm=True, layer_scalar=True, query_pre_attn_scalar=1.0,
                       rope_scaling_factor=1.0, global_rope_fraction=0.25, sliding_window=1024,
                       sliding_window_pattern=6, rope_local_base_freq=10000.0, rope_theta=1_000_000.0,
                       final_logit_softcapping=30.0)


def _flat_overrides(config: dict) -> dict:
    """Header config in GemmaConfig's field names: ``text_config`` merged in, RoPE settings flattened."""
    text = config.get("text_config")
    values = {**config, **(text if isinstance(text, dict) else {})}
    scaling = values.pop("rope_scaling", None)
    if isinstance(scaling, dict) and "factor" in scaling:
        values["rope_scaling_factor"] = scaling["factor"]
    rope = values.pop("rope_parameters", None)
    if isinstance(rope, dict):
        local, full = rope.get("sliding_attention") or {}, rope.get("full_attention") or {}
        for field, source, name in (("rope_local_base_freq", local, "rope_theta"), ("rope_theta", full, "rope_theta"),
                                    ("global_rope_fraction", full, "partial_rotary_factor"),
                                    ("rope_scaling_factor", full, "factor")):
            if name in source:
                values[field] = source[name]
    if "num_kv_shared_layers" in values:
        values["kv_shared_layers"] = values.pop("num_kv_shared_layers")
    if isinstance(values.get("layer_types"), list):
        values["layer_types"] = tuple(values["layer_types"])
    return values


# Gemma 4 E2B and E4B (told by their depth, as ComfyUI tells them) as a file without config gets them
GEMMA4_DENSE_DEFAULTS = {35: dict(kv_shared_layers=20, sliding_window=512),
                         42: dict(kv_shared_layers=18, sliding_window=512)}


def _gemma4_layer_sizes(shapes: dict[str, tuple[int, ...]], layers: int) -> dict:
    """What a Gemma 4 text model's tensors tell beyond the widths: per-layer inputs (and then the E2B / E4B
    defaults of its depth), per-layer feed-forward widths when they differ, which layers are global when their
    heads are wider, and whether key/value-sharing layers still store their projections."""
    values: dict = {}
    if "embed_tokens_per_layer.weight" in shapes:
        rows, total = shapes["embed_tokens_per_layer.weight"]
        values.update(GEMMA4_DENSE_DEFAULTS.get(layers, {}), per_layer_input_size=total // layers,
                      per_layer_vocab_size=rows)
        values["shared_layers_hold_kv"] = f"layers.{layers - 1}.self_attn.k_proj.weight" in shapes
    widths = tuple(shapes[f"layers.{i}.mlp.gate_proj.weight"][0] for i in range(layers))
    if len(set(widths)) > 1:
        values["layer_intermediate_sizes"] = widths
    heads = [shapes[f"layers.{i}.self_attn.q_norm.weight"][0] for i in range(layers)]
    if len(set(heads)) > 1:
        values["layer_types"] = tuple("full_attention" if width == max(heads) else "sliding_attention"
                                      for width in heads)
    return values


def _global_layer_sizes(shapes: dict[str, tuple[int, ...]], cfg: "GemmaConfig") -> dict:
    """Head width, key/value heads and whether values reuse the key projection, read from the first global layer."""
    layer = next((i for i in range(cfg.num_hidden_layers) if cfg.is_global(i)), None)
    if layer is None:
        return {}
    attn = f"layers.{layer}.self_attn."
    head_dim = shapes[f"{attn}q_norm.weight"][0]
    return dict(global_head_dim=head_dim, num_global_key_value_heads=shapes[f"{attn}k_proj.weight"][0] // head_dim,
                attention_k_eq_v=f"{attn}v_proj.weight" not in shapes)


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


class GemmaTextModel(nn.Module):
    """State-dict keys: ``embed_tokens.weight``, ``layers.N.*``, ``norm.weight`` (the file's text-model keys
    minus their prefix). ``compute_dtype``: what the layers compute in (hidden states are in it; RMSNorm and
    RoPE angles in float32)."""

    def __init__(self, cfg: GemmaConfig, compute_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.config = cfg
        self.compute_dtype = compute_dtype
        self.embed_tokens = Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([GemmaLayer(cfg, i) for i in range(cfg.num_hidden_layers)])
        self.norm = GemmaRMSNorm(cfg.hidden_size, cfg.rms_norm_eps, cfg.norm_offset)
        self.embed_tokens_per_layer = self.per_layer_model_projection = self.per_layer_projection_norm = None
        if cfg.per_layer_input_size:
            total = cfg.num_hidden_layers * cfg.per_layer_input_size
            self.embed_tokens_per_layer = Embedding(cfg.per_layer_vocab_size, total)
            self.per_layer_model_projection = Linear(cfg.hidden_size, total, bias=False)
            self.per_layer_projection_norm = GemmaRMSNorm(cfg.per_layer_input_size, cfg.rms_norm_eps, cfg.norm_offset)

    def _ropes(self, positions: torch.Tensor, dtype: torch.dtype) -> dict[bool, tuple[torch.Tensor, torch.Tensor]]:
        c = self.config
        return {False: rope_tables(positions, c.head_dim_of(False), c.rope_local_base_freq, 1.0, dtype),
                True: rope_tables(positions, c.head_dim_of(True), c.rope_theta, c.rope_scaling_factor, dtype,
                                  c.global_rope_fraction)}

    def _biases(self, mask: torch.Tensor, new_tokens: int, dtype: torch.dtype,
                images: ImageTokens | None = None) -> dict[bool, torch.Tensor]:
        blocks = None if images is None or not images.bidirectional else images.blocks()
        return {False: attention_bias(mask, new_tokens, self.config.sliding_window, dtype, blocks),
                True: attention_bias(mask, new_tokens, None, dtype, blocks)}

    def embed(self, ids: torch.Tensor, dtype: torch.dtype = torch.float32,
              images: ImageTokens | None = None) -> torch.Tensor:
        """Scaled token embeddings [B, T, D]; image slots hold the image features instead (not scaled)."""
        if images is None:
            return self.embed_tokens(ids, dtype) * torch.tensor(math.sqrt(self.config.hidden_size), dtype=dtype)
        if int(images.slots.sum()) != images.features.shape[0] * images.features.shape[1]:
            raise ValueError(f"{int(images.slots.sum())} image slots in the prompt for {images.features.shape[0]} "
                             f"images of {images.features.shape[1]} tokens")
        ids = torch.where(images.slots | (ids >= self.config.vocab_size), 0, ids)
        x = self.embed(ids, dtype)
        return x.masked_scatter(images.slots[..., None], images.features.to(dtype))

    def per_layer_inputs(self, ids: torch.Tensor, x: torch.Tensor, images: ImageTokens | None = None
                         ) -> torch.Tensor | None:
        """Every layer's input [B, T, L, P] for tokens ``ids`` [B, T] embedded as ``x`` [B, T, D] (image slots read
        the padding token's row of the table); None for a model without per-layer inputs."""
        cfg = self.config
        if not cfg.per_layer_input_size:
            return None
        shape = (*ids.shape, cfg.num_hidden_layers, cfg.per_layer_input_size)
        if images is not None:
            ids = torch.where(images.slots, 0, ids)
        projected = self.per_layer_model_projection(x) * (cfg.hidden_size ** -0.5)
        projected = self.per_layer_projection_norm(projected.reshape(shape))
        table = self.embed_tokens_per_layer(ids, x.dtype) * torch.tensor(math.sqrt(cfg.per_layer_input_size),
                                                                          dtype=x.dtype)
        return (projected + table.reshape(shape)) * (2.0 ** -0.5)

    def _run_layers(self, x: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, offset: int,
                    caches: list[list[torch.Tensor] | None], images: ImageTokens | None = None,
                    on_layer: Counter | None = None, states: list[torch.Tensor] | None = None) -> torch.Tensor:
        """New tokens ``ids`` [B, T] embedded as ``x`` [B, T, D] at positions ``offset + t`` through every layer
        (keys masked by ``mask`` [B, S]); layer i extends ``caches[i]`` (a key/value-sharing layer reads its
        source's); each layer's output appended to ``states``."""
        ropes = self._ropes(torch.arange(offset, offset + ids.shape[1]), x.dtype)
        biases = self._biases(mask, ids.shape[1], x.dtype, images)
        layer_inputs = self.per_layer_inputs(ids, x, images)
        for index, layer in enumerate(counted(self.layers, on_layer)):
            attention = layer.self_attn
            cache = caches[index if attention.kv_source is None else attention.kv_source]
            x = layer(x, ropes[attention.is_global], biases[attention.is_global], cache,
                      None if layer_inputs is None else layer_inputs[:, :, index])
            if states is not None:
                states.append(x)
        return x

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                position_offset: int = 0, on_layer: Counter | None = None,
                images: ImageTokens | None = None) -> list[torch.Tensor]:
        """ids and mask [B, T] (left padding) -> the L + 1 hidden states [B, T, D]: embeddings, then every
        layer's output, the last one after the final norm. Tokens sit at positions ``position_offset + t`` (a
        caller that dropped leading padding columns passes how many it dropped); ``images`` fill their slots.
        ``on_layer(done, total)`` after each layer (resident or streamed)."""
        x = self.embed(input_ids, self.compute_dtype, images)
        states = [x]
        # key/value-sharing layers read their source's keys and values: those layers keep them for the pass
        caches = [[] if self.config.kv_shared_layers else None for _ in range(self.config.num_hidden_layers)]
        x = self._run_layers(x, input_ids, attention_mask, position_offset, caches, images, on_layer, states)
        states[-1] = self.norm(x)
        return states

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final hidden states [B, T, D] -> logits [B, T, vocab] (tied head; Gemma 4 caps them softly)."""
        logits = self.embed_tokens.logits(hidden)
        cap = self.config.final_logit_softcapping
        return cap * torch.tanh(logits / cap) if cap else logits

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
                 stop_tokens: tuple[int, ...] = (1, 106), sampling: TokenSampling | None = None,
                 seed: int = 0, on_token: Counter | None = None,
                 images: ImageTokens | None = None, suppressed_tokens: tuple[int, ...] = ()) -> torch.Tensor:
        """Continue each prompt (left-padded ids / mask [B, T]) for up to ``max_new_tokens`` tokens with a
        key/value cache: greedy when ``sampling`` is None, else drawn as it says (penalties count the new tokens
        only, as ComfyUI's generation loop does) with a generator seeded by ``seed``. Returns the new tokens [B, N] (a finished
        sequence continues with its stop token). ``images`` fill their slots in the prompt; ``suppressed_tokens``
        are never written (their logits at the lowest float); ``on_token(done, max_new_tokens)`` after each new
        token."""
        generator = torch.Generator().manual_seed(seed)
        caches: list[list[torch.Tensor] | None] = [[] for _ in range(self.config.num_hidden_layers)]
        mask, ids, produced = attention_mask.clone(), input_ids, []
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool)
        offset = 0
        for _ in range(max_new_tokens):
            prompt_images = images if offset == 0 else None   # new tokens are text: their own block is none
            x = self.embed(ids, self.compute_dtype, prompt_images)
            x = self._run_layers(x, ids, mask, offset, caches, prompt_images)
            logits = self.logits(self.norm(x[:, -1:]))[:, -1].float()
            if suppressed_tokens:
                logits[:, list(suppressed_tokens)] = torch.finfo(logits.dtype).min
            if offset == 0:
                seen = torch.zeros(logits.shape, dtype=torch.bool)
            token = next_token(logits, seen, sampling, generator)
            token = torch.where(done, torch.full_like(token, stop_tokens[0]), token)
            produced.append(token)
            if on_token is not None:
                on_token(len(produced), max_new_tokens)
            done |= torch.isin(token, torch.tensor(stop_tokens))
            seen[torch.arange(len(token)), token] = True
            if bool(done.all()):
                break
            offset += ids.shape[1]
            ids = token[:, None]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        return torch.stack(produced, dim=1)

