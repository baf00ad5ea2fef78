"""Model loader ops with ComfyUI's names: checkpoints, diffusion models and LoRAs.

Loaders check a file's structure against the model from its header alone (no weights read), so a wrong or broken
file fails at the loader node; the weights themselves are read on first use (a sampler run) and shared by every
branch of the graph that uses them.
"""
from __future__ import annotations

from typing import Annotated, Any

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.input_checks import input_check, refusal
from ltxgraph_ops.handles import Lazy, ModelHandle
from ltxgraph_ops.model_files import (CONNECTOR_PREFIXES, check_kind, load_transformer, transformer_layout,
                                      transformer_prefix)
from ltxgraph_ops.weights.loading import match_component
from ltxgraph_ops.weights.lora import LoraPatch, read_lora
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
from ltxgraph_ops.weights.streaming import weight_bytes

WEIGHT_DTYPES = {"default": None, "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e4m3fn_fast": torch.float8_e4m3fn,
                 "fp8_e5m2": torch.float8_e5m2}


def model_handle(path: str, ctx: OpContext, linear_storage: torch.dtype | None = None) -> ModelHandle:
    """MODEL for the transformer in ``path``: structure checked now, weights read on first use; when its
    weights exceed the run's memory budget, its blocks are streamed from the file during every forward."""
    file = SafetensorsFile(path)
    layout = transformer_layout(file)
    match_component(layout, file, transformer_prefix(file), allow_extra=CONNECTOR_PREFIXES)
    device, dtype = ctx.settings.device, ctx.settings.compute_dtype
    budget = ctx.settings.memory_budget
    prefix = transformer_prefix(file)
    needed = weight_bytes(file, prefix) - sum(weight_bytes(file, prefix + p) for p in CONNECTOR_PREFIXES)
    streamed = budget is not None and needed > budget and linear_storage is None
    lazy = Lazy(lambda: load_transformer(path, device=device, linear_storage=linear_storage, streamed=streamed,
                                         compute_dtype=dtype, compile_kernels=ctx.settings.compile_kernels),
                f"transformer of {file.name}" + (" (blocks streamed from disk)" if streamed else ""))
    return ModelHandle(lazy, file.name, layout=layout)


@input_check("unet_name")
def transformer_file(unet_name: str) -> str | None:
    """Refuses a file whose header describes no LTX-2 transformer."""
    return refusal(check_kind, unet_name, "transformer")


@op("UNETLoader", outputs={"MODEL": "MODEL"}, category="loaders", checks=(transformer_file,))
def unet_loader(unet_name: Annotated[str, Port("STRING", file="diffusion_models")],
                weight_dtype: Annotated[str, Port("STRING", choices=tuple(WEIGHT_DTYPES))] = "default",
                ctx: OpContext = None) -> ModelHandle:
    """The LTX-2 transformer of a checkpoint or diffusion-model file. weight_dtype fp8_*: linear weights stored
    wider are quantised to fp8 (per-tensor scale) as they load, halving their memory again."""
    return model_handle(unet_name, ctx, WEIGHT_DTYPES[weight_dtype])


def lora_model(model: ModelHandle, path: str, strength: float, ctx: OpContext) -> tuple[ModelHandle, dict[str, Any]]:
    weights = read_lora(path, model.structure())
    if weights.unmatched:
        shown = ", ".join(weights.unmatched[:3]) + (", ..." if len(weights.unmatched) > 3 else "")
        ctx.warn(f"{len(weights.unmatched)} tensors of LoRA {weights.source} fit no transformer layer and are "
                 f"ignored ({shown})")
    metadata = weights.model_metadata()
    return model.with_patch(LoraPatch(weights, strength), metadata), metadata


@op("LoraLoaderModelOnly", outputs={"MODEL": "MODEL"}, category="loaders")
def lora_loader_model_only(model: Annotated[ModelHandle, Port("MODEL")],
                           lora_name: Annotated[str, Port("STRING", file="loras")],
                           strength_model: Annotated[float, Port("FLOAT", min=-100.0, max=100.0)] = 1.0,
                           ctx: OpContext = None) -> ModelHandle:
    """``model`` with a LoRA at ``strength_model`` (applied while a sampler runs; the base weights are shared)."""
    return lora_model(model, lora_name, strength_model, ctx)[0]


@op("LTXICLoRALoaderModelOnly", outputs={"model": "MODEL", "latent_downscale_factor": "FLOAT"},
    category="loaders")
def ltx_ic_lora_loader(model: Annotated[ModelHandle, Port("MODEL")],
                       lora_name: Annotated[str, Port("STRING", file="loras")],
                       strength_model: Annotated[float, Port("FLOAT", min=-100.0, max=100.0)] = 1.0,
                       ctx: OpContext = None) -> tuple[ModelHandle, float]:
    """An IC-LoRA, plus the factor its reference video is downscaled by (file metadata
    ``reference_downscale_factor``, 1.0 when absent)."""
    handle, metadata = lora_model(model, lora_name, strength_model, ctx)
    return handle, float(metadata.get("reference_downscale_factor", 1.0))
