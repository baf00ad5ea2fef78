"""LTXVLaplacianPyramidBlend: seamless compositing of two videos under a mask by Laplacian pyramids (Burt &
Adelson 1983): each band of detail is blended under the correspondingly blurred mask, so seams vanish at every
scale. Pyramids are built on the frames padded (reflected) to power-of-two sizes with the 5x5 binomial kernel."""
from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph_ops.nodes.masks import as_video_mask

MAX_LEVELS = 7
MASK_DILATION_LONG_SIDE = 64
"""The mask is dilated at this long side (pixels), then scaled back: a cheap wide dilation."""
FRAMES_PER_CHUNK = 8


def binomial_kernel() -> torch.Tensor:
    """[5, 5] Gaussian-like kernel, the outer product of [1, 4, 6, 4, 1] / 16."""
    row = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    return row[:, None] * row[None, :]


def blur(x: torch.Tensor) -> torch.Tensor:
    """x [N, C, H, W] filtered with the binomial kernel per channel, edges reflected."""
    channels = x.shape[1]
    weight = binomial_kernel().to(x.dtype)[None, None].expand(channels, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), weight, groups=channels)


def pyramid_down(x: torch.Tensor) -> torch.Tensor:
    """Blur, then halve both sides (bilinear, = mean of 2x2 blocks at even sizes)."""
    height, width = x.shape[-2:]
    return F.interpolate(blur(x), size=(height // 2, width // 2), mode="bilinear", align_corners=False)


def pyramid_up(x: torch.Tensor) -> torch.Tensor:
    """Double both sides (bilinear), then blur."""
    height, width = x.shape[-2:]
    return blur(F.interpolate(x, size=(height * 2, width * 2), mode="bilinear", align_corners=False))


def gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[x, down(x), down(down(x)), ...]: ``levels`` images, finest first."""
    pyramid = [x]
    for _ in range(levels - 1):
        pyramid.append(pyramid_down(pyramid[-1]))
    return pyramid


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass images G_i - up(G_{i+1}) and, last, the coarsest Gaussian level; summing back up restores x."""
    gaussian = gaussian_pyramid(x, levels)
    bands = [fine - pyramid_up(coarse) for fine, coarse in zip(gaussian[:-1], gaussian[1:])]
    return bands + [gaussian[-1]]


def next_power_of_two(n: int) -> int:
    return 1 << (n - 1).bit_length()


def pad_to_power_of_two(x: torch.Tensor) -> torch.Tensor:
    """x [N, C, H, W] reflected at the right and bottom to power-of-two sides."""
    height, width = x.shape[-2:]
    pad = (0, next_power_of_two(width) - width, 0, next_power_of_two(height) - height)
    return F.pad(x, pad, mode="reflect") if any(pad) else x


def pyramid_blend(image_a: torch.Tensor, image_b: torch.Tensor, mask: torch.Tensor,
                  levels: int = MAX_LEVELS) -> torch.Tensor:
    """image_a where mask is 1, image_b where it is 0, blended band by band. Inputs [N, C, H, W] (mask C = 1);
    at most log2(short padded side) levels. Returns [N, C, H, W] clamped to [0, 1]."""
    height, width = image_a.shape[-2:]
    a, b, m = (pad_to_power_of_two(t.float()) for t in (image_a, image_b, mask))
    levels = min(levels, int(math.log2(min(a.shape[-2:]))))
    bands_a, bands_b = laplacian_pyramid(a, levels), laplacian_pyramid(b, levels)
    masks = gaussian_pyramid(m, levels)
    out = bands_a[-1] * masks[-1] + bands_b[-1] * (1 - masks[-1])
    for band_a, band_b, weight in zip(bands_a[-2::-1], bands_b[-2::-1], masks[-2::-1]):
        out = pyramid_up(out) + band_a * weight + band_b * (1 - weight)
    return out[..., :height, :width].clamp(0.0, 1.0)


def dilate_at_low_resolution(mask: torch.Tensor, radius: int, long_side: int = MASK_DILATION_LONG_SIDE
                             ) -> torch.Tensor:
    """mask [N, 1, H, W] scaled (bilinear) to ``long_side`` on its longer side, max-filtered over 2 radius + 1
    cells, and scaled back to H x W (bilinear): a soft dilation by about radius / long_side of the frame."""
    if radius <= 0:
        return mask
    height, width = mask.shape[-2:]
    small = mask.float()
    if max(height, width) != long_side:
        scale = long_side / max(height, width)
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        small = F.interpolate(small, size=size, mode="bilinear", align_corners=False)
    small = F.max_pool2d(small, 2 * radius + 1, stride=1, padding=radius)
    return F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)


@op("LTXVLaplacianPyramidBlend", outputs={"image": "IMAGE"}, category="Lightricks/utility")
def laplacian_pyramid_blend(image_a: Annotated[torch.Tensor, Port("IMAGE")],
                            image_b: Annotated[torch.Tensor, Port("IMAGE")],
                            mask: Annotated[torch.Tensor, Port("MASK")],
                            trim_to_shortest: Annotated[bool, Port("BOOLEAN")] = True,
                            mask_low_res_dilation: Annotated[int, Port("INT", min=0, max=15)] = 5,
                            ctx: OpContext = None) -> torch.Tensor:
    """image_a inside the mask, image_b outside, joined without seams (7-level Laplacian pyramids; the mask
    first dilated by ``mask_low_res_dilation`` cells at 64 pixels long side). Frame counts must agree unless
    ``trim_to_shortest``."""
    mask = as_video_mask(mask)
    if image_a.shape[1:3] != image_b.shape[1:3] or image_a.shape[1:3] != mask.shape[1:]:
        raise InputValueError(f"image_a {tuple(image_a.shape[1:3])}, image_b {tuple(image_b.shape[1:3])} and mask "
                              f"{tuple(mask.shape[1:])} must have one size (height, width)")
    counts = (image_a.shape[0], image_b.shape[0], mask.shape[0])
    if trim_to_shortest:
        image_a, image_b, mask = image_a[:min(counts)], image_b[:min(counts)], mask[:min(counts)]
    elif len(set(counts)) > 1:
        raise InputValueError(f"frame counts differ (image_a {counts[0]}, image_b {counts[1]}, mask {counts[2]}): "
                              "turn on trim_to_shortest or give equal lengths")
    weights = dilate_at_low_resolution(mask[:, None], mask_low_res_dilation)
    a, b = image_a.movedim(-1, 1), image_b.movedim(-1, 1)
    chunks = []
    for start in range(0, a.shape[0], FRAMES_PER_CHUNK):
        end = start + FRAMES_PER_CHUNK
        chunks.append(pyramid_blend(a[start:end], b[start:end], weights[start:end]))
        if ctx is not None:
            ctx.step(min(end, a.shape[0]), a.shape[0])
    return torch.cat(chunks).movedim(1, -1)
