"""The LTX-2.3 vocoder with bandwidth extension (BWE), selected by a nested ``vocoder`` header section
``{"vocoder": {...}, "bwe": {...}}`` (a flat section is the 2.0 HiFi-GAN :class:`Vocoder`).

log-mel [B, 2, T, 64] (100 frames/s) -> stage-1 AMP1 vocoder -> waveform x [B, 2, S] at ``input_sampling_rate``
(16 kHz, clamped to [-1, 1]) -> zero-padded on the right to a multiple of ``hop_length`` -> causal log-mel of x
(STFT as a strided conv with the checkpoint's windowed-DFT bases, |.|, the checkpoint's mel filterbank,
log(max(., 1e-5))) -> BWE generator (AMP1, no final activation) predicts a residual at ``output_sampling_rate``
(48 kHz) -> + x resampled by the integer ratio with a Hann-windowed sinc -> clamp to [-1, 1] -> the first
S * out / in samples.

Checkpoint keys (prefix ``vocoder.``): ``vocoder.*`` and ``bwe_generator.*`` (two :class:`Vocoder` stages),
``mel_stft.mel_basis`` [M, n_fft/2 + 1], ``mel_stft.stft_fn.forward_basis`` and ``.inverse_basis``
[2 (n_fft/2 + 1), 1, n_fft] (real rows then imaginary rows; the inverse basis is stored, never used here). The
skip resampler's filter is computed, not stored.

Where the references differ (ltx-core 1.2.0 is followed): the STFT window is ``n_fft`` long (ltx-core ignores
the header's ``win_size``; diffusers' converter reads it), and stage 1 ends in clamp(-1, 1) when
``use_tanh_at_final`` is false (diffusers' converter maps that to no final activation).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.progress import Counter
from ltxgraph_ops.models.antialias import HannSincUpsampler
from ltxgraph_ops.models.vocoder import Vocoder, VocoderConfig

LOG_FLOOR = 1e-5
BWE_FIELDS = ("n_fft", "hop_length", "num_mels", "input_sampling_rate", "output_sampling_rate")


@dataclass(frozen=True)
class BandwidthExtensionConfig:
    """The nested header section: the stage-1 vocoder, the BWE generator and the analysis between them."""

    vocoder: VocoderConfig          # mel -> waveform at input_sampling_rate
    generator: VocoderConfig        # analysis mel -> residual at output_sampling_rate
    n_fft: int = 512
    hop_length: int = 80            # analysis hop, samples at input_sampling_rate
    num_mels: int = 64
    input_sampling_rate: int = 16000
    output_sampling_rate: int = 48000

    @classmethod
    def from_header(cls, section: dict) -> "BandwidthExtensionConfig":
        stage, bwe = section.get("vocoder"), section.get("bwe")
        if not isinstance(stage, dict) or not isinstance(bwe, dict):
            raise ValueError("a bandwidth-extension vocoder header needs 'vocoder' and 'bwe' objects")
        missing = [key for key in BWE_FIELDS if key not in bwe]
        if missing:
            raise ValueError(f"vocoder 'bwe' section lacks {', '.join(missing)}")
        for name, part in (("vocoder", stage), ("bwe", bwe)):
            if part.get("resblock") != "AMP1":
                raise ValueError(f"vocoder '{name}' resblock {part.get('resblock')!r} is not supported with "
                                 "bandwidth extension: only 'AMP1'")
        rates = {key: int(bwe[key]) for key in BWE_FIELDS}
        cfg = cls(VocoderConfig.from_header(stage, output_sampling_rate=rates["input_sampling_rate"]),
                  VocoderConfig.from_header(bwe, output_sampling_rate=rates["output_sampling_rate"],
                                            apply_final_activation=False), **rates)
        cfg.check_rates()
        return cfg

    def check_rates(self) -> None:
        """The output rate is an integer multiple of the input rate, and the generator turns one analysis hop
        into exactly ``ratio`` x hop output samples."""
        if self.output_sampling_rate % self.input_sampling_rate:
            raise ValueError(f"vocoder bwe output_sampling_rate {self.output_sampling_rate} is not a multiple of "
                             f"input_sampling_rate {self.input_sampling_rate}")
        if self.generator.hop_samples != self.hop_length * self.ratio:
            raise ValueError(f"vocoder bwe generator makes {self.generator.hop_samples} samples per analysis "
                             f"frame, not hop_length {self.hop_length} x {self.ratio}")

    @property
    def ratio(self) -> int:
        return self.output_sampling_rate // self.input_sampling_rate

    @property
    def hop_samples(self) -> int:
        """Output samples per input mel frame (160 x 3 = 480 for the release)."""
        return self.vocoder.hop_samples * self.ratio


class CausalSTFT(nn.Module):
    """|STFT| of [N, S] by a strided conv with the stored bases (real rows, then imaginary rows), left-padded by
    n_fft - hop so frame t sees only samples up to its end: -> [N, n_fft/2 + 1, S / hop]."""

    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        bins = n_fft // 2 + 1
        self.register_buffer("forward_basis", torch.zeros(2 * bins, 1, n_fft))
        self.register_buffer("inverse_basis", torch.zeros(2 * bins, 1, n_fft))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        padded = F.pad(waveform.unsqueeze(1), (max(0, self.n_fft - self.hop_length), 0))
        spectrum = F.conv1d(padded, self.forward_basis.to(waveform.dtype), stride=self.hop_length)
        real, imag = spectrum.chunk(2, dim=1)
        return torch.sqrt(real ** 2 + imag ** 2)


class CausalLogMel(nn.Module):
    """Waveform [N, S] -> log(max(mel_basis @ |STFT|, 1e-5)) [N, M, S / hop]."""

    def __init__(self, n_fft: int, hop_length: int, num_mels: int) -> None:
        super().__init__()
        self.stft_fn = CausalSTFT(n_fft, hop_length)
        self.register_buffer("mel_basis", torch.zeros(num_mels, n_fft // 2 + 1))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        magnitude = self.stft_fn(waveform)
        return torch.log(torch.clamp(self.mel_basis.to(magnitude.dtype) @ magnitude, min=LOG_FLOOR))


class VocoderWithBWE(nn.Module):
    """log-mel [B, 2, T, M] -> waveform [B, 2, T * hop_samples] in [-1, 1] at ``output_sampling_rate``."""

    def __init__(self, cfg: BandwidthExtensionConfig) -> None:
        super().__init__()
        self.config = cfg
        self.vocoder = Vocoder(cfg.vocoder)
        self.bwe_generator = Vocoder(cfg.generator)
        self.mel_stft = CausalLogMel(cfg.n_fft, cfg.hop_length, cfg.num_mels)
        self.resampler = HannSincUpsampler(cfg.ratio)

    def forward(self, mel: torch.Tensor, on_stage: Counter | None = None) -> torch.Tensor:
        low = self.vocoder(mel, on_stage)                                         # [B, 2, S] at input rate
        samples = low.shape[-1]
        low = F.pad(low, (0, -samples % self.config.hop_length))
        analysis = self.mel_stft(low.flatten(0, 1)).unflatten(0, low.shape[:2])  # [B, 2, M, S / hop]
        residual = self.bwe_generator(analysis.transpose(2, 3))                   # [B, 2, ratio * S']
        wide = torch.clamp(residual + self.resampler(low), -1.0, 1.0)
        return wide[..., :samples * self.config.ratio]


def vocoder_config(section: dict) -> VocoderConfig | BandwidthExtensionConfig:
    """The config of a header ``vocoder`` section: nested with ``bwe`` (2.3) or flat (2.0)."""
    return BandwidthExtensionConfig.from_header(section) if "bwe" in section else VocoderConfig.from_header(section)


def build_vocoder(section: dict) -> nn.Module:
    """The vocoder a header ``vocoder`` section describes (:class:`VocoderWithBWE` or :class:`Vocoder`)."""
    cfg = vocoder_config(section)
    return VocoderWithBWE(cfg) if isinstance(cfg, BandwidthExtensionConfig) else Vocoder(cfg)
