"""The latent upscalers (2.0 spatial x2; 2.3 spatial x2 1.1, spatial x1.5, temporal x2): shapes, kinds decided
from the header, refused configs, strict files, the ops' frame rule, parity with ltx-core and diffusers."""
from __future__ import annotations

import json

import pytest
import torch

from ltxgraph.values import AVLatent, AudioLatent, VideoLatent
from ltxgraph_ops.handles import Lazy
from ltxgraph_ops.models.upscaler import LatentUpscalerConfig, shuffle_channels_into_axes
from ltxgraph_ops.tiny import upscaler as tiny
from ltxgraph_ops.tiny.files import write_upscalers
from ltxgraph_ops.upscale_ops import latent_upscale_model_loader, ltxv_latent_upsampler
from ltxgraph_ops.vae_handle import VideoVAEHandle
from ltxgraph_ops.weights.safetensors_file import CheckpointError
from ltxgraph_ops.weights.writing import checkpoint_tensors, header_metadata, save_atomic
from tools.oracle import upscaler as oracle
from tools.oracle import upscaler23 as oracle23

from ..conftest import REFERENCE

RELEASE_23 = {"ltx-2.3-spatial-upscaler-x2-1.1.safetensors": ("spatial x2", (3, 8, 12)),
              "ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors": ("spatial x1.5", (3, 6, 9)),
              "ltx-2.3-temporal-upscaler-x2-1.0.safetensors": ("temporal x2", (5, 4, 6))}


@pytest.mark.parametrize("name", sorted(RELEASE_23))
@torch.no_grad()
def test_each_release_kind_and_output_shape(name) -> None:
    kind, shape = RELEASE_23[name]
    model = tiny.build(tiny.tiny_config(tiny.RELEASE_FILES[name]())).eval()
    assert model.config.kind == kind
    out = model(torch.randn(1, 128, 3, 4, 6))
    assert out.shape == (1, 128, *shape) and bool(torch.isfinite(out).all())


@torch.no_grad()
def test_doubles_height_and_width() -> None:
    model = tiny.build(tiny.tiny_config()).eval()
    assert model(torch.randn(1, 128, 3, 4, 5)).shape == (1, 128, 3, 8, 10)


def test_pixel_shuffle_moves_channel_factors_into_axes() -> None:
    x = torch.arange(2 * 4 * 3 * 5, dtype=torch.float32).reshape(2, 4, 3, 5)
    assert torch.equal(shuffle_channels_into_axes(x, (2, 2)), torch.nn.functional.pixel_shuffle(x, 2))
    frames = torch.arange(6, dtype=torch.float32).reshape(1, 2, 3, 1, 1)       # channel (c=0, p) at frame f
    assert shuffle_channels_into_axes(frames, (2, 1, 1)).flatten().tolist() == [0, 3, 1, 4, 2, 5]


@pytest.mark.parametrize("change, words", [({"dims": 2}, "dims"), ({"spatial_scale": 1.5}, "rational_resampler"),
                                           ({"rational_resampler": True, "spatial_scale": 3.0}, "spatial_scale"),
                                           ({"spatial_upsample": False}, "both false")])
def test_unsupported_configs_are_refused_by_name(change, words) -> None:
    with pytest.raises(ValueError, match=words):
        LatentUpscalerConfig.from_header({**tiny.full_config(), **change})


def test_full_size_layout_matches_the_manifest() -> None:
    manifest = json.loads((REFERENCE / "ltx2_19b_manifest.json").read_text())["upsampler_x2"]
    model = tiny.build(tiny.full_config(), device="meta")
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == {k: v[0] for k, v in manifest.items()}


def test_full_size_resampling_stages_of_the_23_files() -> None:
    """Release layouts (mid 1024): the x1.5 file holds the resampler conv (9 x width) and the blur kernel, the
    temporal file a conv3d to 2 x width; every other key as the x2 file."""
    def stage(config: dict) -> dict:
        state = tiny.build(config, device="meta").state_dict()
        return {k: tuple(v.shape) for k, v in state.items() if k.startswith("upsampler.")}
    assert stage(tiny.spatial_x1_5_config()) == {"upsampler.conv.weight": (9216, 1024, 3, 3),
                                                "upsampler.conv.bias": (9216,),
                                                "upsampler.blur_down.kernel": (1, 1, 5, 5)}
    assert stage(tiny.temporal_x2_config()) == {"upsampler.0.weight": (2048, 1024, 3, 3, 3),
                                               "upsampler.0.bias": (2048,)}


