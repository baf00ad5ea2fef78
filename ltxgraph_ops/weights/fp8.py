"""fp8 weights to the compute dtype (float32, bfloat16) fast, bit-exact, and into memory the caller owns.

torch's own ``fp8.to(float32)`` converts one element at a time (0.2-0.4 G elements/s on our CPUs). Here the
conversion goes through float16, whose conversion to float32 is a vectorised hardware instruction:

- e4m3fn ``s eeee mmm`` (bias 7) placed at bits 14..7 of a float16 (bias 15) is the same number times 2^-8,
  subnormals included (both formats' subnormals scale by the same power of two). Three int16 operations build
  it: sign-extend the byte, shift left by 7, clear bit 14 (which the sign extension set). The float32 result is
  then multiplied by 2^8 * scale (exact: a power of two), one rounding as in ``w.float() * scale``.
- e4m3fn has no infinities; its NaN is ``s 1111 111``, which the shift maps to +-1.875 * 2^8 = +-480, beyond
  the format's largest finite +-448. A chunk holding one (found with one min/max pass) gets torch's own NaN
  written there (skipped with ``nan_free`` when the caller has refused NaN codes already).
- e5m2 ``s eeeee mm`` is exactly the high byte of a float16: shift left by 8 (NaN payloads restored as above).

Working in chunks of :data:`CHUNK_ELEMENTS` keeps the int16 and float32 temporaries in the CPU cache (going
through float32 directly from the bits would make e4m3 subnormals float32 subnormals, whose multiplication is
about 50x slower). A :class:`DequantWorkspace` holds those temporaries so repeated calls allocate nothing.

That is the eager path. On the CPU a one-pass compiled kernel (:mod:`ltxgraph_ops.weights.fp8_kernel`, built
once per machine with the C compiler) does the same conversion 2-3x faster, bit for bit; the eager path stays
for other devices and for machines without a compiler.
"""
from __future__ import annotations

import math

import torch

from ltxgraph_ops.weights.fp8_kernel import load_kernel

CHUNK_ELEMENTS = 1 << 18          # elements per chunk: 512 KiB int16 + 1 MiB float32 temporaries
FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
COMPUTE_DTYPES = (torch.float32, torch.bfloat16)
E4M3_CLEAR_BIT14 = ~(1 << 14)     # the sign extension's copy of the sign in the float16 exponent's top bit
E4M3_NAN_AT = 1.875               # |float16 value| of e4m3fn's NaN code after the shift
E4M3_TO_HALF = 2.0 ** 8           # the float16 value is the e4m3 value times 2^-8


class DequantWorkspace:
    """Chunk temporaries (int16 bits, float32 values), allocated once and reused by every conversion (fp8 here,
    int8 in :mod:`ltxgraph_ops.weights.int8`)."""

    def __init__(self, chunk_elements: int = CHUNK_ELEMENTS, device: torch.device | str = "cpu") -> None:
        self.chunk_elements, self.device = chunk_elements, torch.device(device)
        self.bits = torch.empty(0, dtype=torch.int16, device=self.device)
        self.values = torch.empty(0, dtype=torch.float32, device=self.device)
        self.constants: dict[tuple, torch.Tensor] = {}   # small fixed matrices (int8 convrot's Hadamard signs)
        self.reserve(chunk_elements)

    def reserve(self, elements: int) -> None:
        """Make room for ``elements`` per chunk (a weight row longer than a chunk is converted whole)."""
        if self.bits.numel() < elements:
            self.bits = torch.empty(elements, dtype=torch.int16, device=self.device)
            self.values = torch.empty(elements, dtype=torch.float32, device=self.device)


def is_fp8(tensor: torch.Tensor) -> bool:
    return tensor.dtype in FP8_DTYPES


def _half_bits(part: torch.Tensor, bits: torch.Tensor) -> None:
    """Write the float16 bit patterns of fp8 ``part`` (flat) into ``bits`` (see the module docstring)."""
    bits.copy_(part.view(torch.int8))                # sign-extended to 16 bits
    if part.dtype == torch.float8_e5m2:
        bits.bitwise_left_shift_(8)
    else:
        bits.bitwise_left_shift_(7).bitwise_and_(E4M3_CLEAR_BIT14)


