"""The configuration of a Gemma 3 / Gemma 4 text decoder (:class:`GemmaConfig`), read from a file's tensor shapes
and its ``config`` metadata.

The ComfyUI text-encoder file has no config: sizes come from the tensors, the generation from the keys (only Gemma 4
layers hold ``layer_scalar``), the rest (window, bases, scaling) are the 12B values of that generation unless the
file's ``config`` metadata says otherwise. Gemma 4 E2B / E4B are told by their per-layer input table and depth;
their per-layer feed-forward widths, global layers and global head sizes by the tensors of each layer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields

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
