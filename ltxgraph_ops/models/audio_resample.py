"""Bring any waveform to the audio VAE's input format: stereo at 16 kHz (PyAV / libswresample resampling).

Waveforms are float tensors [C, S] (channels, samples) in [-1, 1].
"""
from __future__ import annotations

import av
import numpy as np
import torch


def to_stereo(waveform: torch.Tensor) -> torch.Tensor:
    """[1, S] -> [2, S] (the channel duplicated); [2, S] unchanged; more channels -> their mean, duplicated."""
    if waveform.dim() != 2:
        raise ValueError(f"waveform must be [channels, samples], got shape {tuple(waveform.shape)}")
    if waveform.shape[0] == 2:
        return waveform
    mono = waveform.mean(dim=0, keepdim=True)
    return mono.expand(2, -1).contiguous()


def resample(waveform: torch.Tensor, sample_rate: int, target_rate: int) -> torch.Tensor:
    """[C, S] at ``sample_rate`` Hz -> [C, ~S * target / sample_rate] at ``target_rate`` Hz (C = 1 or 2)."""
    if sample_rate == target_rate:
        return waveform
    channels = waveform.shape[0]
    layout = {1: "mono", 2: "stereo"}.get(channels)
    if layout is None:
        raise ValueError(f"resample takes mono or stereo, got {channels} channels: call to_stereo first")
    planar = np.ascontiguousarray(waveform.detach().to(torch.float32).cpu().numpy())
    frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
    frame.sample_rate = sample_rate
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=target_rate)
    pieces = [out.to_ndarray() for out in resampler.resample(frame)]
    pieces += [out.to_ndarray() for out in resampler.resample(None)]                # flush the filter tail
    return torch.from_numpy(np.concatenate(pieces, axis=1)).to(waveform.dtype)


def to_vae_input(waveform: torch.Tensor, sample_rate: int, target_rate: int = 16000) -> torch.Tensor:
    """Any [C, S] waveform at ``sample_rate`` -> stereo [2, S'] at ``target_rate`` (16 kHz for the release)."""
    return resample(to_stereo(waveform), sample_rate, target_rate)
