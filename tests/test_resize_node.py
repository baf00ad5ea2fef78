"""ResizeImageMaskNode: every resize rule's output size, masks staying masks, Lanczos against a reference
resampler, and conversion of ComfyUI's dynamic-combo widgets (values of the chosen option only, linked
option widgets)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ltxgraph import Registry, load, unorm8
from ltxgraph.frames import CodedFrames, coded
from ltxgraph.comfyui import widget_slots
from ltxgraph_ops.image_geometry import center_crop_to_aspect, resample, resize_cropped
from ltxgraph_ops.resize_node import resize_image_mask

from tests.comfyui.builder import UIWorkflow, literal_inputs

IMAGE = torch.rand(2, 90, 160, 3, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("rule, settings, size", [
    ("scale dimensions", {"width": 64, "height": 64}, (64, 64)),
    ("scale by multiplier", {"multiplier": 0.5}, (45, 80)),
    ("scale longer dimension", {"longer_size": 320}, (180, 320)),
    ("scale shorter dimension", {"shorter_size": 45}, (45, 80)),
    ("scale width", {"width": 80}, (45, 80)),
    ("scale height", {"height": 180}, (180, 320)),
    ("scale total pixels", {"megapixels": 0.0138}, (90, 160)),
    ("scale to multiple", {"multiple": 32}, (64, 160)),
])
def test_rules_give_the_expected_size(rule, settings, size) -> None:
    out = resize_image_mask(IMAGE, rule, scale_method="bilinear", **settings)
    assert tuple(out.shape[1:3]) == size and out.shape[0] == 2 and out.shape[3] == 3


def test_masks_stay_masks_and_match_size_uses_the_other_input() -> None:
    mask = torch.rand(1, 90, 160)
    out = resize_image_mask(mask, "match size", match=torch.zeros(1, 40, 40, 3), scale_method="nearest-exact")
    assert out.shape == (1, 40, 40)


@pytest.mark.parametrize("method", ["bilinear", "lanczos", "area"])
def test_8bit_images_stay_8bit_rounded_like_a_saved_file(method: str) -> None:
    """A resized 8-bit image is held as 8-bit codes: the float path's result rounded to the grid (within half
    an LSB of it), so the cache stores it as bytes; float inputs give floats as before."""
    frames = coded(IMAGE)
    out = resize_image_mask(frames, "scale dimensions", width=64, height=48, scale_method=method)
    float_path = resize_image_mask(frames.float(), "scale dimensions", width=64, height=48, scale_method=method)
    assert isinstance(out, CodedFrames) and out.shape == float_path.shape == (2, 48, 64, 3)
    assert torch.equal(out.float(), unorm8.snap(float_path))
    assert (out.float() - float_path.clamp(0, 1)).abs().max() <= 0.5 / 255 + 1e-6
    assert isinstance(resize_image_mask(IMAGE, "scale dimensions", width=64, height=48), torch.Tensor)


def test_scale_dimensions_crops_the_centre() -> None:
    stripes = torch.zeros(1, 10, 30, 3)
    stripes[:, :, 10:20] = 1.0                       # the middle third is white
    out = resize_image_mask(stripes, "scale dimensions", width=10, height=10, crop="center",
                            scale_method="nearest-exact")
    assert out.min() == 1.0                            # only the centre square survives


@pytest.mark.parametrize("shape, width, height", [((1, 32, 2, 3), 13, 535), ((1, 2, 32, 3), 535, 13)])
def test_a_centre_crop_keeps_at_least_one_pixel(shape, width, height) -> None:
    """A 2-pixel-wide image cropped to a far narrower aspect rounds its cut to the whole width: a column at least stays
    (the op's contract check drew this; it failed inside the resampler)."""
    out = center_crop_to_aspect(torch.rand(*shape), width, height)
    assert min(out.shape[1:3]) >= 1
    assert resize_cropped(torch.rand(*shape), width, height).shape == (1, height, width, 3)


def test_lanczos_follows_comfyuis_8bit_pillow_resize() -> None:
    flat = torch.full((1, 17, 23, 3), 0.25)               # 255 x 0.25 = 63.75 truncates to code 63
    assert torch.equal(resample(flat, 11, 7, "lanczos"), torch.full((1, 7, 11, 3), 63 / 255))
    ramp = torch.linspace(0, 1, 8).view(1, 1, 8, 1).expand(1, 2, 8, 1)
    out = resample(ramp, 4, 2, "lanczos")                 # one channel: Pillow's grey image
    assert out.shape == (1, 2, 4, 1) and torch.equal(out * 255, (out * 255).round())   # on the 8-bit grid
    assert torch.all(out[0, 0, 1:] > out[0, 0, :-1])      # still a ramp


def test_dynamic_combo_widgets_convert(tmp_path: Path) -> None:
    registry = Registry.discover(["tests.engine.sample_ops"])
    spec = registry.get("ResizeImageMaskNode")
    assert widget_slots(spec) == ["resize_type", "scale_method"]
    assert widget_slots(spec, {"resize_type": "scale dimensions"}) == [
        "resize_type", "resize_type.width", "resize_type.height", "resize_type.crop", "scale_method"]
    wf = UIWorkflow()
    size = wf.node(1, "PrimitiveInt", [640, "fixed"], outputs=[("INT", "INT")])
    image = wf.node(2, "MakeTensor", [1, "fixed", 16], outputs=[("IMAGE", "IMAGE")])
    longer = wf.node(3, "ResizeImageMaskNode", ["scale longer dimension", 1536, "lanczos"],
                     inputs=[("input", "IMAGE")], outputs=[("resized", "IMAGE")])
    dims = wf.node(4, "ResizeImageMaskNode", ["scale dimensions", 1280, 720, "center", "area"],
                   inputs=[("input", "IMAGE"), ("resize_type.width", "INT")], outputs=[("resized", "IMAGE")],
                   widget_inputs=("resize_type.width",))
    preview = wf.node(5, "PreviewTensor", inputs=[("images", "IMAGE")])
    wf.link(image, 0, longer, "input", "IMAGE")
    wf.link(longer, 0, dims, "input", "IMAGE")
    wf.link(size, 0, dims, "resize_type.width", "INT")
    wf.link(dims, 0, preview, "images", "IMAGE")
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(wf.to_json()))
    graph = load(path, registry)
    assert literal_inputs(graph, "3") == {"input": "@2.IMAGE", "resize_type": "scale longer dimension",
                                            "longer_size": 1536, "scale_method": "lanczos"}
    assert literal_inputs(graph, "4") == {"input": "@3.resized", "resize_type": "scale dimensions",
                                            "width": "@1.INT", "height": 720, "crop": "center",
                                            "scale_method": "area"}
