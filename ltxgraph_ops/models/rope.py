"""Rotary position embedding (RoPE) over fractional multi-axis positions, as LTX-2 uses it.

Each token carries a position per axis (video: time in seconds, height and width in pixels; audio: time in
seconds) given as a ``[start, end)`` range. A token's coordinate is the range midpoint (or its start) divided by
the axis' ``max_pos``, mapped to ``[-1, 1]``. Every axis gets the same ladder of ``dim // (2 * n_axes)``
frequencies ``theta ** linspace(0, 1) * pi / 2``; angles are ordered frequency-major, axis-minor, and the
missing angles up to ``dim / 2`` are padding that rotates nothing (cos 1, sin 0), placed first.

Two layouts rotate pairs of channels: ``interleaved`` pairs channels (2i, 2i+1) of the whole inner dimension;
``split`` cuts the angle list into one contiguous slice per head and, inside a head, pairs channel i with
channel i + head_dim / 2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


def frequency_ladder(theta: float, n_axes: int, dim: int, float64: bool) -> torch.Tensor:
    """Angular frequencies shared by every axis: ``[dim // (2 * n_axes)]`` float32.

    ``float64`` computes the ladder in double precision before rounding (what the 19B release asks for with
    ``frequencies_precision: float64``); otherwise it is computed in float32 throughout.
    """
    count = dim // (2 * n_axes)
    if float64:
        exponents = np.linspace(0.0, 1.0, count, dtype=np.float64)
        return torch.tensor(np.power(theta, exponents) * math.pi / 2, dtype=torch.float32)
    exponents = torch.linspace(0.0, 1.0, count, dtype=torch.float32)
    return (theta ** exponents).to(torch.float32) * math.pi / 2


@dataclass(frozen=True)
class RopeTable:
    """Cosines and sines of every token's rotation angles, ready to rotate queries or keys.

    interleaved: ``cos``/``sin`` are ``[B, T, dim]`` (each angle repeated for its channel pair).
    split: ``cos``/``sin`` are ``[B, T, H, 1, dim / (2H)]`` (token-major like the projections, so rotating
    needs no transposes; the singleton broadcasts over a head's two halves); H is the head grouping the table
    was cut for.
    """

    cos: torch.Tensor
    sin: torch.Tensor
    split: bool

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` [B, T, dim] by this table's angles."""
        return rotate(x, self.cos, self.sin, self.split)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, split: bool) -> torch.Tensor:
    """Rotate ``x`` [B, T, dim] by the angles whose cosines and sines are ``cos`` and ``sin`` in the ``split`` or
    interleaved layout of :class:`RopeTable`."""
    if not split:
        pairs = x.unflatten(-1, (-1, 2))
        turned = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        return x * cos + turned * sin
    heads, half = cos.shape[2], cos.shape[-1]
    halves = x.unflatten(-1, (heads, 2, half))                         # [B, T, H, 2, half]: (first, second)
    first, second = halves[..., 0, :], halves[..., 1, :]
    sin = sin[..., 0, :]
    rotated = halves * cos                                             # (first cos, second cos)
    rotated[..., 0, :].addcmul_(second, sin, value=-1.0)               # first cos - second sin
    rotated[..., 1, :].addcmul_(first, sin)                            # second cos + first sin
    return rotated.flatten(-3)


def rope_table(positions: torch.Tensor, max_pos: list[float] | tuple[float, ...], dim: int, heads: int,
               theta: float, split: bool, float64_ladder: bool, use_midpoint: bool = True,
               dtype: torch.dtype = torch.float32) -> RopeTable:
    """RoPE table for tokens at ``positions`` [B, n_axes, T, 2] (``[start, end)`` per axis, physical units).

    ``dim`` is the attention inner dimension the table will rotate; ``heads`` its head count (split layout).
    """
    n_axes = positions.shape[1]
    if len(max_pos) != n_axes:
        raise ValueError(f"positions have {n_axes} axes but max_pos has {len(max_pos)} entries")
    coords = (positions[..., 0] + positions[..., 1]) / 2.0 if use_midpoint else positions[..., 0]  # [B, A, T]
    fraction = torch.stack([coords[:, axis] / max_pos[axis] for axis in range(n_axes)], dim=-1)  # [B, T, A]
    ladder = frequency_ladder(theta, n_axes, dim, float64_ladder).to(fraction.device)
    angles = ladder * (fraction.unsqueeze(-1) * 2 - 1)           # [B, T, A, F]
    angles = angles.transpose(-1, -2).flatten(2)                 # [B, T, F * A], axis fastest
    cos, sin = angles.cos(), angles.sin()
    if split:
        pad = dim // 2 - angles.shape[-1]
        cos = torch.cat([torch.ones_like(cos[..., :pad]), cos], dim=-1)
        sin = torch.cat([torch.zeros_like(sin[..., :pad]), sin], dim=-1)
        batch, tokens = cos.shape[:2]
        cos = cos.reshape(batch, tokens, heads, 1, -1)                 # [B, T, H, 1, dim / (2H)]
        sin = sin.reshape(batch, tokens, heads, 1, -1)
    else:
        pad = dim % (2 * n_axes)
        cos = cos.repeat_interleave(2, dim=-1)
        sin = sin.repeat_interleave(2, dim=-1)
        cos = torch.cat([torch.ones_like(cos[..., :pad]), cos], dim=-1)
        sin = torch.cat([torch.zeros_like(sin[..., :pad]), sin], dim=-1)
    return RopeTable(cos=cos.to(dtype), sin=sin.to(dtype), split=split)