def _write(path, config: dict, tensors_from: dict | None = None):
    with torch.device("meta"):
        built = tiny.build(tensors_from or config, device="meta")
    return save_atomic(path, checkpoint_tensors([(built, "")], 0, "bf16"), header_metadata(config))


def _vae() -> VideoVAEHandle:
    stats = (0.1 * torch.randn(128), 1 + 0.1 * torch.rand(128))
    return VideoVAEHandle("stats only", Lazy(lambda: None, "no VAE"), statistics=Lazy(lambda: stats, "stats"))


def test_temporal_upscale_doubles_frames_and_fps_and_keeps_audio(tmp_path) -> None:
    config = tiny.tiny_config(tiny.temporal_x2_config())
    path = _write(tmp_path / "ltx-2.3-temporal-upscaler-x2-1.0.safetensors", config)
    handle = latent_upscale_model_loader(str(path))
    assert handle.config.kind == "temporal x2"
    video = VideoLatent(torch.randn(1, 128, 3, 2, 3), 24.0, 17, torch.ones(1, 1, 3, 1, 1))
    audio = AudioLatent(torch.zeros(1, 8, 18, 16), 25.0, 17 / 24)
    out = ltxv_latent_upsampler(AVLatent(video, audio), handle, _vae())
    assert out.video.samples.shape == (1, 128, 5, 2, 3)
    assert (out.video.frames, out.video.fps, out.video.noise_mask) == (33, 48.0, None)
    assert out.video.frames / out.video.fps == pytest.approx(video.frames / video.fps, abs=1 / 24)
    assert out.audio is audio


def test_spatial_x1_5_keeps_frames(tmp_path) -> None:
    path = _write(tmp_path / "x1.5.safetensors", tiny.tiny_config(tiny.spatial_x1_5_config()))
    out = ltxv_latent_upsampler(VideoLatent(torch.randn(1, 128, 2, 4, 6), 25.0, 9),
                                latent_upscale_model_loader(str(path)), _vae())
    assert out.samples.shape == (1, 128, 2, 6, 9) and (out.frames, out.fps) == (9, 25.0)


def test_tiny_set_holds_every_release_file_and_the_loader_tells_them_apart(tmp_path) -> None:
    written = {path.name: path for path in write_upscalers(tmp_path)}
    assert set(written) == set(tiny.RELEASE_FILES)
    kinds = {name: latent_upscale_model_loader(str(path)).config.kind for name, path in written.items()}
    assert kinds == {"ltx-2-spatial-upscaler-x2-1.0.safetensors": "spatial x2",
                     "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors": "spatial x2",
                     **{name: kind for name, (kind, _) in RELEASE_23.items()}}
    x1_5 = latent_upscale_model_loader(str(written["ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors"])).model.get()
    assert torch.allclose(x1_5.upsampler.blur_down.kernel.sum(), torch.tensor(1.0), atol=1e-2)  # real binomial


def test_header_that_does_not_fit_the_tensors_is_refused_naming_keys(tmp_path) -> None:
    """A header saying x1.5 over the tensors of an x2 file: the loader names the missing and unexpected keys."""
    path = _write(tmp_path / "mixed.safetensors", tiny.tiny_config(tiny.spatial_x1_5_config()),
                  tensors_from=tiny.tiny_config())
    with pytest.raises(CheckpointError, match="upsampler.conv.weight") as error:
        latent_upscale_model_loader(str(path))
    assert "upsampler.0.weight" in str(error.value) and "mixed.safetensors" in str(error.value)


@pytest.mark.oracle
def test_parity_with_reference() -> None:
    assert oracle.CHECKS["upscaler"]() <= 1e-5


@pytest.mark.oracle
@pytest.mark.parametrize("key", sorted(oracle23.CHECKS))
def test_23_parity_with_diffusers_and_ltx_core(key) -> None:
    pytest.importorskip("diffusers")
    assert oracle23.CHECKS[key]() <= 1e-5
