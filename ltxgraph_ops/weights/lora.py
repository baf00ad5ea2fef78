"""LoRA files: read in any of the dialects LTX-2 users bring, attached to a model's Linear layers as low-rank
deltas at compute time (never merged, so fp8 weights stay fp8 and LoRAs stack, re-weight and detach freely).

Dialects (per layer ``<m>`` of the transformer):
- ``diffusion_model.<m>.lora_A.weight`` [r, in] / ``.lora_B.weight`` [out, r]: the distilled LoRA and IC-LoRAs;
  no alpha, delta = strength * B @ A.
- ``<m>.lora_down.weight`` / ``.lora_up.weight`` with optional ``<m>.alpha``: delta = strength * alpha/r * up @ down.
- Kohya names ``lora_unet_<m with dots as underscores>.*``, resolved against the model's own layer names.
Module prefixes ``diffusion_model.``, ``model.diffusion_model.`` and ``transformer.`` are accepted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ltxgraph_ops.models.layers import Linear, LowRankDelta
from ltxgraph_ops.weights.finite import has_non_finite
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile

MODULE_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "transformer.", "")
PAIRS = ((".lora_A.weight", ".lora_B.weight"), (".lora_down.weight", ".lora_up.weight"))
KOHYA_PREFIX = "lora_unet_"


@dataclass(frozen=True)
class LayerLora:
    """One layer's low-rank pair: down [r, in], up [out, r], and its alpha/r factor (1 without alpha)."""

    down: torch.Tensor
    up: torch.Tensor
    factor: float


@dataclass(frozen=True)
class LoraWeights:
    """A LoRA file matched against a model: per-layer pairs, keys that fit no layer, and header metadata."""

    source: str
    layers: dict[str, LayerLora]
    unmatched: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    def model_metadata(self) -> dict[str, object]:
        """What ops downstream need from the header (an IC-LoRA's ``reference_downscale_factor``)."""
        found: dict[str, object] = {}
        raw = self.metadata.get("reference_downscale_factor")
        if raw is not None:
            try:
                value = float(raw)
            except ValueError:
                raise CheckpointError(f"{self.source}: metadata reference_downscale_factor={raw!r} is not a number")
            if not value > 0:
                raise CheckpointError(f"{self.source}: metadata reference_downscale_factor={raw!r} must be > 0")
            found["reference_downscale_factor"] = int(value) if value.is_integer() else value
        return found


def _layer_name(stem: str, linears: dict[str, Linear], kohya: dict[str, str]) -> str | None:
    if stem.startswith(KOHYA_PREFIX):
        return kohya.get(stem[len(KOHYA_PREFIX):])
    for prefix in MODULE_PREFIXES:
        if stem.startswith(prefix) and stem[len(prefix):] in linears:
            return stem[len(prefix):]
    return None


def read_lora(path: str | Path, model: nn.Module) -> LoraWeights:
    """Read a LoRA file and match it to ``model``'s Linear layers. A pair whose shapes do not fit its layer, a
    half pair, or a file where nothing fits the model is a :class:`CheckpointError` naming file and key."""
    file = SafetensorsFile(path)
    linears = {name: sub for name, sub in model.named_modules() if isinstance(sub, Linear)}
    kohya = {name.replace(".", "_"): name for name in linears}
    keys = set(file.entries)
    used: set[str] = set()
    layers: dict[str, LayerLora] = {}
    for down_suffix, up_suffix in PAIRS:
        for key in sorted(k for k in keys if k.endswith(up_suffix)):
            if key[: -len(up_suffix)] + down_suffix not in keys:
                raise file.error(f"has no matching '{key[: -len(up_suffix)] + down_suffix}'", key)
        for key in sorted(k for k in keys if k.endswith(down_suffix)):
            stem = key[: -len(down_suffix)]
            if stem + up_suffix not in keys:
                raise file.error(f"has no matching '{stem + up_suffix}'", key)
            name = _layer_name(stem, linears, kohya)
            if name is not None:
                layers[name] = _layer(file, key, stem + up_suffix, stem + ".alpha", linears[name])
                used |= {key, stem + up_suffix, stem + ".alpha"}
    unmatched = tuple(sorted(keys - used))
    if not layers:
        sample = ", ".join(sorted(keys)[:3]) or "(no tensors)"
        raise CheckpointError(f"{file.path}: no tensor of this LoRA fits a layer of the model (keys start {sample})")
    return LoraWeights(str(file.path), layers, unmatched, dict(file.metadata))


def _layer(file: SafetensorsFile, down_key: str, up_key: str, alpha_key: str, linear: Linear) -> LayerLora:
    down, up = file.read(down_key), file.read(up_key)
    for key, tensor in ((down_key, down), (up_key, up)):
        if tensor.ndim != 2 or not tensor.is_floating_point():
            raise file.error(f"must be a 2-D float matrix, is {tensor.dtype} {list(tensor.shape)}", key)
        if has_non_finite(tensor):
            raise file.error("contains NaN or infinite values", key)
    rank = down.shape[0]
    if down.shape[1] != linear.in_features or up.shape != (linear.out_features, rank):
        raise file.error(f"shapes {list(down.shape)} / {list(up.shape)} do not fit a layer "
                         f"{linear.in_features} -> {linear.out_features}", down_key)
    factor = 1.0
    if alpha_key in file.entries:
        alpha = file.read(alpha_key).float()
        if alpha.numel() != 1 or not bool(torch.isfinite(alpha).all()):
            raise file.error("alpha must be one finite number", alpha_key)
        factor = float(alpha) / rank
    return LayerLora(down, up, factor)


@dataclass(frozen=True)
class LoraPatch:
    """A LoRA at a strength, attachable to the model it was read for (see :class:`ModelHandle`)."""

    weights: LoraWeights
    strength: float

    def attach(self, module: nn.Module) -> Callable[[], None]:
        added: list[tuple[Linear, LowRankDelta]] = []
        for name, layer in self.weights.layers.items():
            linear = module.get_submodule(name)
            delta = LowRankDelta(layer.down, layer.up, self.strength * layer.factor)
            linear.deltas.append(delta)
            added.append((linear, delta))

        def detach() -> None:
            for linear, delta in added:
                linear.deltas[:] = [d for d in linear.deltas if d is not delta]

        return detach
