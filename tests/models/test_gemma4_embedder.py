"""Gemma 4 12B's encoder-free vision embedder: parity with transformers' Gemma4UnifiedForConditionalGeneration
(tools/oracle/gemma4_embedder.py), the cell layout, the factorised positions and the config read from a file's
tensors."""
from __future__ import annotations

import pytest
import torch

from ltxgraph_ops.models.gemma4_embedder import Gemma4Embedder, Gemma4EmbedderConfig, image_cells
from tools.oracle import gemma4_embedder as oracle

# the text decoder's hidden states grow to ~10 over four layers: float32 rounding reaches 1e-5 there
PARITY_BOUNDS = {"gemma4_embedder_greedy_generation": 0.0, "gemma4_embedder_hidden_states": 2.5e-5}


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_gemma4_embedder_parity(name: str) -> None:
    pytest.importorskip("transformers")
    assert oracle.CHECKS[name]() <= PARITY_BOUNDS.get(name, 1e-5)


def test_cells_are_row_major_each_flattened_row_column_channel() -> None:
    pixels = torch.arange(3 * 4 * 6, dtype=torch.float32).reshape(1, 3, 4, 6)    # 2 x 3 cells of 2 pixels
    cells, column, row = image_cells(pixels, 2)
    assert cells.shape == (1, 6, 12)
    assert column.tolist() == [0, 1, 2, 0, 1, 2] and row.tolist() == [0, 0, 0, 1, 1, 1]
    # the second cell of the second row: pixel rows 2-3, columns 2-3; channels innermost
    expected = [float(pixels[0, ch, y, x]) for y in (2, 3) for x in (2, 3) for ch in range(3)]
    assert cells[0, 4].tolist() == expected


def tiny_embedder(seed: int = 3) -> Gemma4Embedder:
    embedder = Gemma4Embedder(oracle.EMBEDDER).eval()
    embedder.load_state_dict(oracle.seeded_embedder(embedder, seed))
    return embedder


def test_each_cell_is_one_soft_token_of_its_own_pixels_and_place() -> None:
    """No cell sees another: changing one cell's pixels changes its token only; the same pixels in another cell
    give another token (the position table)."""
    embedder = tiny_embedder()
    pixels = oracle.test_pixels()
    changed = pixels.clone()
    changed[..., 8:16, 16:24] = 1.0 - changed[..., 8:16, 16:24]     # the bottom-right cell of 2 x 3
    with torch.no_grad():
        a, b = embedder(pixels), embedder(changed)
    assert a.shape == (1, 6, oracle.EMBEDDER.text_hidden_size)
    moved = (a - b).abs().amax(dim=-1)[0]
    assert moved[:5].max() == 0 and moved[5] > 1e-3
    flat = torch.full((1, 3, 8, 16), 0.3)
    with torch.no_grad():
        left, right = embedder(flat)[0]
    assert (left - right).abs().max() > 1e-3


def test_positions_read_the_column_from_the_first_axis_and_the_row_from_the_second() -> None:
    embedder = tiny_embedder()
    table = embedder.vision_model.pos_embedding
    table.zero_()
    table[1, 0] = 1.0                                    # column 1
    with torch.no_grad():
        flat = torch.full((1, 3, 16, 16), 0.5)           # 2 x 2 cells
        before = embedder.vision_model.patch_ln2(embedder.vision_model.patch_dense(
            embedder.vision_model.patch_ln1(torch.full((1, 4, 192), 0.5))))
        out = embedder.vision_model(flat)
    expected = embedder.vision_model.pos_norm(before + torch.tensor([0.0, 1.0, 0.0, 1.0])[None, :, None])
    torch.testing.assert_close(out, expected)


def test_sides_must_be_multiples_of_a_cell_and_fit_the_position_table() -> None:
    embedder = tiny_embedder()
    with pytest.raises(ValueError, match="multiples of 8"):
        embedder(torch.rand(1, 3, 16, 20))
    with pytest.raises(ValueError, match="at most 16 cells of 8 pixels a side"):
        embedder(torch.rand(1, 3, 8, 17 * 8))


def test_config_from_the_tensors_and_header() -> None:
    with torch.device("meta"):
        embedder = Gemma4Embedder(oracle.EMBEDDER)
    shapes = {key: tuple(t.shape) for key, t in embedder.state_dict().items()}
    header = {"vision_config": {"rms_norm_eps": 1e-6}, "image_token_id": 299, "boi_token_id": 297,
              "eoi_token_id": 298}
    assert Gemma4EmbedderConfig.from_tensors(shapes, header) == oracle.EMBEDDER
    assert set(shapes) == {"vision_model.patch_ln1.weight", "vision_model.patch_ln1.bias",
                           "vision_model.patch_dense.weight", "vision_model.patch_dense.bias",
                           "vision_model.patch_ln2.weight", "vision_model.patch_ln2.bias",
                           "vision_model.pos_embedding", "vision_model.pos_norm.weight",
                           "vision_model.pos_norm.bias", "multi_modal_projector.embedding_projection.weight"}
    defaults = Gemma4EmbedderConfig.from_tensors({"vision_model.patch_dense.weight": (3840, 6912),
                                                  "vision_model.pos_embedding": (1120, 2, 3840),
                                                  "multi_modal_projector.embedding_projection.weight": (3840, 3840)})
    assert defaults == Gemma4EmbedderConfig() and defaults.cell == 48
