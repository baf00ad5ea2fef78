"""Control-image preprocessors of comfyui_controlnet_aux that are not ML models: CannyEdgePreprocessor.

As that pack runs it: the image is taken to 8 bits (truncated), scaled so its shorter side is ``resolution``
(OpenCV's area averaging when shrinking, bicubic when growing), padded with its edge pixels to multiples of 64,
run through cv2.Canny (L1 gradient, colour: the strongest channel), and cropped back; the edges come out at the
detection size (the pack does not scale them back). IMAGE is [B, H, W, C] float in [0, 1].
"""
from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F

from ltxgraph import Port, op
from ltxgraph_ops.canny import canny
from ltxgraph_ops.media_video import check_images

MAX_RESOLUTION = 16384
DETECT_PADDING = 64
"""The detection image is padded (bottom, right) to multiples of this many pixels."""
CUBIC_A = -0.75
"""OpenCV's bicubic kernel parameter."""


def area_matrix(source: int, target: int) -> torch.Tensor:
    """Weights [target, source] of area averaging (OpenCV INTER_AREA when shrinking): each output pixel is the
    mean of the source span it covers, partly covered pixels by their covered fraction."""
    scale = source / target
    starts = torch.arange(target, dtype=torch.float64) * scale
    left = torch.arange(source, dtype=torch.float64)
    overlap = (torch.minimum(left[None] + 1, starts[:, None] + scale)
               - torch.maximum(left[None], starts[:, None])).clamp(min=0)
    return overlap / scale


def cubic_matrix(source: int, target: int) -> torch.Tensor:
    """Weights [target, source] of bicubic interpolation (a = -0.75, pixel centres aligned, borders replicated)."""
    centres = (torch.arange(target, dtype=torch.float64) + 0.5) * source / target - 0.5
    first = centres.floor()
    weights = torch.zeros(target, source, dtype=torch.float64)
    for tap in range(-1, 3):
        distance = (centres - (first + tap)).abs()
        near = ((CUBIC_A + 2) * distance - (CUBIC_A + 3)) * distance ** 2 + 1
        far = ((CUBIC_A * distance - 5 * CUBIC_A) * distance + 8 * CUBIC_A) * distance - 4 * CUBIC_A
        weight = torch.where(distance <= 1, near, far)
        index = (first + tap).clamp(0, source - 1).long()
        weights.index_put_((torch.arange(target), index), weight, accumulate=True)
    return weights


def resized_8bit(pixels: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """8-bit pixel values [B, C, H, W] (as floats) resized as OpenCV does for a uniform scale: area averaging when
    shrinking, bicubic when growing; rounded to whole values in [0, 255]."""
    h, w = pixels.shape[-2:]
    if (h, w) == (height, width):
        return pixels
    growing = height > h
    matrix = cubic_matrix if growing else area_matrix
    rows, columns = matrix(h, height), matrix(w, width)
    out = torch.einsum("yh,bchw,xw->bcyx", rows, pixels.double(), columns)
    whole_factors = not growing and h % height == 0 and w % width == 0
    out = (out + 0.5).floor() if whole_factors else out.round()   # OpenCV's integer fast path rounds halves up
    return out.clamp(0, 255).to(pixels.dtype)


def detection_size(height: int, width: int, resolution: int) -> tuple[int, int]:
    """(height, width) with the shorter side scaled to ``resolution`` (rounded half to even, as NumPy does)."""
    scale = resolution / min(height, width)
    return round(height * scale), round(width * scale)


@op("CannyEdgePreprocessor", outputs={"IMAGE": "IMAGE"}, category="ControlNet Preprocessors/Line Extractors")
def canny_edge_preprocessor(
        image: Annotated[torch.Tensor, Port("IMAGE")],
        low_threshold: Annotated[int, Port("INT", min=0, max=255, optional=True)] = 100,
        high_threshold: Annotated[int, Port("INT", min=0, max=255, optional=True)] = 200,
        resolution: Annotated[int, Port("INT", min=64, max=MAX_RESOLUTION, optional=True)] = 512
) -> torch.Tensor:
    """White Canny edges on black [B, h, w, 3] of each image, at the detection size (shorter side
    ``resolution``): thresholds on the L1 Sobel gradient of 8-bit pixel values."""
    pixels = (check_images(image, "image")[..., :3] * 255.0).floor().clamp(0, 255).movedim(-1, 1)
    height, width = detection_size(*pixels.shape[-2:], resolution)
    pixels = resized_8bit(pixels, width, height)
    pad_h, pad_w = (math.ceil(side / DETECT_PADDING) * DETECT_PADDING - side for side in (height, width))
    padded = F.pad(pixels, (0, pad_w, 0, pad_h), mode="replicate")
    edges = canny(padded, low_threshold, high_threshold)[..., :height, :width]
    return edges.movedim(1, -1).expand(-1, -1, -1, 3).clone()
