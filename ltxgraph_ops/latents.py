"""Latent ops: empty LTX-2 video latents, audio+video pairs, and frame ranges of a video latent.

LTX-2's video VAE maps F = 8n+1 pixel frames to 1 + (F-1)/8 latent frames and 32x32 pixels to one latent cell
with 128 channels; these constants are the model family's, as in ComfyUI.
"""
from __future__ import annotations

from typing import Annotated

import torch

from ltxgraph import Port, op
from ltxgraph.errors import InputValueError
from ltxgraph.values import AudioLatent, AVLatent, VideoLatent

VIDEO_LATENT_CHANNELS = 128
PIXELS_PER_CELL = 32
FRAMES_PER_LATENT = 8
MAX_RESOLUTION = 16384


def latent_frames(frames: int) -> int:
    """Latent frames for ``frames`` pixel frames (8n+1)."""
    return (frames - 1) // FRAMES_PER_LATENT + 1


def pixel_frames(latent_count: int) -> int:
    """Pixel frames a latent of ``latent_count`` frames decodes to."""
    return (latent_count - 1) * FRAMES_PER_LATENT + 1


@op("EmptyLTXVLatentVideo", outputs={"LATENT": "VIDEO_LATENT"}, category="latent/video/ltxv")
def empty_ltxv_latent_video(
        width: Annotated[int, Port("INT", min=64, max=MAX_RESOLUTION, multiple_of=32, round_down=True)] = 768,
        height: Annotated[int, Port("INT", min=64, max=MAX_RESOLUTION, multiple_of=32, round_down=True)] = 512,
        length: Annotated[int, Port("INT", min=1, max=MAX_RESOLUTION, eight_n_plus_one=True, round_down=True)] = 97,
        batch_size: Annotated[int, Port("INT", min=1, max=4096)] = 1) -> VideoLatent:
    """Zeros [B, 128, (length-1)/8+1, height/32, width/32]; the frame rate comes from the conditioning."""
    shape = (batch_size, VIDEO_LATENT_CHANNELS, latent_frames(length), height // PIXELS_PER_CELL,
             width // PIXELS_PER_CELL)
    return VideoLatent(torch.zeros(shape), fps=None, frames=length)


@op("LTXVConcatAVLatent", outputs={"latent": "AV_LATENT"}, category="latent/ltxv")
def concat_av_latent(video_latent: Annotated[VideoLatent, Port("VIDEO_LATENT")],
                     audio_latent: Annotated[AudioLatent, Port("AUDIO_LATENT")]) -> AVLatent:
    """Pair a video and an audio latent to be denoised together (each keeps its own noise mask)."""
    if video_latent.samples.shape[0] != audio_latent.samples.shape[0]:
        raise InputValueError(f"batch sizes differ: video {video_latent.samples.shape[0]}, "
                              f"audio {audio_latent.samples.shape[0]}")
    return AVLatent(video_latent, audio_latent)


@op("LTXVSeparateAVLatent", outputs={"video_latent": "VIDEO_LATENT", "audio_latent": "AUDIO_LATENT"},
    category="latent/ltxv")
def separate_av_latent(av_latent: Annotated[AVLatent, Port("AV_LATENT")]) -> tuple[VideoLatent, AudioLatent]:
    """Split an audio-video latent into its parts (masks carried)."""
    return av_latent.video, av_latent.audio


@op("LTXVSelectLatents", outputs={"LATENT": "VIDEO_LATENT"}, category="latent/video/ltxv")
def select_latents(samples: Annotated[VideoLatent, Port("VIDEO_LATENT")],
                   start_index: Annotated[int, Port("INT", min=-9999, max=9999)] = 0,
                   end_index: Annotated[int, Port("INT", min=-9999, max=9999)] = -1) -> VideoLatent:
    """Latent frames start_index..end_index (inclusive; negative counts from the end), with their mask."""
    count = samples.samples.shape[2]
    start = start_index + count if start_index < 0 else start_index
    end = end_index + count if end_index < 0 else end_index
    if not 0 <= start <= end < count:
        raise InputValueError(f"frames {start_index}..{end_index} are not a range of this latent's {count} frames")
    mask = samples.noise_mask
    if mask is not None and mask.shape[2] > 1:
        mask = mask[:, :, start:end + 1]
    return VideoLatent(samples.samples[:, :, start:end + 1].clone(), samples.fps, pixel_frames(end - start + 1),
                       mask)
