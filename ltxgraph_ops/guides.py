"""Guide ops: keyframe latents appended after the generated video frames, and their removal."""
from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import torch

from ltxgraph import Port, op
from ltxgraph.errors import InputValueError
from ltxgraph.values import VideoLatent
from ltxgraph_ops.conditioning import Conditioning, Guides
from ltxgraph_ops.handles import ModelHandle
from ltxgraph_ops.image_geometry import resize_center, resize_cropped
from ltxgraph_ops.latents import pixel_frames
from ltxgraph_ops.models.transformer_tokens import video_positions
from ltxgraph_ops.vae_handle import VideoVAEHandle


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


# ------------------------------------------------------------------------------------------ conditioning frames


def noise_mask_of(latent: VideoLatent) -> torch.Tensor:
    """The latent's noise mask as [B, 1, F, h, w] (h, w = 1 or the grid), all ones when it has none."""
    b, _, f = latent.samples.shape[:3]
    if latent.noise_mask is None:
        return torch.ones(b, 1, f, 1, 1)
    mask = latent.noise_mask.float()
    while mask.ndim < 5:
        mask = mask.unsqueeze(-1)
    return mask.expand(b, 1, f, *mask.shape[3:]).clone()


IMAGE_FITTED_TO_LATENT = {"pixel_cells": "the image is resized to the latent it conditions, whose size it keeps"}
GUIDE_FRAMES_APPENDED = {"latent_frames": "guide frames are appended after the video's latent frames (LTXVCropGuides "
                                          "cuts them off); frames keeps the video's pixel frames",
                         **IMAGE_FITTED_TO_LATENT}


@op("LTXVImgToVideoInplace", outputs={"latent": "VIDEO_LATENT"}, category="model/conditioning/ltxv",
    exempt=IMAGE_FITTED_TO_LATENT)
def img_to_video_inplace(vae: Annotated[VideoVAEHandle, Port("VAE")],
                         image: Annotated[torch.Tensor, Port("IMAGE")],
                         latent: Annotated[VideoLatent, Port("VIDEO_LATENT")],
                         strength: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 1.0,
                         bypass: Annotated[bool, Port("BOOLEAN")] = False) -> VideoLatent:
    """Encode ``image`` (one frame for image-to-video, or 8n+1 frames to continue a clip) at the latent's size
    (centre crop + bilinear) into the first latent frames, and keep them: noise mask 1 - strength there."""
    if bypass:
        return latent
    samples, count = encode_into_first_frames(vae, image, latent)
    mask = noise_mask_of(latent)
    mask[:, :, :count] = 1.0 - strength
    return replace(latent, samples=samples, noise_mask=mask)


