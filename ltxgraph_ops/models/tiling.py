"""Tiled VAE decoding and encoding: the work is split into overlapping tiles over space and time, each tile is
run alone, and overlaps are blended with linear ramps (weights normalised to sum to 1 at every output element),
so memory is bounded by the tile size and seams do not show.

Time is causal: latent frame 0 stands for pixel frame 0 alone, latent k >= 1 for pixels 8k-7 .. 8k. A latent
tile [a, b) decodes to 1 + 8(b-a-1) frames whose first lands on pixel 8a; a tile that is not first therefore
starts one latent earlier than a plain split would and blends over one more frame. Encoding mirrors it: a pixel
tile starting at 8a (a > 0) yields a first latent that is not latent a (it saw one frame), which gets no weight.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Callable

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


def split_axis(length: int, size: int, overlap: int) -> list[Interval]:
    """Overlapping tiles of ``size`` covering [0, length) (the last one ends at ``length``)."""
    if size >= length:
        return [Interval(0, length, 0, 0)]
    if overlap >= size:
        raise ValueError(f"tile overlap {overlap} must be smaller than the tile size {size}")
    step = size - overlap
    count = (length + size - 2 * overlap - 1) // step
    starts = [i * step for i in range(count)]
    stops = [s + size for s in starts[:-1]] + [length]
    return [Interval(start, stop, overlap if i else 0, overlap if i < count - 1 else 0)
            for i, (start, stop) in enumerate(zip(starts, stops))]


def split_time_latents(length: int, size: int, overlap: int) -> list[Interval]:
    """Latent-frame tiles for decoding: later tiles start one frame earlier and share one more."""
    tiles = split_axis(length, size, overlap)
    return [tiles[0]] + [Interval(t.start - 1, t.stop, t.left + 1, t.right) for t in tiles[1:]]


def ramp(length: int, left: int, right: int) -> torch.Tensor:
    """Weights [length]: rising over the first ``left`` elements, falling over the last ``right``, 1 between."""
    weights = torch.ones(length)
    if left:
        weights[:left] = torch.arange(1, left + 1) / (left + 1)
    if right:
        weights[length - right:] = torch.minimum(weights[length - right:], torch.arange(right, 0, -1) / (right + 1))
    return weights


def _weights(t: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return t.view(-1, 1, 1) * h.view(1, -1, 1) * w.view(1, 1, -1)


def tiled_decode(decode: Coder, latent: torch.Tensor, spatial_tile: int, spatial_overlap: int,
                 temporal_tile: int, temporal_overlap: int, scale: tuple[int, int, int] = (8, 32, 32),
                 on_tile: Counter | None = None) -> torch.Tensor:
    """``decode`` (latent [B, C, f, h, w] -> pixels [B, 3, 1 + 8(f-1), 32h, 32w]) applied in tiles of
    ``spatial_tile`` x ``spatial_tile`` latent cells and ``temporal_tile`` latent frames with the given
    overlaps (latent units); returns the blended pixels of the whole latent. ``on_tile(done, total)`` is called
    after each tile."""
    ts, hs, ws = scale
    _, _, frames, height, width = latent.shape
    out = weight_sum = None
    tiles = list(product(split_time_latents(frames, temporal_tile, temporal_overlap),
                         split_axis(height, spatial_tile, spatial_overlap),
                         split_axis(width, spatial_tile, spatial_overlap)))
    for t, h, w in counted(tiles, on_tile):
        first = 0 if t.start == 0 else t.start * ts
        stop = 1 + (t.stop - 1) * ts
        t_ramp = ramp(stop - first, 0 if t.left == 0 else 1 + (t.left - 1) * ts, t.right * ts)
        pixels = decode(latent[:, :, t.start:t.stop, h.start:h.stop, w.start:w.stop]).float()
        if out is None:
            out = pixels.new_zeros(pixels.shape[0], pixels.shape[1], 1 + (frames - 1) * ts, height * hs, width * ws)
            weight_sum = pixels.new_zeros(out.shape[2:])
        mask = _weights(t_ramp, ramp((h.stop - h.start) * hs, h.left * hs, h.right * hs),
                        ramp((w.stop - w.start) * ws, w.left * ws, w.right * ws))
        region = (slice(first, stop), slice(h.start * hs, h.stop * hs), slice(w.start * ws, w.stop * ws))
        out[(slice(None), slice(None)) + region] += pixels * mask
        weight_sum[region] += mask
    return out / weight_sum


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


def choose_tiles(latent_shape: tuple[int, ...], memory_budget: int | None, bytes_per_cell: float = 6e6
                 ) -> tuple[int, int]:
    """(spatial tile in latent cells, temporal tile in latent frames) for decoding within ``memory_budget``
    bytes, from an estimate of the decoder's peak working memory per latent cell (``bytes_per_cell``: ~6 MB for
    the LTX-2 decoder in float32). No budget: one tile. Tiles stay >= 2 cells (64 px) and >= 2 latent frames."""
    _, _, frames, height, width = latent_shape
    if memory_budget is None or frames * height * width * bytes_per_cell <= memory_budget:
        return max(height, width), frames
    cells = max(8, int(memory_budget / bytes_per_cell))
    temporal = max(2, min(frames, cells // 16))
    spatial = max(2, min(max(height, width), int((cells / temporal) ** 0.5)))
    return spatial, temporal
