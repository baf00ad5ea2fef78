"""Planning against the run's memory budget: pure functions of shapes and bytes."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltxgraph.budget import (BLEND_BYTES_PER_PIXEL, CHUNK_BYTES_PER_PIXEL, DecodeTiles, MemoryBudget, decode_working_bytes,
                             decoder_bytes_per_pixel, encoder_bytes, plan_decode_tiles)
from ltxgraph.context import RunSettings

LATENT_1088P_241 = (1, 128, 31, 34, 60)          # 1920x1088, 241 frames
GRAPH_TILES = DecodeTiles((16, 16), 2, 8, 1)     # VAEDecodeTiled 512 / 64 px, 64 / 8 frames
PER_PIXEL = decoder_bytes_per_pixel(128, 4)      # the LTX-2 decoder


def test_the_budget_is_one_object_of_the_run_settings() -> None:
    assert RunSettings(memory_budget=6 << 30).budget == MemoryBudget(6 << 30)
    assert MemoryBudget(6 << 30).remaining(2 << 30) == 4 << 30
    assert MemoryBudget(1 << 30).remaining(2 << 30) == 0 and MemoryBudget().remaining(2 << 30) is None


def test_working_memory_counts_the_blend_window_and_one_tile() -> None:
    # 65 pixel frames of 1088 x 1920 in the window (a later tile starts one latent frame early), one
    # 512 x 512 x 65 tile of activations
    window, chunk = 65 * 1088 * 1920 * BLEND_BYTES_PER_PIXEL, 8 * 1088 * 1920 * CHUNK_BYTES_PER_PIXEL
    assert decode_working_bytes(LATENT_1088P_241, GRAPH_TILES, PER_PIXEL) == window + chunk + 65 * 512 * 512 * PER_PIXEL
    whole = DecodeTiles((34, 60), 0, 31, 0)                                       # one tile: the whole clip
    assert decode_working_bytes(LATENT_1088P_241, whole, PER_PIXEL) == 241 * 1088 * 1920 * (
        BLEND_BYTES_PER_PIXEL + PER_PIXEL) + chunk
    assert PER_PIXEL == 8 * 4 * 128 // 16


def test_no_budget_or_enough_budget_keeps_the_requested_tiles() -> None:
    assert plan_decode_tiles(LATENT_1088P_241, GRAPH_TILES, None, PER_PIXEL) == GRAPH_TILES
    assert plan_decode_tiles(LATENT_1088P_241, GRAPH_TILES, 7 << 30, PER_PIXEL) == GRAPH_TILES


def test_a_small_budget_shortens_the_temporal_tile_first_then_the_spatial() -> None:
    three_gib = plan_decode_tiles(LATENT_1088P_241, GRAPH_TILES, 3 << 30, PER_PIXEL)
    assert three_gib.spatial == (16, 16) and three_gib.temporal < 8
    assert decode_working_bytes(LATENT_1088P_241, three_gib, PER_PIXEL) <= 3 << 30
    tight = plan_decode_tiles(LATENT_1088P_241, GRAPH_TILES, 3 << 29, PER_PIXEL)
    assert tight.temporal == 2 and tight.spatial < (16, 16) and tight.temporal_overlap == 1
    assert decode_working_bytes(LATENT_1088P_241, tight, PER_PIXEL) <= 3 << 29
    smallest = plan_decode_tiles(LATENT_1088P_241, GRAPH_TILES, 1, PER_PIXEL)      # nothing fits: the smallest
    assert smallest == DecodeTiles((2, 2), 1, 2, 1)


@settings(max_examples=200, deadline=None)
@given(frames=st.integers(1, 64), height=st.integers(1, 80), width=st.integers(1, 80), tile=st.integers(2, 40),
       overlap=st.integers(0, 8), t_tile=st.integers(2, 40), t_overlap=st.integers(0, 8),
       available=st.integers(1, 1 << 34))
def test_planned_tiles_are_never_larger_than_asked_keep_overlaps_below_tiles_and_fit_when_possible(
        frames, height, width, tile, overlap, t_tile, t_overlap, available) -> None:
    requested = DecodeTiles((tile, tile), min(overlap, tile - 1), t_tile, min(t_overlap, t_tile - 1))
    shape = (1, 128, frames, height, width)
    plan = plan_decode_tiles(shape, requested, available, PER_PIXEL)
    assert plan.temporal <= t_tile and plan.spatial[0] <= tile and plan.spatial[1] <= tile
    assert plan.temporal_overlap < plan.temporal and plan.spatial_overlap < min(plan.spatial)
    assert plan.temporal >= 2 and plan.spatial[0] >= min(2, height) and plan.spatial[1] >= min(2, width)
    smallest = DecodeTiles((min(2, tile), min(2, tile)), 0, 2, 0)
    if decode_working_bytes(shape, smallest, PER_PIXEL) <= available:
        assert decode_working_bytes(shape, plan, PER_PIXEL) <= available


@pytest.mark.parametrize("base, patch, expected", [(128, 4, 256), (64, 4, 128), (8, 4, 16)])
def test_decoder_activation_estimate_follows_its_last_stage(base: int, patch: int, expected: int) -> None:
    assert decoder_bytes_per_pixel(base, patch) == expected


def test_the_encoders_estimate_fits_its_measure_and_grows_a_frame_per_thread() -> None:
    # measured at 1920x1088, preset medium (tools/benchmarks/save_memory.py's noise): 0.357 GiB with 1 thread
    assert 0.34 < encoder_bytes(1920, 1088, 1) / 2**30 < 0.38
    assert encoder_bytes(1920, 1088, 9) - encoder_bytes(1920, 1088, 1) == 8 * encoder_bytes(1920, 1088, 1) // 46
    assert encoder_bytes(960, 544, 1) * 4 == encoder_bytes(1920, 1088, 1)
