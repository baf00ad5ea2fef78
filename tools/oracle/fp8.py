"""Parity of scaled-fp8 checkpoint loading with ltx-core 1.0.0's own fp8 path (its ``fp8_scaled_mm`` quantization
policy: the file's fp8 weights transposed into ``FP8Linear`` layers that hold ``weight_scale`` and ``input_scale``).

The file is written in the layout that path reads: the Linear layers of every transformer block but block 0 (the
reference keeps blocks 0 and 43-47 and the non-block layers wide) stored as float8_e4m3fn with a per-tensor
``weight_scale`` and an ``input_scale``; everything else float32. Two checks:

- the dequantised weights (fp8 as float32 * weight_scale) of every fp8 layer, ours against the reference's
  loaded parameters: bit-identical (max abs error 0);
- the full AV forward of both models in float32 on the CPU. Here the reference differs on purpose: its
  ``FP8Linear`` quantises the layer's input activations to e4m3 with the file's static ``input_scale`` and runs a
  TensorRT-LLM fp8 matmul (CUDA only); ltxgraph never quantises activations (the weight is upcast and the matmul
  runs in the compute dtype). The check therefore runs the reference's fp8 layers as x @ (weight * weight_scale)^T
  + bias, i.e. with unquantised activations, and the two forwards must agree to float32 rounding.
  ``activation_quantisation_gap`` measures how far the reference's static activation quantisation (emulated on
  the CPU) moves the output of the same model: that is what ltxgraph does not reproduce. ltx-core 1.2.0's
  FP8Linear quantises the same way (x / input_scale, clamped to the e4m3 range) before its fp8 matmul.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.model_files import load_transformer  # noqa: E402
from ltxgraph_ops.models.layers import Linear  # noqa: E402
from ltxgraph_ops.tiny import transformer as tiny  # noqa: E402
from ltxgraph_ops.tiny.files import write_checkpoint  # noqa: E402
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile  # noqa: E402
from ltxgraph_ops.weights.writing import quantize_fp8, save_atomic  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402
from tools.oracle.transformer import SEED, Pair, audio_input, compare, video_input  # noqa: E402

PREFIX = "model.diffusion_model."
WIDE_BLOCKS = ("transformer_blocks.0.",)  # of the tiny model's two blocks; the release keeps 0 and 43-47 wide
INPUT_SCALE = 0.02  # a static per-tensor activation scale (|x| up to 448 * 0.02 = 8.96 before clipping)


def fp8_layer_names(model: torch.nn.Module) -> list[str]:
    """Linear layers a release scaled-fp8 file stores in fp8: those of the blocks the reference quantises."""
    return [name for name, module in model.named_modules() if isinstance(module, Linear)
            and name.startswith("transformer_blocks.") and not name.startswith(WIDE_BLOCKS)]


def write_scaled_fp8_checkpoint(path: Path) -> Path:
    """A tiny AV transformer checkpoint in the release's scaled-fp8 layout (see the module docstring)."""
    wide = write_checkpoint(path.with_name("wide.safetensors"), "float32", SEED, [tiny])
    file = SafetensorsFile(wide)
    tensors = {key: file.read(key) for key in file.entries}
    with torch.device("meta"):
        model = tiny.build(tiny.tiny_config(), device="meta")
    for name in fp8_layer_names(model):
        key = f"{PREFIX}{name}"
        tensors[f"{key}.weight"], tensors[f"{key}.weight_scale"] = quantize_fp8(tensors[f"{key}.weight"])
        tensors[f"{key}.input_scale"] = torch.tensor(INPUT_SCALE, dtype=torch.float32)
    metadata = dict(file.metadata)
    wide.unlink()
    return save_atomic(path, tensors, metadata)