def encode_into_first_frames(vae: VideoVAEHandle, image: torch.Tensor, latent: VideoLatent
                             ) -> tuple[torch.Tensor, int]:
    """``image`` centre-cropped and resized (bilinear) to the latent's pixel size, its first 8n+1 frames encoded
    over the latent's first frames: (a copy of the samples with them written, latent frames written)."""
    _, _, frames, height, width = latent.samples.shape
    _, h, w = vae.scale_factors
    pixels = resize_center(image, width * w, height * h)
    encoded = vae.encode(pixels[: (pixels.shape[0] - 1) // vae.scale_factors[0] * vae.scale_factors[0] + 1])
    count = encoded.shape[2]
    if count > frames:
        raise InputValueError(f"{image.shape[0]} conditioning frames need {count} latent frames; the latent has "
                              f"only {frames}")
    samples = latent.samples.clone()
    samples[:, :, :count] = encoded.to(samples.dtype)
    return samples, count


@op("GetICLoRAParameters", outputs={"iclora_parameters": "IC_LORA_PARAMETERS"}, category="model/conditioning/ltxv")
def get_iclora_parameters(iclora_model: Annotated[ModelHandle, Port("MODEL")]) -> dict:
    """The IC-LoRA settings a model's LoRAs declared (reference_downscale_factor, 1 if none)."""
    return {"reference_downscale_factor": iclora_model.metadata.get("reference_downscale_factor", 1)}


def latent_index(frame_idx: int, guide_frames: int, generated_frames: int, time_scale: int) -> tuple[int, int]:
    """(pixel frame, latent frame) where a guide of ``guide_frames`` pixel frames starts: a negative frame_idx
    counts from the end; a multi-frame guide not at 0 starts at a frame 8k+1 (rounded down)."""
    if frame_idx < 0:
        frame_idx = max((generated_frames - 1) * time_scale + 1 + frame_idx, 0)
    if guide_frames > 1 and frame_idx != 0:
        frame_idx = (frame_idx - 1) // time_scale * time_scale + 1
    return frame_idx, (frame_idx + time_scale - 1) // time_scale


@op("LTXVAddGuide", outputs={"positive": "CONDITIONING", "negative": "CONDITIONING", "latent": "VIDEO_LATENT"},
    category="model/conditioning/ltxv", exempt=GUIDE_FRAMES_APPENDED)
def add_guide(positive: Annotated[Conditioning, Port("CONDITIONING")],
              negative: Annotated[Conditioning, Port("CONDITIONING")],
              vae: Annotated[VideoVAEHandle, Port("VAE")],
              latent: Annotated[VideoLatent, Port("VIDEO_LATENT")],
              image: Annotated[torch.Tensor, Port("IMAGE")],
              frame_idx: Annotated[int, Port("INT", min=-9999, max=9999)] = 0,
              strength: Annotated[float, Port("FLOAT", min=0.0, max=10.0)] = 1.0,
              attention_mask: Annotated[torch.Tensor | None, Port("MASK", optional=True)] = None,
              iclora_parameters: Annotated[dict | None, Port("IC_LORA_PARAMETERS", optional=True)] = None,
              ) -> tuple[Conditioning, Conditioning, VideoLatent]:
    """Append ``image`` (a keyframe, or an 8n+1-frame clip such as an IC-LoRA control video) as guide frames
    after the generated ones: encoded at the latent's size (divided by the IC-LoRA's reference downscale
    factor), placed in time at ``frame_idx`` (negative = from the end) through its RoPE positions, kept with
    noise mask max(0, 1 - strength), and attended to with weight ``strength`` (scaled per pixel by
    ``attention_mask``) when it is below 1. LTXVCropGuides removes them after sampling."""
    factor = max(1, round(float((iclora_parameters or {}).get("reference_downscale_factor", 1))))
    return add_reference_guide(positive, negative, vae, latent, image, frame_idx, strength, factor, "center",
                               attention_mask=attention_mask)


def encode_reference(vae: VideoVAEHandle, clip: torch.Tensor, width: int, height: int, crop: str = "center",
                     tiled: bool = False, tile_size: int = 256, tile_overlap: int = 64) -> torch.Tensor:
    """A clip (8n+1 frames) resized to width x height pixels (centre-cropped first, or stretched with crop
    "disabled") -> its latent [1, 128, 1 + n, height/32, width/32]; tiled: in spatial tiles of ``tile_size``
    pixels overlapping by ``tile_overlap`` (memory-bounded, blended)."""
    pixels = resize_cropped(clip, width, height, "bilinear", crop)
    if not tiled:
        return vae.encode(pixels)
    from ltxgraph_ops.models.tiling import tiled_encode
    time_scale, h_scale, w_scale = vae.scale_factors
    tile, overlap = max(2, tile_size // w_scale), tile_overlap // w_scale
    frames = (pixels.shape[0] - 1) // time_scale + 1
    planar = pixels[..., :3].float().movedim(-1, 0).unsqueeze(0) * 2 - 1                 # [1, 3, F, H, W]
    with torch.inference_mode():
        return tiled_encode(vae.model.get().encode, planar, tile, min(overlap, tile - 1), frames, 0,
                            vae.scale_factors)


def add_reference_guide(positive: Conditioning, negative: Conditioning, vae: VideoVAEHandle, latent: VideoLatent,
                        image: torch.Tensor, frame_idx: int, strength: float, latent_downscale_factor: float = 1.0,
                        crop: str = "center", tiled: bool = False, tile_size: int = 256, tile_overlap: int = 64,
                        attention_mask: torch.Tensor | None = None
                        ) -> tuple[Conditioning, Conditioning, VideoLatent]:
    """A keyframe or clip (e.g. an IC-LoRA reference) as guide frames: resized to the latent's pixel size
    divided by ``latent_downscale_factor`` (a small-grid IC-LoRA; dilated back onto the grid), encoded (a clip
    not at frame 0 behind a throwaway copy of its first frame, for the causal VAE), placed at ``frame_idx``
    (negative: from the end; multi-frame clips at 8k+1) with noise mask max(0, 1 - strength)."""
    time_scale, h_scale, w_scale = vae.scale_factors
    frames, height, width = latent.samples.shape[2:]
    factor = int(latent_downscale_factor)
    if factor != latent_downscale_factor or height % factor or width % factor:
        raise InputValueError(f"latent size {width}x{height} cells must be divisible by the IC-LoRA's "
                              f"reference_downscale_factor {latent_downscale_factor:g} (a whole number)")
    existing = positive.guides
    generated = frames - (existing.frames if existing else 0)
    kept_frames = (image.shape[0] - 1) // time_scale * time_scale + 1
    resolved = frame_idx if frame_idx >= 0 else max((generated - 1) * time_scale + 1 + frame_idx, 0)
    causal = resolved == 0 or kept_frames == 1
    clip = image if causal else torch.cat([image[:1], image], dim=0)
    clip = clip[: (clip.shape[0] - 1) // time_scale * time_scale + 1]
    encoded = encode_reference(vae, clip, width * w_scale // factor, height * h_scale // factor, crop, tiled,
                               tile_size, tile_overlap)
    used = clip.shape[0]
    if not causal:
        encoded, used = encoded[:, :, 1:], used - 1
    start, start_latent = latent_index(frame_idx, used, generated, time_scale)
    if start_latent + encoded.shape[2] > generated:
        raise InputValueError(f"a guide of {kept_frames} frames at frame {start} ends after the video's "
                              f"{(generated - 1) * time_scale + 1} frames")
    return append_latent_guide(positive, negative, latent, encoded, start, strength, causal, attention_mask,
                               vae.scale_factors)


def append_latent_guide(positive: Conditioning, negative: Conditioning, latent: VideoLatent, guide: torch.Tensor,
                        frame_idx: int, strength: float, causal: bool | None = None,
                        attention_mask: torch.Tensor | None = None,
                        scale_factors: tuple[int, int, int] = (8, 32, 32)
                        ) -> tuple[Conditioning, Conditioning, VideoLatent]:
    """Append guide latent frames ``guide`` [1 or B, C, g, h, w] after ``latent``'s frames, placed in time at
    pixel frame ``frame_idx`` (causal first-frame fix by default when at 0 or a single frame). A guide smaller
    than the latent's grid by an integer factor f is a small-grid (IC-LoRA) guide: one token per f x f cells,
    dilated in the latent."""
    time_scale, h_scale, w_scale = scale_factors
    samples = latent.samples
    batch, _, frames, height, width = samples.shape
    guide_frames, small_h, small_w = guide.shape[2:]
    if height % small_h or width % small_w or height // small_h != width // small_w:
        raise InputValueError(f"a guide of {small_w}x{small_h} cells does not divide the latent's {width}x{height} "
                              "grid evenly")
    factor = height // small_h
    causal = (frame_idx == 0 or guide_frames == 1) if causal is None else causal
    # a small-grid guide (IC-LoRA reference_downscale_factor f) has one token per f x f cells of the video
    # grid: its positions span the larger patch; in the latent it sits dilated (every f-th cell, zeros between,
    # those never reach the transformer)
    positions = video_positions(guide_frames, small_h, small_w, fps=1.0, first_frame=frame_idx,
                                scale=(time_scale, h_scale * factor, w_scale * factor), causal=causal)
    guide_latent = guide.to(samples.dtype).expand(batch, -1, -1, -1, -1)
    kept = None
    if factor > 1:
        dilated = guide_latent.new_zeros(batch, guide_latent.shape[1], guide_frames, height, width)
        dilated[:, :, :, ::factor, ::factor] = guide_latent
        guide_latent = dilated
        kept = torch.zeros(guide_frames, height, width, dtype=torch.bool)
        kept[:, ::factor, ::factor] = True
    weights = token_weights(attention_mask, guide_frames, small_h, small_w)
    guides = append_guide(positive.guides, positions, strength, guide_frames, weights, kept)
    mask = noise_mask_of(latent)
    guide_mask = torch.full((batch, 1, guide_frames, *mask.shape[3:]), max(0.0, 1.0 - strength))
    if kept is not None:
        guide_mask = guide_mask.expand(batch, 1, guide_frames, height, width) * kept
    if mask.shape[3:] != guide_mask.shape[3:]:  # one of them is per cell: both become per cell
        mask = mask.expand(batch, 1, frames, height, width)
        guide_mask = guide_mask.expand(batch, 1, guide_frames, height, width)
    out = VideoLatent(torch.cat([samples, guide_latent], dim=2), latent.fps, latent.frames,
                      torch.cat([mask, guide_mask], dim=2))
    return positive.with_guides(guides), negative.with_guides(guides), out


def token_weights(mask: torch.Tensor | None, frames: int, height: int, width: int) -> torch.Tensor | None:
    """A pixel-space MASK [M, H, W] (or [H, W]) averaged onto a guide's latent grid: per-token attention
    multipliers [frames * height * width] in [0, 1] (None without a mask)."""
    if mask is None:
        return None
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3:
        raise InputValueError(f"attention_mask must be [H, W] or [frames, H, W], got shape {tuple(mask.shape)}")
    grid = torch.nn.functional.interpolate(mask[None, None].float(), size=(frames, height, width), mode="area")
    return grid.reshape(-1).clamp(0.0, 1.0)


def _joined(old: torch.Tensor | None, new: torch.Tensor | None, old_len: int, new_len: int,
            fill: float | bool) -> torch.Tensor | None:
    """Per-token values of two guide groups end to end (a missing side filled with ``fill``)."""
    if old is None and new is None:
        return None
    old = torch.full((old_len,), fill) if old is None else old
    new = torch.full((new_len,), fill) if new is None else new.reshape(-1)
    return torch.cat([old.to(new.dtype), new])


def append_guide(existing: Guides | None, positions: torch.Tensor, strength: float, frames: int,
                 weights: torch.Tensor | None, kept: torch.Tensor | None) -> Guides:
    """``existing`` guides plus one group (``positions`` [1, 3, N, 2] of its N transformer tokens)."""
    count = positions.shape[2]
    if existing is None:
        existing = Guides(positions[:, :, :0], (), (), ())
    return Guides(torch.cat([existing.positions, positions], dim=2),
                  existing.token_counts + (count,), existing.strengths + (strength,),
                  existing.latent_frames + (frames,),
                  token_weights=_joined(existing.token_weights, weights, existing.tokens, count, 1.0),
                  kept=_joined(existing.kept, kept, existing.latent_tokens,
                               kept.numel() if kept is not None else count, True))
