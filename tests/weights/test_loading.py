"""Loading a component: exact values, storage dtypes kept (fp8 stays fp8), scaled-fp8 layouts, strictness."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ltxgraph_ops.model_files import load_transformer
from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.weights.loading import load_component, parameters_on_meta
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile


def test_parameters_on_meta_builds_the_19b_model_without_memory() -> None:
    with parameters_on_meta():
        model = tiny.build(tiny.full_config(), device="cpu")
    params = list(model.parameters())
    assert sum(p.numel() for p in params) > 18_000_000_000
    assert all(p.device.type == "meta" for p in params)
    probe = torch.nn.Linear(2, 2)
    assert probe.weight.device.type == "cpu"  # the patch is gone after the block


def test_float32_file_loads_exact_values(checkpoints: dict[str, Path]) -> None:
    model = load_transformer(checkpoints["float32"])
    stored = load_file(str(checkpoints["float32"]))
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, stored[tiny.PREFIX + key]), key


@pytest.mark.parametrize("storage", ["fp8", "fp8-old"])
def test_fp8_weights_stay_fp8_and_dequantise_close(checkpoints: dict[str, Path], storage: str) -> None:
    reference = load_transformer(checkpoints["float32"])
    model = load_transformer(checkpoints[storage])
    linears = {name: m for name, m in model.named_modules() if isinstance(m, Linear)}
    assert linears and all(m.weight.dtype == torch.float8_e4m3fn and m.weight_scale is not None
                           for m in linears.values())
    for name, layer in linears.items():
        exact = reference.get_submodule(name).plain_weight()                 # packed where oneDNN multiplies float32
        error = (layer.dequantized_weight(torch.float32) - exact).abs().max()
        assert error <= exact.abs().max() * 0.07, name  # e4m3: 3 mantissa bits
    fp8_bytes = sum(m.weight.numel() for m in linears.values())
    assert fp8_bytes == sum(m.weight.nbytes for m in linears.values())


def test_bf16_file_keeps_linear_weights_bf16_and_other_tensors_float32(checkpoints: dict[str, Path]) -> None:
    model = load_transformer(checkpoints["bf16"])
    assert model.patchify_proj.weight.dtype == torch.bfloat16
    assert model.scale_shift_table.dtype == torch.float32


def test_fp8_quantisation_on_load_from_a_bf16_file(checkpoints: dict[str, Path]) -> None:
    model = load_transformer(checkpoints["bf16"], linear_storage=torch.float8_e4m3fn)
    wide = load_transformer(checkpoints["bf16"])
    layer, exact = model.proj_out, wide.proj_out.weight.float()
    assert layer.weight.dtype == torch.float8_e4m3fn
    assert (layer.dequantized_weight(torch.float32) - exact).abs().max() <= exact.abs().max() * 0.07


def rewrite(source: Path, target: Path, edit) -> Path:
    tensors = load_file(str(source))
    metadata = SafetensorsFile(source).metadata
    edit(tensors)
    save_file(tensors, str(target), metadata=metadata)
    return target


def test_comfy_quant_entries_are_checked(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    key = tiny.PREFIX + "proj_out.comfy_quant"

    def good(tensors):
        tensors[key] = torch.tensor(list(json.dumps({"format": "float8_e4m3fn"}).encode()), dtype=torch.uint8)

    def unknown(tensors):
        tensors[key] = torch.tensor(list(json.dumps({"format": "nvfp4"}).encode()), dtype=torch.uint8)

    def int8_convrot(tensors):   # ComfyUI's int8-convrot layer entry (LTX-2.5's release) on an fp8 weight
        spec = {"format": "int8_tensorwise", "convrot": True, "convrot_groupsize": 16}
        tensors[key] = torch.tensor(list(json.dumps(spec).encode()), dtype=torch.uint8)

    load_transformer(rewrite(checkpoints["fp8"], tmp_path / "q.safetensors", good))
    with pytest.raises(CheckpointError, match="'nvfp4' is not supported") as refused:
        load_transformer(rewrite(checkpoints["fp8"], tmp_path / "n.safetensors", unknown))
    assert key in str(refused.value)
    with pytest.raises(CheckpointError, match="needs an int8 \\[out, in\\] weight, the file has float8_e4m3fn"
                       ) as refused:
        load_transformer(rewrite(checkpoints["fp8"], tmp_path / "int8-convrot.safetensors", int8_convrot))
    assert "int8-convrot.safetensors" in str(refused.value) and tiny.PREFIX + "proj_out.weight" in str(refused.value)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.pop(tiny.PREFIX + "proj_out.bias"), "missing tensor 'model.diffusion_model.proj_out.bias'"),
    (lambda t: t.__setitem__(tiny.PREFIX + "extra_layer.weight", torch.zeros(2)),
     "unexpected tensor 'model.diffusion_model.extra_layer.weight'"),
    (lambda t: t.__setitem__(tiny.PREFIX + "proj_out.bias", torch.zeros(3)),
     "misshapen tensor model.diffusion_model.proj_out.bias: file \\[3\\]"),
    (lambda t: t[tiny.PREFIX + "proj_out.bias"].__setitem__(0, float("nan")), "NaN or infinite"),
    (lambda t: t[tiny.PREFIX + "proj_out.weight_scale"].fill_(float("inf")), "NaN or infinite"),
])
def test_strict_loading_names_file_and_key(checkpoints: dict[str, Path], tmp_path: Path, edit, message) -> None:
    path = rewrite(checkpoints["fp8"], tmp_path / "broken.safetensors", edit)
    with pytest.raises(CheckpointError, match=message) as info:
        load_transformer(path)
    assert "broken.safetensors" in str(info.value)


def test_fp8_nan_bit_pattern_is_refused(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    def poison(tensors):
        weight = tensors[tiny.PREFIX + "proj_out.weight"]
        weight.view(torch.uint8)[0, 0] = 0x7F
    with pytest.raises(CheckpointError, match="proj_out.weight.*NaN"):
        load_transformer(rewrite(checkpoints["fp8"], tmp_path / "nan.safetensors", poison))


def test_missing_config_section_is_explained(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "noconfig.safetensors"
    save_file(load_file(str(checkpoints["bf16"])), str(path))
    with pytest.raises(CheckpointError, match="no 'transformer' config section"):
        load_transformer(path)


def test_component_with_computed_buffers_keeps_them(tmp_path: Path) -> None:
    class WithTable(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = Linear(3, 2)
            self.register_buffer("table", torch.arange(4.0), persistent=False)

    with parameters_on_meta():
        module = WithTable()
    path = tmp_path / "w.safetensors"
    save_file({"p.proj.weight": torch.ones(2, 3), "p.proj.bias": torch.zeros(2)}, str(path))
    load_component(module, SafetensorsFile(path), "p.")
    assert torch.equal(module.table, torch.arange(4.0))
    assert torch.equal(module.proj(torch.ones(1, 3)), torch.full((1, 2), 3.0))


@pytest.mark.parametrize("scale", ["scalar", "per_row", "none"])
def test_large_stored_weights_are_upcast_in_row_slices_with_the_same_result(monkeypatch, scale: str) -> None:
    from ltxgraph_ops.models import layers
    g = torch.Generator().manual_seed(0)
    layer = Linear(48, 37, bias=True)
    layer.weight.data = (torch.randn(37, 48, generator=g) * 4).to(torch.float8_e4m3fn)
    layer.bias.data = torch.randn(37, generator=g).to(torch.bfloat16)
    layer.weight_scale = {"scalar": torch.tensor(0.05), "per_row": torch.rand(37, generator=g) + 0.5,
                          "none": None}[scale]
    x = torch.randn(2, 5, 48, generator=g)
    whole = layer(x)
    monkeypatch.setattr(layers, "DEQUANT_CHUNK_ELEMENTS", 48 * 8)    # 8 rows per slice: 5 slices, the last short
    sliced = layer(x)
    expected = torch.nn.functional.linear(x, layer.dequantized_weight(torch.float32), layer.bias.float())
    # Different matmul shapes sum in a different order: compare at float32 rounding of the output's magnitude.
    atol = 1e-6 * whole.abs().max().item()
    torch.testing.assert_close(sliced, whole, rtol=1e-6, atol=atol)
    torch.testing.assert_close(sliced, expected, rtol=1e-6, atol=atol)
