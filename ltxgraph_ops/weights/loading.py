"""Loading a checkpoint component into a module, strictly and without holding two copies of anything.

A module is first built with its parameters on the meta device (:func:`parameters_on_meta`: no memory, no random
init), then every parameter and persistent buffer is replaced by the file's tensor of the same key, read when its
turn comes. Computed buffers (RoPE tables, filterbanks) are built for real at construction and left alone.

Storage dtypes: weights of :class:`~ltxgraph_ops.models.layers.Linear` layers (and their biases) stay in the
file's dtype (fp8, bf16) and are upcast per call, unless the file's dtype is wider than the compute dtype (a
float32 file computed in bf16: held in bf16); every other tensor is converted to the compute dtype. Scaled fp8
files carry a scale per layer under one of three names; the scale is attached to its Linear, and an input scale
is accepted and unused (activations are not quantised on this path). ComfyUI's int8 files (``int8_tensorwise``,
with or without ``convrot``; :mod:`ltxgraph_ops.weights.int8`) keep their int8 codes too, with the per-row scale
and the rotation's group size attached to the Linear (:mod:`ltxgraph_ops.weights.comfy_quant` reads and checks
each layer's entry).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from ltxgraph_ops.models.layers import Linear, pack_linears, share_weight_buffers
from ltxgraph_ops.weights.block_buffers import ComputeSlot
from ltxgraph_ops.weights.comfy_quant import check_int8_layer, header_layers, layer_quant
from ltxgraph_ops.weights.dequant import is_quantized
from ltxgraph_ops.weights.finite import has_non_finite
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile

WEIGHT_SCALE_SUFFIXES = (".weight_scale", ".scale_weight")
IGNORED_SUFFIXES = (".input_scale", ".scale_input", ".comfy_quant")
FILE_MARKERS = ("scaled_fp8",)
INT8_HOLDERS = "Linear layers and token embeddings"   # the layers that dequantise int8 weights


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Within this block, parameters registered on any module are created on the meta device (buffers are
    not): building a 19B model costs nothing until its weights are loaded."""
    original = nn.Module.register_parameter

    def register(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = register  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def _scaled_owners(module: nn.Module) -> dict[str, nn.Module]:
    """Modules whose weight may come scaled (fp8): Linear layers and anything else with a ``weight_scale``."""
    return {name: sub for name, sub in module.named_modules()
            if isinstance(sub, Linear) or hasattr(sub, "weight_scale")}


def stored_as_is(module: nn.Module) -> set[str]:
    """State-dict keys kept in the file's dtype: Linear weights and biases, and parameters a module lists in
    ``KEEP_STORAGE_DTYPE`` (e.g. a big embedding table)."""
    keys = set()
    for name, sub in module.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(sub, Linear):
            keys |= {f"{prefix}weight", f"{prefix}bias"}
        keys |= {f"{prefix}{param}" for param in getattr(sub, "KEEP_STORAGE_DTYPE", ())}
    return keys


def held_tensor(tensor: torch.Tensor, as_stored: bool, compute_dtype: torch.dtype) -> torch.Tensor:
    """A file's float tensor as a model holds it: in the compute dtype, except a tensor kept ``as_stored``
    (see :func:`stored_as_is`) that is not wider than the compute dtype (fp8 or bf16, converted per call)."""
    if tensor.is_floating_point() and (not as_stored or tensor.element_size() > compute_dtype.itemsize):
        return tensor.to(compute_dtype)
    return tensor


def _int8_layers(file: SafetensorsFile, prefix: str, owners: dict[str, nn.Module],
                scales: dict[str, str]) -> dict[str, int]:
    """The int8 layers among ``owners`` (name -> convrot group, 0: not rotated), every quantised layer's entry
    checked; an int8 weight with no int8 entry, or on a module that cannot hold one (only Linear layers and token
    embeddings, which have a ``weight_rotation``), is refused naming the key."""
    from_header = header_layers(file)
    rotations: dict[str, int] = {}
    for owner, sub in owners.items():
        layer = f"{prefix}{owner}" if owner else prefix.rstrip(".")
        weight = file.entries.get(f"{layer}.weight")
        if weight is None:
            continue
        quant = layer_quant(file, layer, from_header)
        if quant is None or not quant.is_int8:
            if weight.dtype == torch.int8:
                raise file.error("int8 weight without an 'int8_tensorwise' comfy_quant entry: its scale and "
                                 "rotation are unknown", weight.key)
            continue
        if not hasattr(sub, "weight_rotation"):
            raise file.error(f"{quant.describe()} weights are read for {INT8_HOLDERS} only, not for a "
                             f"{type(sub).__name__}", weight.key)
        check_int8_layer(file, layer, quant, scales.get(owner))
        rotations[owner] = quant.rotation
    return rotations


def _check_int8_holders(module: nn.Module, file: SafetensorsFile, expected: dict[str, torch.Tensor],
                        present: dict[str, str]) -> None:
    """Refuses an int8 tensor the file holds for a float tensor of ``module`` that no layer dequantises (a
    convolution's weight, a norm, a bias), naming the file, the key, the layer and what is read instead: int8 is
    read for the weights of Linear layers and token embeddings (those with a ``weight_rotation``) only.
    ``expected``: the module's state dict; ``present``: its keys -> the file's keys."""
    layers = dict(module.named_modules())
    for key, tensor in expected.items():
        entry = file.entries.get(present.get(key, ""))
        if entry is None or entry.dtype != torch.int8 or not tensor.is_floating_point():
            continue
        owner, _, leaf = key.rpartition(".")
        layer = layers[owner]
        if leaf == "weight" and hasattr(layer, "weight_rotation"):
            continue
        raise file.error(f"int8 {leaf} of the {type(layer).__name__} '{owner or type(module).__name__}': int8 "
                         f"weights are read for {INT8_HOLDERS} only; use a file of this model that holds its "
                         f"{type(layer).__name__} tensors in bf16 or float32", entry.key)


def _check_finite(file: SafetensorsFile, key: str, tensor: torch.Tensor) -> None:
    if tensor.is_floating_point() and has_non_finite(tensor):
        raise file.error("contains NaN or infinite values", key)


def _set_tensor(module: nn.Module, name: str, tensor: torch.Tensor) -> None:
    owner_name, _, leaf = name.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    if leaf in owner._parameters:
        owner._parameters[leaf] = nn.Parameter(tensor, requires_grad=False)
    elif leaf in owner._buffers:
        owner._buffers[leaf] = tensor
    else:  # pragma: no cover - names come from the module's own state dict
        raise KeyError(name)


@dataclass(frozen=True)
class ComponentMatch:
    """How a file's tensors map onto a module: state-dict key -> file key, Linear name -> scale key, and the
    int8 layers (Linear layers, token embeddings) -> their convrot group size (0: not rotated)."""

    tensors: dict[str, str]
    scales: dict[str, str]
    rotations: dict[str, int] = field(default_factory=dict)


def match_component(module: nn.Module, file: SafetensorsFile, prefix: str = "",
                    allow_extra: tuple[str, ...] = ()) -> ComponentMatch:
    """Check, from the header alone, that the tensors of ``file`` under ``prefix`` are exactly what ``module``
    needs (``module`` may live on the meta device). A tensor the module needs and the file lacks, a key under
    ``prefix`` the module does not have, or a shape that differs is a :class:`CheckpointError` naming the file
    and the keys (all problems listed); so is an int8 tensor for a layer that is not a Linear layer or token
    embedding (:func:`_check_int8_holders`). Keys under ``prefix`` starting with one of ``allow_extra`` belong to
    another component and are skipped."""
    expected = module.state_dict(keep_vars=True)
    linears = _scaled_owners(module)
    present = {key[len(prefix):]: key for key in file.keys(prefix)
               if not key[len(prefix):].startswith(allow_extra)}
    scales: dict[str, str] = {}
    extra: list[str] = []
    for key, full in present.items():
        if key in expected:
            continue
        owner = next((key[:-len(s)] for s in WEIGHT_SCALE_SUFFIXES if key.endswith(s)), None)
        if owner is not None and owner in linears:
            scales[owner] = full
        elif key.endswith(".comfy_quant") and key[:-len(".comfy_quant")] in linears:
            continue                            # read by _int8_layers below
        elif not (key.endswith(IGNORED_SUFFIXES) and key.rsplit(".", 1)[0] in linears):
            extra.append(full)
    _check_int8_holders(module, file, expected, present)
    missing = [prefix + key for key in expected if key not in present]
    misshapen = [f"{prefix + key}: file {list(file.entries[present[key]].shape)}, model {list(t.shape)}"
                 for key, t in expected.items()
                 if key in present and file.entries[present[key]].shape != tuple(t.shape)]
    problems = ([f"missing tensor '{key}'" for key in missing[:20]]
                + [f"unexpected tensor '{key}'" for key in extra[:20]]
                + [f"misshapen tensor {text}" for text in misshapen[:20]])
    if problems:
        counts = f"{len(missing)} missing, {len(extra)} unexpected, {len(misshapen)} misshapen"
        raise CheckpointError(f"{file.path}: does not match the model under prefix '{prefix}' ({counts}):\n  "
                              + "\n  ".join(problems))
    return ComponentMatch({key: present[key] for key in expected}, scales, _int8_layers(file, prefix, linears, scales))


def quantize_weight(weight: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight`` in fp8 ``dtype`` with a per-tensor float32 scale, ``weight ~= q.float() * scale``."""
    limit = torch.finfo(dtype).max
    scale = weight.float().abs().amax().clamp_min(1e-12) / limit
    return (weight.float() / scale).to(dtype), scale.reshape(())


def load_component(module: nn.Module, file: SafetensorsFile, prefix: str = "",
                   compute_dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                   allow_extra: tuple[str, ...] = (), linear_storage: torch.dtype | None = None) -> nn.Module:
    """Fill ``module`` (built under :func:`parameters_on_meta`, or normally) from ``file`` after
    :func:`match_component` has checked every key and shape. Linear weights keep the file's dtype, or are
    quantised to ``linear_storage`` (an fp8 dtype) when the file holds them wider; fp8 layers then share one
    set of reused buffers in ``compute_dtype`` to dequantise into per call; Linear weights held in ``compute_dtype``
    are packed for oneDNN where that is faster (:func:`~ltxgraph_ops.models.layers.pack_linears`: bf16 on a CPU, float32 where oneDNN multiplies it;
    ``LTXGRAPH_PACKED_WEIGHTS=0`` keeps them plain). Returns ``module`` in eval mode."""
    match = match_component(module, file, prefix, allow_extra)
    linears = _scaled_owners(module)
    linear_weights = {f"{name}.weight" for name, sub in linears.items() if isinstance(sub, Linear)}
    keep = stored_as_is(module)
    for key, current in module.state_dict(keep_vars=True).items():
        tensor = file.read(match.tensors[key])
        _check_finite(file, match.tensors[key], tensor)
        owner = key[: -len("weight")].rstrip(".") if key == "weight" or key.endswith(".weight") else None
        if owner in match.rotations:                          # int8 codes, kept as they are
            linears[owner].weight_rotation = match.rotations[owner]
        elif not tensor.is_floating_point():
            tensor = tensor.to(current.dtype)
        elif (key in linear_weights and linear_storage is not None and tensor.element_size() > 1
              and key[: -len(".weight")] not in match.scales):
            tensor, scale = quantize_weight(tensor, linear_storage)
            linears[key[: -len(".weight")]].weight_scale = scale.to(device)
        else:
            tensor = held_tensor(tensor, key in keep, compute_dtype)
        _set_tensor(module, key, tensor.to(device))
    for owner, key in match.scales.items():
        scale = file.read(key)
        _check_finite(file, key, scale)
        rows = linears[owner].weight.shape[0]
        if scale.numel() not in (1, rows):
            raise file.error(f"scale of {scale.numel()} values for a layer of {rows} rows", key)
        linears[owner].weight_scale = scale.to(torch.float32).reshape(() if scale.numel() == 1 else (-1,))
    if any(isinstance(layer, Linear) and is_quantized(layer.weight) for layer in module.modules()):
        share_weight_buffers(module, ComputeSlot(compute_dtype, device))   # every weight checked above
    pack_linears(module, compute_dtype)
    return module.eval()
