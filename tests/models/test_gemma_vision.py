"""Gemma 3's vision path: parity with transformers' Gemma3ForConditionalGeneration (tools/oracle/gemma_vision.py),
the image attention pattern, preprocessing, the prompt layout and the config read from tensor shapes."""
from __future__ import annotations

import pytest
import torch

from ltxgraph_ops.models.gemma import GemmaTextModel, ImageTokens
from ltxgraph_ops.models.gemma_layers import attention_bias
from ltxgraph_ops.models.gemma_vision import (GemmaVision, GemmaVisionConfig, image_token_sequence,
                                              preprocess_image)
from ltxgraph_ops.weights.writing import random_state
from tools.oracle import gemma_vision as oracle

PARITY_BOUNDS = {"gemma3_vision_preprocess": 1 / 255, "gemma3_vision_greedy_generation": 0.0}


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_gemma3_vision_parity(name: str) -> None:
    pytest.importorskip("transformers")
    assert oracle.CHECKS[name]() <= PARITY_BOUNDS.get(name, 1e-5)


def test_image_blocks_number_each_run_of_slots() -> None:
    slots = torch.tensor([[False, True, True, False, True, False], [True, False, False, False, False, False]])
    blocks = ImageTokens(slots, torch.zeros(4, 1, 2)).blocks()
    assert blocks.tolist() == [[-1, 0, 0, -1, 1, -1], [0, -1, -1, -1, -1, -1]]


def test_attention_bias_opens_an_image_both_ways_only() -> None:
    blocks = torch.tensor([[-1, 0, 0, 0, -1, 1, 1]])
    visible = attention_bias(torch.ones(1, 7), 7, None, torch.float32, blocks)[0, 0] == 0
    assert visible[1, 3] and visible[3, 1]           # inside image 0: both directions
    assert not visible[0, 1] and not visible[3, 4]   # text before an image never sees it; no look-ahead to text
    assert not visible[3, 5] and visible[5, 3]       # an earlier image is seen, a later one is not
    windowed = attention_bias(torch.ones(1, 7), 7, 2, torch.float32, blocks)[0, 0] == 0
    assert windowed[1, 3] and not windowed[3, 1]     # sliding layers: the window still limits the past


def test_later_soft_token_changes_earlier_ones_but_not_the_text_before() -> None:
    text, vision = GemmaTextModel(oracle.TEXT).eval(), GemmaVision(oracle.VISION).eval()
    text.load_state_dict(oracle.seeded(text, 1))
    ids = oracle.prompt_ids()
    slots = ids == oracle.VISION.image_token_id
    features = torch.randn(1, oracle.VISION.mm_tokens_per_image, oracle.TEXT.hidden_size)
    changed = features.clone()
    changed[0, -1] += 1.0
    with torch.no_grad():
        a = text(ids, torch.ones_like(ids), images=ImageTokens(slots, features))[-1]
        b = text(ids, torch.ones_like(ids), images=ImageTokens(slots, changed))[-1]
    first = int(slots[0].nonzero()[0])
    assert float((a[0, first] - b[0, first]).abs().max()) > 1e-4
    assert torch.equal(a[0, :first], b[0, :first])


def test_slot_count_must_match_the_features() -> None:
    text = GemmaTextModel(oracle.TEXT).eval()
    ids = oracle.prompt_ids()
    with pytest.raises(ValueError, match="image slots"):
        text(ids, torch.ones_like(ids), images=ImageTokens(ids == oracle.VISION.image_token_id,
                                                           torch.zeros(1, 3, oracle.TEXT.hidden_size)))


def test_preprocess_resizes_to_a_square_in_minus_one_to_one() -> None:
    image = torch.rand(40, 56, 4)
    pixels = preprocess_image(image, 32)
    assert pixels.shape == (1, 3, 32, 32) and pixels.min() >= -1 and pixels.max() <= 1
    flat = preprocess_image(torch.full((10, 20, 3), 0.75), 16)
    assert torch.allclose(flat, torch.full_like(flat, 0.5))
    with pytest.raises(ValueError, match="expected"):
        preprocess_image(torch.rand(10, 20), 16)


def test_image_expands_as_gemma3_processor_does() -> None:
    cfg = GemmaVisionConfig()
    ids = image_token_sequence(cfg, [108])
    assert ids[:2] == [108, 255_999] and ids[-2:] == [256_000, 108]
    assert ids.count(262_144) == 256 and len(ids) == 260


def test_config_from_tensor_shapes_and_header() -> None:
    model = GemmaVision(oracle.VISION)
    shapes = {k: tuple(v.shape) for k, v in random_state(model, "", 0).items()}
    overrides = {"vision_config": {"num_attention_heads": 2}, "mm_tokens_per_image": 16, "boi_token_index": 290,
                 "eoi_token_index": 291, "image_token_index": 299}
    assert GemmaVisionConfig.from_tensors(shapes, overrides) == oracle.VISION
    full = GemmaVisionConfig.from_tensors(shapes)
    assert full.num_attention_heads == 16 and full.mm_tokens_per_image == 256
