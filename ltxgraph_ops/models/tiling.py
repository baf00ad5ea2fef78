"""Tiled VAE decoding and encoding: the work is split into overlapping tiles over space and time, each tile is
run alone, and overlaps are blended with linear ramps (weights normalised to sum to 1 at every output element),
so memory is bounded by the tile size and seams do not show.

Time is causal: latent frame 0 stands for pixel frame 0 alone, latent k >= 1 for pixels 8k-7 .. 8k. A latent
tile [a, b) decodes to 1 + 8(b-a-1) frames whose first lands on pixel 8a; a tile that is not first therefore
starts one latent earlier than a plain split would and blends over one more frame. Encoding mirrors it: a pixel
tile starting at 8a (a > 0) yields a first latent that is not latent a (it saw one frame), which gets no weight.

Two blendings live here (measured against untiled by ``tools/bench.py --only vae-tiled-blending``):
- ltx-core 1.0.0's (``ltx_core_tiled_decode`` / ``ltx_core_tiled_encode``, settings in pixels and frames like its
  ``TilingConfig``): decode ramps the temporal overlap from 0 (a later tile's first frame, decoded without its
  past, gets no weight) and scales the spatial tile per axis by the aspect ratio; encode splits the pixels and
  keeps each tile's latents whole except the edge latents that saw padding (a cut, no ramp), with overlaps of at
  least 64 pixels and 16 frames. Parity: ``tools/oracle/video_vae_tiled.py``. ltx-core 1.2.0 (not installable)
  keeps these masks and mappings; its tiling settings grew per-axis sizes and tile counts, not mirrored here.
- the ops' (``tiled_decode`` / ``tiled_encode`` in latent units, used by VAEDecodeTiled,
  LTXVSpatioTemporalTiledVAEDecode and VAEEncodeTiled): ramps whose first weight is 1/(n+1), as ComfyUI-LTXVideo's
  temporal blend (linspace(0, 1, n + 2)[1:-1]).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Callable, Iterator

import torch

from ltxgraph_ops.models.progress import Counter, counted

Coder = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Interval:
    """One tile along an axis: [start, stop) with ``left`` / ``right`` elements shared with its neighbours."""

    start: int
    stop: int
    left: int
    right: int


MIN_TILE_CELLS = 2
"""Fewest latent cells a tile may have along an axis: the VAE pads each side by one cell before its convolutions."""


def split_axis(length: int, size: int, overlap: int, min_last: int = 1) -> list[Interval]:
    """Overlapping tiles of ``size`` covering [0, length) (the last one ends at ``length``; a last tile shorter
    than ``min_last`` is merged into the one before)."""
    if size >= length:
        return [Interval(0, length, 0, 0)]
    if overlap >= size:
        raise ValueError(f"tile overlap {overlap} must be smaller than the tile size {size}")
    step = size - overlap
    count = (length + size - 2 * overlap - 1) // step
    if count > 1 and length - (count - 1) * step < min_last:
        count -= 1
    starts = [i * step for i in range(count)]
    stops = [s + size for s in starts[:-1]] + [length]
    return [Interval(start, stop, overlap if i else 0, overlap if i < count - 1 else 0)
            for i, (start, stop) in enumerate(zip(starts, stops))]


def split_time_latents(length: int, size: int, overlap: int) -> list[Interval]:
    """Latent-frame tiles for decoding: later tiles start one frame earlier and share one more."""
    tiles = split_axis(length, size, overlap)
    return [tiles[0]] + [Interval(t.start - 1, t.stop, t.left + 1, t.right) for t in tiles[1:]]


def ramp(length: int, left: int, right: int, left_from_zero: bool = False) -> torch.Tensor:
    """Weights [length]: rising over the first ``left`` elements (i/(left+1), i = 1..left; or i/left, i = 0..left-1
    with ``left_from_zero``), falling over the last ``right`` ((right..1)/(right+1)), the product where the two
    meet, 1 between. Ramps longer than ``length`` are cut to it."""
    left, right = min(left, length), min(right, length)
    weights = torch.ones(length)
    if left:
        weights[:left] = torch.arange(left) / left if left_from_zero else torch.arange(1, left + 1) / (left + 1)
    if right:
        weights[length - right:] *= torch.arange(right, 0, -1) / (right + 1)
    return weights


def cut(length: int, left: int, right: int) -> torch.Tensor:
    """Weights [length]: 0 over the first ``left`` and last ``right`` elements, 1 between (a tile's edge elements
    dropped, no blending)."""
    weights = torch.ones(length)
    weights[:left] = 0.0
    if right:
        weights[length - right:] = 0.0
    return weights


def _weights(t: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return t.view(-1, 1, 1) * h.view(1, -1, 1) * w.view(1, 1, -1)


def tiled_decode(decode: Coder, latent: torch.Tensor, spatial_tile: int | tuple[int, int], spatial_overlap: int,
                 temporal_tile: int, temporal_overlap: int, scale: tuple[int, int, int] = (8, 32, 32),
                 on_tile: Counter | None = None, temporal_ramp_from_zero: bool = False) -> torch.Tensor:
    """``decode`` (latent [B, C, f, h, w] -> pixels [B, 3, 1 + 8(f-1), 32h, 32w]) applied in tiles of
    ``spatial_tile`` latent cells (one size, or (height, width)) and ``temporal_tile`` latent frames with the
    given overlaps (latent units); returns the blended pixels of the whole latent. With
    ``temporal_ramp_from_zero`` the temporal fade-in starts at weight 0 (ltx-core) instead of 1/(n+1).
    ``on_tile(done, total)`` is called after each tile. The pixels of :func:`tiled_decode_chunks`, joined."""
    return torch.cat(list(tiled_decode_chunks(decode, latent, spatial_tile, spatial_overlap, temporal_tile,
                                              temporal_overlap, scale, on_tile, temporal_ramp_from_zero)), dim=2)


def tiled_decode_chunks(decode: Coder, latent: torch.Tensor, spatial_tile: int | tuple[int, int],
                        spatial_overlap: int, temporal_tile: int, temporal_overlap: int,
                        scale: tuple[int, int, int] = (8, 32, 32), on_tile: Counter | None = None,
                        temporal_ramp_from_zero: bool = False, chunk_frames: int = 8) -> Iterator[torch.Tensor]:
    """:func:`tiled_decode` as a stream: blended pixels [B, 3, n <= chunk_frames, 32h, 32w] of consecutive
    frames, yielded as soon as no later temporal tile reaches them. One window of the frames of a temporal tile
    is held (the blend sums and their weights, allocated once, its kept overlap moved to the front for the next
    tile), so memory does not grow with the clip; the values are bit for bit those of the whole-clip blend
    (every frame receives the same products in the same order)."""
    ts, hs, ws = scale
    _, _, frames, height, width = latent.shape
    tile_h, tile_w = (spatial_tile, spatial_tile) if isinstance(spatial_tile, int) else spatial_tile
    rows = split_axis(height, tile_h, spatial_overlap, MIN_TILE_CELLS)
    cols = split_axis(width, tile_w, spatial_overlap, MIN_TILE_CELLS)
    times = split_time_latents(frames, temporal_tile, temporal_overlap)
    window = max((t.stop - 1 - t.start) * ts + 1 for t in times)
    done, total = 0, len(times) * len(rows) * len(cols)
    sums = weight_sum = None
    base = held = 0                     # pixel frame at index 0 of the window; frames of the window in use

    def finished(count: int) -> Iterator[torch.Tensor]:
        for start in range(0, count, chunk_frames):
            stop = min(count, start + chunk_frames)
            yield sums[:, :, start:stop] / weight_sum[start:stop].clamp_min(1e-8)

    for t in times:
        first, stop = t.start * ts, 1 + (t.stop - 1) * ts
        if sums is not None and first > base:        # later tiles start at ``first`` or after: these are final
            yield from finished(first - base)
            kept = held - (first - base)
            sums[:, :, :kept] = sums[:, :, first - base:held].clone()
            weight_sum[:kept] = weight_sum[first - base:held].clone()
            sums[:, :, kept:] = 0
            weight_sum[kept:] = 0
            base, held = first, kept
        t_ramp = ramp(stop - first, 0 if t.left == 0 else 1 + (t.left - 1) * ts, t.right * ts,
                      temporal_ramp_from_zero)
        for h, w in product(rows, cols):
            pixels = decode(latent[:, :, t.start:t.stop, h.start:h.stop, w.start:w.stop]).float()
            if sums is None:
                base = first
                sums = pixels.new_zeros(pixels.shape[0], pixels.shape[1], window, height * hs, width * ws)
                weight_sum = pixels.new_zeros(window, height * hs, width * ws)
            mask = _weights(t_ramp, ramp((h.stop - h.start) * hs, h.left * hs, h.right * hs),
                            ramp((w.stop - w.start) * ws, w.left * ws, w.right * ws))
            region = (slice(first - base, stop - base), slice(h.start * hs, h.stop * hs),
                      slice(w.start * ws, w.stop * ws))
            sums[(slice(None), slice(None)) + region] += pixels * mask
            weight_sum[region] += mask
            del pixels
            done += 1
            if on_tile is not None:
                on_tile(done, total)
        held = max(held, stop - base)
    yield from finished(held)


def tiled_encode(encode: Coder, pixels: torch.Tensor, spatial_tile: int, spatial_overlap: int,
                 temporal_tile: int, temporal_overlap: int, scale: tuple[int, int, int] = (8, 32, 32),
                 on_tile: Counter | None = None) -> torch.Tensor:
    """``encode`` (pixels [B, 3, 1 + 8k, 32h, 32w] -> latent [B, C, 1 + k, h, w]) applied in tiles given in
    latent units (cells and frames) with overlaps; returns the blended latent of the whole clip.
    ``on_tile(done, total)`` is called after each tile."""
    ts, hs, ws = scale
    frames = (pixels.shape[2] - 1) // ts + 1
    height, width = pixels.shape[3] // hs, pixels.shape[4] // ws
    out = weight_sum = None
    tiles = list(product(split_time_latents(frames, temporal_tile, temporal_overlap),
                         split_axis(height, spatial_tile, spatial_overlap),
                         split_axis(width, spatial_tile, spatial_overlap)))
    for t, h, w in counted(tiles, on_tile):
        begin = t.start * ts                       # a later tile starts on pixel 8a: its first latent saw that
        t_ramp = ramp(t.stop - t.start, t.left, t.right)      # frame alone and gets no weight
        if t.start:
            t_ramp[0] = 0.0
        clip = pixels[:, :, begin: 1 + (t.stop - 1) * ts, h.start * hs:h.stop * hs, w.start * ws:w.stop * ws]
        latent = encode(clip).float()
        if out is None:
            out = latent.new_zeros(latent.shape[0], latent.shape[1], frames, height, width)
            weight_sum = latent.new_zeros(frames, height, width)
        mask = _weights(t_ramp, ramp(h.stop - h.start, h.left, h.right), ramp(w.stop - w.start, w.left, w.right))
        region = (slice(t.start, t.stop), slice(h.start, h.stop), slice(w.start, w.stop))
        out[(slice(None), slice(None)) + region] += latent * mask
        weight_sum[region] += mask
    return out / weight_sum.clamp_min(1e-8)


def ltx_core_tiled_decode(decode: Coder, latent: torch.Tensor, spatial: tuple[int, int] | None,
                          temporal: tuple[int, int] | None, scale: tuple[int, int, int] = (8, 32, 32),
                          on_tile: Counter | None = None) -> torch.Tensor:
    """ltx-core 1.0.0's tiled decode of ``latent`` [B, C, f, h, w]: ``spatial`` = (tile, overlap) in pixels, the
    tile scaled per axis by the axis's share of the longer side (at least 2 cells and overlap + 1);
    ``temporal`` = (tile, overlap) in pixel frames, both floored to latent frames; None leaves that axis whole.
    Overlaps blend with ramps; the temporal fade-in starts at 0. Returns pixels [B, 3, 1 + 8(f-1), 32h, 32w]."""
    return tiled_decode(decode, latent, *ltx_core_decode_tiles(latent.shape, spatial, temporal, scale), scale,
                        on_tile, temporal_ramp_from_zero=True)


def ltx_core_decode_tiles(latent_shape: tuple[int, ...], spatial: tuple[int, int] | None,
                          temporal: tuple[int, int] | None, scale: tuple[int, int, int] = (8, 32, 32)
                          ) -> tuple[tuple[int, int], int, int, int]:
    """ltx-core's decode tiles for settings in pixels / frames, in latent units: ((tile height, tile width),
    spatial overlap, temporal tile, temporal overlap)."""
    ts, hs, _ = scale
    _, _, frames, height, width = latent_shape
    tile_h, tile_w, overlap = height, width, 0
    if spatial is not None:
        size, overlap = spatial[0] // hs, spatial[1] // hs
        longer = max(height, width)
        tile_h, tile_w = (max(2, overlap + 1, round(size * length / longer)) for length in (height, width))
    temporal_tile, temporal_overlap = (frames, 0) if temporal is None else (temporal[0] // ts, temporal[1] // ts)
    return (tile_h, tile_w), overlap, temporal_tile, temporal_overlap


MIN_ENCODE_OVERLAP_PIXELS = 64     # ltx-core raises smaller encode overlaps to these: each tile drops one edge
MIN_ENCODE_OVERLAP_FRAMES = 16     # latent per side (it saw the encoder's padding) and still meets its neighbour


def _encode_cuts_in_space(length: int, tile: int, overlap: int, scale: int) -> list[tuple[slice, slice, torch.Tensor]]:
    """Pixel tiles along a spatial axis of ``length`` pixels -> (pixel slice, latent slice, latent weights): an
    inner edge drops overlap/scale - 1 latents on the left and 1 on the right."""
    tiles = []
    for t in split_axis(length, tile, overlap):
        latents = slice(t.start // scale, t.stop // scale)
        weights = cut(latents.stop - latents.start, max(0, t.left // scale - 1), 1 if t.right else 0)
        tiles.append((slice(t.start, t.stop), latents, weights))
    return tiles


def _encode_cuts_in_time(frames: int, tile: int, overlap: int, scale: int) -> list[tuple[slice, slice, torch.Tensor]]:
    """Pixel-frame tiles of a clip of ``frames`` (8k+1) -> (frame slice, latent slice, latent weights): every
    tile but the last takes one more frame (it ends on a latent boundary); a later tile drops the
    1 + (overlap-1)//scale latents that its predecessor holds whole."""
    tiles = []
    split = split_axis(frames, tile, overlap)
    for i, t in enumerate(split):
        stop = t.stop + 1 if i < len(split) - 1 else t.stop
        latents = slice(t.start // scale, (stop - 1) // scale + 1)
        weights = cut(latents.stop - latents.start, 1 + (t.left - 1) // scale if t.left else 0, 0)
        tiles.append((slice(t.start, stop), latents, weights))
    return tiles


def ltx_core_tiled_encode(encode: Coder, pixels: torch.Tensor, spatial: tuple[int, int] | None,
                          temporal: tuple[int, int] | None, scale: tuple[int, int, int] = (8, 32, 32),
                          on_tile: Counter | None = None) -> torch.Tensor:
    """ltx-core 1.0.0's tiled encode of ``pixels`` [B, 3, 1 + 8k, 32h, 32w]: ``spatial`` = (tile, overlap) in
    pixels, ``temporal`` = (tile, overlap) in frames (overlaps raised to 64 pixels / 16 frames), None leaves that
    axis whole. Tiles are cut from the pixels; each keeps its latents except those its edges spoiled, which its
    neighbour holds whole (weights 0 or 1; where two keep a latent, the mean). Returns latent [B, C, 1 + k, h, w]."""
    ts, hs, ws = scale
    frames, height, width = pixels.shape[2:]
    if (frames - 1) % ts or height % hs or width % ws:
        raise ValueError(f"tiled encode: pixels {frames}x{height}x{width} (frames x height x width) are not "
                         f"{ts}k+1 x multiples of {hs}x{ws}")
    for axis, setting, unit in (("spatial", spatial, hs), ("temporal", temporal, ts)):
        if setting is not None and (setting[0] % unit or setting[1] % unit):
            raise ValueError(f"tiled encode: {axis} tile and overlap {setting} must be multiples of {unit}")
    whole = [(slice(0, n), slice(0, m), torch.ones(m)) for n, m in
             ((frames, (frames - 1) // ts + 1), (height, height // hs), (width, width // ws))]
    axes = [[axis] for axis in whole]
    if temporal is not None:
        axes[0] = _encode_cuts_in_time(frames, temporal[0], max(temporal[1], MIN_ENCODE_OVERLAP_FRAMES), ts)
    if spatial is not None:
        overlap = max(spatial[1], MIN_ENCODE_OVERLAP_PIXELS)
        axes[1] = _encode_cuts_in_space(height, spatial[0], overlap, hs)
        axes[2] = _encode_cuts_in_space(width, spatial[0], overlap, ws)
    out = weight_sum = None
    for (t_in, t_out, t_w), (h_in, h_out, h_w), (w_in, w_out, w_w) in counted(list(product(*axes)), on_tile):
        latent = encode(pixels[:, :, t_in, h_in, w_in]).float()
        if out is None:
            out = latent.new_zeros(*latent.shape[:2], *(axis[1].stop for axis in whole))
            weight_sum = latent.new_zeros(out.shape[2:])
        mask = _weights(t_w, h_w, w_w)
        out[:, :, t_out, h_out, w_out] += latent * mask
        weight_sum[t_out, h_out, w_out] += mask
    return out / weight_sum.clamp_min(1e-8)
