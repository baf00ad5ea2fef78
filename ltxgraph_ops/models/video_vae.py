"""The LTX-2 video VAE: pixels [B, 3, 1+8k, 32h, 32w] <-> normalised latents [B, 128, 1+k, h, w].

Encoder: 4x4 space-to-channel patchify (channels ordered colour, column, row), a causal 3-D conv net of residual
stages and space-to-depth downsamplers (time padding repeats the first frame, space pads with zeros), pixel norm,
SiLU, and a conv to the latent means (plus log-variance channels, dropped), normalised by per-channel
statistics. Decoder: the mirror with depth-to-space upsamplers, non-causal in time and padded in space as the
header says (reflect by default), then the inverse patchify. Blocks and widths come from the header's ``vae`` section.

Versions differ only in that section: LTX-2.0's decoder upsamples with three residual ``compress_all`` (x2 channel
reduction each) and reflect padding; LTX-2.3's with ``compress_all`` x2, ``compress_all`` x1, ``compress_time`` x2
and ``compress_space`` x2 without residuals, zero padding, and a narrower encoder end (1024 channels). The decoder
starts at ``decoder_base_channels`` times the product of its blocks' channel reductions (8x in both releases).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.progress import Counter, counted
from ltxgraph_ops.models.video_vae_blocks import (CausalConv3d, DepthToSpaceUp, ResBlock, ResStage,
                                                  SpaceToDepthDown, StridedConv, depth_to_space, pixel_norm,
                                                  space_to_depth)

STRIDES = {"time": (2, 1, 1), "space": (1, 2, 2), "all": (2, 2, 2)}
LOG_VARIANCE_CHANNELS = {"per_channel": lambda c: 2 * c, "uniform": lambda c: c + 1, "constant": lambda c: c + 1,
                         "none": lambda c: c}


def _blocks(raw: list) -> tuple[tuple[str, dict], ...]:
    """Header block lists ([name, int | dict]) as (name, settings) pairs."""
    return tuple((name, {"num_layers": value} if isinstance(value, int) else dict(value)) for name, value in raw)


@dataclass(frozen=True)
class VideoVAEConfig:
    """The header's ``vae`` section (keys and defaults as the release reads them)."""

    encoder_blocks: tuple[tuple[str, dict], ...] = ()
    decoder_blocks: tuple[tuple[str, dict], ...] = ()
    in_channels: int = 3
    out_channels: int = 3
    latent_channels: int = 128
    patch_size: int = 4
    latent_log_var: str = "uniform"
    decoder_base_channels: int = 128
    causal_decoder: bool = False
    encoder_padding: str = "zeros"
    decoder_padding: str = "reflect"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scale_factors(self) -> tuple[int, int, int]:
        """(time, height, width) pixels per latent cell: 2 per time/space resampling block, times the patch size in
        space (8, 32, 32 for LTX-2.0 and 2.3)."""
        blocks = [name for name, _ in self.encoder_blocks or self.decoder_blocks]
        time = 2 ** sum(name.startswith(("compress_time", "compress_all")) for name in blocks)
        space = self.patch_size * 2 ** sum(name.startswith(("compress_space", "compress_all")) for name in blocks)
        return time, space, space

    @classmethod
    def from_header(cls, section: dict) -> "VideoVAEConfig":
        if section.get("dims", 3) != 3:
            raise ValueError(f"video VAE dims {section['dims']!r} is not supported: only 3")
        if section.get("norm_layer", "pixel_norm") != "pixel_norm":
            raise ValueError(f"video VAE norm_layer {section['norm_layer']!r} is not supported: only pixel_norm")
        if section.get("timestep_conditioning", False):
            raise ValueError("video VAE with timestep_conditioning is not supported (LTX-2's decoder has none)")
        if section.get("latent_log_var", "uniform") not in LOG_VARIANCE_CHANNELS:
            raise ValueError(f"video VAE latent_log_var {section['latent_log_var']!r} is unknown")
        padding = section.get("spatial_padding_mode")
        decoder = _blocks(section.get("decoder_blocks", []))
        for name, settings in decoder:
            if settings.get("inject_noise") or name == "attn_res_x":
                raise ValueError(f"video VAE decoder block {name} {settings} is not supported")
        return cls(encoder_blocks=_blocks(section.get("encoder_blocks", [])), decoder_blocks=decoder,
                   in_channels=section.get("in_channels", 3), out_channels=section.get("out_channels", 3),
                   latent_channels=section.get("latent_channels", 128), patch_size=section.get("patch_size", 4),
                   latent_log_var=section.get("latent_log_var", "uniform"),
                   decoder_base_channels=section.get("decoder_base_channels", 128),
                   causal_decoder=bool(section.get("causal_decoder", False)),
                   encoder_padding=padding or "zeros", decoder_padding=padding or "reflect")


