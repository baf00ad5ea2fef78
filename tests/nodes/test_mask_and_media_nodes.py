"""Mask and image helper nodes: exact values from the nodes' definitions."""
from __future__ import annotations

import pytest
import torch

from ltxgraph.errors import InputValueError
from ltxgraph.values import Audio
from ltxgraph_ops.nodes.masks import dilate_video_mask, image_to_mask, inpaint_preprocess, solid_mask
from ltxgraph_ops.nodes.media import (get_image_size_and_count, hdr_decode_postprocess, linear_to_srgb,
                                      logc3_to_linear, pad_for_outpaint_target_size, preview_audio,
                                      repeat_image_batch)


def test_solid_mask_is_one_frame_of_the_value() -> None:
    mask = solid_mask(0.0, 1024, 512)
    assert mask.shape == (1, 512, 1024) and float(mask.abs().max()) == 0.0
    assert float(solid_mask(0.25, 3, 2).mean()) == 0.25


def test_image_to_mask_takes_one_channel() -> None:
    image = torch.rand(2, 4, 5, 3)
    assert torch.equal(image_to_mask(image, "green"), image[..., 1])
    with pytest.raises(InputValueError, match="no alpha channel"):
        image_to_mask(image, "alpha")


def test_repeat_image_batch_repeats_the_whole_batch() -> None:
    image = torch.arange(2.0)[:, None, None, None].expand(2, 1, 1, 3)
    assert repeat_image_batch(image, 3)[:, 0, 0, 0].tolist() == [0, 1, 0, 1, 0, 1]


def test_image_size_and_count() -> None:
    image = torch.zeros(7, 32, 48, 3)
    passed, width, height, count = get_image_size_and_count(image)
    assert passed is image and (width, height, count) == (48, 32, 7)


def test_dilate_video_mask_grows_in_space_and_time() -> None:
    mask = torch.zeros(5, 7, 7)
    mask[2, 3, 3] = 1.0
    grown = dilate_video_mask(1, 1, mask=mask)
    assert grown[1:4, 2:5, 2:5].min() == 1.0 and grown.sum() == 27
    assert dilate_video_mask(0, 0, mask=mask * 0.4).sum() == 0          # thresholded at 0.5
    image = mask[..., None].expand(5, 7, 7, 3)
    assert torch.equal(dilate_video_mask(1, 1, image_as_mask=image), grown)
    with pytest.raises(InputValueError, match="connect a mask"):
        dilate_video_mask(1, 0)


def test_dilation_equals_the_square_max_filter_at_edges_too() -> None:
    mask = (torch.rand(3, 20, 31, generator=torch.Generator().manual_seed(4)) > 0.97).float() * 0.8
    for radius in (1, 4, 12):
        size = 2 * radius + 1
        square = torch.nn.functional.max_pool2d(mask[:, None], size, stride=1, padding=radius)[:, 0]
        assert torch.equal(dilate_video_mask(radius, 0, mask=mask), (square > 0.5).float())


def test_inpaint_preprocess_paints_the_masked_region_green() -> None:
    images = torch.full((3, 2, 2, 3), 0.5)
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.5]]])
    out = inpaint_preprocess(images, mask)
    assert out.shape == (3, 2, 2, 3)
    assert torch.allclose(out[:, 0, 0], torch.tensor([102 / 255, 1.0, 0.0]))
    assert torch.allclose(out[:, 0, 1], torch.full((3,), 0.5))
    assert torch.allclose(out[:, 1, 1], 0.5 * 0.5 + 0.5 * torch.tensor([102 / 255, 1.0, 0.0]))


def test_outpaint_pad_centres_the_picture_on_grey() -> None:
    image = torch.rand(1, 4, 6, 3)
    canvas, mask = pad_for_outpaint_target_size(image, 10, 8, 0, "nearest-exact")
    assert canvas.shape == (1, 8, 10, 3) and mask.shape == (1, 8, 10)
    assert torch.equal(canvas[:, 2:6, 2:8], image) and float(canvas[0, 0, 0, 0]) == 0.5
    assert float(mask[0, 2:6, 2:8].max()) == 0.0 and float(mask.sum()) == 80 - 24


def test_outpaint_pad_shrinks_to_fit_and_feathers() -> None:
    image = torch.rand(1, 20, 40, 3)
    canvas, mask = pad_for_outpaint_target_size(image, 20, 20, 3, "bilinear")
    assert canvas.shape == (1, 20, 20, 3)                               # 40x20 -> 20x10, padded 5 above/below
    inner = mask[0, 5:15]
    # rows next to the padded top/bottom: d = 0, 1, 2 -> (1 - d/3)^2; left/right were not padded
    assert torch.allclose(inner[:3, 10], torch.tensor([1.0, 4 / 9, 1 / 9]))
    assert float(inner[5, 10]) == 0.0 and float(mask[0, 0, 0]) == 1.0


def test_outpaint_pad_with_mask_inverts_it() -> None:
    mask = torch.zeros(1, 2, 2)
    mask[0, 0, 0] = 1.0
    _, out = pad_for_outpaint_target_size(torch.rand(1, 2, 2, 3), 4, 2, 1, "bilinear", mask)
    assert out[0].tolist() == [[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]


def test_preview_audio_passes_the_audio_on() -> None:
    audio = Audio(torch.zeros(1, 2, 10), 24000)
    assert preview_audio(audio) is audio


def test_logc3_decodes_code_values_to_linear_light() -> None:
    # encode linear values with the LogC3 (EI 800) curve, then decode
    linear = torch.tensor([0.0, 0.005, 0.18, 1.0, 10.0])
    log_part = 0.247190 * torch.log10(5.555556 * linear + 0.052272) + 0.385537
    code = torch.where(linear >= 0.010591, log_part, 5.367655 * linear + 0.092809)
    assert torch.allclose(logc3_to_linear(code), linear, rtol=1e-4, atol=1e-6)


def test_hdr_postprocess_tonemaps_with_reinhard_and_srgb() -> None:
    code = torch.full((1, 1, 1, 3), 0.391)         # about 0.18 linear (18% grey)
    tonemapped, hdr = hdr_decode_postprocess(code, exposure=1.0)
    expected = linear_to_srgb(hdr * 2 / (1 + hdr * 2))
    assert torch.allclose(tonemapped, expected)
    assert abs(float(hdr.mean()) - 0.18) < 0.01
    assert float(linear_to_srgb(torch.tensor(0.001))) == pytest.approx(0.01292)
