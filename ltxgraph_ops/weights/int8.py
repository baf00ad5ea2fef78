"""ComfyUI's int8 weights (format ``int8_tensorwise``, optionally ``convrot``) to the compute dtype, exactly.

The layout, per Linear layer ``L`` (comfy-kitchen's TensorWiseINT8Layout as ComfyUI stores it):

- ``L.weight`` int8 [out, in]; ``L.weight_scale`` float32, one value per output row ([out, 1]; a scalar in plain
  tensor-wise files); ``L.comfy_quant`` uint8 JSON ``{"format": "int8_tensorwise", "convrot": true,
  "convrot_groupsize": 256}`` (the two convrot fields may also sit under ``"params"``; absent means not rotated).
  There is no input scale: the format does not quantise activations (comfy-kitchen's int8 matmul quantises them
  per row on the fly; ltxgraph does not, see below). A bias is a float tensor of its own, never quantised.
- convrot: before quantisation each group of ``g`` input columns (``g`` a power of 4, 256 in the releases) was
  rotated, ``W_rot = W H``, with ``H = R^(x k) / 2^k`` (``g = 4^k``): the k-fold Kronecker power of the regular
  Hadamard matrix ``R = [[1,1,1,-1],[1,1,-1,1],[1,-1,1,1],[-1,1,1,1]]`` normalised by ``sqrt(g)``. ``H`` is
  symmetric and orthogonal, so its own inverse; it has no seed and no sign vector: only ``g`` is stored. Then
  ``q = round(W_rot / s)`` row by row with ``s = max|W_rot row| / 127``.
- dequantised weight: ``W = (q s) H`` per group of input columns.

Computed exactly: ``q R^(x k)`` has integer entries of magnitude at most ``128 g``, which a float32 matrix product
with the +-1 matrix gets exactly whatever its summation order (every partial sum is an integer below 2^24); the
result is then multiplied by ``s 2^-k`` (exact: a power of two times ``s``). One rounding in all: the float32
weight is the exact ``(q s) H`` correctly rounded (a bfloat16 weight is that float32 rounded again, as ComfyUI's
``.to(dtype)`` does). comfy-kitchen instead rounds ``q s`` first and then sums 256 rounded products; it differs
from the exact value by a few float32 ulps (|error| <= 256 u sum|q s| / 16 with u = 2^-24; measured in the tests).
Without convrot the weight is ``q s``, one rounding, bit-identical to comfy-kitchen's.

Why the weight is dequantised rather than the activations rotated: ``x W^T = (x H) (q s)^T`` would skip the
weight's rotation but rotate every token instead (cheaper only with fewer tokens than output rows), and its
rounding differs from the float model's; the benchmark (tools/bench_int8.py) measures both.
"""
from __future__ import annotations

import json

import torch

from ltxgraph_ops.weights.fp8 import DequantWorkspace

INT8_FORMAT = "int8_tensorwise"
INT8_LIMIT = 127.0                # the scale maps a row's largest magnitude to 127 (the code -128 stays unused)
REGULAR_HADAMARD_4 = ((1, 1, 1, -1), (1, 1, -1, 1), (1, -1, 1, 1), (-1, 1, 1, 1))


def rotation_stages(group: int) -> int:
    """k with ``group == 4**k`` (k >= 1); ValueError for any other group size."""
    stages, size = 0, group
    while size > 1 and size % 4 == 0:
        size, stages = size // 4, stages + 1
    if size != 1 or stages == 0:
        raise ValueError(f"convrot group size {group} is not a power of 4 (4, 16, 64, 256, ...)")
    return stages


def hadamard_signs(group: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
                   ) -> torch.Tensor:
    """The unnormalised regular Hadamard matrix ``R^(x k)`` of size ``group`` (entries +-1): [group, group]."""
    base = torch.tensor(REGULAR_HADAMARD_4, dtype=dtype, device=device)
    signs = base
    for _ in range(rotation_stages(group) - 1):
        signs = torch.kron(signs, base)
    return signs


def rotate_groups(x: torch.Tensor, group: int) -> torch.Tensor:
    """``x H`` over each group of ``group`` consecutive entries of the last dimension ([..., n], n a multiple
    of ``group``), in x's dtype: the convrot rotation (its own inverse)."""
    if x.shape[-1] % group:
        raise ValueError(f"convrot group size {group} does not divide the last dimension {x.shape[-1]}")
    signs = hadamard_signs(group, x.dtype, x.device)
    rotated = x.reshape(-1, group) @ signs
    return rotated.mul_(2.0 ** -rotation_stages(group)).reshape(x.shape)


