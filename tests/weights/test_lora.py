"""LoRAs: every dialect equals merging ``W + strength * scale * up @ down`` into the weight; stacking, strengths,
detaching, fp8 bases and metadata; broken files named."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ltxgraph_ops.handles import ModelHandle
from ltxgraph_ops.model_files import load_transformer
from ltxgraph_ops.tiny.files import write_lora
from ltxgraph_ops.weights.lora import LoraPatch, read_lora
from ltxgraph_ops.weights.safetensors_file import CheckpointError

LAYER = "transformer_blocks.1.attn1.to_q"


def layer_output(model: torch.nn.Module, name: str = LAYER) -> torch.Tensor:
    layer = model.get_submodule(name)
    x = torch.randn(3, layer.in_features, generator=torch.Generator().manual_seed(0))
    return layer(x), x


def merged(model: torch.nn.Module, x: torch.Tensor, delta: torch.Tensor, name: str = LAYER) -> torch.Tensor:
    layer = model.get_submodule(name)
    weight = layer.dequantized_weight(torch.float32) + delta
    return torch.nn.functional.linear(x, weight, layer.bias.float())


def one_layer_file(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> Path:
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("names", [
    ("diffusion_model.{m}.lora_A.weight", "diffusion_model.{m}.lora_B.weight", None),
    ("{m}.lora_down.weight", "{m}.lora_up.weight", "{m}.alpha"),
    ("lora_unet_{u}.lora_down.weight", "lora_unet_{u}.lora_up.weight", "lora_unet_{u}.alpha"),
    ("model.diffusion_model.{m}.lora_A.weight", "model.diffusion_model.{m}.lora_B.weight", None),
])
def test_dialects_equal_merged_weights(checkpoints, tmp_path: Path, names) -> None:
    model = load_transformer(checkpoints["float32"])
    layer = model.get_submodule(LAYER)
    down, up = torch.randn(3, layer.in_features), torch.randn(layer.out_features, 3)
    fill = {"m": LAYER, "u": LAYER.replace(".", "_")}
    tensors = {names[0].format(**fill): down, names[1].format(**fill): up}
    factor = 1.0
    if names[2]:
        tensors[names[2].format(**fill)] = torch.tensor(6.0)
        factor = 6.0 / 3
    weights = read_lora(one_layer_file(tmp_path / "l.safetensors", tensors), model)
    assert set(weights.layers) == {LAYER} and weights.unmatched == ()
    handle = ModelHandle(model, "m").with_patch(LoraPatch(weights, 0.7))
    with handle.applied() as patched:
        out, x = layer_output(patched)
    assert torch.allclose(out, merged(model, x, 0.7 * factor * up @ down), atol=1e-5)
    after, _ = layer_output(model)
    assert torch.allclose(after, merged(model, x, torch.zeros(1)), atol=1e-6)  # detached


def test_two_loras_stack_on_an_fp8_model(checkpoints, tmp_path: Path) -> None:
    model = load_transformer(checkpoints["fp8"])
    first = read_lora(write_lora(tmp_path / "a.safetensors", model, 4, 1, {}), model)
    second = read_lora(write_lora(tmp_path / "b.safetensors", model, 2, 2, {}), model)
    handle = ModelHandle(model, "m").with_patch(LoraPatch(first, 1.0)).with_patch(LoraPatch(second, -0.5))
    a, b = first.layers[LAYER], second.layers[LAYER]
    delta = a.up.float() @ a.down.float() - 0.5 * (b.up.float() @ b.down.float())
    with handle.applied() as patched:
        out, x = layer_output(patched)
        assert model.get_submodule(LAYER).weight.dtype == torch.float8_e4m3fn
    assert torch.allclose(out, merged(model, x, delta), atol=1e-4)
    assert model.get_submodule(LAYER).deltas == []


def test_metadata_reference_downscale_factor(checkpoints, tmp_path: Path, tiny_layout) -> None:
    path = write_lora(tmp_path / "ic.safetensors", tiny_layout, 2, 3, {"reference_downscale_factor": "2"})
    assert read_lora(path, tiny_layout).model_metadata() == {"reference_downscale_factor": 2}
    bad = write_lora(tmp_path / "icbad.safetensors", tiny_layout, 2, 3, {"reference_downscale_factor": "two"})
    with pytest.raises(CheckpointError, match="not a number"):
        read_lora(bad, tiny_layout).model_metadata()


def test_keys_for_other_models_are_reported_not_fatal(tmp_path: Path, tiny_layout) -> None:
    layer = tiny_layout.get_submodule(LAYER)
    tensors = {f"diffusion_model.{LAYER}.lora_A.weight": torch.zeros(2, layer.in_features),
               f"diffusion_model.{LAYER}.lora_B.weight": torch.zeros(layer.out_features, 2),
               "diffusion_model.video_embeddings_connector.x.lora_A.weight": torch.zeros(2, 4),
               "diffusion_model.video_embeddings_connector.x.lora_B.weight": torch.zeros(4, 2)}
    weights = read_lora(one_layer_file(tmp_path / "mixed.safetensors", tensors), tiny_layout)
    assert len(weights.unmatched) == 2 and set(weights.layers) == {LAYER}


@pytest.mark.parametrize("tensors, message", [
    ({"diffusion_model.{m}.lora_A.weight": (2, "in")}, "no matching 'diffusion_model.{m}.lora_B.weight'"),
    ({"diffusion_model.{m}.lora_B.weight": ("out", 2)}, "no matching 'diffusion_model.{m}.lora_A.weight'"),
    ({"diffusion_model.{m}.lora_A.weight": (2, 5), "diffusion_model.{m}.lora_B.weight": ("out", 2)},
     "do not fit a layer"),
    ({"unrelated.lora_A.weight": (2, 3), "unrelated.lora_B.weight": (3, 2)}, "no tensor of this LoRA fits"),
    ({"{m}.lora_down.weight": (2, "in"), "{m}.lora_up.weight": ("out", 2), "{m}.alpha": (2,)},
     "alpha must be one finite number"),
])
def test_broken_lora_files_are_named(tmp_path: Path, tiny_layout, tensors, message) -> None:
    layer = tiny_layout.get_submodule(LAYER)
    sizes = {"in": layer.in_features, "out": layer.out_features}
    real = {key.format(m=LAYER): torch.ones([sizes.get(d, d) for d in shape]) for key, shape in tensors.items()}
    with pytest.raises(CheckpointError, match=message.format(m=LAYER).replace(".", r"\.")) as info:
        read_lora(one_layer_file(tmp_path / "broken.safetensors", real), tiny_layout)
    assert "broken.safetensors" in str(info.value)
