"""Runtime values that travel between nodes. Each carries what its consumers need, so no op guesses:
a latent knows its noise mask, frame rate and frame count; audio knows its sample rate.

IMAGE and MASK travel as plain tensors with ComfyUI's layouts (IMAGE [B, H, W, C] float in [0, 1],
MASK [B, H, W] float in [0, 1]), so ComfyUI users' intuitions carry over.

A class marked ``@storable`` can be written to the disk cache by :mod:`ltxgraph.codec`: its fields must be
tensors, scalars, strings, None, lists/tuples/dicts of those, or other storable values.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def storable(cls: T) -> T:
    """Mark a dataclass as safe to write to and rebuild from the disk cache."""
    cls.__ltxgraph_storable__ = True  # type: ignore[attr-defined]
    return cls


@storable
@dataclass(frozen=True)
class VideoLatent:
    """A video latent. samples [B, C, F, H, W]; noise_mask broadcastable to [B, 1, F, H, W] (1 = generate,
    0 = keep) or None (= generate everything); fps of the video it decodes to (None until known: an empty
    latent takes the frame rate of its conditioning); frames = pixel frames (1 + 8 * (F - 1) for LTX-2's causal
    VAE), kept so audio and video stay in sync."""

    samples: torch.Tensor
    fps: float | None
    frames: int
    noise_mask: torch.Tensor | None = None

    def with_samples(self, samples: torch.Tensor, noise_mask: torch.Tensor | None = None) -> "VideoLatent":
        return replace(self, samples=samples, noise_mask=noise_mask)


@storable
@dataclass(frozen=True)
class AudioLatent:
    """An audio latent. samples [B, C, T, M] (T latent frames at ``latents_per_second``); noise_mask
    broadcastable to [B, 1, T, 1] or None; seconds = duration of the audio it decodes to."""

    samples: torch.Tensor
    latents_per_second: float
    seconds: float
    noise_mask: torch.Tensor | None = None

    def with_samples(self, samples: torch.Tensor, noise_mask: torch.Tensor | None = None) -> "AudioLatent":
        return replace(self, samples=samples, noise_mask=noise_mask)


@storable
@dataclass(frozen=True)
class AVLatent:
    """A joint audio-video latent: both parts are denoised together and split back afterwards."""

    video: VideoLatent
    audio: AudioLatent


@storable
@dataclass(frozen=True)
class Audio:
    """A waveform [B, channels, samples] in [-1, 1] at ``sample_rate`` Hz."""

    waveform: torch.Tensor
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.waveform.shape[-1] / self.sample_rate


@storable
@dataclass(frozen=True)
class Video:
    """Decoded video: images [F, H, W, C] in [0, 1] (a float tensor, or :class:`ltxgraph.frames.Frames` held
    as bytes, streamed or read from a file) at ``fps``, with optional audio."""

    images: Any
    fps: float
    audio: Audio | None = None


@storable
@dataclass(frozen=True)
class SavedFile:
    """A file an output op wrote: its path and metadata a user may want in the report."""

    path: str
    info: dict[str, Any] = field(default_factory=dict)
