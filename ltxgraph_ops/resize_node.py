"""ResizeImageMaskNode (ComfyUI core): resize an IMAGE [B, H, W, C] or a MASK [B, H, W] by one of nine rules.

ComfyUI shows the rule's settings as a dynamic combo (``resize_type`` and the widgets of the chosen option);
here every setting is an input with its default, and a workflow's values map onto them by the chosen option.
"""
from __future__ import annotations

import math
from typing import Annotated, Any

import torch

from ltxgraph import Port, op
from ltxgraph.errors import InputValueError
from ltxgraph.frames import Frames, float_images, same_depth
from ltxgraph.input_checks import input_check
from ltxgraph_ops.image_geometry import RESAMPLE_METHODS, resample, resize_cropped

RESIZE_TYPES = ("scale dimensions", "scale by multiplier", "scale longer dimension", "scale shorter dimension",
                "scale width", "scale height", "scale total pixels", "match size", "scale to multiple")
MAX_RESOLUTION = 16384


def _shown(*options: str) -> tuple[str, tuple[str, ...]]:
    return ("resize_type", options)


def target_size(source_width: int, source_height: int, resize_type: str, **settings: Any) -> tuple[int, int]:
    """Output (width, height) of an input of ``source_width`` x ``source_height`` under a resize rule (crop rules
    aside)."""
    width, height = source_width, source_height
    if resize_type == "scale dimensions":
        w, h = settings["width"], settings["height"]
    elif resize_type == "scale width":
        w, h = settings["width"], 0
    elif resize_type == "scale height":
        w, h = 0, settings["height"]
    elif resize_type == "scale by multiplier":
        return max(1, round(width * settings["multiplier"])), max(1, round(height * settings["multiplier"]))
    elif resize_type in ("scale longer dimension", "scale shorter dimension"):
        size = settings["longer_size" if resize_type == "scale longer dimension" else "shorter_size"]
        longer = resize_type == "scale longer dimension"
        if width == height:
            return size, size
        if (height > width) == longer:
            return round(width / height * size), size
        return size, round(height / width * size)
    elif resize_type == "scale total pixels":
        scale = math.sqrt(int(settings["megapixels"] * 1024 * 1024) / (width * height))
        return round(width * scale), round(height * scale)
    else:
        raise ValueError(resize_type)
    if w == 0 and h == 0:
        return width, height
    if w == 0:
        w = max(1, round(width * h / height))
    elif h == 0:
        h = max(1, round(height * w / width))
    return w, h


def _as_images(value: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if value.ndim == 3:
        return value.unsqueeze(-1), True
    if value.ndim == 4:
        return value, False
    raise InputValueError(f"input must be an IMAGE [B, H, W, C] or a MASK [B, H, W], got shape {tuple(value.shape)}")


@input_check("match", presence=("match",))
def match_connected(resize_type: str, match: Any) -> str | None:
    """Refuses 'match size' without the image to match."""
    if resize_type == "match size" and match is None:
        return "resize_type 'match size' needs the match input connected"
    return None


@op("ResizeImageMaskNode", outputs={"resized": "=input"}, category="image/transform", checks=(match_connected,))
def resize_image_mask(
        input: Annotated[torch.Tensor | Frames, Port("IMAGE|MASK")],
        resize_type: Annotated[str, Port("STRING", choices=RESIZE_TYPES)] = "scale dimensions",
        width: Annotated[int, Port("INT", min=0, max=MAX_RESOLUTION, comfy_name="resize_type.width",
                                   shown_when=_shown("scale dimensions", "scale width"))] = 512,
        height: Annotated[int, Port("INT", min=0, max=MAX_RESOLUTION, comfy_name="resize_type.height",
                                    shown_when=_shown("scale dimensions", "scale height"))] = 512,
        crop: Annotated[str, Port("STRING", choices=("disabled", "center"), comfy_name="resize_type.crop",
                                  shown_when=_shown("scale dimensions", "match size"))] = "center",
        multiplier: Annotated[float, Port("FLOAT", min=0.01, max=8.0, comfy_name="resize_type.multiplier",
                                          shown_when=_shown("scale by multiplier"))] = 1.0,
        longer_size: Annotated[int, Port("INT", min=0, max=MAX_RESOLUTION, comfy_name="resize_type.longer_size",
                                         shown_when=_shown("scale longer dimension"))] = 512,
        shorter_size: Annotated[int, Port("INT", min=0, max=MAX_RESOLUTION, comfy_name="resize_type.shorter_size",
                                          shown_when=_shown("scale shorter dimension"))] = 512,
        megapixels: Annotated[float, Port("FLOAT", min=0.01, max=16.0, comfy_name="resize_type.megapixels",
                                          shown_when=_shown("scale total pixels"))] = 1.0,
        multiple: Annotated[int, Port("INT", min=1, max=MAX_RESOLUTION, comfy_name="resize_type.multiple",
                                      shown_when=_shown("scale to multiple"))] = 8,
        scale_method: Annotated[str, Port("STRING", choices=RESAMPLE_METHODS)] = "area",
        match: Annotated[torch.Tensor | Frames | None, Port("IMAGE|MASK", optional=True, comfy_name="resize_type.match")]
        = None) -> torch.Tensor:
    """Resize by exact dimensions (with centre crop), a multiplier, the longer / shorter side, one side, total
    megapixels, another image's size, or down to a multiple (cover, then centre crop); masks come back as
    masks; 8-bit images stay 8-bit (rounded to the grid)."""
    images, is_mask = _as_images(float_images(input))
    _, h, w, _ = images.shape
    crop_mode = crop
    if resize_type == "match size":
        target = _as_images(match)[0]
        out = resize_cropped(images, target.shape[2], target.shape[1], scale_method, crop_mode)
    elif resize_type == "scale to multiple":
        out = _to_multiple(images, multiple, scale_method)
    else:
        new_w, new_h = target_size(w, h, resize_type, width=width, height=height, multiplier=multiplier,
                                   longer_size=longer_size, shorter_size=shorter_size, megapixels=megapixels)
        if resize_type != "scale dimensions" or (width == 0 or height == 0):
            crop_mode = "disabled"
        out = resize_cropped(images, new_w, new_h, scale_method, crop_mode)
    return out[..., 0] if is_mask else same_depth(input, out)


def _to_multiple(images: torch.Tensor, multiple: int, method: str) -> torch.Tensor:
    """Cover the largest multiple-of-``multiple`` size inside the image, then centre crop to it."""
    _, height, width, _ = images.shape
    target_w, target_h = width // multiple * multiple, height // multiple * multiple
    if multiple <= 1 or target_w == 0 or target_h == 0 or (target_w, target_h) == (width, height):
        return images
    if target_w / width >= target_h / height:
        scaled_w, scaled_h = target_w, max(target_h, math.ceil(height * target_w / width))
    else:
        scaled_w, scaled_h = max(target_w, math.ceil(width * target_h / height)), target_h
    scaled = resample(images, scaled_w, scaled_h, method)
    top, left = (scaled_h - target_h) // 2, (scaled_w - target_w) // 2
    return scaled[:, top:top + target_h, left:left + target_w]
