"""Resizing IMAGE batches ([B, H, W, C] float in [0, 1]) the way LTX-2 graphs need: to an exact size with a
centre crop that keeps the aspect ratio (ComfyUI's "center" crop rule)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def center_crop_to_aspect(images: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The largest centred window of ``images`` [B, H, W, C] with the aspect ratio width:height (the same
    number of pixels cut from both sides, rounded). At least one row and column are kept: an image a pixel or two
    across cropped to a far narrower aspect would otherwise round to nothing (ComfyUI's crop then fails)."""
    _, h, w, _ = images.shape
    source, target = w / h, width / height
    if source > target:
        cut = min(round((w - w * target / source) / 2), (w - 1) // 2)
        return images[:, :, cut:w - cut]
    if source < target:
        cut = min(round((h - h * source / target) / 2), (h - 1) // 2)
        return images[:, cut:h - cut]
    return images


def resize_center(images: torch.Tensor, width: int, height: int, mode: str = "bilinear") -> torch.Tensor:
    """``images`` [B, H, W, C] centre-cropped to the target aspect ratio, then resized to [B, height, width, C]
    (bilinear, no antialiasing, as ComfyUI's common upscale); unchanged when already that size."""
    if images.shape[1] == height and images.shape[2] == width:
        return images
    return resample(center_crop_to_aspect(images, width, height), width, height, mode)


RESAMPLE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")


def lanczos_8bit(images: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """ComfyUI's lanczos resize (comfy.utils.lanczos): each image [H, W, C] to 8 bits (255 x clipped to
    [0, 255], truncated), resized by Pillow's LANCZOS (fixed point, 8 bits between the two axes), back as
    values / 255: [B, height, width, C] float32, on the 8-bit grid."""
    from PIL import Image
    pixels = np.clip(255.0 * images.detach().float().cpu().numpy(), 0, 255).astype(np.uint8)
    if pixels.shape[-1] == 1:                             # Pillow takes a grey image as [H, W]
        pixels = pixels[..., 0]
    resized = [np.asarray(Image.fromarray(image).resize((width, height), resample=Image.Resampling.LANCZOS))
               for image in pixels]
    out = torch.from_numpy(np.stack(resized).astype(np.float32) / 255.0)
    return out.reshape(out.shape[0], height, width, -1).to(images.device)


def resample(images: torch.Tensor, width: int, height: int, method: str = "bilinear") -> torch.Tensor:
    """``images`` [B, H, W, C] resized to [B, height, width, C] by ``method`` (one of RESAMPLE_METHODS)."""
    if method not in RESAMPLE_METHODS:
        raise ValueError(f"unknown resize method {method!r}: use one of {', '.join(RESAMPLE_METHODS)}")
    if images.shape[1] == height and images.shape[2] == width:
        return images
    if method == "lanczos":
        return lanczos_8bit(images, width, height)
    planar = images.float().movedim(-1, 1)
    options = {"align_corners": False} if method in ("bilinear", "bicubic") else {}
    out = F.interpolate(planar, size=(height, width), mode=method, **options).movedim(1, -1)
    return out.clamp(0.0, 1.0) if method == "bicubic" else out


def resize_cropped(images: torch.Tensor, width: int, height: int, method: str = "bilinear",
                   crop: str = "center") -> torch.Tensor:
    """``images`` [B, H, W, C] to exactly width x height: centre-cropped to the aspect ratio first when
    ``crop`` is "center", stretched when "disabled"."""
    if crop == "center":
        images = center_crop_to_aspect(images, width, height)
    return resample(images, width, height, method)
