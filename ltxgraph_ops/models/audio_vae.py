"""LTX-2 audio VAE: log-mel [B, 2, T, 64] <-> normalised latent [B, 8, T/4, 16] (25 latent frames per second).

A 2-D convolutional autoencoder over (time, mel) that is causal in time, with pixel norm and SiLU. The encoder
keeps the mean half of its 2 * z_channels output and normalises it per (latent channel, latent mel bin) with the
checkpoint's dataset statistics; the decoder undoes that and returns 4 * T - 3 mel frames for T latent frames
(causal: the first latent frame stands for one mel frame only).

Checkpoint keys (prefix ``audio_vae.``): ``encoder.*``, ``decoder.*``, ``per_channel_statistics.{mean,std}-of-means``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.audio_vae_blocks import (AttnBlock, CausalConv2d, Downsample, MidBlock, ResnetBlock,
                                                 Upsample, pixel_norm)
from ltxgraph_ops.models.mel import MelConfig

LATENT_DOWNSAMPLE = 4          # mel frames per latent frame (two stride-2 stages)


@dataclass(frozen=True)
class AudioVAEConfig:
    """``audio_vae.model.params.ddconfig`` of the header plus the STFT facts the VAE's timing depends on."""
    ch: int = 128
    out_ch: int = 2
    in_channels: int = 2
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (8, 16, 32)
    resolution: int = 256
    z_channels: int = 8
    double_z: bool = True
    norm_type: str = "pixel"
    causality_axis: str | None = "height"
    mid_block_add_attention: bool = True
    mel: MelConfig = field(default_factory=MelConfig)

    @classmethod
    def from_header(cls, section: dict) -> "AudioVAEConfig":
        """From the header's ``audio_vae`` section (nested ``model.params.ddconfig``, ``preprocessing``)."""
        dd = section.get("model", {}).get("params", {}).get("ddconfig", {})
        if dd.get("norm_type", "pixel") != "pixel":
            raise ValueError(f"audio VAE norm_type {dd['norm_type']!r} is not supported: only 'pixel'")
        if dd.get("attn_type", "vanilla") != "vanilla":
            raise ValueError(f"audio VAE attn_type {dd['attn_type']!r} is not supported: only 'vanilla'")
        axis = dd.get("causality_axis", "height")
        axis = None if axis in (None, "none") else axis
        if axis not in ("height", "width", "width-compatibility", None):
            raise ValueError(f"audio VAE causality_axis {axis!r} is unknown")
        keys = ("ch", "out_ch", "in_channels", "num_res_blocks", "resolution", "z_channels", "double_z",
                "mid_block_add_attention")
        known = {key: dd[key] for key in keys if key in dd}
        return cls(**known, ch_mult=tuple(dd.get("ch_mult", cls.ch_mult)),
                   attn_resolutions=tuple(dd.get("attn_resolutions", cls.attn_resolutions)),
                   causality_axis=axis, mel=MelConfig.from_header(section))

    def __post_init__(self) -> None:
        if self.ch != self.z_channels * self.latent_mel_bins:
            raise ValueError(f"audio VAE statistics have ch={self.ch} entries but the latent has z_channels * "
                             f"mel_bins / 4 = {self.z_channels} * {self.latent_mel_bins} values per frame")

    @property
    def latent_mel_bins(self) -> int:
        """Mel bins of the latent (mel_bins / 4: 16 for the release)."""
        return self.mel.n_mels // LATENT_DOWNSAMPLE


class LatentStatistics(nn.Module):
    """Dataset mean / std of the latent per (channel, mel bin), flattened channel-major: [z_channels * M']."""

    def __init__(self, size: int):
        super().__init__()
        self.register_buffer("std-of-means", torch.ones(size))
        self.register_buffer("mean-of-means", torch.zeros(size))

    def _as_grid(self, name: str, latent: torch.Tensor) -> torch.Tensor:
        _, channels, _, bins = latent.shape
        return self.get_buffer(name).to(latent).reshape(channels, 1, bins)      # [C, 1, M'] over [B, C, T', M']

    def normalize(self, latent: torch.Tensor) -> torch.Tensor:
        return (latent - self._as_grid("mean-of-means", latent)) / self._as_grid("std-of-means", latent)

    def denormalize(self, latent: torch.Tensor) -> torch.Tensor:
        return latent * self._as_grid("std-of-means", latent) + self._as_grid("mean-of-means", latent)


class Level(nn.Module):
    """Resnet blocks at one resolution (``block``), attention after each where configured (``attn``)."""

    def __init__(self, widths: list[int], axis: str | None, attention: bool):
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock(a, b, axis) for a, b in zip(widths[:-1], widths[1:]))
        self.attn = nn.ModuleList(AttnBlock(b) for b in widths[1:]) if attention else nn.ModuleList()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.block):
            x = block(x)
            if len(self.attn):
                x = self.attn[i](x)
        return x


