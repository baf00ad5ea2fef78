"""One entry point for stored weights that need dequantising: fp8 (:mod:`ltxgraph_ops.weights.fp8`) and ComfyUI's
int8, rotated or not (:mod:`ltxgraph_ops.weights.int8`)."""
from __future__ import annotations

import torch

from ltxgraph_ops.weights.fp8 import DequantWorkspace, dequantize_into, is_fp8
from ltxgraph_ops.weights.int8 import dequantize_int8_into


def is_quantized(tensor: torch.Tensor) -> bool:
    """A weight held as codes that need a scale (fp8 or int8) to mean anything."""
    return is_fp8(tensor) or tensor.dtype == torch.int8


def dequantize_stored_into(weight: torch.Tensor, out: torch.Tensor, scale: torch.Tensor | float | None = None,
                           workspace: DequantWorkspace | None = None, rotation: int = 0,
                           nan_free: bool = False) -> torch.Tensor:
    """``out`` = the float value of a quantised ``weight`` [rows, ...] (fp8, or int8 with its convrot group
    ``rotation``, 0 for none) times ``scale`` (None, scalar or per row), rounded to ``out.dtype``."""
    if weight.dtype == torch.int8:
        return dequantize_int8_into(weight, out, scale, rotation, workspace)
    if rotation:
        raise ValueError(f"a convrot rotation applies to int8 weights only, not {weight.dtype}")
    return dequantize_into(weight, out, scale, workspace, nan_free=nan_free)


def dequantize_stored(weight: torch.Tensor, dtype: torch.dtype = torch.float32,
                      scale: torch.Tensor | float | None = None, rotation: int = 0) -> torch.Tensor:
    """:func:`dequantize_stored_into` into a new tensor of ``dtype``."""
    out = torch.empty(weight.shape, dtype=dtype, device=weight.device)
    return dequantize_stored_into(weight, out, scale, rotation=rotation)