def reference_fp8_model(checkpoint: Path) -> torch.nn.Module:
    """ltx-core's transformer built by its single-file builder with the fp8_scaled_mm policy's state-dict and
    module operations chained after the ComfyUI renaming, as its model ledger chains them (the policy's own
    constructor only refuses to run without TensorRT-LLM)."""
    from ltx_core.loader.sd_ops import SDOps
    from ltx_core.loader.single_gpu_model_builder import SingleGPUModelBuilder
    from ltx_core.model.transformer.model_configurator import LTXModelConfigurator, LTXV_MODEL_COMFY_RENAMING_MAP
    from ltx_core.quantization import FP8_PREPARE_MODULE_OPS, FP8_TRANSPOSE_SD_OPS
    sd_ops = SDOps(name="comfy+fp8", mapping=(*LTXV_MODEL_COMFY_RENAMING_MAP.mapping, *FP8_TRANSPOSE_SD_OPS.mapping))
    builder = SingleGPUModelBuilder(model_class_configurator=LTXModelConfigurator, model_path=str(checkpoint),
                                    model_sd_ops=sd_ops, module_ops=(FP8_PREPARE_MODULE_OPS,))
    return builder.build(device=torch.device("cpu"), dtype=torch.float32).eval()


def reference_fp8_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    from ltx_core.quantization.fp8_scaled_mm import FP8Linear
    return {name: module for name, module in model.named_modules() if isinstance(module, FP8Linear)}


def reference_dequantised(layer: torch.nn.Module) -> torch.Tensor:
    """The reference layer's weight as the matmul sees it: [out, in] float32 (stored transposed, [in, out])."""
    return layer.weight.detach().t().float() * layer.weight_scale.detach().float()


def run_fp8_layers_on_cpu(model: torch.nn.Module, quantise_activations: bool) -> None:
    """Replace each reference FP8Linear's CUDA-only matmul by its math on the CPU: y = x W^T * weight_scale + b,
    x quantised to e4m3 with the static input_scale first if ``quantise_activations``."""
    for layer in reference_fp8_layers(model).values():
        def forward(x: torch.Tensor, layer=layer) -> torch.Tensor:
            if quantise_activations:
                scale = layer.input_scale.detach().float()
                x = (x.float() / scale).clamp(-448.0, 448.0).to(torch.float8_e4m3fn).float() * scale
            bias = None if layer.bias is None else layer.bias.detach().float()
            return F.linear(x, reference_dequantised(layer), bias)
        layer.forward = forward


def loaded_pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    """(ours, the reference) loaded from one scaled-fp8 file."""
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = write_scaled_fp8_checkpoint(Path(folder) / "fp8.safetensors")
        return load_transformer(checkpoint), reference_fp8_model(checkpoint)


def _forward_error(quantise_activations: bool) -> float:
    ours, reference = loaded_pair()
    if len(reference_fp8_layers(reference)) != len(fp8_layer_names(ours)):
        return float("inf")
    run_fp8_layers_on_cpu(reference, quantise_activations)
    config = tiny.tiny_config()
    generator = torch.Generator().manual_seed(SEED + 1)
    video, audio = video_input(config, generator), audio_input(config, generator)
    with torch.no_grad():
        return compare(Pair(ours, reference), video, audio)


def check_dequantised_weights() -> float:
    """Max abs difference of every fp8 layer's dequantised weight (ours vs the reference's); inf if a layer is
    missing on either side or ours is not kept in fp8."""
    ours, reference = loaded_pair()
    theirs = reference_fp8_layers(reference)
    names = fp8_layer_names(ours)
    if not names or set(names) != set(theirs):
        return float("inf")
    error = 0.0
    for name in names:
        layer = ours.get_submodule(name)
        if layer.weight.dtype != torch.float8_e4m3fn:  # (the reference's float32 build upcasts exactly)
            return float("inf")
        ours_weight, reference_weight = layer.dequantized_weight(torch.float32), reference_dequantised(theirs[name])
        error = max(error, compared(name, ours_weight, reference_weight))
    return error


def check_forward() -> float:
    return _forward_error(quantise_activations=False)


def activation_quantisation_gap() -> float:
    """How far the reference's static e4m3 activation quantisation moves the AV output (not reproduced by us)."""
    return _forward_error(quantise_activations=True)


CHECKS: dict[str, Callable[[], float]] = {
    "fp8_scaled_dequantised_weights": check_dequantised_weights,
    "fp8_scaled_forward": check_forward,
}
