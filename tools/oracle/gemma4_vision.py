"""Parity of Gemma 4's vision path with transformers' Gemma4ForConditionalGeneration (the class that holds the vision
encoder, its embedder and the text model): a tiny config (a 2-layer vision encoder with clipped projections, 8-pixel
patches pooled 3 x 3, a sliding/global Gemma 4 text decoder with values from the key projection on global layers and
soft-capped logits; no per-layer embeddings and no key/value sharing, which ltxgraph's text model does not have),
our seeded weights copied into theirs, float32 on the CPU. Compared: the vision encoder's pooled output, the
projected soft tokens, every hidden state and the logits of a prompt with an image, and greedy image-conditioned
generation against ``generate``. Image tokens attend causally (Gemma 4 E2B: no bidirectional image attention).
transformers runs its SDPA attention, as ours does: its eager attention computes the same softmax in another order
and differs from SDPA by float rounding alone (1.5e-5 on the encoder's activations of ~8, 1.6e-5 on the hidden
states)."""
from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.models.gemma import GemmaTextModel, ImageTokens  # noqa: E402
from ltxgraph_ops.models.gemma_config import GEMMA4_DEFAULTS, GemmaConfig  # noqa: E402
from ltxgraph_ops.models.gemma4_vision import CLIP_BOUNDS, Gemma4Vision, Gemma4VisionConfig  # noqa: E402
from ltxgraph_ops.weights.writing import random_state  # noqa: E402
from tools.oracle.gemma4 import text_config_fields  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402

TEXT = GemmaConfig(**{**GEMMA4_DEFAULTS, "sliding_window": 12, "sliding_window_pattern": 2},
                   vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=8, global_head_dim=16, num_global_key_value_heads=1,
                   attention_k_eq_v=True)
VISION = Gemma4VisionConfig(hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=2,
                            head_dim=12, patch_size=8, pooling_kernel_size=3, position_embedding_size=64,
                            text_hidden_size=32, boi_token_id=297, image_token_id=299, eoi_token_id=298)
# Gemma 4 E2B's text model in small: per-layer inputs (P = 4), the last 3 of 6 layers reusing the keys and values
# of the last earlier layer of their kind, with doubled feed-forwards; sliding window 5, every third layer global
TEXT_E2B = dataclasses.replace(TEXT, num_hidden_layers=6, sliding_window=5, sliding_window_pattern=3,
                               attention_k_eq_v=False, num_global_key_value_heads=2, per_layer_input_size=4,
                               per_layer_vocab_size=300, kv_shared_layers=3,
                               layer_intermediate_sizes=(64, 64, 64, 128, 128, 128))
IMAGE_SIZE = (48, 72)   # pixels: 6 x 9 patches, 2 x 3 soft tokens


def reference_config(t: GemmaConfig = TEXT):
    from transformers import Gemma4Config, Gemma4TextConfig, Gemma4VisionConfig as TheirVision
    v = VISION
    double_wide = bool(t.layer_intermediate_sizes) and t.layer_intermediate_sizes[-1] == 2 * t.intermediate_size
    text = Gemma4TextConfig(**text_config_fields(t), final_logit_softcapping=t.final_logit_softcapping,
                            hidden_size_per_layer_input=t.per_layer_input_size,
                            vocab_size_per_layer_input=t.per_layer_vocab_size or t.vocab_size,
                            num_kv_shared_layers=t.kv_shared_layers, use_double_wide_mlp=double_wide)
    vision = TheirVision(hidden_size=v.hidden_size, intermediate_size=v.intermediate_size,
                         num_hidden_layers=v.num_hidden_layers, num_attention_heads=v.num_attention_heads,
                         num_key_value_heads=v.num_attention_heads, head_dim=v.head_dim, patch_size=v.patch_size,
                         pooling_kernel_size=v.pooling_kernel_size, position_embedding_size=v.position_embedding_size,
                         rms_norm_eps=v.rms_norm_eps, use_clipped_linears=v.clipped_linears, standardize=False,
                         rope_parameters={"rope_type": "axial", "rope_theta": v.rope_theta})
    return Gemma4Config(text_config=text, vision_config=vision, audio_config=None, boi_token_id=v.boi_token_id,
                        eoi_token_id=v.eoi_token_id, image_token_id=v.image_token_id, attn_implementation="sdpa")


def seeded_vision(vision: Gemma4Vision, seed: int) -> dict[str, torch.Tensor]:
    """Random weights; the clip bounds wide enough for most values but not all (inputs at +-2, outputs at +-3),
    so clipping is exercised."""
    state = random_state(vision, "", seed)
    for key in state:
        if key.endswith(CLIP_BOUNDS):
            state[key] = torch.tensor((2.0 if "input" in key else 3.0) * (-1 if key.endswith("_min") else 1))
    return state


def build_pair(text_config: GemmaConfig = TEXT):
    """(our text model, our vision path, their Gemma4ForConditionalGeneration) on the same weights."""
    from transformers import Gemma4ForConditionalGeneration
    text, vision = GemmaTextModel(text_config).eval(), Gemma4Vision(VISION).eval()
    text_state, vision_state = random_state(text, "", 31), seeded_vision(vision, 32)
    text.load_state_dict(text_state)
    vision.load_state_dict(vision_state)
    theirs = Gemma4ForConditionalGeneration(reference_config(text_config)).eval()
    copy_into(theirs, text_state, vision_state, "model.vision_tower.", "model.embed_vision.")
    return text, vision, theirs


