"""Resizing IMAGE batches ([B, H, W, C] float in [0, 1]) the way LTX-2 graphs need: to an exact size with a
centre crop that keeps the aspect ratio (ComfyUI's "center" crop rule)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def center_crop_to_aspect(images: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The largest centred window of ``images`` [B, H, W, C] with the aspect ratio width:height (the same
    number of pixels cut from both sides, rounded)."""
    _, h, w, _ = images.shape
    source, target = w / h, width / height
    if source > target:
        cut = round((w - w * target / source) / 2)
        return images[:, :, cut:w - cut]
    if source < target:
        cut = round((h - h * source / target) / 2)
        return images[:, cut:h - cut]
    return images


def resize_center(images: torch.Tensor, width: int, height: int, mode: str = "bilinear") -> torch.Tensor:
    """``images`` [B, H, W, C] centre-cropped to the target aspect ratio, then resized to [B, height, width, C]
    (bilinear, no antialiasing, as ComfyUI's common upscale); unchanged when already that size."""
    if images.shape[1] == height and images.shape[2] == width:
        return images
    cropped = center_crop_to_aspect(images, width, height).movedim(-1, 1)
    options = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(cropped.float(), size=(height, width), mode=mode, **options).movedim(1, -1)
