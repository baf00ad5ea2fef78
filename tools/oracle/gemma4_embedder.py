"""Parity of Gemma 4 12B's encoder-free vision embedder and its image prompt with transformers'
Gemma4UnifiedForConditionalGeneration: a tiny config (8-pixel cells: 4-pixel patches merged 2 x 2, a 20-wide
embedder, a 16-row position table; the text decoder of tools/oracle/gemma4_vision.py with a sliding window of 16),
our seeded weights copied into theirs, float32 on the CPU. Compared: the embedder's features and projected soft
tokens, every hidden state and the logits of a prompt with an image, and greedy generation.

The pixels reach transformers as its image processor hands them over: 4-pixel patches in row-major order with
their (x, y) positions, merged 2 x 2 into cells (kernel by kernel, row-major inside), padded to 70 cells with
positions -1 (torchvision, which that processor imports, is not an oracle dependency here; its resize is tested
against ComfyUI's call in tests/test_gemma4_image_prompt.py). ``mm_token_type_ids`` marks the soft tokens, so
transformers' forward lets an image's tokens see each other in every layer, as ComfyUI's 12B does; its
``generate`` opens the sliding layers only, so greedy generation is compared with transformers' forward re-run on
the whole sequence per token (no cache), which is ComfyUI's prefill followed by cached decoding."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.models.gemma import GemmaTextModel, ImageTokens  # noqa: E402
from ltxgraph_ops.models.gemma_config import GemmaConfig  # noqa: E402
from ltxgraph_ops.models.gemma4_embedder import Gemma4Embedder, Gemma4EmbedderConfig  # noqa: E402
from ltxgraph_ops.weights.writing import random_state  # noqa: E402
from tools.oracle.gemma4 import text_config_fields  # noqa: E402
from tools.oracle.gemma4_vision import TEXT as VISION_TEXT, copy_into, hidden_states_error  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402

TEXT: GemmaConfig = dataclasses.replace(VISION_TEXT, sliding_window=16)
PATCH, KERNEL = 4, 2
EMBEDDER = Gemma4EmbedderConfig(model_patch_size=PATCH * KERNEL, mm_embed_dim=20, mm_posemb_size=16,
                                text_hidden_size=TEXT.hidden_size, boi_token_id=297, image_token_id=299,
                                eoi_token_id=298)
IMAGE_SIZE = (16, 24)     # pixels: 2 x 3 cells, 6 soft tokens
PADDED_CELLS = 70         # the fewest soft tokens transformers' processor pads an image to
STEPS = 10


def reference_config():
    from transformers import Gemma4UnifiedConfig
    from transformers.models.gemma4_unified.configuration_gemma4_unified import (Gemma4UnifiedTextConfig,
                                                                                  Gemma4UnifiedVisionConfig)
    e = EMBEDDER
    text = Gemma4UnifiedTextConfig(**text_config_fields(TEXT), final_logit_softcapping=TEXT.final_logit_softcapping,
                                   use_bidirectional_attention="vision")
    vision = Gemma4UnifiedVisionConfig(patch_size=PATCH, pooling_kernel_size=KERNEL, mm_embed_dim=e.mm_embed_dim,
                                       mm_posemb_size=e.mm_posemb_size, output_proj_dims=e.mm_embed_dim,
                                       rms_norm_eps=e.rms_norm_eps)
    return Gemma4UnifiedConfig(text_config=text, vision_config=vision, audio_config=None,
                               boi_token_id=e.boi_token_id, eoi_token_id=e.eoi_token_id,
                               image_token_id=e.image_token_id, video_token_id=296, audio_token_id=295,
                               boa_token_id=294, eoa_token_index=293, attn_implementation="sdpa")


def seeded_embedder(embedder: Gemma4Embedder, seed: int) -> dict[str, torch.Tensor]:
    """Random weights, the position table at the size of the other weights (its rows must matter)."""
    state = random_state(embedder, "", seed)
    g = torch.Generator().manual_seed(seed + 1)
    state["vision_model.pos_embedding"] = torch.randn(state["vision_model.pos_embedding"].shape, generator=g)
    return state


def build_pair():
    """(our text model, our embedder, their Gemma4UnifiedForConditionalGeneration) on the same weights."""
    from transformers import Gemma4UnifiedForConditionalGeneration
    text, embedder = GemmaTextModel(TEXT).eval(), Gemma4Embedder(EMBEDDER).eval()
    text_state, embedder_state = random_state(text, "", 41), seeded_embedder(embedder, 42)
    text.load_state_dict(text_state)
    embedder.load_state_dict(embedder_state)
    theirs = Gemma4UnifiedForConditionalGeneration(reference_config()).eval()
    copy_into(theirs, text_state, embedder_state, "model.embed_vision.", "model.embed_vision.multimodal_embedder.")
    return text, embedder, theirs


def test_pixels(seed: int = 9) -> torch.Tensor:
    """An image [1, 3, 16, 24] in [0, 1], every pixel its own."""
    return torch.rand(1, 3, *IMAGE_SIZE, generator=torch.Generator().manual_seed(seed))


def their_cells(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What Gemma4UnifiedImageProcessor hands the model for ``pixels`` [1, 3, H, W]: merged patches [1, 70, 3 c^2]
    and their (x, y) cell positions [1, 70, 2], padding at -1. Built from the 4-pixel patches: each cell's 2 x 2
    patches (row-major) laid side by side into the cell's pixels (row, column, channel)."""
    _, c, h, w = pixels.shape
    rows, cols = h // PATCH, w // PATCH
    patches = pixels[0].reshape(c, rows, PATCH, cols, PATCH).permute(1, 3, 2, 4, 0)     # [rows, cols, p, p, C]
    merged, positions = [], []
    for y in range(0, rows, KERNEL):
        for x in range(0, cols, KERNEL):
            kernel = patches[y:y + KERNEL, x:x + KERNEL]                                # [k, k, p, p, C]
            merged.append(kernel.permute(0, 2, 1, 3, 4).reshape(-1))                    # (k p, k p, C)
            positions.append([x // KERNEL, y // KERNEL])
    cells, where = torch.stack(merged), torch.tensor(positions)
    padding = PADDED_CELLS - len(cells)
    cells = torch.cat([cells, torch.zeros(padding, cells.shape[1])])
    where = torch.cat([where, torch.full((padding, 2), -1)])
    return cells[None], where[None]


def prompt_ids(tokens: int) -> torch.Tensor:
    """[1, T]: BOS, text, <|image>, the soft-token slots, <image|>, more text (longer than the window)."""
    e = EMBEDDER
    return torch.tensor([[2, 11, 12, 13, e.boi_token_id, *[e.image_token_id] * tokens, e.eoi_token_id,
                          20, 21, 22, 23, 24, 25, 26]])


def _inputs(embedder: Gemma4Embedder) -> tuple[torch.Tensor, ImageTokens, dict]:
    pixels = test_pixels()
    features = embedder(pixels)
    ids = prompt_ids(features.shape[1])
    slots = ids == EMBEDDER.image_token_id
    cells, positions = their_cells(pixels)
    their_inputs = dict(input_ids=ids, pixel_values=cells, image_position_ids=positions,
                        mm_token_type_ids=slots.long(), attention_mask=torch.ones_like(ids))
    return ids, ImageTokens(slots, features, bidirectional=EMBEDDER.bidirectional_images), their_inputs


@torch.no_grad()
def check_embedder() -> float:
    _, embedder, theirs = build_pair()
    cells, positions = their_cells(test_pixels())
    ref = theirs.model.embed_vision(cells, positions, return_dict=True).last_hidden_state[0, :6]
    return compared("gemma 4 encoder-free embedder", embedder.vision_model(test_pixels())[0], ref)


@torch.no_grad()
def check_soft_tokens() -> float:
    _, embedder, theirs = build_pair()
    cells, positions = their_cells(test_pixels())
    ref = torch.cat(theirs.model.get_image_features(cells, positions).pooler_output)
    return compared("gemma 4 encoder-free soft tokens", embedder(test_pixels())[0], ref)


@torch.no_grad()
def check_hidden_states() -> float:
    text, embedder, theirs = build_pair()
    ids, images, their_inputs = _inputs(embedder)
    return hidden_states_error(text, theirs, ids, images, their_inputs, "gemma 4 12B hidden state with an image")


@torch.no_grad()
def check_logits() -> float:
    text, embedder, theirs = build_pair()
    ids, images, their_inputs = _inputs(embedder)
    mine = text.logits(text(ids, torch.ones_like(ids), images=images)[-1])
    return compared("gemma 4 12B logits with an image", mine, theirs(**their_inputs).logits)


def their_greedy(theirs, their_inputs: dict, steps: int = STEPS) -> torch.Tensor:
    """transformers' forward on the whole sequence once per new token, the likeliest token appended: [1, steps]."""
    inputs, produced = dict(their_inputs), []
    for _ in range(steps):
        token = theirs(**inputs).logits[:, -1].argmax(dim=-1, keepdim=True)
        produced.append(token)
        inputs["input_ids"] = torch.cat([inputs["input_ids"], token], dim=1)
        inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(token)], dim=1)
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    return torch.cat(produced, dim=1)


@torch.no_grad()
def check_generation() -> float:
    """Greedy image-conditioned generation with our key/value cache: number of tokens that differ."""
    text, embedder, theirs = build_pair()
    ids, images, their_inputs = _inputs(embedder)
    mine = text.generate(ids, torch.ones_like(ids), max_new_tokens=STEPS, stop_tokens=(-1,), images=images)
    ref = their_greedy(theirs, their_inputs)
    return float(STEPS) if ref.shape != mine.shape else float((mine != ref).sum())


CHECKS: dict[str, Callable[[], float]] = {
    "gemma4_embedder": check_embedder,
    "gemma4_embedder_soft_tokens": check_soft_tokens,
    "gemma4_embedder_hidden_states": check_hidden_states,
    "gemma4_embedder_logits": check_logits,
    "gemma4_embedder_greedy_generation": check_generation,
}
