"""Writing checkpoints in the real LTX-2 file format: deterministic random weights, the header ``config``, and
fp8 (float8_e4m3fn + per-tensor ``weight_scale``), ComfyUI's int8 (optionally convrot) or bf16 storage. Used for tiny test models and for synthetic
full-size files."""
from __future__ import annotations

import json
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
from safetensors.torch import save_file
from torch import nn

from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.weights.int8 import comfy_quant_entry, convrot_group, dequantize_int8, quantize_int8

FP8_MAX = 448.0  # largest finite float8_e4m3fn


def seeded_value(key: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Random float32 values for checkpoint key ``key`` that depend only on (key, shape, seed), and keep a
    network's activations O(1): weights ~ N(0, 1/fan_in), biases and statistics means ~ N(0, 0.1^2), norm
    weights and statistics stds ~ 1 + small, modulation tables ~ N(0, 0.5^2)."""
    generator = torch.Generator().manual_seed((zlib.crc32(key.encode()) << 16) ^ seed)
    noise = torch.randn(shape, generator=generator)
    if key.endswith("std-of-means"):
        return 1 + 0.1 * noise.abs()
    if key.endswith(("mean-of-means", ".bias")):
        return 0.1 * noise
    if "scale_shift_table" in key:
        return 0.5 * noise
    if noise.ndim <= 1:
        return 1 + 0.1 * noise
    return noise / math.sqrt(max(1, noise[0].numel()))


def random_state(module: nn.Module, prefix: str, seed: int) -> dict[str, torch.Tensor]:
    """Every persistent tensor of ``module`` under its checkpoint key (``prefix`` + state-dict key)."""
    state = {}
    for key, tensor in module.state_dict(keep_vars=True).items():
        if tensor.is_floating_point():
            state[prefix + key] = seeded_value(prefix + key, tuple(tensor.shape), seed)
        else:
            state[prefix + key] = torch.zeros(tensor.shape, dtype=tensor.dtype)
    return state


def linear_weight_keys(module: nn.Module, prefix: str) -> set[str]:
    return {f"{prefix}{name}.weight" for name, sub in module.named_modules() if isinstance(sub, Linear)}


def quantize_fp8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float8_e4m3fn weight and its float32 scalar scale, ``weight ~= fp8.float() * scale``."""
    scale = weight.abs().amax().clamp_min(1e-12) / FP8_MAX
    return (weight / scale).to(torch.float8_e4m3fn), scale.reshape(()).to(torch.float32)


def convrot_group_for(in_features: int, largest: int = 256) -> int:
    """The convrot group a tiny int8-convrot file uses for a layer ``in_features`` wide: the largest power of 4
    up to ``largest`` (the releases' 256) dividing it, 0 (not rotated, as ComfyUI leaves such layers) if none."""
    group = largest
    while group >= 4 and in_features % group:
        group //= 4
    return group if group >= 4 else 0


def store(state: dict[str, torch.Tensor], linear_weights: set[str], storage: str) -> dict[str, torch.Tensor]:
    """Tensors as a file of ``storage`` ("float32", "bf16", "fp8", "fp8-old", "int8" or "int8-convrot") holds
    them: fp8 files keep Linear weights in float8_e4m3fn with a scale (``<layer>.weight_scale``; ``scale_weight``
    for the old layout); int8 files in ComfyUI's ``int8_tensorwise`` layout (int8 codes, a ``weight_scale`` per row
    [out, 1], a ``comfy_quant`` entry; "int8-convrot": rotated by groups of :func:`convrot_group_for` columns,
    :mod:`ltxgraph_ops.weights.int8`); everything else in bf16."""
    if storage == "float32":
        return dict(state)
    if storage not in ("bf16", "fp8", "fp8-old", "int8", "int8-convrot"):
        raise ValueError(f"storage must be float32, bf16, fp8, fp8-old, int8 or int8-convrot, not {storage!r}")
    out = {}
    scale_name = "scale_weight" if storage == "fp8-old" else "weight_scale"
    for key, tensor in state.items():
        layer = key[: -len("weight")]
        if storage.startswith("int8") and key in linear_weights:
            group = convrot_group_for(tensor.shape[1]) if storage == "int8-convrot" else 0
            out[key], out[layer + "weight_scale"] = quantize_int8(tensor, group)
            out[layer + "comfy_quant"] = comfy_quant_entry(group)
        elif storage != "bf16" and key in linear_weights:
            out[key], out[layer + scale_name] = quantize_fp8(tensor)
        elif tensor.is_floating_point():
            out[key] = tensor.to(torch.bfloat16)
        else:
            out[key] = tensor
    if storage == "fp8-old":
        out["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    return out


def dequantised_file(source: Path, target: Path) -> Path:
    """The float32 file an int8 file stands for: ``source`` with every int8 layer (a ``comfy_quant`` entry) replaced
    by its dequantised weight, its scale and entry dropped, and every other float tensor in float32; the header
    kept. A model loaded from it computes exactly what the same model loaded from ``source`` computes."""
    from safetensors import safe_open
    with safe_open(str(source), "pt") as opened:
        tensors = {key: opened.get_tensor(key) for key in opened.keys()}
        metadata = opened.metadata() or {}
    for entry in [key for key in tensors if key.endswith(".comfy_quant")]:
        layer = entry[: -len(".comfy_quant")]
        group = convrot_group(json.loads(bytes(tensors.pop(entry).tolist())))
        scale = tensors.pop(f"{layer}.weight_scale")
        tensors[f"{layer}.weight"] = dequantize_int8(tensors[f"{layer}.weight"], torch.float32, scale, group)
    return save_atomic(target, {key: t.float() if t.is_floating_point() else t for key, t in tensors.items()},
                       metadata)


def save_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write a safetensors file so that it appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def header_metadata(sections: dict[str, dict], extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"config": json.dumps(sections, sort_keys=True), **(extra or {})}


Builder = Callable[[], tuple[nn.Module, str]]


def checkpoint_tensors(parts: Iterable[tuple[nn.Module, str]], seed: int, storage: str) -> dict[str, torch.Tensor]:
    """Stored tensors of several (module, prefix) components written into one file."""
    tensors: dict[str, torch.Tensor] = {}
    for module, prefix in parts:
        state = random_state(module, prefix, seed)
        overlap = set(state) & set(tensors)
        if overlap:
            raise ValueError(f"components share keys, e.g. {sorted(overlap)[:3]}")
        tensors.update(store(state, linear_weight_keys(module, prefix), storage))
    return tensors


# ------------------------------------------------------------------------------------------ full-size synthetic

_SAFETENSORS_DTYPES = {torch.float8_e4m3fn: "F8_E4M3", torch.bfloat16: "BF16", torch.float32: "F32",
                       torch.uint8: "U8", torch.int64: "I64"}
CHUNK = 1 << 26  # elements generated at a time: bounds the writer's memory


def _fp8_bytes(count: int, generator: torch.Generator) -> torch.Tensor:
    """Random float8_e4m3fn bit patterns with magnitudes in [1/8, 2) and random signs (never NaN)."""
    raw = torch.randint(0, 256, (count,), dtype=torch.uint8, generator=generator)
    exponent = ((raw >> 3) & 0x3) + 4                                   # biased exponents 4..7: 2^-3 .. 2^0
    return (raw & 0x87) | (exponent << 3)


@dataclass(frozen=True)
class SyntheticPart:
    """One component of a synthetic file: its layout (built on the meta device), key prefix, and whether its
    Linear weights are stored as fp8 (else bf16 like everything else)."""

    module: nn.Module
    prefix: str
    fp8_linears: bool = True


def synthetic_plan(parts: list[SyntheticPart]) -> list[tuple[str, torch.dtype, tuple[int, ...]]]:
    plan: list[tuple[str, torch.dtype, tuple[int, ...]]] = []
    for part in parts:
        linears = linear_weight_keys(part.module, part.prefix) if part.fp8_linears else set()
        for key, tensor in part.module.state_dict(keep_vars=True).items():
            name = part.prefix + key
            if name in linears:
                plan.append((name, torch.float8_e4m3fn, tuple(tensor.shape)))
                plan.append((name[: -len("weight")] + "weight_scale", torch.float32, ()))
            else:
                dtype = torch.bfloat16 if tensor.is_floating_point() else tensor.dtype
                plan.append((name, dtype, tuple(tensor.shape)))
    return plan


def write_synthetic(path: Path, parts: list[SyntheticPart], metadata: dict[str, str], seed: int = 0,
                    extra: dict[str, torch.Tensor] | None = None) -> Path:
    """A full-size checkpoint of several components written tensor by tensor, so a 19B file needs only a chunk
    of memory: fp8 Linear weights as random bit patterns with a per-tensor ``weight_scale`` (1/sqrt(fan_in)),
    everything else bf16 from :func:`seeded_value`; ``extra`` tensors (e.g. a tokenizer, or the real values of
    a part's non-learned filters, which replace the part's) are written as given.
    The file appears whole or not at all."""
    extra = {key: value.contiguous() for key, value in (extra or {}).items()}
    plan = [entry for entry in synthetic_plan(parts) if entry[0] not in extra]
    plan += [(key, value.dtype, tuple(value.shape)) for key, value in extra.items()]
    names = [name for name, _, _ in plan]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: components share keys")
    header: dict = {"__metadata__": metadata}
    offset = 0
    for name, dtype, shape in plan:
        size = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        header[name] = {"dtype": _SAFETENSORS_DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    generator = torch.Generator().manual_seed(seed)
    try:
        with open(tmp, "wb") as handle:
            handle.write(len(raw).to_bytes(8, "little") + raw)
            for name, dtype, shape in plan:
                count = math.prod(shape)
                if name in extra:
                    handle.write(extra[name].reshape(-1).view(torch.uint8).numpy().tobytes())
                elif dtype == torch.float8_e4m3fn:
                    for start in range(0, count, CHUNK):
                        handle.write(_fp8_bytes(min(CHUNK, count - start), generator).numpy().tobytes())
                elif name.endswith("weight_scale") and dtype == torch.float32:
                    fan_in = header[name[: -len("weight_scale")] + "weight"]["shape"][-1]
                    handle.write(torch.tensor(1.0 / math.sqrt(fan_in)).numpy().tobytes())
                else:
                    value = seeded_value(name, shape, seed).to(dtype)
                    handle.write(value.reshape(-1).view(torch.uint8).numpy().tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
