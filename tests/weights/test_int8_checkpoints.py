"""ComfyUI's int8 files (LTX-2.5's release transformer and Gemma 4 text encoder are int8-convrot) read through the
normal loaders: a model from an int8 file computes exactly what the same model computes from a float32 file of
its dequantised weights (resident and streamed), stays within the quantisation error of the float weights it was
quantised from, and a malformed file is refused naming the file and the key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ltxgraph.context import OpContext, RunSettings
from ltxgraph_ops.loaders import transformer_file, unet_loader
from ltxgraph_ops.model_files import is_streamed, load_transformer
from ltxgraph_ops.split_loaders import clip_loader, text_encoder_file
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.tiny.files import (TEXT_ENCODER_WITH_PROJ_25, UPSCALER, write_checkpoint, write_split_25,
                                     write_upscalers)
from ltxgraph_ops.upscale_ops import latent_upscale_model_loader
from ltxgraph_ops.weights.int8 import comfy_quant_entry, quantize_int8
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile
from ltxgraph_ops.weights.writing import dequantised_file
from tools.oracle.diffusers_transformer import stream_inputs
from tools.oracle.transformer import audio_input, video_input

LAYER = tiny.PREFIX + "proj_out"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("int8")
    written = {storage: write_checkpoint(folder / f"{storage}.safetensors", storage, 0, [tiny])
               for storage in ("float32", "int8", "int8-convrot")}
    for storage in ("int8", "int8-convrot"):
        written[f"{storage} dequantised"] = dequantised_file(written[storage], folder / f"{storage}-float.safetensors")
    return written


def forward(model) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    config = tiny.tiny_config()
    with torch.no_grad():
        out = model(video_input(config, generator), audio_input(config, generator))
    return out.video, out.audio


def test_the_writer_uses_comfyuis_layout(files) -> None:
    file = SafetensorsFile(files["int8-convrot"])
    weight, scale = file.entries[f"{LAYER}.weight"], file.entries[f"{LAYER}.weight_scale"]
    assert weight.dtype == torch.int8 and scale.dtype == torch.float32 and scale.shape == (weight.shape[0], 1)
    spec = json.loads(bytes(file.read(f"{LAYER}.comfy_quant").tolist()))
    assert spec == {"format": "int8_tensorwise", "convrot": True, "convrot_groupsize": 16}   # 32 columns
    assert file.entries[f"{LAYER}.bias"].dtype == torch.bfloat16 and f"{LAYER}.input_scale" not in file.entries
    plain = json.loads(bytes(SafetensorsFile(files["int8"]).read(f"{LAYER}.comfy_quant").tolist()))
    assert plain == {"format": "int8_tensorwise"}


@pytest.mark.parametrize("storage", ["int8", "int8-convrot"])
@pytest.mark.parametrize("streamed", [False, True])
def test_an_int8_model_computes_its_dequantised_float_model(files, storage: str, streamed: bool) -> None:
    model = load_transformer(files[storage], streamed=streamed)
    assert streamed or model.proj_out.weight.dtype == torch.int8
    video, audio = forward(model)
    float_video, float_audio = forward(load_transformer(files[f"{storage} dequantised"]))
    assert torch.equal(video, float_video) and torch.equal(audio, float_audio)
    # against the float32 weights the file was quantised from: the quantisation error, 8-bit per row
    exact_video, _ = forward(load_transformer(files["float32"]))
    error = (video - exact_video).abs().max() / exact_video.abs().max()
    assert 0 < error < 0.03


def test_bfloat16_compute_streams_int8_convrot_weights(files) -> None:
    """Streamed in bfloat16, every weight is its exact value rounded to bfloat16, as a float32 file's is. (Resident,
    the layers a bfloat16 model runs in float32, such as the timestep embedder, get the exact float32 weight from
    an int8 file where a float32 file's was rounded to bfloat16 at load, as with fp8 files.)"""
    model = load_transformer(files["int8-convrot"], streamed=True, compute_dtype=torch.bfloat16)
    twin = load_transformer(files["int8-convrot dequantised"], streamed=True, compute_dtype=torch.bfloat16)
    assert torch.equal(forward(model)[0], forward(twin)[0])


def test_bfloat16_compute_reads_int8_weights(files) -> None:
    model = load_transformer(files["int8-convrot"], compute_dtype=torch.bfloat16)
    reference = load_transformer(files["int8-convrot dequantised"], compute_dtype=torch.bfloat16)
    layer, twin = model.proj_out, reference.proj_out
    assert torch.equal(layer.dequantized_weight(torch.bfloat16), twin.dequantized_weight(torch.bfloat16))
    x = torch.randn(3, layer.in_features, dtype=torch.bfloat16)
    assert torch.equal(layer(x), twin(x))