def quantize_int8(weight: torch.Tensor, group: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A float weight [out, in] as ComfyUI stores it in int8: rotated by groups of ``group`` input columns when
    ``group`` (convrot), then one scale per row. Returns (int8 [out, in], float32 scale [out, 1]); the rotation
    runs in float64 and rounds to nearest, ties to even."""
    values = weight.to(torch.float64)
    if group:
        values = rotate_groups(values, group)
    scale = (values.abs().amax(dim=1, keepdim=True) / INT8_LIMIT).to(torch.float32).clamp_min(1e-30)
    codes = (values / scale.double()).round_().clamp_(-128, 127).to(torch.int8)
    return codes, scale


def comfy_quant_entry(group: int = 0) -> torch.Tensor:
    """The ``<layer>.comfy_quant`` tensor of an int8 layer: its JSON as uint8 bytes, as ComfyUI writes it."""
    spec: dict[str, object] = {"format": INT8_FORMAT}
    if group:
        spec.update(convrot=True, convrot_groupsize=group)
    return torch.tensor(list(json.dumps(spec).encode("utf-8")), dtype=torch.uint8)


def convrot_group(spec: dict) -> int:
    """The rotation group size an ``int8_tensorwise`` entry names (0: not rotated); ValueError when malformed."""
    params = spec.get("params") if isinstance(spec.get("params"), dict) else {}
    if not spec.get("convrot", params.get("convrot", False)):
        return 0
    group = spec.get("convrot_groupsize", params.get("convrot_groupsize", 256))
    if isinstance(group, bool) or not isinstance(group, int):
        raise ValueError(f"convrot_groupsize {group!r} is not an integer")
    rotation_stages(group)
    return group


def _signs(workspace: DequantWorkspace, group: int) -> torch.Tensor:
    key = ("hadamard", group)
    if key not in workspace.constants:
        workspace.constants[key] = hadamard_signs(group, torch.float32, workspace.device)
    return workspace.constants[key]


def dequantize_int8_into(weight: torch.Tensor, out: torch.Tensor, scale: torch.Tensor | float | None = None,
                         group: int = 0, workspace: DequantWorkspace | None = None) -> torch.Tensor:
    """``out = (weight * scale) H`` (``H`` over groups of ``group`` input columns; none when 0) rounded once to
    ``out.dtype`` (float32, or bfloat16 through float32), for an int8 ``weight`` [rows, in] and ``scale`` None,
    a scalar or one value per row ([rows] or [rows, 1]). Works a chunk of rows at a time in ``workspace``.
    Returns ``out``."""
    if weight.dtype != torch.int8 or weight.ndim != 2:
        raise TypeError(f"dequantize_int8_into: weight is {weight.dtype} {list(weight.shape)}, not int8 [rows, in]")
    if out.dtype not in (torch.float32, torch.bfloat16) or out.shape != weight.shape or not out.is_contiguous():
        raise ValueError(f"dequantize_int8_into: out must be a contiguous float32/bfloat16 tensor of shape "
                         f"{list(weight.shape)}, got {out.dtype} {list(out.shape)}")
    rows, columns = weight.shape
    if group and columns % group:
        raise ValueError(f"dequantize_int8_into: convrot group {group} does not divide {columns} input columns")
    workspace = workspace or DequantWorkspace(device=out.device)
    factors = (torch.ones(()) if scale is None else torch.as_tensor(scale, dtype=torch.float32)).to(out.device)
    if factors.numel() not in (1, rows):
        raise ValueError(f"dequantize_int8_into: {factors.numel()} scales for a weight of {rows} rows")
    factors = factors.reshape(-1, 1) * (2.0 ** -rotation_stages(group) if group else 1.0)
    chunk_rows = max(1, workspace.chunk_elements // columns)
    workspace.reserve(2 * chunk_rows * columns)
    weight = weight.contiguous()
    for first in range(0, rows, chunk_rows):
        last = min(first + chunk_rows, rows)
        size = (last - first) * columns
        codes = workspace.values[:size].view(last - first, columns)
        codes.copy_(weight[first:last])                            # exact: int8 -> float32
        values = codes
        if group:                                                  # exact integer sums (|.| <= 128 group)
            values = workspace.values[size:2 * size].view(last - first, columns)
            torch.mm(codes.view(-1, group), _signs(workspace, group), out=values.view(-1, group))
        factor = factors if factors.shape[0] == 1 else factors[first:last]
        if out.dtype == torch.float32:
            torch.mul(values, factor, out=out[first:last])         # the one rounding
        else:
            out[first:last].copy_(values.mul_(factor))
    return out


def dequantize_int8(weight: torch.Tensor, dtype: torch.dtype = torch.float32,
                    scale: torch.Tensor | float | None = None, group: int = 0) -> torch.Tensor:
    """:func:`dequantize_int8_into` into a new tensor of ``dtype``."""
    out = torch.empty(weight.shape, dtype=dtype, device=weight.device)
    return dequantize_int8_into(weight, out, scale, group)
