"""The x2 latent upscaler: shapes, unsupported configs, manifest layout, parity with ltx-core."""
from __future__ import annotations

import json

import pytest
import torch

from ltxgraph_ops.models.upscaler import LatentUpscalerConfig
from ltxgraph_ops.tiny import upscaler as tiny
from tools.oracle import upscaler as oracle

from ..conftest import REFERENCE


@torch.no_grad()
def test_doubles_height_and_width() -> None:
    model = tiny.build(tiny.tiny_config()).eval()
    assert model(torch.randn(1, 128, 3, 4, 5)).shape == (1, 128, 3, 8, 10)


@pytest.mark.parametrize("key, value", [("temporal_upsample", True), ("rational_resampler", True),
                                        ("spatial_scale", 1.5), ("dims", 2)])
def test_other_upscalers_are_refused_by_name(key, value) -> None:
    with pytest.raises(ValueError, match=key):
        LatentUpscalerConfig.from_header({**tiny.full_config(), key: value})


def test_full_size_layout_matches_the_manifest() -> None:
    manifest = json.loads((REFERENCE / "ltx2_19b_manifest.json").read_text())["upsampler_x2"]
    model = tiny.build(tiny.full_config(), device="meta")
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == {k: v[0] for k, v in manifest.items()}


@pytest.mark.oracle
def test_parity_with_reference() -> None:
    assert oracle.CHECKS["upscaler"]() <= 1e-5
