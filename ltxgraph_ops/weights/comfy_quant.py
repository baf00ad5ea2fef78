"""What a checkpoint says about a quantised layer: ComfyUI's per-layer ``<layer>.comfy_quant`` entry (uint8 JSON)
or the header's ``_quantization_metadata`` (``{"layers": {"<layer>": {...}}}``, the form ComfyUI converts into
those entries), read and checked against the layer from the header alone.

Formats read: the fp8 ones (``weight_scale`` per tensor or per row; :mod:`ltxgraph_ops.weights.fp8`) and
``int8_tensorwise`` with or without ``convrot`` (:mod:`ltxgraph_ops.weights.int8`). Anything else is refused naming
the file, the key and the format.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from ltxgraph_ops.weights.int8 import INT8_FORMAT, convrot_group
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile

FP8_FORMATS = ("float8_e4m3fn", "float8_e4m3fn_scaled", "fp8_e4m3fn", "float8_e5m2")
SUPPORTED_FORMATS = FP8_FORMATS + (INT8_FORMAT,)
HEADER_KEY = "_quantization_metadata"


@dataclass(frozen=True)
class LayerQuant:
    """A layer's quantisation: its format and, for int8, the convrot group size (0: not rotated)."""

    format: str
    rotation: int = 0

    @property
    def is_int8(self) -> bool:
        return self.format == INT8_FORMAT

    def describe(self) -> str:
        if not self.is_int8:
            return self.format
        return f"{INT8_FORMAT} convrot {self.rotation}" if self.rotation else INT8_FORMAT


def header_layers(file: SafetensorsFile) -> dict[str, object]:
    """The header's per-layer quantisation entries (layer key -> spec), {} when it has none."""
    raw = file.metadata.get(HEADER_KEY)
    if raw is None:
        return {}
    try:
        layers = json.loads(raw).get("layers", {})
    except (json.JSONDecodeError, AttributeError):
        raise file.error(f"header '{HEADER_KEY}' is not a JSON object") from None
    if not isinstance(layers, dict):
        raise file.error(f"header '{HEADER_KEY}' has no 'layers' object")
    return layers


def layer_quant(file: SafetensorsFile, layer: str, from_header: dict[str, object]) -> LayerQuant | None:
    """The quantisation of the layer whose tensors are ``<layer>.*`` in ``file`` (``from_header``:
    :func:`header_layers`), None when it names none; a CheckpointError naming the key when malformed or of a
    format ltxgraph does not read."""
    key = f"{layer}.comfy_quant"
    if key in file.entries:
        try:
            spec = json.loads(bytes(file.read(key).tolist()).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError):
            raise file.error("comfy_quant entry is not JSON", key) from None
    elif layer in from_header:
        spec, key = from_header[layer], f"{HEADER_KEY}[{layer!r}]"
        spec = {"format": spec} if isinstance(spec, str) else spec
    else:
        return None
    fmt = spec.get("format") if isinstance(spec, dict) else None
    if fmt not in SUPPORTED_FORMATS:
        raise file.error(f"quantisation format {fmt!r} is not supported (supported: {', '.join(SUPPORTED_FORMATS)})"
                         "; use a bf16, fp8 or int8 file of this model", key)
    if fmt != INT8_FORMAT:
        return LayerQuant(fmt)
    try:
        return LayerQuant(fmt, convrot_group(spec))
    except ValueError as exc:
        raise file.error(str(exc), key) from None


def check_int8_layer(file: SafetensorsFile, layer: str, quant: LayerQuant, scale_key: str | None) -> None:
    """Refuses (naming the key) an int8 layer whose weight is not int8 [out, in], whose ``weight_scale`` is
    missing or neither one value nor one per row, or whose convrot group does not divide its input width."""
    weight = file.entries[f"{layer}.weight"]
    if weight.dtype != torch.int8 or len(weight.shape) != 2:
        raise file.error(f"{quant.describe()} layer needs an int8 [out, in] weight, the file has "
                         f"{str(weight.dtype).replace('torch.', '')} {list(weight.shape)}", weight.key)
    if scale_key is None:
        raise file.error(f"{quant.describe()} layer has no '{layer}.weight_scale'", f"{layer}.comfy_quant")
    scale = file.entries[scale_key]
    rows, columns = weight.shape
    if not scale.dtype.is_floating_point or torch.Size(scale.shape).numel() not in (1, rows):
        raise file.error(f"scale of shape {list(scale.shape)} for an int8 weight of {rows} rows (needs [{rows}, 1], "
                         f"[{rows}] or one value)", scale_key)
    if quant.rotation and columns % quant.rotation:
        raise file.error(f"convrot group size {quant.rotation} does not divide the weight's {columns} input "
                         "columns", f"{layer}.comfy_quant")
