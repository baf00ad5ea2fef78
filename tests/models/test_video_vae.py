"""The LTX-2 video VAE (2.0 and 2.3 layouts): shapes and timing, input checks, the release layouts against their
manifests, the decoder widths the 2.3 header configures, the tiled ops on a 2.3 file, and parity with ltx-core
(tools/oracle/video_vae.py) and diffusers (tools/oracle/diffusers_video_vae.py)."""
from __future__ import annotations

import json

import pytest
import torch

from ltxgraph.values import VideoLatent
from ltxgraph_ops.models.video_vae import VideoDecoder, VideoVAEConfig
from ltxgraph_ops.tiny import video_vae as tiny
from ltxgraph_ops.vae_ops import (spatio_temporal_tiled_decode, vae_decode, vae_decode_tiled, vae_encode,
                                  vae_encode_tiled, video_vae_handle)
from ltxgraph_ops.weights.writing import checkpoint_tensors, header_metadata, save_atomic
from tools.oracle import diffusers_video_vae as diffusers_oracle
from tools.oracle import video_vae as oracle

from ..conftest import REFERENCE


MANIFESTS = {"2.0": "ltx2_19b_manifest.json", "2.3": "ltx23_22b_manifest.json"}


@pytest.fixture(scope="module", params=sorted(tiny.TINY_CONFIGS))
def vae(request):
    return tiny.build(tiny.TINY_CONFIGS[request.param]()).eval()


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


@pytest.mark.parametrize("version", sorted(tiny.RELEASE_CONFIGS))
def test_full_size_layout_matches_the_manifest(version: str) -> None:
    manifest = json.loads((REFERENCE / MANIFESTS[version]).read_text())["video_vae"]
    model = tiny.build(tiny.RELEASE_CONFIGS[version](), device="meta")
    ours = {tiny.PREFIX + key: list(t.shape) for key, t in model.state_dict().items()}
    assert ours == {key: value[0] for key, value in manifest.items()}


def test_23_config_is_the_release_header_section() -> None:
    release = json.loads((REFERENCE / "ltx23_22b_config.json").read_text())["vae"]
    assert tiny.full_config_23() == release
    assert VideoVAEConfig.from_header(release).scale_factors == (8, 32, 32)


def test_decoder_starts_at_base_width_times_every_channel_reduction() -> None:
    """2.3: 128 x (2 x 1 x 2 x 2) = 1024 ending at 128; a made-up layout whose reductions multiply to 6 starts at
    6 x base and still ends at base."""
    def widths(section: dict) -> tuple[int, int]:
        with torch.device("meta"):
            decoder = VideoDecoder(VideoVAEConfig.from_header(section))
        return decoder.conv_in.conv.out_channels, decoder.conv_out.conv.in_channels

    assert widths(tiny.full_config_23()) == (1024, 128)
    made_up = {**tiny.tiny_config_23(), "decoder_base_channels": 4,
               "decoder_blocks": [["res_x", {"num_layers": 1}], ["compress_time", {"multiplier": 3}],
                                  ["res_x_y", {"multiplier": 2}], ["compress_space", {}],
                                  ["compress_all", {"multiplier": 1}], ["res_x", {"num_layers": 1}]]}
    assert widths(made_up) == (24, 4)


@torch.no_grad()
def test_tiled_vae_ops_run_on_a_23_checkpoint(tmp_path) -> None:
    """A file holding only the tiny 2.3 VAE: plain, tiled and spatio-temporal tiled decode give the same frames,
    tiles larger than the latent equal plain decode, tiled encode gives the latent shape."""
    section = tiny.tiny_config_23()
    with torch.device("meta"):
        layout = tiny.build(section, device="meta")
    path = save_atomic(tmp_path / "ltx-2.3-vae.safetensors", checkpoint_tensors([(layout, tiny.PREFIX)], 0, "bf16"),
                       header_metadata({tiny.SECTION: section}))
    vae = video_vae_handle(str(path), None)
    assert vae.scale_factors == (8, 32, 32)
    latent = VideoLatent(torch.randn(1, 128, 3, 2, 3, generator=torch.Generator().manual_seed(2)), 25.0, 17)
    plain = vae_decode(latent, vae).float()
    assert plain.shape == (17, 64, 96, 3) and float(plain.std()) > 0
    one_tile = vae_decode_tiled(latent, vae, tile_size=512, overlap=64, temporal_size=64, temporal_overlap=8)
    assert torch.allclose(one_tile.float(), plain, atol=1e-5)
    tiled = vae_decode_tiled(latent, vae, tile_size=64, overlap=32, temporal_size=16, temporal_overlap=8)
    spatio = spatio_temporal_tiled_decode(vae, latent, spatial_tiles=2, spatial_overlap=1, temporal_tile_length=2,
                                          temporal_overlap=1)
    assert tiled.shape == spatio.shape == plain.shape
    assert vae_encode(plain, vae).samples.shape == (1, 128, 3, 2, 3)
    encoded = vae_encode_tiled(plain, vae, tile_size=64, overlap=32, temporal_size=16, temporal_overlap=8)
    assert encoded.samples.shape == (1, 128, 3, 2, 3) and torch.isfinite(encoded.samples).all()


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_parity_with_reference(name: str) -> None:
    error = oracle.CHECKS[name]()
    assert error <= 1e-5, f"{name}: {error:.3g}"


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(diffusers_oracle.CHECKS))
def test_parity_with_diffusers(name: str) -> None:
    """2.0 and 2.3 layouts (two layers per stage, x2 and x1 resamplers) against diffusers' AutoencoderKLLTX2Video;
    the check raises when either output is not finite or is constant."""
    pytest.importorskip("diffusers")
    error = diffusers_oracle.CHECKS[name]()
    assert error <= 1e-5, f"{name}: {error:.3g}"