@pytest.mark.parametrize("budget", [None, 1])
def test_unet_loader_reads_an_int8_convrot_diffusion_model(tmp_path: Path, budget: int | None) -> None:
    """LTX-2.5's transformer-only release file (ComfyUI's UNETLoader) in int8-convrot, tiny; resident, and
    streamed block by block under a memory budget."""
    path = write_checkpoint(tmp_path / "ltx-2.5-22b-distilled-transformer-comfy-int8-convrot.safetensors",
                            "int8-convrot", 1, [tiny], version="2.5")
    assert transformer_file.fn(str(path)) is None                       # validation accepts it
    ctx = OpContext("UNETLoader", settings=RunSettings(memory_budget=budget))
    twin = dequantised_file(path, tmp_path / "float.safetensors")
    outputs = []
    for name in (path, twin):
        with unet_loader(str(name), ctx=ctx).applied() as model:
            assert is_streamed(model) == (budget is not None)
            with torch.no_grad():
                out = model(*stream_inputs(model.config, same_timesteps=True))
            outputs.append((out.video, out.audio))
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])


def test_clip_loader_reads_an_int8_convrot_gemma4_with_projection(tmp_path: Path) -> None:
    """LTX-2.5's text encoder file (Gemma 4 with the text projection and connectors bundled) in int8-convrot
    encodes a prompt exactly as its dequantised float file does."""
    quantised = {p.name: p for p in write_split_25(tmp_path / "q", storage="int8-convrot")}
    path = quantised[TEXT_ENCODER_WITH_PROJ_25]
    file = SafetensorsFile(path)
    assert file.entries["model.layers.0.self_attn.q_proj.weight"].dtype == torch.int8
    assert text_encoder_file(str(path)) is None
    twin = dequantised_file(path, tmp_path / "float.safetensors")
    got = clip_loader(str(path)).encode(["a red boat at dusk"])
    want = clip_loader(str(twin)).encode(["a red boat at dusk"])
    assert torch.equal(got.video_context, want.video_context) and torch.equal(got.audio_context, want.audio_context)
    exact = {p.name: p for p in write_split_25(tmp_path / "f", storage="float32")}[TEXT_ENCODER_WITH_PROJ_25]
    reference = clip_loader(str(exact)).encode(["a red boat at dusk"]).video_context
    assert 0 < (got.video_context - reference).abs().max() <= 0.05 * reference.abs().max()


@pytest.mark.parametrize("budget", [None, 1])
def test_an_int8_convrot_token_table_is_read_row_by_row(tmp_path: Path, budget: int | None) -> None:
    """Gemma 4's token embeddings in int8-convrot too (one scale per row, rows rotated): looked up from memory, or
    row by row from the file when the run's memory budget streams Gemma, both exactly the dequantised table."""
    path = {p.name: p for p in write_split_25(tmp_path, storage="int8-convrot")}[TEXT_ENCODER_WITH_PROJ_25]
    table = "model.embed_tokens"

    def quantise_table(tensors):
        tensors[f"{table}.weight"], tensors[f"{table}.weight_scale"] = quantize_int8(tensors[f"{table}.weight"], 4)
        tensors[f"{table}.comfy_quant"] = comfy_quant_entry(4)

    quantised = rewritten(path, tmp_path / "table-int8.safetensors", quantise_table)
    twin = dequantised_file(quantised, tmp_path / "table-float.safetensors")
    ctx = OpContext("CLIPLoader", settings=RunSettings(memory_budget=budget))
    got, want = (clip_loader(str(name), ctx=ctx).encode(["a red boat at dusk"]) for name in (quantised, twin))
    assert torch.equal(got.video_context, want.video_context) and torch.equal(got.audio_context, want.audio_context)


def rewritten(source: Path, target: Path, edit, metadata: dict[str, str] | None = None) -> Path:
    tensors = load_file(str(source))
    edit(tensors)
    save_file(tensors, str(target), metadata=metadata or SafetensorsFile(source).metadata)
    return target


def entry(spec: dict) -> torch.Tensor:
    return torch.tensor(list(json.dumps(spec).encode()), dtype=torch.uint8)


