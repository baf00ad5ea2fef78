"""Log-mel spectrogram of the LTX-2 audio VAE, on plain torch (no torchaudio).

waveform [B, C, S] (samples at ``sample_rate`` Hz) -> magnitude STFT (Hann window, centred, reflect padding)
-> Slaney-scale triangular filters with Slaney area normalisation -> log(max(mel, 1e-5)) -> [B, C, T, n_mels],
T = S // hop_length + 1 frames (100 frames per second at 16 kHz with hop 160).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG_FLOOR = 1e-5

# Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above (27 mels per factor 6.4)
_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_BREAK_HZ = 1000.0
_BREAK_MEL = _BREAK_HZ / _LINEAR_HZ_PER_MEL
_LOG_STEP = math.log(6.4) / 27.0


@dataclass(frozen=True)
class MelConfig:
    """STFT and mel parameters (header ``audio_vae.preprocessing``; defaults are the reference's)."""
    sample_rate: int = 16000
    n_fft: int = 1024            # window length too
    hop_length: int = 160        # samples between frames
    n_mels: int = 64

    @classmethod
    def from_header(cls, section: dict) -> "MelConfig":
        """Read the ``audio_vae`` header section the way the reference configurator does."""
        params = section.get("model", {}).get("params", {})
        stft = section.get("preprocessing", {}).get("stft", {})
        mel = section.get("preprocessing", {}).get("mel", {})
        mel_bins = (params.get("ddconfig", {}).get("mel_bins") or mel.get("n_mel_channels")
                    or section.get("variables", {}).get("mel_bins") or cls.n_mels)
        return cls(sample_rate=params.get("sampling_rate", cls.sample_rate),
                   n_fft=stft.get("filter_length", cls.n_fft),
                   hop_length=stft.get("hop_length", cls.hop_length),
                   n_mels=mel_bins)


def hz_to_slaney_mel(hz: float) -> float:
    if hz < _BREAK_HZ:
        return hz / _LINEAR_HZ_PER_MEL
    return _BREAK_MEL + math.log(hz / _BREAK_HZ) / _LOG_STEP


def slaney_mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    linear = mel * _LINEAR_HZ_PER_MEL
    logarithmic = _BREAK_HZ * torch.exp(_LOG_STEP * (mel - _BREAK_MEL))
    return torch.where(mel >= _BREAK_MEL, logarithmic, linear)


def slaney_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0,
                      f_max: float | None = None) -> torch.Tensor:
    """Triangular mel filters [n_freqs, n_mels], each scaled to unit area (2 / bandwidth in Hz)."""
    f_max = sample_rate / 2.0 if f_max is None else f_max
    bin_hz = torch.linspace(0, sample_rate // 2, n_freqs)                               # [n_freqs]
    mel_edges = torch.linspace(hz_to_slaney_mel(f_min), hz_to_slaney_mel(f_max), n_mels + 2)
    edge_hz = slaney_mel_to_hz(mel_edges)                                               # [n_mels + 2]
    lower, centre, upper = edge_hz[:-2], edge_hz[1:-1], edge_hz[2:]
    distance = edge_hz[None, :] - bin_hz[:, None]                                       # [n_freqs, n_mels + 2]
    rising = -distance[:, :-2] / (centre - lower)
    falling = distance[:, 2:] / (upper - centre)
    triangles = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return triangles * (2.0 / (upper - lower))[None, :]


def magnitude_stft(waveform: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """|STFT| of [..., S] with a periodic Hann window of n_fft, centred frames -> [..., n_fft // 2 + 1, T]."""
    leading = waveform.shape[:-1]
    flat = waveform.reshape(-1, waveform.shape[-1])
    window = torch.hann_window(n_fft, dtype=waveform.dtype, device=waveform.device)
    spectrum = torch.stft(flat, n_fft, hop_length=hop_length, win_length=n_fft, window=window, center=True,
                          pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
    return spectrum.abs().reshape(*leading, *spectrum.shape[-2:])


def log_mel_spectrogram(waveform: torch.Tensor, config: MelConfig = MelConfig()) -> torch.Tensor:
    """waveform [B, C, S] at ``config.sample_rate`` -> log-mel [B, C, T, n_mels], T = S // hop + 1."""
    magnitude = magnitude_stft(waveform.float(), config.n_fft, config.hop_length)     # [B, C, F, T]
    filters = slaney_filterbank(config.n_fft // 2 + 1, config.n_mels, config.sample_rate).to(magnitude.device)
    mel = torch.matmul(magnitude.transpose(-1, -2), filters)                            # [B, C, T, n_mels]
    return torch.log(torch.clamp(mel, min=LOG_FLOOR))
