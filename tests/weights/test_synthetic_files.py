"""The synthetic full-size writer (tools/make_full.py, used by the real-scale benchmarks), proven at tiny scale:
the files it writes have the tiny model set's keys, shapes and header, load through the ops' loaders strictly,
and give finite outputs; a failed write leaves no file."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltxgraph.context import OpContext, RunSettings
from ltxgraph_ops.loaders import model_handle
from ltxgraph_ops.text_ops import text_encoder_handle
from ltxgraph_ops.tiny.files import write_checkpoint
from ltxgraph_ops.vae_ops import video_vae_handle
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
from ltxgraph_ops.weights.writing import SyntheticPart, write_synthetic
from tools.make_full import FILES, write_component
from tools.oracle.transformer import audio_input, video_input


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    for component in FILES:
        write_component(component, out, seed=3, scale="tiny")
    return out


def test_checkpoint_has_the_tiny_sets_layout(folder: Path, tmp_path: Path) -> None:
    synthetic = SafetensorsFile(folder / FILES["checkpoint"])
    reference = SafetensorsFile(write_checkpoint(tmp_path / "ref.safetensors", "bf16"))
    scales = {key for key in synthetic.entries if key.endswith(".weight_scale")}
    assert synthetic.entries.keys() - scales == reference.entries.keys()
    for key, entry in reference.entries.items():
        assert synthetic.entries[key].shape == entry.shape, key
        fp8 = key[: -len("weight")] + "weight_scale" in scales
        assert synthetic.entries[key].dtype == (torch.float8_e4m3fn if fp8 else entry.dtype), key
    # only the transformer's Linear weights are fp8 (as in the fp8 release); the text connectors stay 16-bit
    assert scales and all(key.startswith("model.diffusion_model.") and "embeddings_connector" not in key
                          for key in scales)
    assert synthetic.config() == reference.config()


def test_synthetic_files_load_and_run(folder: Path) -> None:
    ctx = OpContext("synthetic", settings=RunSettings(memory_budget=1))   # everything streamed
    handle = model_handle(str(folder / FILES["checkpoint"]), ctx)
    generator = torch.Generator().manual_seed(0)
    config = SafetensorsFile(folder / FILES["checkpoint"]).config()["transformer"]
    with handle.applied() as model, torch.no_grad():
        out = model(video_input(config, generator), audio_input(config, generator))
    assert torch.isfinite(out.video).all() and torch.isfinite(out.audio).all()

    vae = video_vae_handle(str(folder / FILES["checkpoint"]), ctx)
    frames = vae.decode(torch.randn(1, 128, 2, 2, 2, generator=generator))
    assert frames.shape == (9, 64, 64, 3) and torch.isfinite(frames).all()

    text = text_encoder_handle(str(folder / FILES["gemma"]), str(folder / FILES["checkpoint"]), ctx)
    cond = text.encode(["A lighthouse at dusk"])
    assert cond.video_context.shape[-1] == config["caption_channels"]
    assert torch.isfinite(cond.video_context).all() and torch.isfinite(cond.audio_context).all()
    assert SafetensorsFile(folder / FILES["upscaler"]).config()["mid_channels"] == 32


def test_clashing_parts_leave_no_file(tmp_path: Path) -> None:
    with torch.device("meta"):
        layer = torch.nn.Linear(2, 2)
    path = tmp_path / "clash.safetensors"
    with pytest.raises(ValueError, match="share keys"):
        write_synthetic(path, [SyntheticPart(layer, "a."), SyntheticPart(layer, "a.")], {})
    assert list(tmp_path.iterdir()) == []
