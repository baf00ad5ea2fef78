"""Temporal inpainting and extension: choose, by time, which part of an audio-video latent is generated.

LTXVSetAudioVideoMaskByTime (ComfyUI-LTXVideo) sets the noise masks of an AV latent from a time range: inside
[start_time, end_time] video and/or audio are regenerated (mask 1), outside they keep ``mask_init_value_*``
(0 = keep exactly). As in the original, the range is clamped to the latent: ComfyUI-LTXVideo's workflows set a
large ``end_time`` (e.g. 100) to mean "to the end". Extension past the end is a separate op of ours,
LTXVExtendAVLatentByTime (no ComfyUI counterpart), placed after the mask: it appends frames that are always
generated (noise mask 1), keeping the masks of the frames before.

Index rules (the original's): video latent frame k >= 1 starts at pixel frame 8k - 7 (frame 0 is pixel 0); the
range starts at the first latent frame starting at or after round(start * fps) and ends before the first frame
starting after round(end * fps); audio frames run from round(start * 25) to round(end * 25) inclusive.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import replace
from typing import Annotated, Any

import torch

from ltxgraph import Port, op
from ltxgraph.errors import InputValueError
from ltxgraph.input_checks import input_check
from ltxgraph.values import AudioLatent, AVLatent, VideoLatent
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.latents import FRAMES_PER_LATENT, pixel_frames


def latent_starts(latent_frames: int) -> list[int]:
    """First pixel frame of each latent frame, plus one past the end: [0, 1, 9, 17, ...] (length F + 1)."""
    return [0] + list(range(1, pixel_frames(latent_frames) + FRAMES_PER_LATENT, FRAMES_PER_LATENT))


def video_range(start_time: float, end_time: float, fps: float, latent_frames: int) -> tuple[int, int]:
    """[first, stop) latent frames regenerated for a time range at ``fps``."""
    starts = latent_starts(latent_frames)
    first = bisect.bisect_left(starts, round(start_time * fps))
    stop = bisect.bisect_right(starts, round(end_time * fps)) - 1
    return max(0, first), min(stop, latent_frames)


def audio_range(start_time: float, end_time: float, latents_per_second: float, frames: int) -> tuple[int, int]:
    """[first, stop) audio latent frames regenerated for a time range."""
    return max(0, round(start_time * latents_per_second)), min(round(end_time * latents_per_second) + 1, frames)


def blend_coefficients(first: int, last: int, count: int, slope: int) -> tuple[list[float], list[float]]:
    """Per latent frame: 1 on [first, last], linear ramps of ``slope`` frames on both sides, 0 elsewhere; and
    the same interpolated to pixel frames (latent frame k placed at its first pixel frame)."""
    first = max(0, min(count - 1, first))
    last = max(first, min(count - 1, last))
    slope = max(1, slope)
    coeffs = [0.0] * count
    for i in range(max(0, first - slope), first):
        coeffs[i] = (i - max(0, first - slope) + 1) / slope
    for i in range(first, last + 1):
        coeffs[i] = 1.0
    for i in range(last + 1, min(count, last + slope + 1)):
        coeffs[i] = max(0.0, 1.0 - (i - last) / slope)
    anchors = torch.tensor(latent_starts(count)[:count], dtype=torch.float64)
    pixels = torch.arange(pixel_frames(count), dtype=torch.float64)
    index = torch.searchsorted(anchors, pixels, right=True).clamp(1, max(1, count - 1))
    values = torch.tensor(coeffs, dtype=torch.float64)
    if count == 1:
        return coeffs, [coeffs[0]]
    left, right = anchors[index - 1], anchors[index]
    weight = ((pixels - left) / (right - left)).clamp(0, 1)
    return coeffs, (values[index - 1] + weight * (values[index] - values[index - 1])).tolist()


def extend_video(latent: VideoLatent, frames: int) -> VideoLatent:
    """``latent`` with zero frames appended up to ``frames`` latent frames (mask 1 there)."""
    extra = frames - latent.samples.shape[2]
    if extra <= 0:
        return latent
    b, c, _, h, w = latent.samples.shape
    samples = torch.cat([latent.samples, latent.samples.new_zeros(b, c, extra, h, w)], dim=2)
    mask = latent.noise_mask
    if mask is not None:
        mask = torch.cat([mask.expand(-1, 1, -1, -1, -1) if mask.shape[1] != 1 else mask,
                          mask.new_ones(mask.shape[0], 1, extra, *mask.shape[3:])], dim=2)
    return VideoLatent(samples, latent.fps, pixel_frames(frames), mask)


def extend_audio(latent: AudioLatent, frames: int, seconds: float) -> AudioLatent:
    extra = frames - latent.samples.shape[2]
    if extra <= 0:
        return latent
    b, c, _, m = latent.samples.shape
    samples = torch.cat([latent.samples, latent.samples.new_zeros(b, c, extra, m)], dim=2)
    mask = latent.noise_mask
    if mask is not None:
        mask = torch.cat([mask, mask.new_ones(*mask.shape[:2], extra, mask.shape[3])], dim=2)
    return AudioLatent(samples, latent.latents_per_second, max(seconds, latent.seconds), mask)


@input_check("end_time")
def time_range(start_time: float, end_time: float) -> str | None:
    """Refuses a time range that ends before it starts."""
    return f"end_time {end_time} is before start_time {start_time}" if end_time < start_time else None


@input_check("video_fps")
def positive_fps(video_fps: float) -> str | None:
    """Refuses a frame rate of 0."""
    return "video_fps must be > 0" if video_fps <= 0 else None


@op("LTXVSetAudioVideoMaskByTime",
    outputs={"positive": "CONDITIONING", "negative": "CONDITIONING", "av_latent": "AV_LATENT",
             "video_latent_blend_coefficients": "FLOAT", "video_pixel_blend_coefficients": "FLOAT"},
    category="utility", version="3", checks=(time_range, positive_fps))
def set_audio_video_mask_by_time(
        av_latent: Annotated[AVLatent, Port("AV_LATENT")],
        positive: Annotated[Conditioning, Port("CONDITIONING")],
        negative: Annotated[Conditioning, Port("CONDITIONING")],
        model: Annotated[Any, Port("MODEL")],
        vae: Annotated[Any, Port("VAE")],
        audio_vae: Annotated[Any, Port("AUDIO_VAE")],
        start_time: Annotated[float, Port("FLOAT", min=0.0, max=2000.0)] = 0.0,
        end_time: Annotated[float, Port("FLOAT", min=0.0, max=2000.0)] = 10.0,
        video_fps: Annotated[float, Port("FLOAT", min=0.0, max=500.0)] = 24.0,
        mask_video: Annotated[bool, Port("BOOLEAN")] = True,
        mask_audio: Annotated[bool, Port("BOOLEAN")] = True,
        mask_init_value_video: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 0.0,
        mask_init_value_audio: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 0.0,
        slope_len: Annotated[int, Port("INT", min=1, max=100)] = 3,
        spatial_mask: Annotated[torch.Tensor | None, Port("MASK", optional=True)] = None,
) -> tuple[Conditioning, Conditioning, AVLatent, tuple[float, ...], tuple[float, ...]]:
    """Regenerate [start_time, end_time] (seconds) of the video and/or the audio, keeping the rest
    (``mask_init_value_*``: 0 = keep exactly, fractions = partial regeneration); the range is clamped to the
    latent (LTXVExtendAVLatentByTime afterwards appends frames to generate past its end). ``spatial_mask`` [H, W] or [B, H, W] limits the video region (resized to the latent grid). Also returns
    per-latent-frame and per-pixel-frame blend weights of the edited range (ramps of ``slope_len`` frames)."""
    video, audio = av_latent.video, av_latent.audio
    b, _, frames, height, width = video.samples.shape
    video_mask = torch.full((b, 1, frames, height, width), float(mask_init_value_video))
    first, stop = video_range(start_time, end_time, video_fps, frames)
    if mask_video and stop > first:
        region = torch.ones(b, 1, stop - first, height, width)
        if spatial_mask is not None:
            region = region * _spatial(spatial_mask, height, width, b)
        video_mask[:, :, first:stop] = region
    base = av_latent.video.noise_mask
    if base is not None and base.ndim == 5 and base.shape[1] == base.shape[3] == base.shape[4] == 1:
        video_mask[:, :, : base.shape[2]] *= base[:1, :1]

    ab, _, audio_count, _ = audio.samples.shape
    audio_mask = torch.full((ab, 1, audio_count, 1), float(mask_init_value_audio))
    a_first, a_stop = audio_range(start_time, end_time, audio.latents_per_second, audio_count)
    if mask_audio and a_stop > a_first:
        audio_mask[:, :, a_first:a_stop] = 1.0

    latent = AVLatent(replace(video, noise_mask=video_mask), replace(audio, noise_mask=audio_mask))
    coeffs, pixel_coeffs = blend_coefficients(first, stop, frames, slope_len)
    return positive, negative, latent, tuple(coeffs), tuple(pixel_coeffs)


@op("LTXVExtendAVLatentByTime", outputs={"av_latent": "AV_LATENT"}, category="latent", checks=(positive_fps,))
def extend_av_latent_by_time(
        av_latent: Annotated[AVLatent, Port("AV_LATENT")],
        end_time: Annotated[float, Port("FLOAT", min=0.0, max=2000.0)] = 10.0,
        video_fps: Annotated[float, Port("FLOAT", min=0.0, max=500.0)] = 24.0,
) -> AVLatent:
    """``av_latent`` lengthened to ``end_time`` seconds (ltxgraph's op; ComfyUI has none): video latent frames
    appended until its 8n+1 pixel frames cover ``end_time * video_fps`` frames, audio latent frames until
    ``end_time * latents_per_second``; appended frames are zero and always generated (noise mask 1 appended to
    a stream's mask; a stream without a mask is generated whole anyway). Frames already there keep their mask."""
    video, audio = av_latent.video, av_latent.audio
    wanted_pixels = round(end_time * video_fps)          # a clip of D seconds has D * fps frames
    if wanted_pixels > video.frames:
        video = extend_video(video, math.ceil((wanted_pixels - 1) / FRAMES_PER_LATENT) + 1)
    audio_frames = round(end_time * audio.latents_per_second)
    if audio_frames > audio.samples.shape[2]:
        audio = extend_audio(audio, audio_frames, end_time)
    return AVLatent(video, audio)


def _spatial(mask: torch.Tensor, height: int, width: int, batch: int) -> torch.Tensor:
    """MASK [H, W] or [B, H, W] (B 1 or the latent's ``batch``) -> [1 or B, 1, 1, height, width] resized bilinearly
    to the latent grid."""
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3:
        raise InputValueError(f"spatial_mask must be [H, W] or [B, H, W], got shape {tuple(mask.shape)}")
    if mask.shape[0] not in (1, batch):
        raise InputValueError(f"spatial_mask holds {mask.shape[0]} masks for a latent batch of {batch}: give one "
                              f"mask, or one per batch item")
    resized = torch.nn.functional.interpolate(mask[:, None].float(), size=(height, width), mode="bilinear",
                                              align_corners=False)
    return resized[:, :, None]
