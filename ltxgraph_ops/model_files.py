"""Which part of which file is which model: the LTX-2 single-file checkpoint (transformer, text connectors, video
VAE, audio VAE, vocoder under their key prefixes, config in the header) and the files that stand alone (latent
upscaler, LoRAs, Gemma). Each loader builds the module from the header config, then fills it strictly; every
section of a single-file checkpoint is read through :func:`header_section`, which asks :func:`checkpoint_version`
(one decision of the model version per file, :mod:`ltxgraph_ops.model_version`)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ltxgraph_ops.model_version import ModelVersionError, model_version
from ltxgraph_ops.models.elementwise import compiled_kernels, use_kernels
from ltxgraph_ops.models.fused_norm import native_kernels
from ltxgraph_ops.models.layers import pack_linears
from ltxgraph_ops.models.transformer import LTXAVTransformer, TransformerConfig
from ltxgraph_ops.weights.loading import load_component, match_component, parameters_on_meta
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile
from ltxgraph_ops.weights.streaming import StreamedBlocks, dequantize_linears

TRANSFORMER_PREFIX = "model.diffusion_model."
CONNECTOR_PREFIXES = ("video_embeddings_connector.", "audio_embeddings_connector.")


def checkpoint_version(file: SafetensorsFile) -> str:
    """'2.0' | '2.3' | '2.5': the LTX-2 version of a single-file checkpoint (header and transformer keys); a
    :class:`CheckpointError` naming what the header lacks or what contradicts it."""
    try:
        return model_version({**file.metadata, "config": file.config()}, file.entries, source=str(file.path))
    except ModelVersionError as exc:
        raise CheckpointError(str(exc)) from None


def header_section(file: SafetensorsFile, section: str) -> dict:
    """One section of the header ``config``; a clear error when the file does not carry it. In a single-file
    checkpoint (a header with a ``transformer`` section) the file's model version is checked first."""
    config = file.config()
    if "transformer" in config:
        checkpoint_version(file)
    if section not in config:
        have = ", ".join(sorted(config)) or "no config metadata"
        raise CheckpointError(f"{file.path}: header has no '{section}' config section ({have}); LTX-2 checkpoints "
                              "carry their model config in the safetensors metadata")
    value = config[section]
    if not isinstance(value, dict):
        raise CheckpointError(f"{file.path}: header config section '{section}' is not an object")
    return value


def transformer_prefix(file: SafetensorsFile) -> str:
    """``model.diffusion_model.`` in a full checkpoint; "" in a diffusion-model-only file."""
    for prefix in (TRANSFORMER_PREFIX, ""):
        if any(prefix + key in file.entries for key in ("patchify_proj.weight", "audio_patchify_proj.weight")):
            return prefix
    raise CheckpointError(f"{file.path}: no LTX-2 transformer in this file (no 'patchify_proj.weight' or "
                          f"'audio_patchify_proj.weight' under '{TRANSFORMER_PREFIX}' or at the top level)")


def transformer_config(file: SafetensorsFile) -> TransformerConfig:
    prefix = transformer_prefix(file)
    try:
        return TransformerConfig.from_header(
            header_section(file, "transformer"),
            has_video=prefix + "patchify_proj.weight" in file.entries,
            has_audio=prefix + "audio_adaln_single.linear.weight" in file.entries)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{file.path}: transformer config: {exc}") from None


def check_kind(path: str | Path, *sections: str) -> None:
    """Refuses (CheckpointError, naming the file and what it lacks) a file whose header does not describe the
    ``sections`` asked for ("transformer": an LTX-2 transformer, with its keys and version; else a header config
    section such as "vae"): the kind of a model file, from its header alone, in milliseconds. Whether the tensors
    match the header is checked by the loaders (still without reading a weight)."""
    file = SafetensorsFile(path)
    for section in sections:
        if section == "transformer":
            transformer_config(file)
        else:
            header_section(file, section)


def transformer_layout(file: SafetensorsFile) -> LTXAVTransformer:
    """The transformer's architecture on the meta device (names and shapes, no weights)."""
    return LTXAVTransformer(transformer_config(file), device="meta")


