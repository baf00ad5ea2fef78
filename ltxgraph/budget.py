"""One memory budget for a whole run, and the pure functions that plan work against it.

``--memory-budget SIZE`` (``RunSettings.memory_budget``) is the bytes a run may use: model weights (loaders keep
them resident or stream them, :mod:`ltxgraph_ops.loaders`), the sampler's activations (guidance passes batched
while they fit, the transformer's feed-forward and attention queries run over tokens in chunks planned here), the working memory of the
VAE decode (tile sizes and the temporal window chosen here) and media buffers (frames travel as bytes or streamed
chunks, :mod:`ltxgraph.frames`). A :class:`MemoryBudget` is handed to the code that plans; the planning functions
take plain numbers and return plain numbers, so they are tested without models.

Estimates are in bytes and deliberately simple (float32 activations, a fixed number of live tensors); the
benchmark ``two-stage-memory`` (tools/benchmarks/run_memory.py) measures the run they plan.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable

FLOAT_BYTES = 4
BLEND_BYTES_PER_PIXEL = 4 * FLOAT_BYTES      # a tiled decode's blend window: 3 colour sums and 1 weight sum
CHUNK_FRAMES = 8                             # finished frames leave the window this many at a time ...
CHUNK_BYTES_PER_PIXEL = 3 * 3 * FLOAT_BYTES  # ... as 3 colours in float32, at most 3 such tensors alive
LIVE_ACTIVATIONS = 8                         # tensors of a decoder stage's size alive at its peak (estimate)
FEED_FORWARD_HIDDEN_WIDTHS = 8               # a feed-forward's 4x-wide hidden per token, before and after its GELU
ATTENTION_CHUNKED_WIDTHS = 3                 # an attention's activations per token that exist for one chunk only:
                                             # the raw and normalised / rotated keys, then the queries' and
                                             # heads' outputs (tools/benchmarks/attention_memory.py)
ENCODER_FRAMES_HELD = 45                     # frames x264 (preset medium) holds besides one per thread: its
                                             # 40-frame rate-control lookahead, reference and B frames
ENCODER_BYTES_PER_PIXEL = 4                  # per pixel of each held frame (planes, half-size planes, analysis)
MIN_TOKEN_CHUNK = 128                        # fewest tokens per chunk of a row-wise op: its near-equal parts keep
                                             # 64 rows or more, where matmuls give the same bits as unchunked


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes a run may use (``total``; None = no limit), shared by weights, activations and media buffers."""

    total: int | None = None

    def remaining(self, resident_bytes: int) -> int | None:
        """What is left for working memory once ``resident_bytes`` (weights, held values) are counted; None
        without a limit, never below 0."""
        return None if self.total is None else max(0, self.total - resident_bytes)


@dataclass(frozen=True)
class DecodeTiles:
    """Tiles of a tiled video decode in latent units: (rows, columns) cells per spatial tile and their
    overlap, latent frames per temporal tile and their overlap."""

    spatial: tuple[int, int]
    spatial_overlap: int
    temporal: int
    temporal_overlap: int


