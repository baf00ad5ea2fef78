"""LTXVLoopingSampler on the tiny transformer: tile ranges, cross-fades, equality with plain guided sampling
when one tile covers everything, determinism and shapes with several temporal and spatial tiles."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.values import VideoLatent
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.guides import append_latent_guide, crop_guides
from ltxgraph_ops.handles import Lazy, ModelHandle
from ltxgraph_ops.looping_sampler import (keyframes_per_chunk, linear_transition, looping_sampler,
                                          spatial_tile_size, split_sigmas, temporal_chunks)
from ltxgraph_ops.sampling_ops import cfg_guider_op, ksampler_select, manual_sigmas, random_noise
from ltxgraph_ops.sampling_ops import sampler_custom_advanced
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.vae_handle import VideoVAEHandle
from tests.test_guide_ops import PoolingVAE
from tools.oracle.transformer import random_state

SIGMAS = "0.909375, 0.725, 0.421875, 0.0"
CHANNELS = tiny.tiny_config()["caption_channels"]
COND = Conditioning(torch.randn(1, 4, CHANNELS, generator=torch.Generator().manual_seed(5)),
                    torch.randn(1, 4, CHANNELS, generator=torch.Generator().manual_seed(6)), frame_rate=25.0)


@pytest.fixture(scope="module")
def model() -> ModelHandle:
    transformer = tiny.build(tiny.tiny_config())
    transformer.load_state_dict(random_state(transformer))
    return ModelHandle(transformer.eval(), "tiny")


@pytest.fixture
def vae() -> VideoVAEHandle:
    return VideoVAEHandle("pooling", Lazy(PoolingVAE, "pooling"))


def video(frames: int, height: int = 2, width: int = 3, seed: int = 0) -> VideoLatent:
    g = torch.Generator().manual_seed(seed)
    return VideoLatent(torch.randn(1, 128, frames, height, width, generator=g), 25.0, 8 * (frames - 1) + 1)


def run(model, vae, latents, guide=None, **options):
    guider = cfg_guider_op(model, COND, COND, 1.0)
    return looping_sampler(model, vae, random_noise(11), ksampler_select("euler"), manual_sigmas(SIGMAS), guider,
                           latents, optional_guiding_latents=guide, **options)


def test_tile_ranges() -> None:
    assert temporal_chunks(13, 7, 3) == [(0, 7), (4, 11), (8, 13)]
    assert temporal_chunks(5, 7, 3) == [(0, 5)]


def test_latent_no_longer_than_the_overlap_is_one_tile() -> None:
    """Found by the op contract suite: 1 latent frame with a 2-frame overlap gave no tile, then a TypeError."""
    assert temporal_chunks(1, 7, 2) == [(0, 1)]
    assert temporal_chunks(2, 7, 2) == [(0, 2)]


def test_spatial_tiles_must_be_larger_than_their_overlap() -> None:
    """Found by the op contract suite: spatial_overlap 7 with 3 tiles on 3 cells gave a tensor size mismatch in
    the blend ramps (RuntimeError); tiles that do not advance are refused, naming spatial_overlap."""
    assert spatial_tile_size(6, 2, 2, "horizontal") == 4
    assert spatial_tile_size(3, 1, 8, "horizontal") == 3          # one tile: the overlap is not used
    assert spatial_tile_size(9, 3, 6, "vertical") == 7            # the largest overlap that fits: cells - tiles
    with pytest.raises(InputValueError, match="spatial_overlap 7 .* 9 cells high: use at most spatial_overlap 6"):
        spatial_tile_size(9, 3, 7, "vertical")
    with pytest.raises(InputValueError, match="3 cells wide: use at most 2 horizontal tiles"):
        spatial_tile_size(3, 3, 7, "horizontal")
    with pytest.raises(InputValueError, match="1 cells wide: use one horizontal tile"):
        spatial_tile_size(1, 2, 1, "horizontal")


def test_cross_fade() -> None:
    first, second = torch.zeros(1, 1, 4, 1, 1), torch.ones(1, 1, 5, 1, 1)
    mixed = linear_transition(first, second, 2)
    assert mixed.flatten().tolist() == pytest.approx([0, 0, 1 / 3, 2 / 3, 1, 1, 1])
    high, middle, low = split_sigmas(torch.tensor([1.0, 0.7, 0.4, 0.1, 0.0]), 1, 3)
    assert high.tolist() == pytest.approx([1.0, 0.7]) and middle.tolist() == pytest.approx([0.7, 0.4, 0.1])
    assert low.tolist() == pytest.approx([0.1, 0.0])


def test_keyframes_go_to_the_tile_that_holds_them() -> None:
    # tiles of 56 pixel frames (7 latent), overlap 24 (3): tile 1 starts at pixel 25, its own frames from 49
    assert keyframes_per_chunk([0, 40, 60, -1], 7, 3, 97) == {0: [(0, 0), (1, 40)], 1: [(2, 35)], 2: [(3, 39)]}
    with pytest.raises(InputValueError, match="outside"):
        keyframes_per_chunk([200], 7, 3, 97)


def test_one_tile_equals_plain_guided_sampling(model, vae) -> None:
    latents, guide = video(5), video(5, seed=1)
    out = run(model, vae, latents, guide, temporal_tile_size=56, temporal_overlap=24)
    pos, neg, guided = append_latent_guide(COND, COND, latents, guide.samples, 0, 1.0)
    _, denoised = sampler_custom_advanced(random_noise(11), cfg_guider_op(model, pos, neg, 1.0),
                                          ksampler_select("euler"), manual_sigmas(SIGMAS), guided)
    assert torch.allclose(out.samples, crop_guides(pos, neg, denoised)[2].samples, atol=1e-6)


def test_several_tiles_are_deterministic_and_keep_the_shape(model, vae) -> None:
    latents, guide = video(13, 4, 6), video(13, 4, 6, seed=1)
    options = dict(temporal_tile_size=56, temporal_overlap=24, horizontal_tiles=2, spatial_overlap=2,
                   adain_factor=0.5)
    first, second = run(model, vae, latents, guide, **options), run(model, vae, latents, guide, **options)
    assert first.samples.shape == latents.samples.shape and first.frames == latents.frames
    assert torch.equal(first.samples, second.samples) and torch.isfinite(first.samples).all()
    assert not torch.allclose(first.samples, latents.samples)


def test_progress_counts_tiles_across_space_and_time(model, vae) -> None:
    seen = []
    ctx = OpContext("loop", on_step=lambda node, step, total, info: seen.append((info["unit"], step, total)))
    run(model, vae, video(13, 4, 6), temporal_tile_size=56, temporal_overlap=24, horizontal_tiles=2,
        spatial_overlap=2, ctx=ctx)
    tiles = [(step, total) for unit, step, total in seen if unit == "tile"]
    total = tiles[-1][1]
    assert total == 2 * len(temporal_chunks(13, 7, 3)) > 2 and tiles == [(i, total) for i in range(1, total + 1)]
    assert {unit for unit, _, _ in seen} == {"tile", "step", "block"}


def test_keyframe_images_in_later_tiles(model, vae) -> None:
    images = torch.rand(2, 64, 96, 3, generator=torch.Generator().manual_seed(2))
    out = run(model, vae, video(13), optional_cond_images=images, optional_cond_image_indices="0, 60",
              temporal_tile_size=56, temporal_overlap=24)
    assert out.samples.shape == (1, 128, 13, 2, 3)


def test_bad_settings_are_named(model, vae) -> None:
    with pytest.raises(InputValueError, match="not supported"):
        run(model, vae, video(5), optional_positive_conditionings=[COND])
    with pytest.raises(InputValueError, match="smaller than temporal_tile_size"):
        run(model, vae, video(5), temporal_tile_size=24, temporal_overlap=24)
    with pytest.raises(InputValueError, match="latent frames"):
        run(model, vae, video(5), video(4))
    with pytest.raises(InputValueError, match="spatial_overlap 7 leaves no room for 3 horizontal tiles"):
        run(model, vae, video(5, 2, 3), horizontal_tiles=3, spatial_overlap=7)
    with pytest.raises(InputValueError, match="2 conditioning images but 1"):
        run(model, vae, video(5), optional_cond_images=torch.rand(2, 64, 96, 3))


def test_refusals_the_contract_suite_no_longer_draws(model, vae) -> None:
    """The contract suite draws these inputs to agree (ltxgraph/testing/fits.py); each disagreement is refused here,
    naming the input."""
    refusal = r"negative-index latents \(optional_negative_index_latents\) are not supported"
    with pytest.raises(InputValueError, match=refusal):
        run(model, vae, video(5), optional_negative_index_latents=video(5))
    with pytest.raises(InputValueError, match="keyframe index 33 is outside the video's 33 frames"):
        run(model, vae, video(5), optional_cond_images=torch.rand(1, 64, 96, 3), optional_cond_image_indices="33")
    with pytest.raises(InputValueError, match="keyframe index -34 is outside"):
        run(model, vae, video(5), optional_cond_images=torch.rand(1, 64, 96, 3), optional_cond_image_indices="-34")
    with pytest.raises(InputValueError, match="spatial_overlap 2 leaves no room for 2 vertical tiles"):
        run(model, vae, video(5, 3, 3), vertical_tiles=2, spatial_overlap=2)


def test_an_empty_latent_takes_the_frame_rate_of_its_guiding_latents(model, vae) -> None:
    """Found by the op contract suite (fps_kept): the output carried no frame rate while the guide had one."""
    empty, guide = replace(video(4), fps=None), video(4, seed=1)
    assert run(model, vae, empty, guide).fps == 25.0
    assert run(model, vae, video(4), replace(guide, fps=None)).fps == 25.0          # the latent's own wins
    assert run(model, vae, replace(video(4), fps=None)).fps is None                  # nothing known, nothing made up
