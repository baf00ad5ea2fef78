"""Tiny and full-size configs of the LTX-2 x2 spatial latent upscaler (a file of its own, no key prefix; the
whole header ``config`` is its section)."""
from __future__ import annotations

import torch

from ltxgraph_ops.models.upscaler import LatentUpscaler, LatentUpscalerConfig

COMPONENT = "upscaler"
PREFIX = ""
SECTION = ""
MANIFEST_COMPONENT = "upsampler_x2"


def full_config() -> dict:
    return {"_class_name": "LatentUpsampler", "in_channels": 128, "mid_channels": 1024, "num_blocks_per_stage": 4,
            "dims": 3, "spatial_upsample": True, "temporal_upsample": False, "spatial_scale": 2.0,
            "rational_resampler": False}


def tiny_config() -> dict:
    return {**full_config(), "mid_channels": 32, "num_blocks_per_stage": 1}


def build(config: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return LatentUpscaler(LatentUpscalerConfig.from_header(config))
