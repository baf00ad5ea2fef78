"""Parity of the LTX-2.3 latent upscalers with diffusers 0.42.1 (``LTX2LatentUpsamplerModel``): spatial x2 1.1,
spatial x1.5 (rational resampler, blur kernel from the file) and temporal x2, each at a tiny config with our
seeded weights loaded into both, including the un-normalise / re-normalise wrapper. float32, CPU.

diffusers names two header fields differently (``spatial_scale`` -> ``rational_spatial_scale``,
``rational_resampler`` -> ``use_rational_resampler``) and defaults the latter to true where ltx-core defaults
to false; the header is translated explicitly here, so the defaults never decide.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from ltxgraph_ops.models.upscaler import upscale_normalised  # noqa: E402
from ltxgraph_ops.tiny import upscaler as tiny  # noqa: E402
from ltxgraph_ops.weights.writing import random_state  # noqa: E402

SEED = 23


def diffusers_upsampler(header: dict) -> torch.nn.Module:
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
    return LTX2LatentUpsamplerModel(
        in_channels=header["in_channels"], mid_channels=header["mid_channels"],
        num_blocks_per_stage=header["num_blocks_per_stage"], dims=header["dims"],
        spatial_upsample=header["spatial_upsample"], temporal_upsample=header["temporal_upsample"],
        rational_spatial_scale=header["spatial_scale"], use_rational_resampler=header["rational_resampler"])


@torch.no_grad()
def upscaler_error(release: Callable[[], dict], frames: int = 3, height: int = 4, width: int = 6) -> float:
    """Max abs difference of ours vs diffusers on one latent [2, 128, frames, height, width], plain and
    wrapped with per-channel statistics. Asserts both outputs are finite and not constant."""
    header = tiny.tiny_config(release())
    ours = tiny.build(header).eval()
    state = {**random_state(ours, "", SEED), **tiny.fixed_tensors(header)}   # + the real blur kernel
    ours.load_state_dict(state)
    reference = diffusers_upsampler(header).float().eval()
    reference.load_state_dict(state, strict=True)
    g = torch.Generator().manual_seed(SEED + 1)
    latent = torch.randn(2, 128, frames, height, width, generator=g)
    mean, std = 0.1 * torch.randn(128, generator=g), 1 + 0.1 * torch.rand(128, generator=g)
    got, expected = ours(latent), reference(latent)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert bool(torch.isfinite(got).all()) and float(got.std()) > 1e-3, "degenerate upscaler output"
    shape = (1, -1, 1, 1, 1)
    wrapped_expected = (reference(latent * std.view(shape) + mean.view(shape)) - mean.view(shape)) / std.view(shape)
    wrapped = upscale_normalised(ours, latent, mean, std)
    return max(float((got - expected).abs().max()), float((wrapped - wrapped_expected).abs().max()))


CHECKS: dict[str, Callable[[], float]] = {
    "ltx23_upscaler_spatial_x2": lambda: upscaler_error(tiny.full_config),
    "ltx23_upscaler_spatial_x1_5": lambda: upscaler_error(tiny.spatial_x1_5_config, height=5, width=7),
    "ltx23_upscaler_temporal_x2": lambda: upscaler_error(tiny.temporal_x2_config),
}

if __name__ == "__main__":
    for name, check in CHECKS.items():
        print(f"{name}: {check():.3g}")
