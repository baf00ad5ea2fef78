"""Tiled VAE decode and encode: exact against untiled for a local stand-in coder over many tile sizes
(hypothesis), and close to untiled for the tiny LTX-2 VAE."""
from __future__ import annotations

from itertools import product

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ltxgraph_ops.models.tiling import (cut, ltx_core_tiled_decode, ltx_core_tiled_encode, ramp, split_axis,
                                        split_time_latents, tiled_decode, tiled_decode_chunks, tiled_encode)
from ltxgraph_ops.tiny import video_vae as tiny
from ltxgraph_ops.weights.writing import random_state
from tools.oracle import video_vae_tiled as tiled_oracle


def local_decode(latent: torch.Tensor) -> torch.Tensor:
    """A decoder with no context: latent frame 0 -> 1 frame, each later one -> 8; each cell -> 32x32 pixels."""
    frames = torch.cat([latent[:, :3, :1], latent[:, :3, 1:].repeat_interleave(8, dim=2)], dim=2)
    return frames.repeat_interleave(32, dim=3).repeat_interleave(32, dim=4)


def local_encode(pixels: torch.Tensor) -> torch.Tensor:
    """The matching encoder: frame 0 alone, then the mean of each 8-frame group; 32x32 means."""
    first = pixels[:, :, :1]
    rest = pixels[:, :, 1:].unflatten(2, (-1, 8)).mean(dim=3) if pixels.shape[2] > 1 else first[:, :, :0]
    return torch.nn.functional.avg_pool3d(torch.cat([first, rest], dim=2), (1, 32, 32))


def test_split_axis_covers_with_overlaps() -> None:
    tiles = split_axis(10, 4, 1)
    assert [(t.start, t.stop, t.left, t.right) for t in tiles] == [(0, 4, 0, 1), (3, 7, 1, 1), (6, 10, 1, 0)]
    assert split_axis(3, 4, 1)[0].stop == 3


def test_a_last_tile_too_short_for_the_vae_joins_the_one_before() -> None:
    assert [(t.start, t.stop) for t in split_axis(3, 2, 0)] == [(0, 2), (2, 3)]
    merged = split_axis(3, 2, 0, min_last=2)
    assert [(t.start, t.stop, t.left, t.right) for t in merged] == [(0, 3, 0, 0)]
    assert [(t.start, t.stop) for t in split_axis(5, 2, 0, min_last=2)] == [(0, 2), (2, 5)]
    assert ramp(5, 2, 1).tolist() == pytest.approx([1 / 3, 2 / 3, 1, 1, 0.5])


def test_ramps_from_zero_multiply_where_they_meet_and_cuts_drop_edges() -> None:
    assert ramp(5, 2, 1, left_from_zero=True).tolist() == pytest.approx([0, 0.5, 1, 1, 0.5])
    assert ramp(3, 2, 2).tolist() == pytest.approx([1 / 3, 4 / 9, 1 / 3])     # product, not minimum
    assert ramp(2, 4, 0).tolist() == pytest.approx([1 / 3, 2 / 3])            # ramp cut to the length first
    assert cut(5, 2, 1).tolist() == [0, 0, 1, 1, 0] and cut(3, 0, 0).tolist() == [1, 1, 1]


@settings(max_examples=25, deadline=None)
@given(frames=st.integers(1, 7), height=st.integers(1, 5), width=st.integers(1, 5),
       tile=st.integers(2, 5), overlap=st.integers(0, 1), t_tile=st.integers(2, 6), t_overlap=st.integers(0, 1))