def copy_into(theirs: torch.nn.Module, text_state: dict[str, torch.Tensor], vision_state: dict[str, torch.Tensor],
              tower: str, projector: str) -> None:
    """Our text model's and vision path's weights into a transformers Gemma 4 ...ForConditionalGeneration: the
    text model under ``model.language_model.`` (its tied head too), ``vision_model.*`` under ``tower``,
    ``multi_modal_projector.*`` under ``projector``; every weight of theirs must be set."""
    state = {f"model.language_model.{k}": v for k, v in text_state.items()}
    for key, value in vision_state.items():
        name = (tower + key[len("vision_model."):] if key.startswith("vision_model.")
                else projector + key[len("multi_modal_projector."):])
        state[name] = value
    state["lm_head.weight"] = text_state["embed_tokens.weight"]
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    if unexpected or missing:
        raise AssertionError(f"weights do not map: missing {missing}, unexpected {unexpected}")


def hidden_states_error(text: GemmaTextModel, theirs: torch.nn.Module, ids: torch.Tensor, images: ImageTokens,
                        their_inputs: dict, label: str) -> float:
    """Max abs difference of every hidden state of ``ids`` [1, T] with ``images`` (ours) and ``their_inputs``."""
    mine = text(ids, torch.ones_like(ids), images=images)
    ref = theirs(**their_inputs, output_hidden_states=True).hidden_states
    if len(mine) != len(ref):
        raise AssertionError(f"{len(mine)} hidden states vs {len(ref)}")
    return max(compared(label, a, b) for a, b in zip(mine, ref))


def test_pixels(seed: int = 7) -> torch.Tensor:
    """A smooth image [1, 3, 48, 72] in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 4, 6, generator=g)
    return torch.nn.functional.interpolate(coarse, size=IMAGE_SIZE, mode="bicubic").clamp(0, 1)


def their_patches(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What Gemma4ImageProcessor hands the model: patches [1, N, 3 p^2] (row, column, channel inside a patch) and
    their (column, row) positions [1, N, 2], row-major."""
    p = VISION.patch_size
    _, c, h, w = pixels.shape
    patches = pixels[0].reshape(c, h // p, p, w // p, p).permute(1, 3, 2, 4, 0).reshape(1, -1, c * p * p)
    rows, cols = torch.meshgrid(torch.arange(h // p), torch.arange(w // p), indexing="ij")
    return patches, torch.stack([cols.flatten(), rows.flatten()], dim=-1)[None]


def prompt_ids(tokens: int) -> torch.Tensor:
    """[1, T]: BOS, text, <|image>, the soft-token slots, <image|>, more text."""
    v = VISION
    return torch.tensor([[2, 11, 12, 13, v.boi_token_id, *[v.image_token_id] * tokens, v.eoi_token_id,
                          20, 21, 22, 23, 24]])


@torch.no_grad()
def check_tower() -> float:
    _, vision, theirs = build_pair()
    pixels = test_pixels()
    patches, positions = their_patches(pixels)
    ref = theirs.model.vision_tower(pixel_values=patches, pixel_position_ids=positions).last_hidden_state
    return compared("gemma 4 vision encoder", vision.vision_model(pixels)[0], ref)


@torch.no_grad()
def check_soft_tokens() -> float:
    _, vision, theirs = build_pair()
    pixels = test_pixels()
    patches, positions = their_patches(pixels)
    ref = torch.cat(theirs.model.get_image_features(pixel_values=patches, image_position_ids=positions).pooler_output)
    return compared("gemma 4 soft tokens", vision(pixels)[0], ref)


def _inputs(vision: Gemma4Vision):
    pixels = test_pixels()
    features = vision(pixels)
    ids = prompt_ids(features.shape[1])
    patches, positions = their_patches(pixels)
    images = ImageTokens(ids == VISION.image_token_id, features, bidirectional=False)
    return ids, images, dict(input_ids=ids, pixel_values=patches, image_position_ids=positions,
                             attention_mask=torch.ones_like(ids))


@torch.no_grad()
def check_hidden_states(text_config: GemmaConfig = TEXT) -> float:
    text, vision, theirs = build_pair(text_config)
    ids, images, their_inputs = _inputs(vision)
    return hidden_states_error(text, theirs, ids, images, their_inputs, "gemma 4 hidden state")


@torch.no_grad()
def check_logits(text_config: GemmaConfig = TEXT) -> float:
    text, vision, theirs = build_pair(text_config)
    ids, images, their_inputs = _inputs(vision)
    mine = text.logits(text(ids, torch.ones_like(ids), images=images)[-1])
    return compared("gemma 4 logits", mine, theirs(**their_inputs).logits)


@torch.no_grad()
def check_generation(text_config: GemmaConfig = TEXT) -> float:
    """Greedy image-conditioned generation: number of tokens that differ from transformers' ``generate``."""
    text, vision, theirs = build_pair(text_config)
    ids, images, their_inputs = _inputs(vision)
    steps = 10
    mine = text.generate(ids, torch.ones_like(ids), max_new_tokens=steps, stop_tokens=(-1,), images=images)
    ref = theirs.generate(**their_inputs, max_new_tokens=steps, min_new_tokens=steps, do_sample=False,
                          eos_token_id=None, pad_token_id=0)[:, ids.shape[1]:]
    return float(steps) if ref.shape != mine.shape else float((mine != ref).sum())


CHECKS: dict[str, Callable[[], float]] = {
    "gemma4_vision_encoder": check_tower,
    "gemma4_vision_soft_tokens": check_soft_tokens,
    "gemma4_vision_hidden_states": check_hidden_states,
    "gemma4_vision_logits": check_logits,
    "gemma4_vision_greedy_generation": check_generation,
    "gemma4_vision_e2b_hidden_states": functools.partial(check_hidden_states, TEXT_E2B),
    "gemma4_vision_e2b_logits": functools.partial(check_logits, TEXT_E2B),
    "gemma4_vision_e2b_greedy_generation": functools.partial(check_generation, TEXT_E2B),
}
