"""The LTX-2 video VAE: shapes and timing, input checks, the 19B layout against the manifest, and parity with
ltx-core (tools/oracle/video_vae.py)."""
from __future__ import annotations

import json

import pytest
import torch

from ltxgraph_ops.models.video_vae import VideoVAEConfig
from ltxgraph_ops.tiny import video_vae as tiny
from tools.oracle import video_vae as oracle

from ..conftest import REFERENCE


@pytest.fixture(scope="module")
def vae():
    return tiny.build(tiny.tiny_config()).eval()


@torch.no_grad()
def test_shapes_follow_the_8x_32x_compression(vae) -> None:
    pixels = torch.rand(2, 3, 17, 64, 96) * 2 - 1
    latent = vae.encode(pixels)
    assert latent.shape == (2, 128, 3, 2, 3)
    assert vae.decode(latent).shape == (2, 3, 17, 64, 96)


@torch.no_grad()
def test_encoder_is_causal_in_time(vae) -> None:
    pixels = torch.rand(1, 3, 17, 32, 32) * 2 - 1
    changed = pixels.clone()
    changed[:, :, 9:] = 0.0                      # alter only the last 8 frames (latent frame 2)
    a, b = vae.encode(pixels), vae.encode(changed)
    assert torch.equal(a[:, :, :2], b[:, :, :2]) and not torch.equal(a[:, :, 2], b[:, :, 2])


@pytest.mark.parametrize("shape", [(1, 3, 10, 64, 64), (1, 3, 9, 48, 64), (1, 3, 9, 64, 40)])
def test_bad_input_shapes_are_refused(vae, shape) -> None:
    with pytest.raises(ValueError, match="8n\\+1 frames"):
        vae.encode(torch.zeros(shape))


def test_unsupported_configs_are_named() -> None:
    with pytest.raises(ValueError, match="timestep_conditioning"):
        VideoVAEConfig.from_header({**tiny.full_config(), "timestep_conditioning": True})
    with pytest.raises(ValueError, match="norm_layer 'group_norm'"):
        VideoVAEConfig.from_header({**tiny.full_config(), "norm_layer": "group_norm"})


def test_full_size_layout_matches_the_manifest() -> None:
    manifest = json.loads((REFERENCE / "ltx2_19b_manifest.json").read_text())["video_vae"]
    model = tiny.build(tiny.full_config(), device="meta")
    ours = {tiny.PREFIX + key: list(t.shape) for key, t in model.state_dict().items()}
    assert ours == {key: value[0] for key, value in manifest.items()}


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_parity_with_reference(name: str) -> None:
    error = oracle.CHECKS[name]()
    assert error <= 1e-5, f"{name}: {error:.3g}"
