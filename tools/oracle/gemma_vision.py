"""Parity of Gemma 3's vision path with transformers' Gemma3ForConditionalGeneration: one tiny config (a SigLIP
tower, pooling 8 x 8 patches to 4 x 4 soft tokens, a sliding/global text decoder), our seeded weights copied
into theirs, float32 on the CPU. Compared: image preprocessing against Gemma3ImageProcessor, the tower output,
the projected image features, every hidden state and the logits of a prompt with an image, and greedy
image-conditioned generation against ``generate``."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.models.gemma import GemmaTextModel, ImageTokens  # noqa: E402
from ltxgraph_ops.models.gemma_config import GemmaConfig  # noqa: E402
from ltxgraph_ops.models.gemma_vision import (GemmaVision, GemmaVisionConfig, image_token_sequence,  # noqa: E402
                                              preprocess_image)
from ltxgraph_ops.weights.writing import random_state  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402

TEXT = GemmaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=8, sliding_window=12,
                   sliding_window_pattern=2)
VISION = GemmaVisionConfig(hidden_size=16, intermediate_size=40, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=4, text_hidden_size=32, mm_tokens_per_image=16,
                           boi_token_id=290, eoi_token_id=291, image_token_id=299)
NEWLINES = [7]   # stands for the tokenizer's "\n\n"


def reference_config():
    from transformers import Gemma3Config, Gemma3TextConfig, SiglipVisionConfig
    t, v = TEXT, VISION
    text = Gemma3TextConfig(
        vocab_size=t.vocab_size, hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
        num_hidden_layers=t.num_hidden_layers, num_attention_heads=t.num_attention_heads,
        num_key_value_heads=t.num_key_value_heads, head_dim=t.head_dim, query_pre_attn_scalar=t.query_pre_attn_scalar,
        sliding_window=t.sliding_window, sliding_window_pattern=t.sliding_window_pattern, rope_theta=t.rope_theta,
        rope_local_base_freq=t.rope_local_base_freq, rope_scaling={"rope_type": "linear", "factor": t.rope_scaling_factor},
        rms_norm_eps=t.rms_norm_eps, max_position_embeddings=4096)
    vision = SiglipVisionConfig(hidden_size=v.hidden_size, intermediate_size=v.intermediate_size,
                                num_hidden_layers=v.num_hidden_layers, num_attention_heads=v.num_attention_heads,
                                image_size=v.image_size, patch_size=v.patch_size, layer_norm_eps=v.layer_norm_eps,
                                hidden_act="gelu_pytorch_tanh", vision_use_head=False)
    return Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=v.mm_tokens_per_image,
                        boi_token_index=v.boi_token_id, eoi_token_index=v.eoi_token_id,
                        image_token_index=v.image_token_id, attn_implementation="eager")


def seeded(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Random weights; Gemma RMSNorm gains near zero (they add 1), LayerNorm gains near one, as trained ones."""
    state = random_state(module, "", seed)
    for key in state:
        if key.endswith("norm.weight") or "mm_soft_emb_norm" in key:
            state[key] = state[key] - 1.0
    return state


def build_pair():
    """(our text model, our vision model, their Gemma3ForConditionalGeneration) on the same weights."""
    from transformers import Gemma3ForConditionalGeneration
    text, vision = GemmaTextModel(TEXT).eval(), GemmaVision(VISION).eval()
    text_state, vision_state = seeded(text, 21), seeded(vision, 22)
    for key in vision_state:   # LayerNorms (weight and bias): gains near one, small biases
        if "layer_norm" in key or "post_layernorm" in key:
            vision_state[key] = (1.0 if key.endswith("weight") else 0.0) + 0.1 * vision_state[key]
    text.load_state_dict(text_state)
    vision.load_state_dict(vision_state)
    theirs = Gemma3ForConditionalGeneration(reference_config()).eval()
    state = {f"model.language_model.{k}": v for k, v in text_state.items()}
    # transformers 5 holds the SigLIP modules directly under vision_tower (its files say vision_tower.vision_model)
    state.update({f"model.vision_tower.{k[len('vision_model.'):]}" if k.startswith("vision_model.") else f"model.{k}": v
                  for k, v in vision_state.items()})
    state["lm_head.weight"] = text_state["embed_tokens.weight"]
    # strict in effect: everything must map except transformers' position_ids buffers, which we do not store
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.endswith("position_ids")]:
        raise AssertionError(f"weights do not map: missing {missing}, unexpected {unexpected}")
    return text, vision, theirs


