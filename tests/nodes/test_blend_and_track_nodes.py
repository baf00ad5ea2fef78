"""Laplacian pyramid blending and sparse-track rendering."""
from __future__ import annotations

import json

import pytest
import torch

from ltxgraph.errors import InputValueError
from ltxgraph_ops.nodes.pyramid_blend import laplacian_pyramid, laplacian_pyramid_blend, pyramid_up
from ltxgraph_ops.nodes.tracks import age_colours, draw_tracks, parse_tracks, sample_spline, sparse_track_editor


def test_laplacian_pyramid_sums_back_to_the_image() -> None:
    image = torch.rand(2, 3, 32, 16)
    bands = laplacian_pyramid(image, 4)
    rebuilt = bands[-1]
    for band in bands[-2::-1]:
        rebuilt = pyramid_up(rebuilt) + band
    assert torch.allclose(rebuilt, image, atol=1e-5)


def test_blend_with_full_mask_keeps_image_a_and_with_empty_mask_image_b() -> None:
    a, b = torch.rand(3, 24, 40, 3), torch.rand(3, 24, 40, 3)
    ones, zeros = torch.ones(3, 24, 40), torch.zeros(3, 24, 40)
    assert torch.allclose(laplacian_pyramid_blend(a, b, ones, True, 0), a, atol=1e-5)
    assert torch.allclose(laplacian_pyramid_blend(a, b, zeros, True, 3), b, atol=1e-5)


def test_blend_is_seamless_across_a_hard_mask_edge() -> None:
    a, b = torch.zeros(1, 64, 64, 3), torch.ones(1, 64, 64, 3)
    mask = torch.zeros(1, 64, 64)
    mask[:, :, :32] = 1.0
    row = laplacian_pyramid_blend(a, b, mask, True, 0)[0, 32, :, 0]
    assert float(row[0]) < 0.5 < float(row[-1])
    assert bool((row.diff() >= -1e-6).all())              # a smooth ramp from image_a to image_b
    assert float(row.diff().max()) < 0.25                 # no step at the edge


def test_blend_trims_or_refuses_unequal_lengths() -> None:
    a, b, mask = torch.rand(4, 8, 8, 3), torch.rand(3, 8, 8, 3), torch.ones(5, 8, 8)
    assert laplacian_pyramid_blend(a, b, mask, True, 0).shape == (3, 8, 8, 3)
    with pytest.raises(InputValueError, match="trim_to_shortest"):
        laplacian_pyramid_blend(a, b, mask, False, 0)


def test_spline_sampling_hits_its_control_points() -> None:
    points = [{"x": 0.0, "y": 0.0}, {"x": 10.0, "y": 20.0}, {"x": 30.0, "y": 20.0}]
    samples = sample_spline(points, 5)
    assert samples[0] == {"x": 0, "y": 0} and samples[2] == {"x": 10, "y": 20} and samples[4] == {"x": 30, "y": 20}
    assert sample_spline(points[:2], 3) == [{"x": 0, "y": 0}, {"x": 5, "y": 10}, {"x": 10, "y": 20}]


def test_track_editor_samples_splines_or_keeps_coordinates() -> None:
    store = json.dumps([[{"x": 0, "y": 0}, {"x": 8, "y": 4}]])
    assert json.loads(sparse_track_editor(None, store, "[]", 3)) == [[{"x": 0, "y": 0}, {"x": 4, "y": 2},
                                                                       {"x": 8, "y": 4}]]
    assert sparse_track_editor(None, "[]", '[[{"x": 1, "y": 2}]]', 3) == '[[{"x": 1, "y": 2}]]'
    assert sparse_track_editor(None, "", "[]", 3) == "[]"
    with pytest.raises(InputValueError, match="points_store is not valid JSON"):
        sparse_track_editor(None, "[[{", "[]", 3)


def test_parse_tracks_unwraps_nested_and_string_lists() -> None:
    track = [{"x": 1, "y": 2}]
    assert parse_tracks(json.dumps([json.dumps([track])])) == [track]


def test_age_colours_run_blue_green_yellow_red() -> None:
    colours = age_colours(torch.tensor([0.0, 1 / 3, 2 / 3, 1.0]))
    expected = torch.tensor([[0.0, 0, 1], [0, 1, 0], [1, 1, 0], [1, 0, 0]])
    assert torch.allclose(colours, expected, atol=1e-6)


def test_draw_tracks_puts_the_newest_dot_red_in_bgr() -> None:
    tracks = json.dumps([[{"x": 100, "y": 100}, {"x": 300, "y": 100}]])
    video = draw_tracks(tracks, 960, 540)                            # drawn at 1920x1080, dots of 8 px there
    assert video.shape == (2, 540, 960, 3)
    assert torch.allclose(video[1, 100, 300], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6)  # red, stored BGR
    assert float(video[0, 100, 300].sum()) == 0.0                    # not there yet at frame 0
    assert float(video[1, 100, 100].sum()) > 0                       # trail of frame 0
    assert float(video[1, 100, 306].sum()) == 0.0                    # radius 8 render px = 4 px here
    assert float(draw_tracks("[]", 16, 8).abs().sum()) == 0.0


def test_long_image_nodes_report_progress() -> None:
    from ltxgraph.context import OpContext
    seen = []
    ctx = OpContext("node", on_step=lambda node, step, total, info: seen.append((step, total)))
    laplacian_pyramid_blend(torch.rand(10, 8, 8, 3), torch.rand(10, 8, 8, 3), torch.ones(10, 8, 8), True, 0, ctx)
    assert seen == [(8, 10), (10, 10)]
    seen.clear()
    draw_tracks(json.dumps([[{"x": 1, "y": 1}, {"x": 2, "y": 2}, {"x": 3, "y": 3}]]), 16, 16, ctx)
    assert seen == [(1, 3), (2, 3), (3, 3)]
