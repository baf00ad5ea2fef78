"""Canny edges equal OpenCV's cv2.Canny (the test-only oracle) pixel for pixel on natural-looking 8-bit images
(grey and colour, L1 and L2 gradients), and CannyEdgePreprocessor equals comfyui_controlnet_aux's pipeline
(8-bit, shorter side to ``resolution`` with cv2.resize, edge padding to multiples of 64, cv2.Canny, crop)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ltxgraph_ops.canny import canny
from ltxgraph_ops.nodes.preprocessors import canny_edge_preprocessor


def natural_image(seed: int, height: int, width: int, channels: int = 3) -> torch.Tensor:
    """8-bit pixel values [C, H, W]: overlapping coloured discs on a wavy background, with grain, softened."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    image = 0.15 * torch.sin(12 * x + 7 * y * torch.rand(1, generator=generator)).expand(channels, -1, -1)
    for _ in range(6):
        cx, cy, radius = torch.rand(3, generator=generator)
        disc = (((x - cx) ** 2 + (y - cy) ** 2) < (0.3 * radius) ** 2).float()
        image = image * (1 - disc) + torch.rand(channels, 1, 1, generator=generator) * disc
    image = image + 0.05 * torch.randn(channels, height, width, generator=generator)
    soft = F.interpolate(F.interpolate(image[None], scale_factor=0.5, mode="bilinear"), size=(height, width),
                         mode="bilinear")[0]
    return (soft.clamp(0, 1) * 255).round()


def agreement(ours: np.ndarray, theirs: np.ndarray) -> float:
    assert ours.shape == theirs.shape
    return float((ours == theirs).mean())


@pytest.mark.oracle
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("l2_gradient", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_canny_equals_opencv(seed: int, channels: int, l2_gradient: bool) -> None:
    cv2 = pytest.importorskip("cv2")
    pixels = natural_image(seed, 96, 128, channels)
    theirs = cv2.Canny(np.ascontiguousarray(pixels.permute(1, 2, 0).to(torch.uint8).numpy()), 60, 140,
                       L2gradient=l2_gradient) > 0
    ours = canny(pixels[None], 60, 140, l2_gradient)[0, 0].bool().numpy()
    assert theirs.sum() > 150 and agreement(ours, theirs) == 1.0


def controlnet_aux_canny(cv2, image: np.ndarray, low: int, high: int, resolution: int) -> np.ndarray:
    """comfyui_controlnet_aux's CannyDetector on one [H, W, 3] float image, written out with OpenCV."""
    pixels = np.asarray(image * 255.0, dtype=np.uint8)
    height, width = pixels.shape[:2]
    scale = resolution / min(height, width)
    size = int(np.round(height * scale)), int(np.round(width * scale))
    method = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    pixels = cv2.resize(pixels, (size[1], size[0]), interpolation=method)
    padding = [[0, math.ceil(side / 64) * 64 - side] for side in size] + [[0, 0]]
    return cv2.Canny(np.pad(pixels, padding, mode="edge"), low, high)[:size[0], :size[1]] > 0


@pytest.mark.oracle
@pytest.mark.parametrize("height, width, resolution", [(200, 300, 128), (256, 384, 128), (130, 170, 64),
                                                      (180, 320, 256), (96, 128, 128)])
def test_canny_edge_preprocessor_equals_controlnet_aux(height: int, width: int, resolution: int) -> None:
    # shrinking (area averaging) is exact; growing (bicubic) rounds a few pixel values differently from OpenCV's
    # fixed-point bicubic (by 1 of 255), which may move an edge pixel
    cv2 = pytest.importorskip("cv2")
    image = natural_image(height + width, height, width).permute(1, 2, 0) / 255.0
    theirs = controlnet_aux_canny(cv2, image.numpy(), 92, 200, resolution)
    ours = canny_edge_preprocessor(image[None], 92, 200, resolution)[0]
    assert torch.equal(ours[..., 0], ours[..., 2]) and theirs.sum() > 200
    exact = resolution <= min(height, width)
    assert agreement(ours[..., 0].bool().numpy(), theirs) >= (1.0 if exact else 0.995)


def test_preprocessor_gives_white_edges_at_the_detection_size() -> None:
    image = torch.zeros(2, 90, 160, 3)
    image[:, :, 80:] = 1.0                                            # a vertical step edge at x = 80
    edges = canny_edge_preprocessor(image, 100, 200, 180)             # shorter side 90 -> 180: 180 x 320
    assert edges.shape == (2, 180, 320, 3) and set(edges.unique().tolist()) == {0.0, 1.0}
    columns = edges[0, :, :, 0].nonzero()[:, 1].unique()
    assert columns.tolist() in ([159], [160], [159, 160])


def test_thresholds_are_swapped_when_low_is_above_high() -> None:
    pixels = natural_image(9, 64, 64)[None]
    assert torch.equal(canny(pixels, 140, 60), canny(pixels, 60, 140))