def decoder_bytes_per_pixel(base_channels: int, patch_size: int) -> int:
    """Peak activation bytes per output pixel-frame of a video decoder whose last stage has ``base_channels``
    channels at 1/``patch_size`` of the output's width and height (LTX-2: 128 at 1/4): LIVE_ACTIVATIONS float32
    tensors of that stage."""
    return max(1, LIVE_ACTIVATIONS * FLOAT_BYTES * base_channels // (patch_size * patch_size))


def decode_working_bytes(latent_shape: tuple[int, ...], tiles: DecodeTiles, bytes_per_pixel: int,
                         scale: tuple[int, int, int] = (8, 32, 32)) -> int:
    """Working memory of a streamed tiled decode of ``latent_shape`` [B, C, F, H, W] with ``tiles``: the blend
    window (every pixel of the frames of one temporal tile, BLEND_BYTES_PER_PIXEL each), one tile's decoder
    activations (``bytes_per_pixel`` per pixel of the tile) and the chunk of finished frames on its way out
    (CHUNK_FRAMES frames, CHUNK_BYTES_PER_PIXEL). A temporal tile after the first starts one latent frame early
    (causal decoding), so it spans 1 + 8 ``temporal`` pixel frames."""
    ts, hs, ws = scale
    _, _, frames, height, width = latent_shape
    tile_frames = 1 + (frames - 1) * ts if tiles.temporal >= frames else 1 + tiles.temporal * ts
    tile_pixels = min(tiles.spatial[0], height) * hs * min(tiles.spatial[1], width) * ws
    frame_pixels = height * hs * width * ws
    window = tile_frames * frame_pixels * BLEND_BYTES_PER_PIXEL
    chunk = min(CHUNK_FRAMES, tile_frames) * frame_pixels * CHUNK_BYTES_PER_PIXEL
    return window + chunk + tile_frames * tile_pixels * bytes_per_pixel


def plan_decode_tiles(latent_shape: tuple[int, ...], requested: DecodeTiles, available: int | None,
                      bytes_per_pixel: int, scale: tuple[int, int, int] = (8, 32, 32)) -> DecodeTiles:
    """The ``requested`` tiles, made smaller until :func:`decode_working_bytes` fits ``available`` bytes: the
    temporal tile is halved first (down to 2 latent frames), then the spatial tile (down to 2 cells); overlaps
    shrink to stay below their tile. Never larger than requested; None (no limit) keeps the request. When even
    the smallest tiles do not fit, the smallest are returned (the caller may warn)."""
    tiles = requested
    if available is None:
        return tiles
    while decode_working_bytes(latent_shape, tiles, bytes_per_pixel, scale) > available:
        smaller = _halved(tiles, latent_shape)
        if smaller == tiles:
            break
        tiles = smaller
    return tiles


def _halved(tiles: DecodeTiles, latent_shape: tuple[int, ...]) -> DecodeTiles:
    _, _, frames, height, width = latent_shape
    temporal = min(tiles.temporal, frames)
    if temporal > 2:
        temporal = max(2, temporal // 2)
        return replace(tiles, temporal=temporal, temporal_overlap=min(tiles.temporal_overlap, temporal - 1))
    rows, cols = min(tiles.spatial[0], height), min(tiles.spatial[1], width)
    if max(rows, cols) > 2:
        rows, cols = max(2, rows // 2) if rows > 2 else rows, max(2, cols // 2) if cols > 2 else cols
        return replace(tiles, spatial=(rows, cols), spatial_overlap=min(tiles.spatial_overlap, min(rows, cols) - 1))
    return tiles


def plan_token_chunk(tokens: int, bytes_per_token: int, available: int | None,
                     minimum: int = MIN_TOKEN_CHUNK) -> int | None:
    """The most tokens one chunk of a row-wise op over ``tokens`` tokens may hold (each token's output depends on
    that token alone, e.g. a feed-forward), when it needs ``bytes_per_token`` bytes of working memory per token
    and a chunk must fit ``available`` bytes: None (one piece) without a limit or when all tokens fit; never
    below ``minimum`` tokens (even when that does not fit). The op splits its tokens into near-equal parts of at
    most this many."""
    if tokens < 0 or bytes_per_token < 0:
        raise ValueError(f"tokens ({tokens}) and bytes per token ({bytes_per_token}) must not be negative")
    if available is None or tokens * bytes_per_token <= available:
        return None
    fit = max(1, minimum, available // max(1, bytes_per_token))
    return None if fit >= tokens else fit


def feed_forward_chunk(tokens: int, width: int, rows: int, element_bytes: int, available: int | None) -> int | None:
    """Tokens per chunk of a transformer feed-forward of stream ``width`` (hidden 4 x width) over ``rows`` batch
    rows of ``tokens`` tokens, its hidden (before and after the GELU, ``element_bytes`` each) within ``available``
    bytes; None: all tokens at once (:func:`plan_token_chunk`)."""
    return plan_token_chunk(tokens, rows * FEED_FORWARD_HIDDEN_WIDTHS * width * element_bytes, available)


def attention_chunk(tokens: int, width: int, rows: int, element_bytes: int, available: int | None) -> int | None:
    """Tokens per chunk of an attention of stream ``width`` over ``rows`` batch rows of ``tokens`` tokens, its
    per-chunk activations (ATTENTION_CHUNKED_WIDTHS widths per token, ``element_bytes`` each) within ``available``
    bytes; None: all tokens at once (:func:`plan_token_chunk`). Attention is exact per query and the keys are
    row-wise, so chunks change no value; the keys, values and output are whole whatever the chunk."""
    return plan_token_chunk(tokens, rows * ATTENTION_CHUNKED_WIDTHS * width * element_bytes, available)


def chunk_within_forward(plan: Callable[[int, int, int, int, int | None], int | None], tokens: int, width: int,
                         rows: int, element_bytes: int, widths: int, forward_bytes: int, budget: int | None) -> int | None:
    """Tokens per chunk of a row-wise part of a transformer forward (``plan``: :func:`feed_forward_chunk` or
    :func:`attention_chunk`) over the widest stream (``tokens`` of ``width`` in ``rows`` batch rows), given
    ``budget`` bytes for the whole forward's activations (None: no limit) of which ``forward_bytes`` are the
    estimate and ``widths`` widths per token are the chunked part: the chunks get what the rest leaves."""
    if budget is None:
        return None
    rest = max(0, forward_bytes - rows * tokens * widths * width * element_bytes)
    return plan(tokens, width, rows, element_bytes, max(0, budget - rest))


def encoder_threads() -> int:
    """x264's thread count for SaveVideo: one per CPU this process may run on. Fixed per machine, not taken from
    torch's thread setting, since the encoded bytes depend on it (a resumed or cached run must write the same file
    as a fresh one, whatever threads its process was given)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                                  # not Linux
        return max(1, os.cpu_count() or 1)


def encoder_bytes(width: int, height: int, threads: int) -> int:
    """Memory of an H.264 encode (x264, preset medium) of ``width`` x ``height`` frames with ``threads`` frame
    threads: ENCODER_FRAMES_HELD frames plus one per thread, ENCODER_BYTES_PER_PIXEL each pixel (measured at
    1920x1088: 0.357 GiB with 1 thread, 0.361 GiB with x264's "auto" on 2 cores; the estimate says 0.36 and
    0.37). Constant in the clip's length."""
    return (ENCODER_FRAMES_HELD + max(1, threads)) * width * height * ENCODER_BYTES_PER_PIXEL
