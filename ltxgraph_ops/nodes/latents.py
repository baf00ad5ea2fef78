"""Latent nodes (ComfyUI and ComfyUI-LTXVideo names): a pixel mask as a latent's noise mask, and the
placeholder video latent of audio-only generation."""
from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import torch
import torch.nn.functional as F

from ltxgraph import Port, op
from ltxgraph.errors import InputValueError
from ltxgraph.values import AudioLatent, VideoLatent
from ltxgraph_ops.latents import VIDEO_LATENT_CHANNELS
from ltxgraph_ops.nodes.masks import as_video_mask


def _resized(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """mask [N, H, W] scaled (bilinear) to [N, height, width]."""
    if mask.shape[1:] == (height, width):
        return mask.float()
    return F.interpolate(mask[:, None].float(), size=(height, width), mode="bilinear", align_corners=False)[:, 0]


def video_noise_mask(mask: torch.Tensor, latent: VideoLatent) -> torch.Tensor:
    """A pixel MASK [N, H, W] as the noise mask [1, 1, F, h, w] of a video latent [B, C, F, h, w]: scaled to the
    latent grid; one mask frame applies to every latent frame, else N must equal F."""
    frames, height, width = latent.samples.shape[2:]
    grid = _resized(mask, height, width)
    if grid.shape[0] not in (1, frames):
        raise InputValueError(f"a mask of {grid.shape[0]} frames does not fit a latent of {frames} frames "
                              "(give 1 frame or one per latent frame)")
    return grid.expand(frames, height, width)[None, None].clone()


def audio_noise_mask(mask: torch.Tensor, latent: AudioLatent) -> torch.Tensor:
    """A pixel MASK [1, H, W] as the noise mask [1, 1, T, 1] of an audio latent [B, C, T, M]: scaled to (T, M);
    it must not vary across the M mel cells of a time step (an audio token spans them all)."""
    if mask.shape[0] != 1:
        raise InputValueError(f"an audio latent takes a one-frame mask, got {mask.shape[0]} frames")
    frames, bins = latent.samples.shape[2:]
    grid = _resized(mask, frames, bins)[0]
    if not torch.allclose(grid, grid[:, :1].expand_as(grid)):
        raise InputValueError("the mask varies along the audio latent's mel axis; an audio token covers all of it")
    return grid[:, :1][None, None].clone()


@op("SetLatentNoiseMask", outputs={"LATENT": "=samples"}, category="latent/inpaint")
def set_latent_noise_mask(samples: Annotated[VideoLatent | AudioLatent, Port("VIDEO_LATENT|AUDIO_LATENT")],
                          mask: Annotated[torch.Tensor, Port("MASK")]) -> VideoLatent | AudioLatent:
    """The latent with ``mask`` (1 = generate, 0 = keep) as its noise mask, scaled to its grid: per latent
    frame and cell for video, per time step for audio (e.g. a SolidMask of 0 keeps reference audio)."""
    mask = as_video_mask(mask)
    if isinstance(samples, AudioLatent):
        return replace(samples, noise_mask=audio_noise_mask(mask, samples))
    return replace(samples, noise_mask=video_noise_mask(mask, samples))


@op("LTXVAudioOnlyEmptyVideoLatent", outputs={"latent": "VIDEO_LATENT"}, category="Lightricks/audio")
def audio_only_empty_video_latent() -> VideoLatent:
    """The placeholder video of audio-only generation: zeros [1, 128, 1, 2, 2] (one 64x64 frame), which an
    LTXVAudioOnlyModel never looks at."""
    return VideoLatent(torch.zeros(1, VIDEO_LATENT_CHANNELS, 1, 2, 2), fps=None, frames=1)
