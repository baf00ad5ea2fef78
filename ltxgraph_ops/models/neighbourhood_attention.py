"""3-D neighbourhood attention (NATTEN's ``na3d`` semantics) in plain torch, and the absolute 3-D RoPE the
LTX-2.5 diffusion decoder rotates its queries and keys with.

Each query at grid cell (t, h, w) attends to a window of ``kernel`` cells per axis, centred on it where possible
and *shifted inward* at the borders so it always holds ``min(kernel, length)`` cells (NATTEN's rule, not a
truncated window). The grid is cut into query tiles; a tile's keys are the union of its queries' windows, a
box at most ``tile + kernel - 1`` long per axis, and one masked ``scaled_dot_product_attention`` computes the
tile exactly. Memory is bounded by the score budget, not by the grid (no [N, N] mask is ever built).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SCORE_BUDGET = 1 << 24  # elements of one tile's [batch, heads, queries, keys] score matrix (64 MiB in float32)


def window_starts(length: int, kernel: int, device: torch.device | None = None) -> torch.Tensor:
    """[length] first cell of each position's window along one axis (window ``min(kernel, length)`` long)."""
    kernel = min(kernel, length)
    positions = torch.arange(length, device=device)
    return (positions - kernel // 2).clamp(0, length - kernel)


def _axis_visibility(starts: torch.Tensor, kernel: int, first_key: int, keys: int) -> torch.Tensor:
    """[queries, keys] bool: which of the ``keys`` cells from ``first_key`` each query's window holds."""
    key_positions = torch.arange(first_key, first_key + keys, device=starts.device)
    return (key_positions[None, :] >= starts[:, None]) & (key_positions[None, :] < starts[:, None] + kernel)


def query_tile_sizes(grid: tuple[int, int, int], kernel: tuple[int, int, int], rows: int,
                     budget: int = SCORE_BUDGET) -> tuple[int, int, int]:
    """Query-tile lengths (T, H, W) whose scores (``rows`` = batch x heads of them) fit ``budget`` elements:
    the axis longest relative to its kernel (of those still longer than 1) is halved until they do, or every
    tile is one cell."""
    tiles = list(grid)

    def cost(sizes: list[int]) -> int:
        keys = math.prod(min(length, size + k - 1) for size, k, length in zip(sizes, kernel, grid))
        return rows * math.prod(sizes) * keys

    while cost(tiles) > budget and max(tiles) > 1:
        axis = max((a for a in range(3) if tiles[a] > 1), key=lambda a: tiles[a] / kernel[a])
        tiles[axis] = (tiles[axis] + 1) // 2
    return tiles[0], tiles[1], tiles[2]


def neighbourhood_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                            kernel: tuple[int, int, int], budget: int = SCORE_BUDGET) -> torch.Tensor:
    """softmax(q k^T) v over each query's 3-D window (the query comes pre-scaled).

    query, key, value: [B, T, H, W, heads, head_dim]; kernel: window (T, H, W), clamped to the grid.
    Returns [B, T, H, W, heads, head_dim].
    """
    batch, frames, height, width, heads, head_dim = query.shape
    grid = (frames, height, width)
    kernel = tuple(min(k, length) for k, length in zip(kernel, grid))
    starts = [window_starts(length, k, query.device) for length, k in zip(grid, kernel)]
    tiles = query_tile_sizes(grid, kernel, batch * heads, budget)
    out = torch.empty_like(query)
    for t0 in range(0, frames, tiles[0]):
        for h0 in range(0, height, tiles[1]):
            for w0 in range(0, width, tiles[2]):
                query_box = [(t0, min(t0 + tiles[0], frames)), (h0, min(h0 + tiles[1], height)),
                             (w0, min(w0 + tiles[2], width))]
                key_box, visible = [], []
                for (lo, hi), axis_starts, k in zip(query_box, starts, kernel):
                    first, last = int(axis_starts[lo]), int(axis_starts[hi - 1]) + k
                    key_box.append((first, last))
                    visible.append(_axis_visibility(axis_starts[lo:hi], k, first, last - first))
                mask = (visible[0][:, None, None, :, None, None] & visible[1][None, :, None, None, :, None]
                        & visible[2][None, None, :, None, None, :])
                queries = math.prod(hi - lo for lo, hi in query_box)
                mask = mask.reshape(queries, -1)

                def heads_first(x: torch.Tensor, box: list[tuple[int, int]]) -> torch.Tensor:
                    part = x[:, box[0][0]:box[0][1], box[1][0]:box[1][1], box[2][0]:box[2][1]]
                    return part.reshape(batch, -1, heads, head_dim).transpose(1, 2)   # [B, heads, n, d]

                attended = F.scaled_dot_product_attention(
                    heads_first(query, query_box), heads_first(key, key_box), heads_first(value, key_box),
                    attn_mask=mask, scale=1.0)
                out[:, query_box[0][0]:query_box[0][1], query_box[1][0]:query_box[1][1],
                    query_box[2][0]:query_box[2][1]] = attended.transpose(1, 2).reshape(
                        batch, *(hi - lo for lo, hi in query_box), heads, head_dim)
    return out


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Channels of a head rotated by the T, H and W positions: about a quarter to T, the rest halved between H
    and W, each even (whole rotation pairs)."""
    if head_dim % 8:
        raise ValueError(f"head_dim {head_dim} must be a multiple of 8")
    dim_t = head_dim // 4 // 2 * 2
    dim_hw = (head_dim - dim_t) // 2
    if dim_hw % 2:
        dim_t -= 2
        dim_hw = (head_dim - dim_t) // 2
    return dim_t, dim_hw, dim_hw


def _rotate(x: torch.Tensor, length: int, axis: int, base: float) -> torch.Tensor:
    """Rotate channel pairs (even, odd) of ``x`` [B, T, H, W, heads, c] by angle ``position * base^(-2i/c)``
    of the position along ``axis`` (1, 2 or 3), in float32."""
    channels = x.shape[-1]
    inverse = (1.0 / base ** (torch.arange(0, channels, 2, dtype=torch.float64) / channels)).float()
    angles = torch.arange(length, dtype=torch.float32)[:, None] * inverse[None, :]      # [length, c/2]
    shape = [1, 1, 1, 1, 1, channels // 2]
    shape[axis] = length
    cos, sin = angles.cos().reshape(shape).to(x.device), angles.sin().reshape(shape).to(x.device)
    pairs = x.float().unflatten(-1, (channels // 2, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2).to(x.dtype)


def rope_3d(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Absolute 3-D RoPE of ``x`` [B, T, H, W, heads, head_dim]: the head's channels split T | H | W
    (:func:`rope_split`), each part rotated by its cell's 0-based index along that axis."""
    dim_t, dim_h, _ = rope_split(x.shape[-1])
    frames, height, width = x.shape[1:4]
    return torch.cat([_rotate(x[..., :dim_t], frames, 1, base),
                      _rotate(x[..., dim_t:dim_t + dim_h], height, 2, base),
                      _rotate(x[..., dim_t + dim_h:], width, 3, base)], dim=-1)