def test_tiled_decode_equals_untiled_for_a_local_decoder(frames, height, width, tile, overlap, t_tile, t_overlap):
    latent = torch.randn(1, 4, frames, height, width, generator=torch.Generator().manual_seed(frames * 31 + tile))
    tiled = tiled_decode(local_decode, latent, tile, overlap, t_tile, t_overlap)
    assert torch.allclose(tiled, local_decode(latent), rtol=1e-6, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(frames=st.integers(1, 6), height=st.integers(1, 4), width=st.integers(1, 4),
       tile=st.integers(2, 4), overlap=st.integers(0, 1), t_tile=st.integers(2, 5), t_overlap=st.integers(0, 1))
def test_tiled_encode_equals_untiled_for_a_local_encoder(frames, height, width, tile, overlap, t_tile, t_overlap):
    pixels = torch.randn(1, 3, 1 + 8 * (frames - 1), 32 * height, 32 * width,
                         generator=torch.Generator().manual_seed(frames * 7 + width))
    tiled = tiled_encode(local_encode, pixels, tile, overlap, t_tile, t_overlap)
    assert torch.allclose(tiled, local_encode(pixels), rtol=1e-6, atol=1e-6)


def test_ltx_core_tilings_equal_untiled_for_local_coders_and_really_tile() -> None:
    """ltx-core's settings (pixels, frames) on a 7x4x6 latent / its 49x128x192 clip: several tiles per axis
    (decode 3 x 3 x 3; encode, overlaps raised to 64 px / 16 frames, 5 x 2 x 4), and a coder without context gives
    the untiled result exactly (weights sum to 1, no latent left unweighted)."""
    latent = torch.randn(1, 4, 7, 4, 6, generator=torch.Generator().manual_seed(5))
    decoded: list[int] = []
    tiled = ltx_core_tiled_decode(local_decode, latent, (96, 32), (24, 8),
                                  on_tile=lambda done, total: decoded.append(total))
    assert decoded[-1] == 3 * 3 * 3 and torch.allclose(tiled, local_decode(latent), atol=1e-6)
    pixels = local_decode(latent)
    encoded: list[int] = []
    tiled = ltx_core_tiled_encode(local_encode, pixels, (96, 32), (24, 8),
                                  on_tile=lambda done, total: encoded.append(total))
    assert encoded[-1] == 5 * 2 * 4 and torch.allclose(tiled, local_encode(pixels), atol=1e-6)
    with pytest.raises(ValueError, match="tiled encode"):
        ltx_core_tiled_encode(local_encode, pixels[:, :, 1:], (96, 32), None)
    with pytest.raises(ValueError, match="temporal tile and overlap"):
        ltx_core_tiled_encode(local_encode, pixels, None, (20, 16))


@torch.no_grad()
def test_tiled_decode_of_the_tiny_vae_approaches_untiled_as_overlap_grows() -> None:
    """A random-weight decoder has no locality prior: every pixel depends on ~5 latent cells / frames around it,
    so tiles cut context and the difference is bounded by the overlap, not zero. One tile is exact; more overlap
    is closer (measured on this latent: mean abs difference 0.32 -> 0.10 for spatial overlap 1 -> 3 of tiles of
    4 -> 6, 0.22 -> 0.07 for temporal overlap 1 -> 3, against a mean magnitude of 0.49)."""
    vae = tiny.build(tiny.tiny_config()).eval()
    vae.load_state_dict(random_state(vae, "", 3))
    latent = torch.randn(1, 128, 6, 8, 8, generator=torch.Generator().manual_seed(0))
    full = vae.decode(latent)

    def error(*tiles: int) -> float:
        return float((tiled_decode(vae.decode, latent, *tiles) - full).abs().mean())

    assert error(8, 0, 6, 0) < 1e-5
    assert error(6, 3, 99, 0) < error(4, 1, 99, 0) < 0.5
    assert error(99, 0, 5, 3) < error(99, 0, 3, 1) < 0.5


@pytest.mark.parametrize("frames, tile, overlap, t_tile, t_overlap", [(9, 2, 1, 3, 1), (9, 4, 0, 9, 0), (13, 3, 1, 2, 1),
                                                                  (13, 2, 1, 5, 3), (6, 3, 2, 4, 2)])
def test_streamed_tiled_decode_equals_the_whole_blend_in_chunks_of_final_frames(frames, tile, overlap, t_tile,
                                                                                 t_overlap) -> None:
    """The chunks, joined, are bit for bit the whole-clip blend (computed here the direct way, over one
    accumulator); every chunk is final frames in order, at most 8 of them."""
    torch.manual_seed(0)
    latent = torch.randn(1, 4, frames, 3, 4)

    def context_decode(part: torch.Tensor) -> torch.Tensor:      # sees its whole tile: seams are real
        return local_decode(part) + part[:, :3].mean(dim=(2, 3, 4), keepdim=True)

    chunks = list(tiled_decode_chunks(context_decode, latent, tile, overlap, t_tile, t_overlap))
    whole = torch.zeros(1, 3, 1 + 8 * (frames - 1), 96, 128)
    weights = torch.zeros(whole.shape[2:])
    for t, h, w in product(split_time_latents(frames, t_tile, t_overlap), split_axis(3, tile, overlap),
                           split_axis(4, tile, overlap)):
        first, stop = t.start * 8, 1 + (t.stop - 1) * 8
        mask = (ramp(stop - first, 0 if t.left == 0 else 1 + (t.left - 1) * 8, t.right * 8).view(-1, 1, 1)
                * ramp((h.stop - h.start) * 32, h.left * 32, h.right * 32).view(1, -1, 1)
                * ramp((w.stop - w.start) * 32, w.left * 32, w.right * 32).view(1, 1, -1))
        region = (slice(first, stop), slice(h.start * 32, h.stop * 32), slice(w.start * 32, w.stop * 32))
        whole[(slice(None), slice(None)) + region] += context_decode(
            latent[:, :, t.start:t.stop, h.start:h.stop, w.start:w.stop]) * mask
        weights[region] += mask
    assert torch.equal(torch.cat(chunks, dim=2), whole / weights.clamp_min(1e-8))
    assert max(c.shape[2] for c in chunks) <= 8                                   # finished frames, 8 at most


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(tiled_oracle.CHECKS))
def test_tiled_parity_with_ltx_core(name: str) -> None:
    """ltx-core 1.0.0's tiled decode / encode (its TilingConfig) and ours on the tiny VAE agree to float32
    rounding (``compared`` first checks both outputs are finite and not constant)."""
    pytest.importorskip("ltx_core")
    error = tiled_oracle.CHECKS[name]()
    assert error <= 1e-5, f"{name}: {error:.3g}"
