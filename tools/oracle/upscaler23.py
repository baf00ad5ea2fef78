"""Parity of the LTX-2.3 latent upscalers with diffusers 0.42.1 (``LTX2LatentUpsamplerModel``) and with ltx-core
(``LatentUpsampler`` from its configurator, same header): spatial x2 1.1, spatial x1.5 (rational resampler, blur
kernel from the file) and temporal x2, each at a tiny config with our seeded weights loaded into both, including
the un-normalise / re-normalise wrapper. float32, CPU.

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
from tools.oracle.guard import compared  # noqa: E402

SEED = 23


def diffusers_upsampler(header: dict) -> torch.nn.Module:
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
    return LTX2LatentUpsamplerModel(
        in_channels=header["in_channels"], mid_channels=header["mid_channels"],
        num_blocks_per_stage=header["num_blocks_per_stage"], dims=header["dims"],
        spatial_upsample=header["spatial_upsample"], temporal_upsample=header["temporal_upsample"],
        rational_spatial_scale=header["spatial_scale"], use_rational_resampler=header["rational_resampler"])


def ltx_core_upsampler(header: dict) -> torch.nn.Module:
    from ltx_core.model.upsampler import LatentUpsamplerConfigurator
    with torch.device("cpu"):
        return LatentUpsamplerConfigurator.from_config(header)


@torch.no_grad()
def upscaler_error(release: Callable[[], dict], frames: int = 3, height: int = 4, width: int = 6,
                   reference_for: Callable[[dict], torch.nn.Module] = diffusers_upsampler) -> float:
    """Max abs difference of ours vs diffusers on one latent [2, 128, frames, height, width], plain and
    wrapped with per-channel statistics. Asserts both outputs are finite and not constant."""
    header = tiny.tiny_config(release())
    ours = tiny.build(header).eval()
    state = {**random_state(ours, "", SEED), **tiny.fixed_tensors(header)}   # + the real blur kernel
    ours.load_state_dict(state)
    reference = reference_for(header).float().eval()
    reference.load_state_dict(state, strict=True)
    g = torch.Generator().manual_seed(SEED + 1)
    latent = torch.randn(2, 128, frames, height, width, generator=g)
    mean, std = 0.1 * torch.randn(128, generator=g), 1 + 0.1 * torch.rand(128, generator=g)
    got, expected = ours(latent), reference(latent)
    shape = (1, -1, 1, 1, 1)
    wrapped_expected = (reference(latent * std.view(shape) + mean.view(shape)) - mean.view(shape)) / std.view(shape)
    wrapped = upscale_normalised(ours, latent, mean, std)
    return max(compared("upscaler", got, expected), compared("upscaler wrapped", wrapped, wrapped_expected))


CASES = {"spatial_x2": (tiny.full_config, 4, 6), "spatial_x1_5": (tiny.spatial_x1_5_config, 5, 7),
         "temporal_x2": (tiny.temporal_x2_config, 4, 6)}
CHECKS: dict[str, Callable[[], float]] = {
    **{f"ltx23_upscaler_{name}": (lambda c=case: upscaler_error(c[0], height=c[1], width=c[2]))
       for name, case in CASES.items()},
    **{f"ltx23_upscaler_{name}_ltx_core": (lambda c=case: upscaler_error(c[0], height=c[1], width=c[2],
                                                                        reference_for=ltx_core_upsampler))
       for name, case in CASES.items()},
}

if __name__ == "__main__":
    for name, check in CHECKS.items():
        print(f"{name}: {check():.3g}")