class AudioEncoder(nn.Module):
    """log-mel [B, in_channels, T, M] -> latent mean (un-normalised) [B, z, ceil(T/4), M/4]."""

    def __init__(self, cfg: AudioVAEConfig):
        super().__init__()
        axis = cfg.causality_axis
        self.conv_in = CausalConv2d(cfg.in_channels, cfg.ch, 3, axis)
        self.down = nn.ModuleList()
        width, resolution = cfg.ch, cfg.resolution
        for level, mult in enumerate(cfg.ch_mult):
            widths = [width] + [cfg.ch * mult] * cfg.num_res_blocks
            stage = Level(widths, axis, resolution in cfg.attn_resolutions)
            width = widths[-1]
            if level < len(cfg.ch_mult) - 1:
                stage.downsample = Downsample(width, axis)
                resolution //= 2
            self.down.append(stage)
        self.mid = MidBlock(width, axis, cfg.mid_block_add_attention)
        self.conv_out = CausalConv2d(width, cfg.z_channels * (2 if cfg.double_z else 1), 3, axis)
        self.z_channels = cfg.z_channels

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(mel)
        for stage in self.down:
            h = stage(h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.mid(h)
        h = self.conv_out(F.silu(pixel_norm(h)))
        return h[:, :self.z_channels]                                           # mean half when double_z


class AudioDecoder(nn.Module):
    """latent [B, z, T', M'] (un-normalised) -> raw mel [B, out_ch, ~4T', ~4M'] (before the final crop)."""

    def __init__(self, cfg: AudioVAEConfig):
        super().__init__()
        axis = cfg.causality_axis
        levels = len(cfg.ch_mult)
        width = cfg.ch * cfg.ch_mult[-1]
        resolution = cfg.resolution // 2 ** (levels - 1)
        self.conv_in = CausalConv2d(cfg.z_channels, width, 3, axis)
        self.mid = MidBlock(width, axis, cfg.mid_block_add_attention)
        stages: list[Level] = []
        for level in reversed(range(levels)):
            widths = [width] + [cfg.ch * cfg.ch_mult[level]] * (cfg.num_res_blocks + 1)
            stage = Level(widths, axis, resolution in cfg.attn_resolutions)
            width = widths[-1]
            if level > 0:
                stage.upsample = Upsample(width, axis)
                resolution *= 2
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)                                         # up[0] is the finest level
        self.conv_out = CausalConv2d(width, cfg.out_ch, 3, axis)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(latent))
        for stage in reversed(self.up):
            h = stage(h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(F.silu(pixel_norm(h)))


class AudioVAE(nn.Module):
    """Encoder, decoder and latent statistics under the checkpoint's ``audio_vae.`` prefix."""

    def __init__(self, cfg: AudioVAEConfig):
        super().__init__()
        self.config = cfg
        self.per_channel_statistics = LatentStatistics(cfg.ch)
        self.encoder = AudioEncoder(cfg)
        self.decoder = AudioDecoder(cfg)

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel [B, 2, T, M] -> normalised latent [B, z, ceil(T/4), M/4]."""
        return self.per_channel_statistics.normalize(self.encoder(mel))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """normalised latent [B, z, T', M'] -> log-mel [B, out_ch, 4T' - 3 (causal) or 4T', n_mels]."""
        raw = self.decoder(self.per_channel_statistics.denormalize(latent))
        frames = mel_frames_for_latent(latent.shape[2], causal=self.config.causality_axis is not None)
        return crop_or_pad(raw, frames, self.config.mel.n_mels)


def crop_or_pad(mel: torch.Tensor, frames: int, bins: int) -> torch.Tensor:
    """[B, C, T, M] cut or zero-extended (at the end) to [B, C, frames, bins]."""
    mel = mel[:, :, :frames, :bins]
    return F.pad(mel, (0, bins - mel.shape[3], 0, frames - mel.shape[2]))


# ----------------------------------------------------------------------------------------- timing helpers


def mel_frames_for_latent(latent_frames: int, causal: bool = True) -> int:
    """Mel frames the decoder emits for ``latent_frames`` latent frames: 4T - 3 when causal (at least 1)."""
    frames = latent_frames * LATENT_DOWNSAMPLE
    return max(frames - (LATENT_DOWNSAMPLE - 1), 1) if causal else frames


def latent_frames_per_second(sample_rate: int = 16000, hop_length: int = 160) -> float:
    """Audio latent frames per second of audio: sample_rate / hop / 4 (25 for the release)."""
    return sample_rate / hop_length / LATENT_DOWNSAMPLE


def audio_latent_frames_for_video(video_frames: int, fps: float, sample_rate: int = 16000,
                                  hop_length: int = 160) -> int:
    """Audio latent length covering ``video_frames`` pixel frames at ``fps``: ceil(seconds * latents/s).

    121 frames at 25 fps -> 121. (ltx-core's AudioLatentShape.from_duration rounds instead of ceil; the two
    agree whenever seconds * 25 is a whole number.)
    """
    return math.ceil(seconds_to_latent_frames_exact(video_frames / fps, sample_rate, hop_length) - 1e-9)


def seconds_to_latent_frames_exact(seconds: float, sample_rate: int = 16000, hop_length: int = 160) -> float:
    """Seconds of audio -> (fractional) audio latent frames."""
    return seconds * latent_frames_per_second(sample_rate, hop_length)


def seconds_to_latent_frames(seconds: float, sample_rate: int = 16000, hop_length: int = 160) -> int:
    """Seconds of audio -> whole audio latent frames (rounded to nearest, as the reference's from_duration)."""
    return round(seconds_to_latent_frames_exact(seconds, sample_rate, hop_length))


def latent_frames_to_seconds(latent_frames: int, sample_rate: int = 16000, hop_length: int = 160) -> float:
    """Audio latent frames -> seconds of audio they stand for."""
    return latent_frames / latent_frames_per_second(sample_rate, hop_length)
