"""Mask nodes (ComfyUI and ComfyUI-LTXVideo names): solid masks, a channel of an image as a mask, video-mask
dilation and the green-screen composite LTX-2.3's inpainting IC-LoRA is conditioned on.
MASK is [B, H, W] float in [0, 1]; IMAGE is [B, H, W, C] float in [0, 1]; B counts frames in a video."""
from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F

from ltxgraph import Port, op
from ltxgraph.errors import InputValueError
from ltxgraph.input_checks import input_check

MAX_RESOLUTION = 16384
CHANNELS = ("red", "green", "blue", "alpha")
INPAINT_GREEN = (102, 255, 0)
"""The background colour (8-bit RGB, #66FF00) the inpainting IC-LoRA reads as "generate here"."""


@op("SolidMask", outputs={"MASK": "MASK"}, category="image/mask")
def solid_mask(value: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 1.0,
               width: Annotated[int, Port("INT", min=1, max=MAX_RESOLUTION)] = 512,
               height: Annotated[int, Port("INT", min=1, max=MAX_RESOLUTION)] = 512) -> torch.Tensor:
    """One mask [1, height, width] filled with ``value``."""
    return torch.full((1, height, width), float(value))


@op("ImageToMask", outputs={"MASK": "MASK"}, category="image/mask")
def image_to_mask(image: Annotated[torch.Tensor, Port("IMAGE")],
                  channel: Annotated[str, Port("STRING", choices=CHANNELS)] = "red") -> torch.Tensor:
    """One channel of ``image`` as a mask [B, H, W]."""
    index = CHANNELS.index(channel)
    if image.shape[-1] <= index:
        raise InputValueError(f"the image has {image.shape[-1]} channels: it has no {channel} channel")
    return image[..., index].clone()


def as_video_mask(mask: torch.Tensor) -> torch.Tensor:
    """A MASK as [frames, H, W] (a [B, H, W, C] mask keeps its first channel; [H, W] becomes one frame)."""
    if mask.ndim == 4:
        mask = mask[..., 0]
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3:
        raise InputValueError(f"a mask must be [frames, height, width], got shape {tuple(mask.shape)}")
    return mask


def dilate(mask: torch.Tensor, spatial_radius: int, temporal_radius: int) -> torch.Tensor:
    """Max filter of ``mask`` [F, H, W] over (2 spatial_radius + 1)^2 pixels and 2 temporal_radius + 1 frames
    (edges see only what is inside), then thresholded at 0.5 to {0, 1}."""
    mask = mask.float()
    if spatial_radius > 0:   # a square max filter is a max over rows, then over columns: 2 (2r + 1) per pixel
        size = 2 * spatial_radius + 1
        mask = F.max_pool2d(mask[:, None], (size, 1), stride=1, padding=(spatial_radius, 0))
        mask = F.max_pool2d(mask, (1, size), stride=1, padding=(0, spatial_radius))[:, 0]
    if temporal_radius > 0:
        frames, height, width = mask.shape
        per_pixel = mask.permute(1, 2, 0).reshape(height * width, 1, frames)
        per_pixel = F.max_pool1d(per_pixel, 2 * temporal_radius + 1, stride=1, padding=temporal_radius)
        mask = per_pixel.reshape(height, width, frames).permute(2, 0, 1)
    return (mask > 0.5).float()


@input_check("mask", presence=("mask", "image_as_mask"))
def mask_source(mask: Any, image_as_mask: Any) -> str | None:
    """Refuses a dilation with neither a mask nor an image connected."""
    return "connect a mask or an image_as_mask" if mask is None and image_as_mask is None else None


@op("LTXVDilateVideoMask", outputs={"mask": "MASK"}, category="Lightricks/mask_operations", checks=(mask_source,))
def dilate_video_mask(spatial_radius: Annotated[int, Port("INT", min=0, max=300)] = 1,
                      temporal_radius: Annotated[int, Port("INT", min=0, max=10)] = 0,
                      mask: Annotated[torch.Tensor | None, Port("MASK", optional=True)] = None,
                      image_as_mask: Annotated[torch.Tensor | None, Port("IMAGE", optional=True)] = None
                      ) -> torch.Tensor:
    """A video mask (or an image, its channels averaged) grown by ``spatial_radius`` pixels and
    ``temporal_radius`` frames, then made binary (> 0.5)."""
    source = as_video_mask(mask) if mask is not None else image_as_mask.float().mean(dim=-1)
    return dilate(source, spatial_radius, temporal_radius)


@op("LTXVInpaintPreprocess", outputs={"image": "IMAGE"}, category="Lightricks/image_processing")
def inpaint_preprocess(images: Annotated[torch.Tensor, Port("IMAGE")],
                       mask: Annotated[torch.Tensor, Port("MASK")]) -> torch.Tensor:
    """``images`` with the masked region painted green (#66FF00, blended by the mask value): the reference
    video of the inpainting IC-LoRA. A one-frame mask applies to every frame; otherwise the shorter of
    the two sets the frame count."""
    mask = as_video_mask(mask)
    if mask.shape[1:] != images.shape[1:3]:
        raise InputValueError(f"mask {mask.shape[2]}x{mask.shape[1]} and images {images.shape[2]}x"
                              f"{images.shape[1]} differ in size")
    if mask.shape[0] == 1:
        mask = mask.expand(images.shape[0], -1, -1)
    frames = min(mask.shape[0], images.shape[0])
    weight = mask[:frames, ..., None].float()
    green = torch.tensor(INPAINT_GREEN, dtype=torch.float32) / 255
    return images[:frames, ..., :3].float() * (1 - weight) + green * weight
