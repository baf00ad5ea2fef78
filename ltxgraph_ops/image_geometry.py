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
    return resample(center_crop_to_aspect(images, width, height), width, height, mode)


RESAMPLE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")


def lanczos_matrix(source: int, target: int, lobes: int = 3) -> torch.Tensor:
    """[target, source] weights of Lanczos-``lobes`` resampling (kernel widened by the scale when shrinking,
    rows normalised), centres aligned as in PIL / ComfyUI's lanczos resize."""
    scale = source / target
    support = lobes * max(scale, 1.0)
    centres = (torch.arange(target, dtype=torch.float64) + 0.5) * scale
    positions = torch.arange(source, dtype=torch.float64) + 0.5
    distance = (positions[None, :] - centres[:, None]) / max(scale, 1.0)
    kernel = torch.sinc(distance) * torch.sinc(distance / lobes)
    kernel = torch.where(distance.abs() < lobes, kernel, torch.zeros_like(kernel))
    kernel = torch.where((positions[None, :] - centres[:, None]).abs() <= support, kernel, torch.zeros_like(kernel))
    return (kernel / kernel.sum(dim=1, keepdim=True)).float()


def resample(images: torch.Tensor, width: int, height: int, method: str = "bilinear") -> torch.Tensor:
    """``images`` [B, H, W, C] resized to [B, height, width, C] by ``method`` (one of RESAMPLE_METHODS)."""
    if method not in RESAMPLE_METHODS:
        raise ValueError(f"unknown resize method {method!r}: use one of {', '.join(RESAMPLE_METHODS)}")
    if images.shape[1] == height and images.shape[2] == width:
        return images
    if method == "lanczos":
        rows = lanczos_matrix(images.shape[1], height)
        cols = lanczos_matrix(images.shape[2], width)
        out = torch.einsum("yh,bhwc,xw->byxc", rows, images.float(), cols)
        return out.clamp(0.0, 1.0)
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
