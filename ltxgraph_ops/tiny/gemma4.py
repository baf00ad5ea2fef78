"""Tiny Gemma 4 text encoders in ComfyUI's flat file layout: the text model under ``model.*`` (``model.layers.N.*``
with each layer's ``layer_scalar``, ``model.embed_tokens``, ``model.norm``), the tokenizer in a ``spiece_model``
uint8 tensor (with Gemma 4's chat and image markers), the Gemma 4 config in the header. LTX-2.5's encoder
(``gemma4_unified``); the prompt enhancer's stand-in is a small Gemma 4 E2B (transformers' ``gemma4``: per-layer
inputs, layers reusing earlier keys and values with wider feed-forwards) with a vision encoder under
``vision_model.*`` and ``multi_modal_projector.*`` (the real key layout); the 12B may carry its encoder-free
image embedder there instead (``vision_model.patch_dense`` ...). Width and depth match the tiny Gemma 3 so the tiny
2.5 checkpoint's text projection reads its hidden states."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ltxgraph_ops.gemma4_image_prompt import IMAGE_END, IMAGE_SLOT, IMAGE_START, MARKERS
from ltxgraph_ops.models.gemma import GemmaTextModel
from ltxgraph_ops.models.gemma4_embedder import Gemma4Embedder, Gemma4EmbedderConfig
from ltxgraph_ops.models.gemma_config import GEMMA4_DEFAULTS, GemmaConfig
from ltxgraph_ops.models.gemma4_vision import CLIP_BOUNDS, Gemma4Vision, Gemma4VisionConfig
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


# the tiny E2B's header (transformers' Gemma4TextConfig names)
TINY_E2B_HEADER = {"model_type": "gemma4",
                   "text_config": {"model_type": "gemma4_text", "sliding_window": 16, "num_kv_shared_layers": 2,
                                   "layer_types": ["sliding_attention", "full_attention"] * 2}}


def tiny_e2b_config(vocab_size: int) -> GemmaConfig:
    """Four layers (sliding, global, then the same two reusing the first two's keys and values with feed-forwards
    twice as wide) of width 24, per-layer inputs of 4, global layers with one 16-wide key/value head of their own."""
    return GemmaConfig(**{**GEMMA4_DEFAULTS, "sliding_window": 16}, layer_types=tuple(
        TINY_E2B_HEADER["text_config"]["layer_types"]), vocab_size=vocab_size, hidden_size=24, intermediate_size=48,
        num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=1, head_dim=8, global_head_dim=16,
        num_global_key_value_heads=1, per_layer_input_size=4, per_layer_vocab_size=vocab_size, kv_shared_layers=2,
        layer_intermediate_sizes=(48, 48, 96, 96))


def tiny_vision_config(image_ids: tuple[int, int, int], text_hidden: int) -> Gemma4VisionConfig:
    """Two encoder layers of width 16 (2 heads of 8) over 16-pixel patches pooled 3 x 3, clipped projections;
    ``image_ids``: the tokenizer's <|image>, <|image|>, <image|>."""
    return Gemma4VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                              head_dim=8, position_embedding_size=256, text_hidden_size=text_hidden,
                              boi_token_id=image_ids[0], image_token_id=image_ids[1], eoi_token_id=image_ids[2])


def vision_header(config: Gemma4VisionConfig) -> dict:
    """The Gemma4Config fields the file's header carries for its vision encoder."""
    return {"vision_config": {"pooling_kernel_size": config.pooling_kernel_size,
                              "rope_parameters": {"rope_type": "axial", "rope_theta": config.rope_theta}},
            "boi_token_id": config.boi_token_id, "image_token_id": config.image_token_id,
            "eoi_token_id": config.eoi_token_id}


def vision_tensors(config: Gemma4VisionConfig, seed: int, storage: str) -> dict[str, torch.Tensor]:
    """The vision encoder's seeded weights; the clip bounds at +-100 (finite, as trained ones, and rarely reached)."""
    with torch.device("meta"):
        vision = Gemma4Vision(config)
    state = random_state(vision, "", seed)
    for key in state:
        if key.endswith(CLIP_BOUNDS):
            state[key] = torch.tensor(-100.0 if key.endswith("_min") else 100.0)
    return store(state, linear_weight_keys(vision, ""), storage)


def tiny_embedder_config(image_ids: tuple[int, int, int], text_hidden: int) -> Gemma4EmbedderConfig:
    """The 12B's encoder-free embedder in small: ComfyUI's 48-pixel cells, width 8, a position table of 280 rows
    (the most cells a side ComfyUI's resize gives); ``image_ids`` as in :func:`tiny_vision_config`."""
    return Gemma4EmbedderConfig(mm_embed_dim=8, mm_posemb_size=280, text_hidden_size=text_hidden,
                                boi_token_id=image_ids[0], image_token_id=image_ids[1], eoi_token_id=image_ids[2])


def embedder_tensors(config: Gemma4EmbedderConfig, seed: int, storage: str) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        embedder = Gemma4Embedder(config)
    return store(random_state(embedder, "", seed), linear_weight_keys(embedder, ""), storage)


def write_file(path: Path, storage: str = "bf16", seed: int = 0, vision: bool = False,
               embedder: bool = False) -> Path:
    """A tiny Gemma 4 text-encoder file: weights stored as ``storage`` (bf16, fp8 or float32) and the tokenizer;
    with ``vision`` the E2B stand-in with its vision encoder, else the 12B's, with ``embedder`` carrying its
    encoder-free image embedder."""
    import sentencepiece as spm
    spm_bytes = train_tiny_spm(markers=MARKERS)
    pieces = spm.SentencePieceProcessor(model_proto=spm_bytes)
    config = (tiny_e2b_config if vision else tiny_config)(pieces.get_piece_size())
    with torch.device("meta"):
        model = GemmaTextModel(config)
    tensors = store(random_state(model, PREFIX, seed), linear_weight_keys(model, PREFIX), storage)
    header = json.loads(json.dumps(TINY_E2B_HEADER if vision else TINY_HEADER))
    image_ids = tuple(pieces.piece_to_id(piece) for piece in (IMAGE_START, IMAGE_SLOT, IMAGE_END))
    if vision:
        vision_config = tiny_vision_config(image_ids, config.hidden_size)
        tensors.update(vision_tensors(vision_config, seed, storage))
        header.update(vision_header(vision_config))
    elif embedder:
        embedder_config = tiny_embedder_config(image_ids, config.hidden_size)
        tensors.update(embedder_tensors(embedder_config, seed, storage))
        header.update({name: getattr(embedder_config, name) for name in ("boi_token_id", "image_token_id",
                                                                           "eoi_token_id")})
    tensors["spiece_model"] = torch.frombuffer(bytearray(spm_bytes), dtype=torch.uint8).clone()
    return save_atomic(path, tensors, {"config": json.dumps(header)})
