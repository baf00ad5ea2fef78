"""One model version per graph: each model file's version from its header and keys, and the whole-graph check
that refuses a mixed set at validation but passes every consistent set of the tiny release files."""
from __future__ import annotations

from pathlib import Path

import pytest

from ltxgraph import api
from ltxgraph.context import OpContext
from ltxgraph.errors import ValidationError
from ltxgraph.paths import Folders
from ltxgraph_ops.gemma_generation import gemma_generation
from ltxgraph_ops.loaders import ltx_ic_lora_loader, model_handle
from ltxgraph_ops.model_set import file_version
from ltxgraph_ops.model_version import lora_version, upscaler_version
from ltxgraph_ops.tiny.files import LORAS, LORAS_23, write_tiny_models
from ltxgraph_ops.weights.lora import read_lora
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile

GRAPH = """
ltxgraph: 1
params:
  model: {type: STRING, default: ltx-2.3-22b-dev-fp8.safetensors}
  lora: {type: STRING, default: ltx-2.3-22b-distilled-lora-384-1.1.safetensors}
  upscaler: {type: STRING, default: ltx-2.3-spatial-upscaler-x2-1.1.safetensors}
nodes:
  ckpt: {op: CheckpointLoaderSimple, in: {ckpt_name: $model}}
  lora: {op: LoraLoaderModelOnly, in: {model: "@ckpt.MODEL", lora_name: $lora}}
  upscaler: {op: LatentUpscaleModelLoader, in: {model_name: $upscaler}}
outputs: {model: "@lora.MODEL", upscaler: "@upscaler.LATENT_UPSCALE_MODEL"}
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    write_tiny_models(folder)
    return folder


def validate(models: Path, tmp_path: Path, **params) -> None:
    (tmp_path / "g.yaml").write_text(GRAPH)
    api.Runner(use_cache=False, folders=Folders(models=(models,), output=tmp_path / "out")).validate(
        api.load(tmp_path / "g.yaml"), params)


def test_every_tiny_file_tells_its_version(models: Path) -> None:
    for name in ("ltx-2-19b-dev-fp8.safetensors", "ltx-2-19b-distilled.safetensors"):
        assert file_version(models / "checkpoints" / name, "checkpoint") == "2.0"
    for name in ("ltx-2.3-22b-dev-fp8.safetensors", "ltx-2.3-22b-distilled-fp8.safetensors"):
        assert file_version(models / "checkpoints" / name, "checkpoint") == "2.3"
    assert file_version(models / "checkpoints" / "ltx-2.5-22b-distilled.safetensors", "checkpoint") == "2.5"
    assert file_version(models / "diffusion_models" / "ltx-2.5-22b-distilled-transformer-comfy-int8-convrot"
                                                      ".safetensors", "checkpoint") == "2.5"
    assert {file_version(models / "loras" / name, "LoRA") for name in LORAS} == {"2.0"}
    assert {file_version(models / "loras" / name, "LoRA") for name in LORAS_23} == {"2.3"}
    upscalers = models / "latent_upscale_models"
    assert {path.name: file_version(path, "latent upscaler") for path in upscalers.iterdir()} == {
        "ltx-2-spatial-upscaler-x2-1.0.safetensors": "2.0", "ltx-2.3-spatial-upscaler-x2-1.1.safetensors": "2.3",
        "ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors": "2.3",
        "ltx-2.3-temporal-upscaler-x2-1.0.safetensors": "2.3",
        "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors": "2.5"}
    assert file_version(models / "text_encoders" / "gemma_3_12B_it_fp8_scaled.safetensors", "checkpoint") is None
    assert gemma_generation(SafetensorsFile(models / "text_encoders" / "gemma_3_12B_it_fp8_scaled.safetensors")) == 3
    assert gemma_generation(SafetensorsFile(models / "text_encoders" /
                                            "gemma4-12b-with-proj-ltx-2.5-comfy-int8-convrot.safetensors")) == 4


def test_lora_version_from_the_layers_it_patches() -> None:
    assert lora_version(["diffusion_model.caption_projection.linear_1.lora_A.weight"]) == "2.0"
    assert lora_version(["diffusion_model.transformer_blocks.3.attn2.to_gate_logits.lora_B.weight"]) == "2.3"
    assert lora_version(["diffusion_model.audio_prompt_adaln_single.linear.lora_A.weight"]) == "2.3"
    assert lora_version(["diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight"]) is None
    assert upscaler_version({"spatial_scale": 2.0}, "my-upscaler.safetensors") is None


def test_tiny_23_loras_fit_the_23_transformer_and_carry_the_release_metadata(models: Path) -> None:
    model = model_handle(str(models / "checkpoints" / "ltx-2.3-22b-dev-fp8.safetensors"), OpContext("m"))
    for name in LORAS_23:
        weights = read_lora(str(models / "loras" / name), model.structure())
        assert weights.unmatched == () and any("to_gate_logits" in layer for layer in weights.layers)
    union = str(models / "loras" / "ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors")
    assert ltx_ic_lora_loader(model, union, 1.0, OpContext("m"))[1] == 2.0


@pytest.mark.parametrize("params", [
    {},
    {"model": "ltx-2.3-22b-distilled-fp8.safetensors", "upscaler": "ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors"},
    {"model": "ltx-2-19b-dev-fp8.safetensors", "lora": "ltx-2-19b-distilled-lora-384.safetensors",
     "upscaler": "ltx-2-spatial-upscaler-x2-1.0.safetensors"},
])
def test_a_consistent_set_validates(models: Path, tmp_path: Path, params: dict) -> None:
    validate(models, tmp_path, **params)


def test_a_mixed_set_is_refused_naming_every_file_that_does_not_fit(models: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as error:
        validate(models, tmp_path, lora="ltx-2-19b-ic-lora-pose-control.safetensors",
                 upscaler="ltx-2-spatial-upscaler-x2-1.0.safetensors")
    assert [(p.node, p.input) for p in error.value.problems] == [("lora", "lora_name"), ("upscaler", "model_name")]
    assert "files that fit: ltx-2.3-22b-distilled-lora-384-1.1.safetensors" in str(error.value)