def _restore_nan(part: torch.Tensor, values: torch.Tensor) -> None:
    """Give NaN codes of fp8 ``part`` the exact float32 bits torch's own conversion gives them (e4m3fn's NaN
    arrives here as +-1.875, all its finite codes being within +-1.75; e5m2's as a float16 NaN whose payload the
    vectorised conversion does not keep)."""
    if part.dtype == torch.float8_e5m2:
        if not bool(values.isnan().any()):
            return
        is_nan = values.isnan()
    else:
        low, high = torch.aminmax(values)
        if float(high) < E4M3_NAN_AT and float(low) > -E4M3_NAN_AT:
            return
        is_nan = values.abs() >= E4M3_NAN_AT
    values[is_nan] = part[is_nan].to(torch.float32)


def dequantize_into(weight: torch.Tensor, out: torch.Tensor, scale: torch.Tensor | float | None = None,
                    workspace: DequantWorkspace | None = None, nan_free: bool = False,
                    compiled: bool = True) -> torch.Tensor:
    """``out = weight.to(float32) * scale`` rounded to ``out.dtype`` (float32 or bfloat16), bit for bit, for an
    fp8 ``weight`` [rows, ...] (on the CPU, or any device with ``out`` and ``workspace`` there too). ``scale``:
    None, a scalar, or one value per row ([rows]). ``out`` has the weight's shape and is contiguous.
    ``nan_free``: the caller has already refused NaN codes (the loaders check every tensor on its first read), so
    the NaN scan is skipped. ``compiled``: on the CPU, use the compiled kernel where it could be built (False:
    the eager path, for comparison). Returns ``out``."""
    if weight.dtype not in FP8_DTYPES:
        raise TypeError(f"dequantize_into: weight is {weight.dtype}, not an fp8 dtype")
    if out.dtype not in COMPUTE_DTYPES or out.shape != weight.shape or not out.is_contiguous():
        raise ValueError(f"dequantize_into: out must be a contiguous float32/bfloat16 tensor of shape "
                         f"{list(weight.shape)}, got {out.dtype} {list(out.shape)}")
    scale_t = None if scale is None else torch.as_tensor(scale, dtype=torch.float32)
    per_row = scale_t is not None and scale_t.numel() > 1
    if per_row and (weight.ndim < 2 or scale_t.numel() != weight.shape[0]):
        raise ValueError(f"dequantize_into: {scale_t.numel()} scales for a weight of shape {list(weight.shape)}")
    weight = weight.contiguous()
    kernel = load_kernel() if compiled and weight.device.type == "cpu" and out.device.type == "cpu" else None
    if kernel is not None:
        grid = (weight.shape[0], math.prod(weight.shape[1:])) if weight.ndim > 1 else (1, weight.numel())
        scales = torch.ones(1) if scale_t is None else scale_t.reshape(-1).contiguous()
        kernel.convert(weight.view(grid), out.view(grid), scales, torch.get_num_threads())
        return out
    workspace = workspace or DequantWorkspace(device=out.device)
    row_elements = weight[0].numel() if weight.ndim > 1 else 1
    total_rows = weight.shape[0] if weight.ndim > 1 else weight.numel()
    rows = max(1, workspace.chunk_elements // row_elements)
    workspace.reserve(rows * row_elements)
    flat_weight, flat_out = weight.reshape(-1), out.view(-1)
    multiplier = 1.0 if weight.dtype == torch.float8_e5m2 else E4M3_TO_HALF
    factors = (torch.tensor(multiplier) if scale_t is None else scale_t * multiplier).reshape(-1, 1)
    for first in range(0, total_rows, rows):
        last = min(first + rows, total_rows)
        span = slice(first * row_elements, last * row_elements)
        size = span.stop - span.start
        bits, values = workspace.bits[:size], workspace.values[:size]
        _half_bits(flat_weight[span], bits)
        values.copy_(bits.view(torch.float16))
        if not nan_free:
            _restore_nan(flat_weight[span], values)
        factor = factors[first:last] if per_row else factors[0]
        grid = (last - first, row_elements)
        if out.dtype == torch.float32:
            torch.mul(values.view(grid), factor, out=flat_out[span].view(grid))
        else:
            values.view(grid).mul_(factor)
            flat_out[span].copy_(values)
    return out


def dequantize(weight: torch.Tensor, dtype: torch.dtype = torch.float32,
               scale: torch.Tensor | float | None = None, workspace: DequantWorkspace | None = None) -> torch.Tensor:
    """``weight`` (fp8) times ``scale`` in ``dtype``, in a new tensor; see :func:`dequantize_into`."""
    return dequantize_into(weight, torch.empty(weight.shape, dtype=dtype, device=weight.device), scale, workspace)
