"""Tiny and full-size configs of the LTX-2 latent upscalers (each a file of its own, no key prefix; the whole
header ``config`` is its section). ``full_config`` / ``tiny_config`` are the 2.0 x2 file; ``RELEASE_FILES`` maps
each release file name to its full-size header (2.3: spatial x2 1.1, spatial x1.5, temporal x2; reconstructed
from the reference configurator's fields, mid width 1024 as the x2 files)."""
from __future__ import annotations

import torch

from ltxgraph_ops.models.upscaler import LatentUpscaler, LatentUpscalerConfig, resampling_stage

COMPONENT = "upscaler"
PREFIX = ""
SECTION = ""
MANIFEST_COMPONENT = "upsampler_x2"


def full_config() -> dict:
    return {"_class_name": "LatentUpsampler", "in_channels": 128, "mid_channels": 1024, "num_blocks_per_stage": 4,
            "dims": 3, "spatial_upsample": True, "temporal_upsample": False, "spatial_scale": 2.0,
            "rational_resampler": False}


def spatial_x1_5_config() -> dict:
    return {**full_config(), "spatial_scale": 1.5, "rational_resampler": True}


def temporal_x2_config() -> dict:
    return {**full_config(), "spatial_upsample": False, "temporal_upsample": True}


RELEASE_FILES = {
    "ltx-2-spatial-upscaler-x2-1.0.safetensors": full_config,
    "ltx-2.3-spatial-upscaler-x2-1.1.safetensors": full_config,
    "ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors": spatial_x1_5_config,
    "ltx-2.3-temporal-upscaler-x2-1.0.safetensors": temporal_x2_config,
    # the name ComfyUI's LTX-2.5 templates load; no 2.5 upscaler header has been seen: the x2 one is assumed
    "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors": full_config,
}


def tiny_config(full: dict | None = None) -> dict:
    """``full`` (default: the 2.0 x2 header) at 32 channels, one block per stage."""
    return {**(full or full_config()), "mid_channels": 32, "num_blocks_per_stage": 1}


def fixed_tensors(config: dict) -> dict[str, torch.Tensor]:
    """The blur kernel a rational-resampler file stores (the fixed 5x5 binomial), float32."""
    with torch.device("cpu"):
        state = resampling_stage(LatentUpscalerConfig.from_header(config)).state_dict()
    return {f"upsampler.{key}": value for key, value in state.items() if key.endswith("kernel")}


def build(config: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return LatentUpscaler(LatentUpscalerConfig.from_header(config))