def load_transformer(path: str | Path, device: str | torch.device = "cpu",
                     linear_storage: torch.dtype | None = None, streamed: bool = False,
                     prefetch: bool = True, compute_dtype: torch.dtype = torch.float32,
                     compile_kernels: bool = False, reads: str = "auto") -> LTXAVTransformer:
    """The transformer of a checkpoint, weights in their stored dtype (fp8 stays fp8; wider linear weights
    quantised to ``linear_storage`` if given), ready to run; other tensors in ``compute_dtype``. ``streamed``:
    only the weights outside the blocks are read now; each block is read from the file when a forward reaches
    it, installed in ``compute_dtype`` and released after (see
    :class:`~ltxgraph_ops.weights.streaming.StreamedBlocks`; ``reads``: "direct", "buffered" or "auto"); the
    fp8 layers outside the blocks (0.28 G weights in the 19B) are dequantised once here rather than at every
    call (and packed for oneDNN: :func:`~ltxgraph_ops.models.layers.pack_linears`). The blocks' element-wise regions run as one-pass C
    kernels on the CPU where they can be built (:func:`~ltxgraph_ops.models.fused_norm.native_kernels`), or
    compiled by torch with ``compile_kernels`` (:func:`~ltxgraph_ops.models.elementwise.compiled_kernels`)."""
    model = _load_transformer(path, device, linear_storage, streamed, prefetch, compute_dtype, reads)
    kernels = compiled_kernels() if compile_kernels else native_kernels() if torch.device(device).type == "cpu" \
        else None
    if kernels is not None:
        use_kernels(model, kernels)
    return model


def _load_transformer(path: str | Path, device: str | torch.device, linear_storage: torch.dtype | None,
                      streamed: bool, prefetch: bool, compute_dtype: torch.dtype,
                      reads: str = "auto") -> LTXAVTransformer:
    file = SafetensorsFile(path)
    config = transformer_config(file)
    prefix = transformer_prefix(file)
    with parameters_on_meta():
        model = LTXAVTransformer(config, device="cpu")
    if not streamed:
        return load_component(model, file, prefix, compute_dtype=compute_dtype, device=device,
                              allow_extra=CONNECTOR_PREFIXES, linear_storage=linear_storage)
    if linear_storage is not None:
        raise ValueError("quantising while streaming is not supported: stream an fp8 file instead")
    blocks = model.transformer_blocks
    model.transformer_blocks = nn.ModuleList()
    load_component(model, file, prefix, compute_dtype=compute_dtype, device=device,
                   allow_extra=CONNECTOR_PREFIXES + ("transformer_blocks.",))
    dequantize_linears(model, compute_dtype)
    pack_linears(model, compute_dtype)               # the resident layers outside the blocks (on a CPU)
    model.transformer_blocks = StreamedBlocks(blocks, file, f"{prefix}transformer_blocks.", device=device,
                                              compute_dtype=compute_dtype, prefetch=prefetch, reads=reads)
    return model


def is_streamed(model: nn.Module) -> bool:
    return isinstance(getattr(model, "transformer_blocks", None), StreamedBlocks)


def component_layout(file: SafetensorsFile, build: Callable[[dict], nn.Module], section: str,
                     prefix: str) -> nn.Module:
    """A component's architecture on the meta device, from its header section, checked against the file's
    tensors (names and shapes) without reading any."""
    try:
        with torch.device("meta"):
            layout = build(header_section(file, section) if section else file.config())
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{file.path}: '{section}' config: {exc}") from None
    match_component(layout, file, prefix)
    return layout


def load_section_component(path: str | Path, build: Callable[[dict], nn.Module], section: str, prefix: str,
                           device: str | torch.device = "cpu", compute_dtype: torch.dtype = torch.float32
                           ) -> nn.Module:
    """A component built from header section ``section`` (the whole config when "") and filled from the
    tensors under ``prefix``; its weights held in ``compute_dtype`` (inputs must come in it too)."""
    file = SafetensorsFile(path)
    config = header_section(file, section) if section else file.config()
    try:
        with parameters_on_meta():
            module = build(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{file.path}: '{section}' config: {exc}") from None
    return load_component(module, file, prefix, compute_dtype, device=device)
