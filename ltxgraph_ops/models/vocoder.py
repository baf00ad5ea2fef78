"""The LTX-2 mel vocoder: log-mel [B, 2, T, M] -> stereo waveform [B, 2, T * prod(rates)], one class for both
generator families, switched by the header's ``resblock``:

- "1" (2.0, HiFi-GAN): 2 x 64 mel channels -> conv 1024 (k7) -> 5 stages of (LeakyReLU 0.1, transposed conv
  x6,5,2,2,2, mean of 3 multi-receptive-field residual blocks) -> LeakyReLU 0.01 -> conv 2 (k7) -> tanh.
  100 mel frames/s -> 24 kHz.
- "AMP1" (2.3, BigVGAN v2): the same skeleton with no LeakyReLU before the transposed convs, anti-aliased
  SnakeBeta activations inside the residual blocks (``acts1``/``acts2``) and before ``conv_post``
  (``act_post``); tanh, clamp to [-1, 1] or nothing at the end (``use_tanh_at_final``,
  ``apply_final_activation``). :mod:`vocoder_bwe` chains two of these with a bandwidth extension.
Checkpoint keys (prefix ``vocoder.``): ``conv_pre``, ``ups.{i}``, ``resblocks.{stage * kernels + j}``,
``act_post`` (AMP1), ``conv_post``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.antialias import AntiAliasedActivation, SnakeBeta
from ltxgraph_ops.models.progress import Counter, counted

RESBLOCK_SLOPE = 0.1        # LeakyReLU slope inside the generator
FINAL_SLOPE = 0.01          # LeakyReLU slope before conv_post


@dataclass(frozen=True)
class VocoderConfig:
    """The header's flat ``vocoder`` section, or one stage of a nested one (reference defaults)."""
    resblock: str = "1"         # "1": HiFi-GAN LeakyReLU blocks; "AMP1": BigVGAN v2 anti-aliased SnakeBeta blocks
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (6, 5, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 15, 8, 4, 4)
    upsample_initial_channel: int = 1024
    output_sampling_rate: int = 24000
    use_tanh_at_final: bool = True
    use_bias_at_final: bool = True
    num_mels: int = 64          # per stereo channel; conv_pre sees 2 * num_mels
    apply_final_activation: bool = True     # false for the bandwidth-extension generator (it predicts a residual)

    @classmethod
    def from_header(cls, section: dict, **overrides) -> "VocoderConfig":
        """A flat stage section; ``overrides`` (e.g. ``output_sampling_rate``) win over the section."""
        if "bwe" in section:
            raise ValueError("vocoder header has a 'bwe' section: a bandwidth-extension vocoder "
                             "(see ltxgraph_ops.models.vocoder_bwe), not a single stage")
        resblock = str(section.get("resblock", "1"))
        if resblock not in ("1", "AMP1"):
            raise ValueError(f"vocoder resblock {resblock!r} is not supported: '1' or 'AMP1'")
        if resblock == "AMP1" and section.get("activation", "snake") != "snakebeta":
            raise ValueError(f"vocoder activation {section.get('activation', 'snake')!r} is not supported with "
                             "resblock 'AMP1': only 'snakebeta'")
        if section.get("stereo", True) is not True:
            raise ValueError("only the stereo vocoder is supported")
        tuples = {key: tuple(section[key]) for key in ("resblock_kernel_sizes", "upsample_rates",
                                                       "upsample_kernel_sizes") if key in section}
        if "resblock_dilation_sizes" in section:
            tuples["resblock_dilation_sizes"] = tuple(tuple(d) for d in section["resblock_dilation_sizes"])
        scalars = {key: section[key] for key in ("upsample_initial_channel", "output_sampling_rate",
                                                 "use_tanh_at_final", "use_bias_at_final", "num_mels")
                   if key in section}
        return cls(resblock, **tuples, **{**scalars, **overrides})

    @property
    def hop_samples(self) -> int:
        """Output samples per mel frame (240 for the release)."""
        total = 1
        for rate in self.upsample_rates:
            total *= rate
        return total


class ResBlock1(nn.Module):
    """Three dilated (d_i) then undilated convolutions of kernel k, each pair a residual step."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding="same")
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding="same") for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2):
            h = dilated(F.leaky_relu(x, RESBLOCK_SLOPE))
            x = x + plain(F.leaky_relu(h, RESBLOCK_SLOPE))
        return x


class AMPBlock1(nn.Module):
    """BigVGAN v2 residual block: per dilation d_i, x + conv(act(conv_d_i(act(x)))), every act an anti-aliased
    SnakeBeta of its own."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding="same")
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding="same") for _ in dilations)
        self.acts1 = nn.ModuleList(AntiAliasedActivation(SnakeBeta(channels)) for _ in dilations)
        self.acts2 = nn.ModuleList(AntiAliasedActivation(SnakeBeta(channels)) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain, act1, act2 in zip(self.convs1, self.convs2, self.acts1, self.acts2):
            x = x + plain(act2(dilated(act1(x))))
        return x


class Vocoder(nn.Module):
    """log-mel [B, 2, T, M] -> waveform [B, 2, T * hop_samples] at ``output_sampling_rate`` (in [-1, 1] when
    ``apply_final_activation``)."""

    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        self.config = cfg
        self.is_amp = cfg.resblock == "AMP1"
        block = AMPBlock1 if self.is_amp else ResBlock1
        width = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(2 * cfg.num_mels, width, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for rate, kernel in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes):
            self.ups.append(nn.ConvTranspose1d(width, width // 2, kernel, rate, padding=(kernel - rate) // 2))
            width //= 2
            for k, dilations in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(block(width, k, dilations))
        if self.is_amp:
            self.act_post = AntiAliasedActivation(SnakeBeta(width))
        self.conv_post = nn.Conv1d(width, 2, 7, padding=3, bias=cfg.use_bias_at_final)

    def forward(self, mel: torch.Tensor, on_stage: Counter | None = None) -> torch.Tensor:
        """mel [B, 2, T, M] -> waveform [B, 2, T * samples_per_frame]; ``on_stage(done, total)`` after each
        upsampling stage."""
        b, channels, frames, bins = mel.shape
        x = mel.transpose(2, 3).reshape(b, channels * bins, frames)            # [B, 2*M, T], channel-major
        x = self.conv_pre(x)
        per_stage = len(self.config.resblock_kernel_sizes)
        for stage, upsample in enumerate(counted(self.ups, on_stage)):
            x = upsample(x if self.is_amp else F.leaky_relu(x, RESBLOCK_SLOPE))   # [B, C/2, T * rate]
            blocks = self.resblocks[stage * per_stage:(stage + 1) * per_stage]
            x = torch.stack([block(x) for block in blocks]).mean(dim=0)        # multi-receptive-field fusion
        x = self.conv_post(self.act_post(x) if self.is_amp else F.leaky_relu(x, FINAL_SLOPE))
        if not self.config.apply_final_activation:
            return x
        return torch.tanh(x) if self.config.use_tanh_at_final else x.clamp(-1.0, 1.0)
