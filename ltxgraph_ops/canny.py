"""Canny edge detection (Canny 1986) in torch, with OpenCV's rules (cv2.Canny, 3x3 aperture): Sobel gradients with
replicated borders, the channel of largest gradient per pixel, non-maximum suppression along the gradient direction
in four sectors (tan 22.5 deg = 13573 / 2^15), double threshold (strictly above), hysteresis by 8-connectivity.

Images are [B, C, H, W] float; on integer-valued input (uint8 pixel values) the result equals cv2.Canny's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

TAN_22_5 = 13573 / 32768          # OpenCV's fixed-point tan(22.5 deg); tan(67.5 deg) = this + 2
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def gaussian_blur(images: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """[B, C, H, W] blurred by a separable Gaussian of ``sigma`` pixels (radius 3 sigma, replicated borders)."""
    radius = int(3 * sigma + 0.5)
    taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2) / (2 * sigma ** 2))
    taps = (taps / taps.sum()).to(images.dtype)
    channels = images.shape[1]
    x = F.pad(images, (radius, radius, 0, 0), mode="replicate")
    x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(x, taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def sobel(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical 3x3 Sobel derivatives (x right, y down) of [B, C, H, W], replicated borders."""
    channels = images.shape[1]
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")
    kernel_x = SOBEL_X.to(images.dtype).view(1, 1, 3, 3).expand(channels, 1, 3, 3)
    gx = F.conv2d(padded, kernel_x, groups=channels)
    gy = F.conv2d(padded, kernel_x.transpose(-1, -2), groups=channels)
    return gx, gy


def strongest_channel(gx: torch.Tensor, gy: torch.Tensor, magnitude: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per pixel, the gradient [B, 1, H, W] of the channel with the largest magnitude (the first one on ties)."""
    pick = magnitude.argmax(dim=1, keepdim=True)
    return gx.gather(1, pick), gy.gather(1, pick), magnitude.gather(1, pick)


def neighbour(magnitude: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``magnitude`` [B, 1, H, W] shifted so each pixel sees the one at (y + dy, x + dx); 0 outside the image."""
    h, w = magnitude.shape[-2:]
    padded = F.pad(magnitude, (1, 1, 1, 1))
    return padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]


def local_maxima(gx: torch.Tensor, gy: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Non-maximum suppression [B, 1, H, W] bool: a pixel is kept when its magnitude beats both neighbours across
    its edge (strictly the one before, at least equal to the one after, strictly both on diagonals)."""
    ax, ay = gx.abs(), gy.abs()
    across_x = ay < ax * TAN_22_5
    across_y = ay > ax * (TAN_22_5 + 2)
    diagonal = ~(across_x | across_y)
    same_sign = (gx * gy) >= 0
    m = magnitude
    keep_x = (m > neighbour(m, 0, -1)) & (m >= neighbour(m, 0, 1))
    keep_y = (m > neighbour(m, -1, 0)) & (m >= neighbour(m, 1, 0))
    keep_main = (m > neighbour(m, -1, -1)) & (m > neighbour(m, 1, 1))       # gradient along y = x (down-right)
    keep_anti = (m > neighbour(m, -1, 1)) & (m > neighbour(m, 1, -1))
    keep_diagonal = torch.where(same_sign, keep_main, keep_anti)
    return (across_x & keep_x) | (across_y & keep_y) | (diagonal & keep_diagonal)


def hysteresis(strong: torch.Tensor, weak: torch.Tensor) -> torch.Tensor:
    """The ``weak`` pixels [B, 1, H, W] 8-connected through weak pixels to a ``strong`` one (strong within weak)."""
    edges = strong
    while True:
        grown = (F.max_pool2d(edges.float(), 3, stride=1, padding=1) > 0) & weak
        if torch.equal(grown, edges):
            return edges
        edges = grown


def canny(images: torch.Tensor, low: float, high: float, l2_gradient: bool = False) -> torch.Tensor:
    """Canny edges {0, 1} [B, 1, H, W] of ``images`` [B, C, H, W] (no smoothing here: blur first if wanted).
    Gradient magnitude |gx| + |gy|, or sqrt(gx^2 + gy^2) with ``l2_gradient``; edges are local maxima above
    ``high``, grown through local maxima above ``low`` (swapped when low > high, as OpenCV does)."""
    low, high = min(low, high), max(low, high)
    gx, gy = sobel(images)
    magnitude = torch.sqrt(gx ** 2 + gy ** 2) if l2_gradient else gx.abs() + gy.abs()
    gx, gy, magnitude = strongest_channel(gx, gy, magnitude)
    thin = local_maxima(gx, gy, magnitude)
    return hysteresis(thin & (magnitude > high), thin & (magnitude > low)).to(images.dtype)
