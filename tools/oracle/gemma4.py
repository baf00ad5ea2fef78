"""Parity of the Gemma 4 text model (LTX-2.5's encoder, transformers' ``gemma4_unified`` text model) with
transformers' Gemma4UnifiedTextModel: a tiny config with sliding and global layers, global layers wider with fewer
key/value heads and values from the key projection, proportional RoPE on a quarter of the global frequencies; our
seeded weights, a left-padded batch of two prompts; every hidden state compared on the valid tokens, float32; and its
key/value-cache generation against recomputing the sequence per token."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.models.gemma import GemmaTextModel  # noqa: E402
from ltxgraph_ops.models.gemma_config import GEMMA4_DEFAULTS, GemmaConfig  # noqa: E402
from ltxgraph_ops.weights.writing import random_state  # noqa: E402
from tools.oracle.gemma import check_generation_cache, hidden_state_error  # noqa: E402

CONFIG = GemmaConfig(**{**GEMMA4_DEFAULTS, "sliding_window": 5, "sliding_window_pattern": 2},
                     vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=8, global_head_dim=16,
                     num_global_key_value_heads=1, attention_k_eq_v=True)


def text_config_fields(cfg: GemmaConfig) -> dict:
    """transformers' Gemma 4 text config fields (gemma4_unified and gemma4 name them alike) for ``cfg``."""
    layer_types = ["full_attention" if cfg.is_global(i) else "sliding_attention"
                   for i in range(cfg.num_hidden_layers)]
    return dict(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, head_dim=cfg.head_dim, global_head_dim=cfg.global_head_dim,
        num_global_key_value_heads=cfg.num_global_key_value_heads, attention_k_eq_v=cfg.attention_k_eq_v,
        sliding_window=cfg.sliding_window, layer_types=layer_types, rms_norm_eps=cfg.rms_norm_eps,
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": cfg.rope_local_base_freq},
                         "full_attention": {"rope_type": "proportional", "rope_theta": cfg.rope_theta,
                                            "partial_rotary_factor": cfg.global_rope_fraction}},
        max_position_embeddings=4096)


def reference(cfg: GemmaConfig, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    from transformers.models.gemma4_unified.configuration_gemma4_unified import Gemma4UnifiedTextConfig
    from transformers.models.gemma4_unified.modeling_gemma4_unified import Gemma4UnifiedTextModel
    config = Gemma4UnifiedTextConfig(**text_config_fields(cfg), attn_implementation="eager")
    model = Gemma4UnifiedTextModel(config).eval()
    model.load_state_dict(state, strict=True)
    return model


@torch.no_grad()
def check_hidden_states() -> float:
    ours = GemmaTextModel(CONFIG).eval()
    state = random_state(ours, "", 11)   # norms and layer scalars near one, as trained ones are
    ours.load_state_dict(state)
    return hidden_state_error(ours, reference(CONFIG, state), "gemma 4 hidden state", seed=5)

CHECKS: dict[str, Callable[[], float]] = {"ltx25_gemma4": check_hidden_states,
                                          "ltx25_gemma4_kv_cache_generation": lambda: check_generation_cache(CONFIG)}
