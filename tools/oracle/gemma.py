"""Parity of the Gemma 3 text model with transformers' Gemma3TextModel (what ltx-core runs): the same tiny
config (grouped-query heads, sliding and global layers with different RoPE bases and linear scaling), our seeded
weights, a left-padded batch of two prompts; every hidden state compared on the valid tokens, float32."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.models.gemma import GemmaTextModel  # noqa: E402
from ltxgraph_ops.models.gemma_config import GemmaConfig  # noqa: E402
from ltxgraph_ops.weights.writing import random_state  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402

CONFIG = GemmaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=8,
                     sliding_window=5, sliding_window_pattern=2)


def reference(cfg: GemmaConfig, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    from transformers import Gemma3TextConfig
    from transformers.models.gemma3.modeling_gemma3 import Gemma3TextModel
    config = Gemma3TextConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, head_dim=cfg.head_dim,
        query_pre_attn_scalar=cfg.query_pre_attn_scalar, sliding_window=cfg.sliding_window,
        sliding_window_pattern=cfg.sliding_window_pattern, rope_theta=cfg.rope_theta,
        rope_local_base_freq=cfg.rope_local_base_freq,
        rope_scaling={"rope_type": "linear", "factor": cfg.rope_scaling_factor}, rms_norm_eps=cfg.rms_norm_eps,
        max_position_embeddings=4096, attn_implementation="eager")
    model = Gemma3TextModel(config).eval()
    model.load_state_dict(state, strict=True)
    return model


@torch.no_grad()
def check_hidden_states() -> float:
    ours = GemmaTextModel(CONFIG).eval()
    state = random_state(ours, "", 9)
    for key in state:   # Gemma norms add 1 to their weight: keep them near zero, as trained ones are
        if "norm" in key:
            state[key] = state[key] - 1.0
    ours.load_state_dict(state)
    return hidden_state_error(ours, reference(CONFIG, state), "gemma hidden state", seed=3)


def hidden_state_error(ours: GemmaTextModel, theirs: torch.nn.Module, label: str, seed: int) -> float:
    """Max abs difference of every hidden state on the valid tokens of a seeded, left-padded batch of two."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, ours.config.vocab_size, (2, 12), generator=g)
    mask = torch.ones(2, 12, dtype=torch.int64)
    mask[0, :5] = 0
    ids[0, :5] = 0
    mine = ours(ids, mask)
    ref = theirs(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    if len(mine) != len(ref):
        raise AssertionError(f"{len(mine)} hidden states vs {len(ref)}")
    valid = mask.bool()
    return max(compared(label, a[valid], b[valid]) for a, b in zip(mine, ref))


@torch.no_grad()
def check_generation_cache(config: GemmaConfig = CONFIG) -> float:
    """Generation with the key/value cache equals recomputing the whole sequence for every token (greedy)."""
    ours = GemmaTextModel(config).eval()
    ours.load_state_dict(random_state(ours, "", 10))
    prompt = torch.randint(4, config.vocab_size, (1, 7), generator=torch.Generator().manual_seed(4))
    mask = torch.ones_like(prompt)
    cached = ours.generate(prompt, mask, max_new_tokens=6, stop_tokens=(-1,))
    ids = prompt
    for _ in range(6):
        hidden = ours(ids, torch.ones_like(ids))[-1]
        token = ours.embed_tokens.logits(hidden[:, -1:])[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, token], dim=1)
    return float((cached != ids[:, 7:]).sum())


CHECKS: dict[str, Callable[[], float]] = {"gemma_hidden_states": check_hidden_states,
                                          "gemma_kv_cache_generation": check_generation_cache}
