"""The 8-bit grid (k / 255): packing is exact or refused, never approximate."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ltxgraph import unorm8

BITS = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
        torch.float64: torch.int64}


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and torch.equal(a.view(BITS[a.dtype]), b.view(BITS[b.dtype]))


@pytest.mark.parametrize("dtype", list(BITS))
def test_every_grid_value_packs_to_its_code(dtype) -> None:
    codes = torch.arange(256, dtype=torch.uint8)
    values = unorm8.unpack(codes, dtype)
    assert torch.equal(unorm8.pack(values), codes)


def test_snapped_images_pack_and_unpack_to_the_same_bits() -> None:
    images = unorm8.snap(torch.rand(3, 17, 23, 3, generator=torch.Generator().manual_seed(0)) * 1.2 - 0.1)
    codes = unorm8.pack(images)
    assert codes is not None and codes.dtype == torch.uint8 and codes.shape == images.shape
    assert same_bits(unorm8.unpack(codes), images)
    assert torch.equal(codes, (images * 255).round().to(torch.uint8))   # the codes an 8-bit encoder writes


def test_images_read_from_8bit_files_are_on_the_grid() -> None:
    pixels = torch.randint(0, 256, (2, 5, 7, 3), dtype=torch.uint8)
    assert torch.equal(unorm8.pack(pixels.float() / 255.0), pixels)   # how LoadImage / LoadVideo scale


@pytest.mark.parametrize("value", [-0.0, float("nan"), float("inf"), -1 / 255, 256 / 255, 0.5, 1e-30])
def test_values_off_the_grid_are_refused(value: float) -> None:
    values = torch.tensor([0.0, 1.0, value])
    assert unorm8.pack(values) is None


def test_one_value_off_the_grid_in_a_later_chunk_is_found(monkeypatch) -> None:
    monkeypatch.setattr(unorm8, "CHUNK_ELEMENTS", 64)
    values = unorm8.unpack(torch.randint(0, 256, (1000,), dtype=torch.uint8))
    assert unorm8.pack(values) is not None
    values[937] = torch.nextafter(values[937], torch.tensor(2.0))
    assert unorm8.pack(values) is None


def test_integers_and_empty_tensors_are_not_packed() -> None:
    assert unorm8.pack(torch.arange(10)) is None and unorm8.pack(torch.zeros(0)) is None


ANY_FLOAT = st.floats(width=32, allow_nan=True, allow_infinity=True)
NEAR_GRID = st.integers(0, 255).map(lambda k: k / 255)   # rounded in float64 first: on the grid or one ulp off


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(ANY_FLOAT, NEAR_GRID, NEAR_GRID), min_size=1, max_size=40),
       st.sampled_from(list(BITS)))
def test_pack_is_exact_or_refused(floats: list[float], dtype) -> None:
    values = torch.tensor(floats, dtype=torch.float32).to(dtype)
    codes = unorm8.pack(values)
    grid_bits = unorm8.unpack(torch.arange(256, dtype=torch.uint8), dtype).view(BITS[dtype])
    on_grid = bool((values.view(BITS[dtype])[:, None] == grid_bits[None, :]).any(dim=1).all())
    assert (codes is not None) == on_grid
    if codes is not None:
        assert same_bits(unorm8.unpack(codes, dtype), values)
