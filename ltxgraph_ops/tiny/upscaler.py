"""Tiny configs of the LTX-2 latent upscalers (each a file of its own, no key prefix; the whole header ``config``
is its section) and the release headers they shrink, from :mod:`ltxgraph_ops.releases` under the names the tiny
modules share: ``full_config`` / ``tiny_config`` are the 2.0 x2 file; ``RELEASE_FILES`` maps each release file
name to its full-size header (:data:`ltxgraph_ops.releases.UPSCALER_FILES`)."""
from __future__ import annotations

import torch

from ltxgraph_ops import releases
from ltxgraph_ops.models.upscaler import LatentUpscaler, LatentUpscalerConfig, resampling_stage

COMPONENT = "upscaler"
PREFIX = ""
SECTION = ""
MANIFEST_COMPONENT = "upsampler_x2"

full_config = releases.upscaler_spatial_x2
spatial_x1_5_config = releases.upscaler_spatial_x1_5
temporal_x2_config = releases.upscaler_temporal_x2
RELEASE_FILES = releases.UPSCALER_FILES


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
