"""Gemma 4's vision encoder and projector: parity with transformers' Gemma4ForConditionalGeneration
(tools/oracle/gemma4_vision.py), the 2-D RoPE layout, the size rule and the config read from a file's tensors."""
from __future__ import annotations

import pytest
import torch

from ltxgraph_ops.models.gemma4_vision import (ClippedLinear, Gemma4Vision, Gemma4VisionConfig, axial_rope,
                                               rotate_each_half)
from tools.oracle import gemma4_vision as oracle

# E2B's text model (per-layer inputs, shared keys and values): its hidden states grow to ~11 over six layers, and
# float32 rounding reaches 1.8e-5 there (1.6e-6 of their size); logits stay within 1e-5
PARITY_BOUNDS = {"gemma4_vision_greedy_generation": 0.0, "gemma4_vision_e2b_greedy_generation": 0.0,
                 "gemma4_vision_e2b_hidden_states": 2.5e-5}


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_gemma4_vision_parity(name: str) -> None:
    pytest.importorskip("transformers")
    assert oracle.CHECKS[name]() <= PARITY_BOUNDS.get(name, 1e-5)


def test_axial_rope_turns_the_first_half_with_the_column_and_the_second_with_the_row() -> None:
    cos, sin = axial_rope(torch.tensor([0, 1, 0]), torch.tensor([0, 0, 2]), head_dim=8, base=100.0,
                          dtype=torch.float32)
    # head_dim 8: two frequencies per axis, 1 and 100^(-1/2) = 0.1, each written twice (rotate-half layout)
    frequencies = torch.tensor([1.0, 0.1, 1.0, 0.1])
    assert torch.equal(cos[0], torch.ones(8)) and torch.equal(sin[0], torch.zeros(8))
    torch.testing.assert_close(cos[1], torch.cat([frequencies.cos(), torch.ones(4)]))
    torch.testing.assert_close(sin[2], torch.cat([torch.zeros(4), (2 * frequencies).sin()]))


def test_each_half_of_a_head_rotates_on_its_own() -> None:
    x = torch.arange(8.0)
    assert rotate_each_half(x).tolist() == [-2.0, -3.0, 0.0, 1.0, -6.0, -7.0, 4.0, 5.0]


def test_clipped_projection_clamps_input_and_output() -> None:
    layer = ClippedLinear(2, 1, clipped=True)
    layer.load_state_dict({"linear.weight": torch.tensor([[1.0, 1.0]]), "input_min": torch.tensor(-1.0),
                           "input_max": torch.tensor(1.0), "output_min": torch.tensor(-1.5),
                           "output_max": torch.tensor(1.5)})
    assert layer(torch.tensor([[5.0, 0.25]])).item() == 1.25      # input clamped to 1, 1 + 0.25
    assert layer(torch.tensor([[5.0, 5.0]])).item() == 1.5        # output clamped
    assert set(ClippedLinear(2, 1, clipped=False).state_dict()) == {"linear.weight"}


def test_soft_tokens_are_one_per_cell_in_row_major_order() -> None:
    """A 48 x 72 image (cells of 24 pixels: 2 x 3) gives 6 soft tokens; changing one cell's pixels changes that
    token most (the encoder mixes the rest a little)."""
    vision = Gemma4Vision(oracle.VISION).eval()
    vision.load_state_dict(oracle.seeded_vision(vision, 3))
    pixels = oracle.test_pixels()
    changed = pixels.clone()
    changed[..., 24:48, 48:72] = 1.0 - changed[..., 24:48, 48:72]     # the bottom-right cell
    with torch.no_grad():
        a, b = vision(pixels), vision(changed)
    assert a.shape == (1, 6, oracle.VISION.text_hidden_size)
    assert int((a - b).abs().amax(dim=-1)[0].argmax()) == 5


def test_sides_must_be_multiples_of_a_cell() -> None:
    vision = Gemma4Vision(oracle.VISION).eval()
    with pytest.raises(ValueError, match="multiples of 24"):
        vision(torch.rand(1, 3, 48, 60))


def test_config_from_the_tensors_and_header() -> None:
    with torch.device("meta"):
        vision = Gemma4Vision(oracle.VISION)
    shapes = {f"{key}": tuple(t.shape) for key, t in vision.state_dict().items()}
    header = {"vision_config": {"pooling_kernel_size": 3, "rope_parameters": {"rope_theta": 100.0}},
              "image_token_id": 299, "boi_token_id": 297, "eoi_token_id": 298}
    assert Gemma4VisionConfig.from_tensors(shapes, header) == oracle.VISION
    unclipped = {k: v for k, v in shapes.items() if not k.endswith(("_min", "_max"))}
    assert not Gemma4VisionConfig.from_tensors(unclipped, header).clipped_linears
