"""Guide ops: keyframe latents appended after the generated video frames, and their removal."""
from __future__ import annotations

from typing import Annotated

from ltxgraph import Port, op
from ltxgraph.errors import InputValueError
from ltxgraph.values import VideoLatent
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.latents import pixel_frames


@op("LTXVCropGuides", outputs={"positive": "CONDITIONING", "negative": "CONDITIONING", "latent": "VIDEO_LATENT"},
    category="conditioning/ltxv")
def crop_guides(positive: Annotated[Conditioning, Port("CONDITIONING")],
                negative: Annotated[Conditioning, Port("CONDITIONING")],
                latent: Annotated[VideoLatent, Port("VIDEO_LATENT")]) -> tuple[Conditioning, Conditioning, VideoLatent]:
    """Remove the guide frames LTXVAddGuide appended (from latent and noise mask) and the guides' keyframe
    data from both prompts, leaving the generated video."""
    guides = positive.guides
    if guides is None or guides.frames == 0:
        return positive, negative, latent
    frames = latent.samples.shape[2]
    if guides.frames >= frames:
        raise InputValueError(f"the conditioning has {guides.frames} guide frames but the latent only {frames} "
                              "frames in all")
    keep = frames - guides.frames
    mask = latent.noise_mask
    if mask is not None and mask.shape[2] == frames:
        mask = mask[:, :, :keep]
    cropped = VideoLatent(latent.samples[:, :, :keep], latent.fps, pixel_frames(keep), mask)
    return positive.with_guides(None), negative.with_guides(None), cropped
