"""LTX-2.5's text-to-video graph end to end on int8-convrot files (the release's format for its single-file
checkpoint's transformer and its Gemma 4 text encoder, tiny here): it runs, and its latent equals, bit for bit,
the same graph's on float32 files of the dequantised weights."""
from __future__ import annotations

from pathlib import Path

import torch

from ltxgraph import api
from ltxgraph.paths import Folders
from ltxgraph_ops.tiny.files import (CHECKPOINTS_25, TEXT_ENCODER_WITH_PROJ_25, write_checkpoint, write_split_25,
                                     write_upscalers)
from ltxgraph_ops.weights.writing import dequantised_file

GRAPH = Path(__file__).resolve().parents[2] / "graphs" / "ltx25_t2v.yaml"
CHECKPOINT = "ltx-2.5-22b-distilled.safetensors"


def models_folder(root: Path) -> Path:
    models = root / "models"
    write_checkpoint(models / "checkpoints" / CHECKPOINT, "int8-convrot", CHECKPOINTS_25[CHECKPOINT][1],
                     version="2.5")
    write_split_25(root / "split", storage="int8-convrot")
    (models / "text_encoders").mkdir(parents=True)
    (root / "split" / "text_encoders" / TEXT_ENCODER_WITH_PROJ_25).rename(
        models / "text_encoders" / TEXT_ENCODER_WITH_PROJ_25)
    write_upscalers(models / "latent_upscale_models")
    return models


def test_the_25_graph_runs_on_int8_convrot_files(tmp_path: Path) -> None:
    quantised = models_folder(tmp_path / "int8")
    dequantised = tmp_path / "float" / "models"
    for path in (quantised / "checkpoints" / CHECKPOINT, quantised / "text_encoders" / TEXT_ENCODER_WITH_PROJ_25):
        target = dequantised / path.relative_to(quantised)
        target.parent.mkdir(parents=True, exist_ok=True)
        dequantised_file(path, target)
    (dequantised / "latent_upscale_models").symlink_to(quantised / "latent_upscale_models")
    latents = []
    for models in (quantised, dequantised):
        runner = api.Runner(use_cache=False, folders=Folders(models=(models,), output=models.parent / "out"))
        result = runner.run(api.load(GRAPH), {"width": 256, "height": 128, "length": 9, "fps": 25})
        latents.append(result.outputs["latent"].video.samples)
    assert latents[0].shape[-2:] == (4, 8) and torch.isfinite(latents[0]).all()
    assert torch.equal(latents[0], latents[1])
