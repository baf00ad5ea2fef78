"""The LTX-2 latent upscalers (each a file of its own; config = the file's header ``config``).

latent [B, 128, F, H, W] (un-normalised) -> conv3d to ``mid_channels``, GroupNorm(32), SiLU -> residual blocks
-> resampling stage -> residual blocks -> conv3d back to 128 channels. The resampling stage is what tells the
release files apart (header fields ``spatial_upsample``, ``temporal_upsample``, ``rational_resampler``,
``spatial_scale``):

- spatial x2 (2.0 1.0, 2.3 1.1): per frame, conv2d to 4x the width and a 2x2 pixel shuffle -> [.., F, 2H, 2W];
- spatial rational num/den (2.3 x1.5 = 3/2): per frame, conv2d to num^2 x the width, num x num pixel shuffle,
  then a fixed 5x5 binomial blur with stride den (its kernel is stored in the file) -> [.., F, H*num/den, ...];
- temporal x2 (2.3): conv3d to 2x the width and a frame shuffle, the first frame dropped -> [.., 2F - 1, H, W]
  (the first latent frame stands for one pixel frame, so it has no earlier half);
- spatio-temporal x2: conv3d to 8x the width, 2x2x2 shuffle, first frame dropped.
:func:`upscale_normalised` wraps a model with the VAE's per-channel statistics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

RATIONAL_SCALES = {0.75: (3, 4), 1.5: (3, 2), 2.0: (2, 1), 4.0: (4, 1)}  # scale -> (up num, down den)
BLUR_TAPS = 5


@dataclass(frozen=True)
class LatentUpscalerConfig:
    in_channels: int = 128
    mid_channels: int = 512
    num_blocks_per_stage: int = 4
    spatial_upsample: bool = True
    temporal_upsample: bool = False
    spatial_scale: float = 2.0
    rational_resampler: bool = False

    @classmethod
    def from_header(cls, config: dict) -> "LatentUpscalerConfig":
        """The header ``config`` (reference defaults for absent fields)."""
        if config.get("dims", 3) != 3:
            raise ValueError(f"latent upscaler dims={config['dims']!r} is not supported (LTX-2 upscalers have "
                             "dims=3)")
        cfg = cls(int(config.get("in_channels", 128)), int(config.get("mid_channels", 512)),
                  int(config.get("num_blocks_per_stage", 4)), bool(config.get("spatial_upsample", True)),
                  bool(config.get("temporal_upsample", False)), float(config.get("spatial_scale", 2.0)),
                  bool(config.get("rational_resampler", False)))
        if not (cfg.spatial_upsample or cfg.temporal_upsample):
            raise ValueError("latent upscaler has spatial_upsample and temporal_upsample both false")
        if cfg.uses_rational_resampler and cfg.spatial_scale not in RATIONAL_SCALES:
            raise ValueError(f"latent upscaler spatial_scale {cfg.spatial_scale!r} is not supported: one of "
                             f"{sorted(RATIONAL_SCALES)} with rational_resampler")
        if cfg.spatial_upsample and not cfg.uses_rational_resampler and cfg.spatial_scale != 2.0:
            raise ValueError(f"latent upscaler spatial_scale {cfg.spatial_scale!r} needs rational_resampler true "
                             "(the pixel-shuffle upscaler is x2 only)")
        return cfg

    @property
    def uses_rational_resampler(self) -> bool:
        return self.rational_resampler and self.spatial_upsample and not self.temporal_upsample

    @property
    def spatial_factor(self) -> float:
        """Output height / input height."""
        if not self.spatial_upsample:
            return 1.0
        return self.spatial_scale if self.uses_rational_resampler else 2.0

    def output_frames(self, latent_frames: int) -> int:
        """Latent frames out for ``latent_frames`` in: 2F - 1 when temporal, else F."""
        return 2 * latent_frames - 1 if self.temporal_upsample else latent_frames

    @property
    def kind(self) -> str:
        """A short name: "spatial x2", "spatial x1.5", "temporal x2", "spatio-temporal x2"."""
        if self.temporal_upsample:
            return "spatio-temporal x2" if self.spatial_upsample else "temporal x2"
        return f"spatial x{self.spatial_factor:g}"


def shuffle_channels_into_axes(x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """Pixel shuffle over the last ``len(factors)`` axes: [B, C * prod(factors), *S] -> [B, C, *(S_i * f_i)].
    The channel index splits as (c, f_1, ..., f_n), f_n fastest."""
    b, channels, *sizes = x.shape
    n = len(factors)
    lead, axes = sizes[:len(sizes) - n], sizes[len(sizes) - n:]
    x = x.reshape(b, channels // math.prod(factors), *factors, *lead, *axes)
    k = len(lead)
    # [B, c, f_1..f_n, lead.., s_1..s_n] -> [B, c, lead.., s_1, f_1, .., s_n, f_n]
    order = [0, 1] + [2 + n + j for j in range(k)]
    for i in range(n):
        order += [2 + n + k + i, 2 + i]
    x = x.permute(order)
    return x.reshape(b, channels // math.prod(factors), *lead, *(s * f for s, f in zip(axes, factors)))


def per_frame(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a 2-D ``module`` to every frame: [B, C, F, H, W] -> [B, C', F, H', W']."""
    b, _, f = x.shape[:3]
    frames = module(x.transpose(1, 2).flatten(0, 1))
    return frames.unflatten(0, (b, f)).transpose(1, 2)


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


