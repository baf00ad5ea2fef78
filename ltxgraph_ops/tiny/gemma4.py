"""Tiny Gemma 4 text encoder (LTX-2.5's, transformers' ``gemma4_unified`` text model) in ComfyUI's flat file layout:
the text model under ``model.*`` (``model.layers.N.*`` with each layer's ``layer_scalar``, ``model.embed_tokens``,
``model.norm``), the tokenizer in a ``spiece_model`` uint8 tensor, the Gemma 4 config in the header. Its width and
depth match the tiny Gemma 3 so the tiny 2.5 checkpoint's text projection reads its hidden states."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ltxgraph_ops.models.gemma import GEMMA4_DEFAULTS, GemmaConfig, GemmaTextModel
from ltxgraph_ops.tiny.gemma import PREFIX, train_tiny_spm
from ltxgraph_ops.weights.writing import linear_weight_keys, random_state, save_atomic, store

# What the tiny file's header says beyond the tensors' sizes (transformers' Gemma4UnifiedTextConfig names)
TINY_HEADER = {"model_type": "gemma4_unified",
               "text_config": {"model_type": "gemma4_unified_text", "sliding_window": 16,
                               "layer_types": ["sliding_attention", "full_attention"]}}


# Gemma 4 12B as a full-size synthetic file assumes it (no release config has been seen here): 48 layers (ComfyUI
# tells the 12B by ``model.layers.47`` with no ``v_proj`` in layer 5, a global layer whose values come from its
# key projection), Gemma 3 12B's widths (3840, 16 x 256 heads, 8 key/value heads, feed-forward 15360) and every
# sixth layer global with 512-wide heads (transformers' Gemma4UnifiedTextConfig's per-layer head width)
FULL_LAYERS = 48
FULL_HEADER = {"model_type": "gemma4_unified",
               "text_config": {"model_type": "gemma4_unified_text", "sliding_window": 1024,
                               "layer_types": ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention"
                                               for i in range(FULL_LAYERS)]}}


def full_config(vocab_size: int = 262144) -> GemmaConfig:
    """The assumed Gemma 4 12B text model (:data:`FULL_HEADER`'s layer pattern)."""
    return GemmaConfig(**GEMMA4_DEFAULTS, layer_types=tuple(FULL_HEADER["text_config"]["layer_types"]),
                       vocab_size=vocab_size, num_hidden_layers=FULL_LAYERS, global_head_dim=512,
                       num_global_key_value_heads=1, attention_k_eq_v=True)


def tiny_config(vocab_size: int) -> GemmaConfig:
    """Two layers (sliding, then global) of width 24 like the tiny Gemma 3; the global layer has wider heads (16),
    one key/value head and values from its key projection, as Gemma 4 12B's global layers do."""
    return GemmaConfig(**{**GEMMA4_DEFAULTS, "sliding_window": 16},
                       layer_types=("sliding_attention", "full_attention"), vocab_size=vocab_size, hidden_size=24,
                       intermediate_size=48, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                       head_dim=8, global_head_dim=16, num_global_key_value_heads=1, attention_k_eq_v=True)


def write_file(path: Path, storage: str = "bf16", seed: int = 0) -> Path:
    """The tiny Gemma 4 text-encoder file: weights stored as ``storage`` (bf16, fp8 or float32) and the tokenizer."""
    import sentencepiece as spm
    spm_bytes = train_tiny_spm()
    config = tiny_config(spm.SentencePieceProcessor(model_proto=spm_bytes).get_piece_size())
    with torch.device("meta"):
        model = GemmaTextModel(config)
    tensors = store(random_state(model, PREFIX, seed), linear_weight_keys(model, PREFIX), storage)
    tensors["spiece_model"] = torch.frombuffer(bytearray(spm_bytes), dtype=torch.uint8).clone()
    return save_atomic(path, tensors, {"config": json.dumps(TINY_HEADER)})