def test_image(seed: int = 5) -> torch.Tensor:
    """A smooth image [40, 56, 3] in [0, 1] (not square, not the tower's size: the resize is exercised)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 5, 7, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(40, 56), mode="bicubic").clamp(0, 1)[0].permute(1, 2, 0)


def prompt_ids() -> torch.Tensor:
    """[1, T]: BOS, some text, one image expanded as the processor does, more text."""
    image = image_token_sequence(VISION, NEWLINES)
    return torch.tensor([[2, 11, 12, 13, *image, 20, 21, 22, 23, 24]])


@torch.no_grad()
def check_preprocess() -> float:
    """Max difference of the preprocessed pixels, in [0, 1] units (before the mean/std normalisation), from
    Gemma3ImageProcessorPil on an 8-bit image: PIL resizes in 8 bits with fixed-point weights, so agreement is
    within one 8-bit level (1/255), not exact; our float path computes the same bilinear antialiased filter."""
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil
    image = (test_image() * 255).round().to(torch.uint8)
    processor = Gemma3ImageProcessorPil(size={"height": VISION.image_size, "width": VISION.image_size})
    theirs = processor(images=image.numpy(), return_tensors="pt")["pixel_values"]
    mine = preprocess_image(image.float() / 255, VISION.image_size)
    return compared("vision preprocess", mine, theirs) * 0.5


@torch.no_grad()
def check_tower() -> float:
    _, vision, theirs = build_pair()
    pixels = preprocess_image(test_image(), VISION.image_size)
    ref = theirs.model.vision_tower(pixel_values=pixels).last_hidden_state
    return compared("vision tower", vision.vision_model(pixels), ref)


@torch.no_grad()
def check_projected_features() -> float:
    _, vision, theirs = build_pair()
    pixels = preprocess_image(test_image(), VISION.image_size)
    ref = theirs.model.get_image_features(pixel_values=pixels).pooler_output
    return compared("vision features", vision(pixels), ref)


def _inputs(vision: GemmaVision) -> tuple[torch.Tensor, torch.Tensor, ImageTokens, torch.Tensor]:
    ids = prompt_ids()
    pixels = preprocess_image(test_image(), VISION.image_size)
    return ids, pixels, ImageTokens(ids == VISION.image_token_id, vision(pixels)), (ids == VISION.image_token_id)


@torch.no_grad()
def check_hidden_states() -> float:
    text, vision, theirs = build_pair()
    ids, pixels, images, types = _inputs(vision)
    mine = text(ids, torch.ones_like(ids), images=images)
    ref = theirs(input_ids=ids, pixel_values=pixels, attention_mask=torch.ones_like(ids),
                 token_type_ids=types.long(), output_hidden_states=True).hidden_states
    if len(mine) != len(ref):
        raise AssertionError(f"{len(mine)} hidden states vs {len(ref)}")
    return max(compared("gemma hidden state", a, b) for a, b in zip(mine, ref))


@torch.no_grad()
def check_logits() -> float:
    text, vision, theirs = build_pair()
    ids, pixels, images, types = _inputs(vision)
    mine = text.embed_tokens.logits(text(ids, torch.ones_like(ids), images=images)[-1])
    ref = theirs(input_ids=ids, pixel_values=pixels, attention_mask=torch.ones_like(ids),
                 token_type_ids=types.long()).logits
    return compared("gemma logits", mine, ref)


@torch.no_grad()
def check_generation() -> float:
    """Greedy image-conditioned generation: number of tokens that differ from transformers' ``generate``."""
    text, vision, theirs = build_pair()
    ids, pixels, images, types = _inputs(vision)
    steps = 10
    mine = text.generate(ids, torch.ones_like(ids), max_new_tokens=steps, stop_tokens=(-1,), images=images)
    ref = theirs.generate(input_ids=ids, pixel_values=pixels, attention_mask=torch.ones_like(ids),
                          token_type_ids=types.long(), max_new_tokens=steps, min_new_tokens=steps, do_sample=False,
                          eos_token_id=None, pad_token_id=0)[:, ids.shape[1]:]
    if ref.shape != mine.shape:
        return float(steps)
    return float((mine != ref).sum())


CHECKS: dict[str, Callable[[], float]] = {
    "gemma3_vision_preprocess": check_preprocess,
    "gemma3_vision_tower": check_tower,
    "gemma3_vision_projected_features": check_projected_features,
    "gemma3_vision_hidden_states": check_hidden_states,
    "gemma3_vision_logits": check_logits,
    "gemma3_vision_greedy_generation": check_generation,
}