class ChannelStatistics(nn.Module):
    """Per-channel mean and std of the latents (checkpoint buffers ``mean-of-means`` / ``std-of-means``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("std-of-means", torch.ones(channels))
        self.register_buffer("mean-of-means", torch.zeros(channels))

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (getattr(self, "mean-of-means").view(shape).to(x.dtype),
                getattr(self, "std-of-means").view(shape).to(x.dtype))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(x)
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(x)
        return x * std + mean


def _encoder_block(name: str, settings: dict, width: int, padding: str) -> tuple[nn.Module, int]:
    if name == "res_x":
        return ResStage(width, settings["num_layers"], padding), width
    if name == "res_x_y":
        out = width * settings.get("multiplier", 2)
        return ResBlock(width, out, padding), out
    kind = name.removeprefix("compress_").removesuffix("_res").removesuffix("_x_y")
    if kind not in STRIDES:
        raise ValueError(f"unknown video VAE encoder block {name!r}")
    if name.endswith("_res"):
        out = width * settings.get("multiplier", 2)
        return SpaceToDepthDown(width, out, STRIDES[kind], padding), out
    out = width * settings.get("multiplier", 2) if name.endswith("_x_y") else width
    return StridedConv(width, out, STRIDES[kind], padding), out


def _decoder_reduction(name: str, settings: dict) -> int:
    """How many times fewer channels a decoder block emits than it takes (1 for a residual stage)."""
    if name == "res_x_y":
        return settings.get("multiplier", 2)
    if name.startswith("compress_"):
        return settings.get("multiplier", 1)
    return 1


def decoder_bottleneck_channels(cfg: VideoVAEConfig) -> int:
    """Channels after the decoder's ``conv_in``: the base width times every block's channel reduction, so that
    the last block ends at ``decoder_base_channels``."""
    return cfg.decoder_base_channels * math.prod(_decoder_reduction(name, s) for name, s in cfg.decoder_blocks)


def _decoder_block(name: str, settings: dict, width: int, padding: str) -> tuple[nn.Module, int]:
    if name == "res_x":
        return ResStage(width, settings["num_layers"], padding), width
    if name == "res_x_y":
        out = width // _decoder_reduction(name, settings)
        return ResBlock(width, out, padding), out
    kind = name.removeprefix("compress_")
    if kind not in STRIDES:
        raise ValueError(f"unknown video VAE decoder block {name!r}")
    reduction = _decoder_reduction(name, settings)
    residual = bool(settings.get("residual", False)) and kind == "all"
    return DepthToSpaceUp(width, STRIDES[kind], reduction, residual, padding), width // reduction


class VideoEncoder(nn.Module):
    """pixels [B, 3, F, H, W] in [-1, 1] -> latent means [B, C, 1 + (F-1)/8, H/32, W/32] (not normalised)."""

    def __init__(self, cfg: VideoVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        width = cfg.latent_channels
        self.conv_in = CausalConv3d(cfg.in_channels * cfg.patch_size ** 2, width, padding_mode=cfg.encoder_padding)
        self.down_blocks = nn.ModuleList()
        for name, settings in cfg.encoder_blocks:
            block, width = _encoder_block(name, settings, width, cfg.encoder_padding)
            self.down_blocks.append(block)
        self.conv_out = CausalConv3d(width, LOG_VARIANCE_CHANNELS[cfg.latent_log_var](cfg.latent_channels),
                                     padding_mode=cfg.encoder_padding)

    def forward(self, pixels: torch.Tensor, on_block: Counter | None = None) -> torch.Tensor:
        """``on_block(done, total)`` is called after each down block."""
        p = self.cfg.patch_size
        x = space_to_depth(pixels, (1, p, p))                       # [B, 3*p*p, F, H/p, W/p]
        x = x.unflatten(1, (-1, p, p)).transpose(2, 3).flatten(1, 3)  # channels (colour, column, row)
        x = self.conv_in(x, causal=True)
        for block in counted(self.down_blocks, on_block):
            x = block(x, causal=True)
        x = self.conv_out(F.silu(pixel_norm(x)), causal=True)
        return x[:, : self.cfg.latent_channels]


class VideoDecoder(nn.Module):
    """latent [B, C, F', H', W'] (not normalised) -> pixels [B, 3, 1 + 8(F'-1), 32H', 32W']."""

    def __init__(self, cfg: VideoVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        width = decoder_bottleneck_channels(cfg)
        self.conv_in = CausalConv3d(cfg.latent_channels, width, padding_mode=cfg.decoder_padding)
        self.up_blocks = nn.ModuleList()
        for name, settings in reversed(cfg.decoder_blocks):
            block, width = _decoder_block(name, settings, width, cfg.decoder_padding)
            self.up_blocks.append(block)
        self.conv_out = CausalConv3d(width, cfg.out_channels * cfg.patch_size ** 2, padding_mode=cfg.decoder_padding)

    def forward(self, latent: torch.Tensor, on_block: Counter | None = None) -> torch.Tensor:
        """``on_block(done, total)`` is called after each up block."""
        causal, p = self.cfg.causal_decoder, self.cfg.patch_size
        x = self.conv_in(latent, causal)
        for block in counted(self.up_blocks, on_block):
            x = block(x, causal)
        x = self.conv_out(F.silu(pixel_norm(x)), causal)
        x = x.unflatten(1, (-1, p, p)).transpose(2, 3).flatten(1, 3)  # (colour, column, row) -> (colour, row, column)
        return depth_to_space(x, (1, p, p))


class VideoVAE(nn.Module):
    """Encoder, decoder and latent statistics under the checkpoint's ``vae.`` prefix."""

    def __init__(self, cfg: VideoVAEConfig) -> None:
        super().__init__()
        self.config = cfg
        self.per_channel_statistics = ChannelStatistics(cfg.latent_channels)
        self.encoder = VideoEncoder(cfg)
        self.decoder = VideoDecoder(cfg)

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    def encode(self, pixels: torch.Tensor, on_block: Counter | None = None) -> torch.Tensor:
        """pixels [B, 3, 1+8k, 32h, 32w] in [-1, 1] -> normalised latent [B, 128, 1+k, h, w]; ``on_block(done,
        total)`` after each encoder block."""
        time, space, _ = self.config.scale_factors
        if pixels.ndim != 5 or (pixels.shape[2] - 1) % time or pixels.shape[3] % space or pixels.shape[4] % space:
            raise ValueError(f"video VAE input {tuple(pixels.shape)} must be [B, 3, {time}n+1 frames, H, W] with H "
                             f"and W multiples of {space}")
        return self.per_channel_statistics.normalize(self.encoder(pixels, on_block))

    def decode(self, latent: torch.Tensor, on_block: Counter | None = None) -> torch.Tensor:
        """normalised latent [B, 128, F, h, w] -> pixels [B, 3, 1 + 8(F-1), 32h, 32w] in about [-1, 1];
        ``on_block(done, total)`` after each decoder block."""
        return self.decoder(self.per_channel_statistics.denormalize(latent), on_block)
