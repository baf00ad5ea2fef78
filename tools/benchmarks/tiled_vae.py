"""How far tiled video VAE results are from untiled ones, per blending, so the choice of blending is measured.

The tiny video VAE of tools/oracle/video_vae.py (seeded random weights, float32) decodes a 9x6x8 latent and
encodes a smooth 65x192x256 clip (trilinear upsampling of coarse noise), untiled and tiled with ltx-core's
settings (pixels / frames). Per setting, max and mean abs difference from the untiled result of:
- ``ltx_core``: ltx-core 1.0.0's own ``tiled_decode`` / ``tiled_encode``;
- ``ours_ltx_core``: ``ltx_core_tiled_decode`` / ``ltx_core_tiled_encode`` (temporal ramp from 0, edge cuts);
- ``ours_ops``: the ops' blending on the same tiles in latent units (``tiled_decode`` with ramps from 1/(n+1),
  ``tiled_encode`` with latent-space ramps, overlaps raised like ltx-core's).
Seconds are wall time of the tiled run on this machine (shared: compare within one run only).
"""
from __future__ import annotations

import time
from typing import Callable

import torch

from ltxgraph_ops.models.tiling import (ltx_core_decode_tiles, ltx_core_tiled_decode, ltx_core_tiled_encode,
                                        tiled_decode, tiled_encode, MIN_ENCODE_OVERLAP_FRAMES,
                                        MIN_ENCODE_OVERLAP_PIXELS)

LATENT_SHAPE = (9, 6, 8)
PIXEL_SHAPE = (65, 192, 256)
DECODE_SETTINGS = {"spatial": ((128, 64), (72, 8)), "temporal": (None, (32, 8)), "both": ((128, 64), (32, 8)),
                   "temporal_overlap_16": (None, (32, 16))}
ENCODE_SETTINGS = {"spatial": ((128, 64), None), "temporal": (None, (32, 16)), "both": ((128, 64), (32, 16)),
                   "spatial_overlap_96": ((160, 96), None)}


def distance(tiled: torch.Tensor, untiled: torch.Tensor, seconds: float) -> dict:
    difference = (tiled - untiled).abs()
    return {"max_abs": float(difference.max()), "mean_abs": float(difference.mean()), "seconds": round(seconds, 2)}


def measure(runs: dict[str, Callable[[], torch.Tensor]], untiled: torch.Tensor) -> dict:
    """{who: distance of its tiled result from ``untiled``} for every run."""
    figures = {}
    for who, run in runs.items():
        start = time.perf_counter()
        tiled = run()
        figures[who] = distance(tiled, untiled, time.perf_counter() - start)
    return figures


@torch.no_grad()
def tiled_vae_blending() -> dict:
    from tools.oracle.video_vae import pair
    from tools.oracle.video_vae_tiled import tiling_config
    ours, encoder, decoder = pair()
    generator = torch.Generator().manual_seed(11)
    latent = torch.randn(1, ours.latent_channels, *LATENT_SHAPE, generator=generator)
    coarse = torch.rand(1, 3, 9, 12, 16, generator=generator) * 2 - 1
    pixels = torch.nn.functional.interpolate(coarse, size=PIXEL_SHAPE, mode="trilinear", align_corners=True)
    untiled = ours.decode(latent)
    figures: dict[str, dict | float] = {"untiled_decode_mean_abs": float(untiled.abs().mean())}
    for name, (spatial, temporal) in DECODE_SETTINGS.items():
        tiles = ltx_core_decode_tiles(latent.shape, spatial, temporal)
        figures[f"decode_{name}"] = {"tiles_latent_units": tiles, **measure({
            "ltx_core": lambda: torch.cat(list(decoder.tiled_decode(latent, tiling_config(spatial, temporal))), 2),
            "ours_ltx_core": lambda: ltx_core_tiled_decode(ours.decode, latent, spatial, temporal),
            "ours_ops": lambda: tiled_decode(ours.decode, latent, *tiles),
        }, untiled)}
    untiled = ours.encode(pixels)
    figures["untiled_encode_mean_abs"] = float(untiled.abs().mean())
    for name, (spatial, temporal) in ENCODE_SETTINGS.items():
        tile, lap = (99, 0) if spatial is None else (spatial[0] // 32, max(spatial[1], MIN_ENCODE_OVERLAP_PIXELS) // 32)
        frames, frames_lap = (99, 0) if temporal is None else (
            temporal[0] // 8, max(temporal[1], MIN_ENCODE_OVERLAP_FRAMES) // 8)
        figures[f"encode_{name}"] = measure({
            "ltx_core": lambda: encoder.tiled_encode(pixels, tiling_config(spatial, temporal)),
            "ours_ltx_core": lambda: ltx_core_tiled_encode(ours.encode, pixels, spatial, temporal),
            "ours_ops": lambda: tiled_encode(ours.encode, pixels, tile, lap, frames, frames_lap),
        }, untiled)
    return figures


BENCHMARKS = {"vae-tiled-blending": tiled_vae_blending}