class PixelShuffle(nn.Module):
    """:func:`shuffle_channels_into_axes` as a module (no weights)."""

    def __init__(self, factors: tuple[int, ...]) -> None:
        super().__init__()
        self.factors = factors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return shuffle_channels_into_axes(x, self.factors)


class BlurDownsample(nn.Module):
    """Anti-aliased 2-D downsampling: a depthwise 5x5 binomial ([1 4 6 4 1] outer itself, sum 1) blur with
    stride ``stride`` and zero padding 2; identity at stride 1. [N, C, H, W] -> [N, C, ceil(H/s), ceil(W/s)].
    The kernel [1, 1, 5, 5] is a persistent buffer (the release file stores it)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride
        taps = torch.tensor([math.comb(BLUR_TAPS - 1, k) for k in range(BLUR_TAPS)], dtype=torch.float32)
        self.register_buffer("kernel", (torch.outer(taps, taps) / taps.sum() ** 2)[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x
        weight = self.kernel.to(x.dtype).expand(x.shape[1], 1, BLUR_TAPS, BLUR_TAPS)
        return F.conv2d(x, weight, stride=self.stride, padding=BLUR_TAPS // 2, groups=x.shape[1])


class RationalResampler(nn.Module):
    """Per frame: conv2d to num^2 x channels, num x num pixel shuffle, blur-downsample by den."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        num, den = RATIONAL_SCALES[scale]
        self.conv = nn.Conv2d(channels, num * num * channels, 3, padding=1)
        self.pixel_shuffle = PixelShuffle((num, num))
        self.blur_down = BlurDownsample(den)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.blur_down(self.pixel_shuffle(self.conv(frames)))


def resampling_stage(cfg: LatentUpscalerConfig) -> nn.Module:
    """The module between the two groups of residual blocks (key prefix ``upsampler.``)."""
    mid = cfg.mid_channels
    if cfg.temporal_upsample and cfg.spatial_upsample:
        return nn.Sequential(nn.Conv3d(mid, 8 * mid, 3, padding=1), PixelShuffle((2, 2, 2)))
    if cfg.temporal_upsample:
        return nn.Sequential(nn.Conv3d(mid, 2 * mid, 3, padding=1), PixelShuffle((2, 1, 1)))
    if cfg.uses_rational_resampler:
        return RationalResampler(mid, cfg.spatial_scale)
    return nn.Sequential(nn.Conv2d(mid, 4 * mid, 3, padding=1), PixelShuffle((2, 2)))


class LatentUpscaler(nn.Module):
    def __init__(self, cfg: LatentUpscalerConfig) -> None:
        super().__init__()
        self.config = cfg
        mid = cfg.mid_channels
        self.initial_conv = nn.Conv3d(cfg.in_channels, mid, 3, padding=1)
        self.initial_norm = nn.GroupNorm(32, mid)
        self.res_blocks = nn.ModuleList([UpscalerBlock(mid) for _ in range(cfg.num_blocks_per_stage)])
        self.upsampler = resampling_stage(cfg)
        self.post_upsample_res_blocks = nn.ModuleList([UpscalerBlock(mid) for _ in range(cfg.num_blocks_per_stage)])
        self.final_conv = nn.Conv3d(mid, cfg.in_channels, 3, padding=1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """latent [B, C, F, H, W] -> [B, C, F', H', W'] (F' = 2F - 1 when temporal; H' = H * spatial_factor)."""
        x = F.silu(self.initial_norm(self.initial_conv(latent)))
        for block in self.res_blocks:
            x = block(x)
        if self.config.temporal_upsample:
            x = self.upsampler(x)[:, :, 1:]          # the first latent frame is one pixel frame: no earlier half
        else:
            x = per_frame(self.upsampler, x)
        for block in self.post_upsample_res_blocks:
            x = block(x)
        return self.final_conv(x)


def upscale_normalised(upscaler: LatentUpscaler, latent: torch.Tensor, mean: torch.Tensor,
                       std: torch.Tensor) -> torch.Tensor:
    """A normalised VAE latent upscaled: un-normalise with the VAE's per-channel ``mean`` / ``std`` [C],
    upscale, normalise again."""
    shape = (1, -1, 1, 1, 1)
    mean, std = mean.view(shape).to(latent.dtype), std.view(shape).to(latent.dtype)
    return (upscaler(latent * std + mean) - mean) / std