@pytest.mark.parametrize("edit, key, message", [
    (lambda t: t.__setitem__(f"{LAYER}.comfy_quant", entry({"format": "int8_tensorwise", "convrot": True,
                                                             "convrot_groupsize": 12})),
     f"{LAYER}.comfy_quant", "group size 12 is not a power of 4"),
    (lambda t: t.__setitem__(f"{LAYER}.comfy_quant", entry({"format": "int8_tensorwise", "convrot": True,
                                                             "convrot_groupsize": 64})),
     f"{LAYER}.comfy_quant", "group size 64 does not divide the weight's 32 input columns"),
    (lambda t: t.pop(f"{LAYER}.weight_scale"), f"{LAYER}.comfy_quant", f"has no '{LAYER}.weight_scale'"),
    (lambda t: t.__setitem__(f"{LAYER}.weight_scale", torch.ones(3)), f"{LAYER}.weight_scale",
     "scale of shape \\[3\\] for an int8 weight of 128 rows"),
    (lambda t: t.pop(f"{LAYER}.comfy_quant"), f"{LAYER}.weight", "int8 weight without an 'int8_tensorwise'"),
    (lambda t: t.__setitem__(f"{LAYER}.comfy_quant", torch.tensor([1, 2, 255], dtype=torch.uint8)),
     f"{LAYER}.comfy_quant", "comfy_quant entry is not JSON"),
    (lambda t: t.__setitem__(f"{LAYER}.comfy_quant", entry({"format": "int4_tensorwise"})),
     f"{LAYER}.comfy_quant", "'int4_tensorwise' is not supported"),
])
def test_a_malformed_int8_file_is_refused_naming_the_key(files, tmp_path: Path, edit, key: str,
                                                         message: str) -> None:
    path = rewritten(files["int8-convrot"], tmp_path / "broken-int8.safetensors", edit)
    with pytest.raises(CheckpointError, match=message) as refused:
        load_transformer(path)
    assert "broken-int8.safetensors" in str(refused.value) and f"'{key}'" in str(refused.value)


@pytest.mark.parametrize("with_entry", [True, False], ids=["comfy-quant-entry", "bare-codes"])
def test_an_int8_convolution_is_refused_naming_the_file_and_the_key(tmp_path: Path, with_entry: bool) -> None:
    """int8 is read for Linear layers and token embeddings only: a latent upscaler whose first convolution weight
    is int8 (with a scale and a comfy_quant entry, as a quantised Linear layer is written, or bare codes) is
    refused when loaded, naming the file, the key, the layer and what is read instead."""
    source = next(path for path in write_upscalers(tmp_path / "float") if path.name == UPSCALER)
    key = next(key for key, entry in SafetensorsFile(source).entries.items()
               if key.endswith(".weight") and len(entry.shape) >= 4)
    layer = key[: -len("weight")]

    def quantise_convolution(tensors):
        weight = tensors[key]
        codes, scale = quantize_int8(weight.float().reshape(weight.shape[0], -1))
        tensors[key] = codes.reshape(weight.shape)
        if with_entry:
            tensors[f"{layer}weight_scale"], tensors[f"{layer}comfy_quant"] = scale, comfy_quant_entry(0)

    path = rewritten(source, tmp_path / "int8-convolution.safetensors", quantise_convolution)
    with pytest.raises(CheckpointError, match="int8 weights are read for Linear layers and token embeddings only"
                       ) as refused:
        latent_upscale_model_loader(str(path))
    message = str(refused.value)
    assert "int8-convolution.safetensors" in message and f"'{key}'" in message
    assert "of the Conv" in message and "bf16 or float32" in message


def test_header_quantisation_metadata_stands_for_the_entries(files, tmp_path: Path) -> None:
    """The other way ComfyUI records a layer's format: ``_quantization_metadata`` in the header."""
    source = SafetensorsFile(files["int8-convrot"])
    layers = {key[: -len(".comfy_quant")]: json.loads(bytes(source.read(key).tolist()))
              for key in source.entries if key.endswith(".comfy_quant")}
    metadata = {**source.metadata, "_quantization_metadata": json.dumps({"format_version": "1.0", "layers": layers})}

    def drop_entries(tensors):
        for key in [k for k in tensors if k.endswith(".comfy_quant")]:
            del tensors[key]

    path = rewritten(files["int8-convrot"], tmp_path / "header.safetensors", drop_entries, metadata)
    assert torch.equal(forward(load_transformer(path))[0], forward(load_transformer(files["int8-convrot"]))[0])
