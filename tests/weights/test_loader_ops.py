"""Loader ops through the engine: files resolved inside the models folder, structure checked at the loader node,
weights read on first use, LoRA metadata exposed."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ltxgraph import api
from ltxgraph.errors import LtxGraphError
from ltxgraph.paths import Folders
from ltxgraph_ops.handles import Lazy
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.tiny.files import write_lora

GRAPH = """
ltxgraph: 1
params:
  unet: {type: STRING, default: dev.safetensors}
  dtype: {type: STRING, default: default}
nodes:
  unet: {op: UNETLoader, in: {unet_name: $unet, weight_dtype: $dtype}}
  distilled: {op: LoraLoaderModelOnly, in: {model: "@unet.MODEL", lora_name: distilled.safetensors,
                                            strength_model: 0.6}}
  ic: {op: LTXICLoRALoaderModelOnly, in: {model: "@distilled.MODEL", lora_name: ic.safetensors}}
outputs:
  base: "@unet.MODEL"
  model: "@ic.model"
  factor: "@ic.latent_downscale_factor"
"""


@pytest.fixture
def models(tmp_path: Path, checkpoints, tiny_layout) -> Path:
    (tmp_path / "diffusion_models").mkdir()
    (tmp_path / "diffusion_models" / "dev.safetensors").write_bytes(checkpoints["bf16"].read_bytes())
    write_lora(tmp_path / "loras" / "distilled.safetensors", tiny_layout, 4, 1, {})
    write_lora(tmp_path / "loras" / "ic.safetensors", tiny_layout, 2, 2, {"reference_downscale_factor": "2"})
    return tmp_path


def run(models: Path, tmp_path: Path, **params):
    graph_file = tmp_path / "g.yaml"
    graph_file.write_text(GRAPH)
    runner = api.Runner(use_cache=False, folders=Folders(models=(models,), output=tmp_path / "out"))
    return runner.run(api.load(graph_file), params)


def test_loaders_chain_and_expose_the_downscale_factor(models: Path, tmp_path: Path) -> None:
    outputs = run(models, tmp_path).outputs
    assert outputs["factor"] == 2.0
    base, model = outputs["base"], outputs["model"]
    assert isinstance(base.transformer, Lazy) and not base.transformer.loaded  # nothing read yet
    assert model.transformer is base.transformer and len(model.patches) == 2
    assert model.metadata == {"reference_downscale_factor": 2}
    with model.applied() as transformer:
        assert transformer.proj_out.weight.dtype == torch.bfloat16
        assert len(transformer.proj_out.deltas) == 2
    assert transformer.proj_out.deltas == []


def test_weight_dtype_fp8_quantises_while_loading(models: Path, tmp_path: Path) -> None:
    model = run(models, tmp_path, dtype="fp8_e4m3fn").outputs["base"]
    with model.applied() as transformer:
        assert transformer.proj_out.weight.dtype == torch.float8_e4m3fn


def test_a_broken_checkpoint_fails_at_the_loader_node(models: Path, tmp_path: Path) -> None:
    path = models / "diffusion_models" / "dev.safetensors"
    tensors = load_file(str(path))
    tensors.pop(tiny.PREFIX + "proj_out.weight")
    save_file(tensors, str(models / "diffusion_models" / "broken.safetensors"),
              metadata={"config": __import__("json").dumps({"transformer": tiny.tiny_config()})})
    with pytest.raises(LtxGraphError) as info:
        run(models, tmp_path, unet="broken.safetensors")
    text = str(info.value)
    assert "node 'unet'" in text and "missing tensor 'model.diffusion_model.proj_out.weight'" in text
    assert info.value.exit_code == 2


def test_model_names_cannot_leave_the_models_folder(models: Path, tmp_path: Path) -> None:
    with pytest.raises(LtxGraphError, match="must be a name inside") as info:
        run(models, tmp_path, unet="../dev.safetensors")
    assert info.value.exit_code == 2
