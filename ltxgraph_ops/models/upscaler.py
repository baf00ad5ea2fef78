"""The LTX-2 x2 spatial latent upscaler (its own file; config = the file's header ``config``).

latent [B, 128, F, H, W] (un-normalised) -> conv3d to ``mid_channels``, GroupNorm(32), SiLU -> residual blocks
-> per frame: conv2d to 4x the width and a 2x2 pixel shuffle -> residual blocks -> conv3d back to 128 channels
-> [B, 128, F, 2H, 2W]. :func:`upscale_normalised` wraps it with the VAE's per-channel statistics.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LatentUpscalerConfig:
    in_channels: int = 128
    mid_channels: int = 512
    num_blocks_per_stage: int = 4

    @classmethod
    def from_header(cls, config: dict) -> "LatentUpscalerConfig":
        unsupported = {"dims": 3, "spatial_upsample": True, "temporal_upsample": False, "rational_resampler": False}
        for key, expected in unsupported.items():
            if config.get(key, expected) != expected:
                raise ValueError(f"latent upscaler {key}={config[key]!r} is not supported (the LTX-2 x2 spatial "
                                 f"upscaler has {key}={expected!r})")
        if float(config.get("spatial_scale", 2.0)) != 2.0:
            raise ValueError(f"latent upscaler spatial_scale {config['spatial_scale']!r} is not supported: only 2")
        return cls(config.get("in_channels", 128), config.get("mid_channels", 512),
                   config.get("num_blocks_per_stage", 4))


class UpscalerBlock(nn.Module):
    """silu(x + norm2(conv2(silu(norm1(conv1(x))))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm1 = nn.GroupNorm(32, channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(32, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm1(self.conv1(x)))
        return F.silu(x + self.norm2(self.conv2(h)))


class LatentUpscaler(nn.Module):
    def __init__(self, cfg: LatentUpscalerConfig) -> None:
        super().__init__()
        self.config = cfg
        mid = cfg.mid_channels
        self.initial_conv = nn.Conv3d(cfg.in_channels, mid, 3, padding=1)
        self.initial_norm = nn.GroupNorm(32, mid)
        self.res_blocks = nn.ModuleList([UpscalerBlock(mid) for _ in range(cfg.num_blocks_per_stage)])
        self.upsampler = nn.Sequential(nn.Conv2d(mid, 4 * mid, 3, padding=1), nn.PixelShuffle(2))
        self.post_upsample_res_blocks = nn.ModuleList([UpscalerBlock(mid) for _ in range(cfg.num_blocks_per_stage)])
        self.final_conv = nn.Conv3d(mid, cfg.in_channels, 3, padding=1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """latent [B, C, F, H, W] -> [B, C, F, 2H, 2W]."""
        x = F.silu(self.initial_norm(self.initial_conv(latent)))
        for block in self.res_blocks:
            x = block(x)
        b, c, f, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * f, c, h, w)
        x = self.upsampler(frames).reshape(b, f, c, 2 * h, 2 * w).transpose(1, 2)
        for block in self.post_upsample_res_blocks:
            x = block(x)
        return self.final_conv(x)


def upscale_normalised(upscaler: LatentUpscaler, latent: torch.Tensor, mean: torch.Tensor,
                       std: torch.Tensor) -> torch.Tensor:
    """A normalised VAE latent upscaled x2: un-normalise with the VAE's per-channel ``mean`` / ``std`` [C],
    upscale, normalise again."""
    shape = (1, -1, 1, 1, 1)
    mean, std = mean.view(shape).to(latent.dtype), std.view(shape).to(latent.dtype)
    return (upscaler(latent * std + mean) - mean) / std
