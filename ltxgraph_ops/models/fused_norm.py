"""The element-wise regions of a transformer block as one-pass CPU kernels, compiled once per machine.

Eager torch makes each step of ``rms(x) * (1 + scale) + shift`` or ``rope(rms(x) * weight)`` its own pass over
the [B, T, D] activation: the norm's reduction, its multiply, the weight's multiply, the modulation, the two
halves of the rotation (5-6 passes, each a full read and most a full write), and in bfloat16 every pass rounds
its result. Here each token row is read once into a float32 row (it stays in the L1 cache), normalised,
weighted, modulated and rotated there, and written once, rounded once to the output's dtype:

``y = x / sqrt(mean(x^2) + eps)``, then ``y *= weight``, then ``y = y * (1 + scale) + shift``, then per head
``(first, second) -> (first cos - second sin, second cos + first sin)`` (split-layout RoPE), each step only when
its operand is given. The mean square accumulates in float32 over 16 lanes, in another order than torch's
reduction; in float32 the results equal eager within float32 rounding, in bfloat16 they round less often than
eager (once instead of after every step).

Operands may be float32 or bfloat16 each, broadcast over batch and tokens (strides 0) as long as their last
dimension is contiguous; anything else (other dtypes, interleaved RoPE, a non-CPU tensor) takes the eager
functions, which stay the reference. Rows are split over threads (the library runs without Python's lock).
The library is built like :mod:`ltxgraph_ops.native` builds every kernel; ``LTXGRAPH_NATIVE_KERNELS=0`` keeps
the eager regions.
"""
from __future__ import annotations

import ctypes
import functools
import os

import torch

from ltxgraph_ops import native
from ltxgraph_ops.models import elementwise

SOURCE = r"""
#include <stdint.h>
#include <string.h>
#include <math.h>

enum { X, OUT, WEIGHT, SHIFT, SCALE, COS, SIN, OPERANDS };
#define LANES 16
#define MAX_WIDTH 16384

static inline float from_bfloat16(uint16_t bits) {
    uint32_t wide = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &wide, 4);
    return value;
}

static inline uint16_t to_bfloat16(float value) {       /* round to nearest even; NaN -> 0xFFFF like torch */
    uint32_t bits;
    memcpy(&bits, &value, 4);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFu;
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

/* count values of the row at `data` (float32 when !bf16, else bfloat16) into `to` */
static void load_row(const void *data, int64_t bf16, int64_t count, float *to) {
    if (bf16) {
        const uint16_t *from = (const uint16_t *)data;
        for (int64_t i = 0; i < count; i++) to[i] = from_bfloat16(from[i]);
    } else {
        memcpy(to, data, count * sizeof(float));
    }
}

static void store_row(const float *from, int64_t bf16, int64_t count, void *data) {
    if (bf16) {
        uint16_t *to = (uint16_t *)data;
        for (int64_t i = 0; i < count; i++) to[i] = to_bfloat16(from[i]);
    } else {
        memcpy(data, from, count * sizeof(float));
    }
}

/* operands: OPERANDS x [address, is_bfloat16, batch stride, token stride] (strides in elements; address 0: not
   given). Rows [first, last) of the [batch * tokens, width] activation, row r = (r / tokens, r % tokens). */
void fused_rows(const int64_t *operands, int64_t tokens, int64_t width, int64_t heads, float eps,
                int64_t first, int64_t last) {
    float row[MAX_WIDTH], other[MAX_WIDTH], rotation[MAX_WIDTH];
    const int64_t half = heads > 0 ? width / (2 * heads) : 0;
    for (int64_t r = first; r < last; r++) {
        const int64_t b = r / tokens, t = r % tokens;
        const void *at[OPERANDS];
        for (int k = 0; k < OPERANDS; k++) {
            const int64_t *o = operands + 4 * k;
            const int64_t offset = (b * o[2] + t * o[3]) * (o[1] ? 2 : 4);
            at[k] = o[0] ? (const void *)((const char *)(intptr_t)o[0] + offset) : 0;
        }
        load_row(at[X], operands[4 * X + 1], width, row);
        float sums[LANES] = {0};
        int64_t i = 0;
        for (; i + LANES <= width; i += LANES)
            for (int lane = 0; lane < LANES; lane++) sums[lane] += row[i + lane] * row[i + lane];
        for (; i < width; i++) sums[i % LANES] += row[i] * row[i];
        float total = 0.0f;
        for (int lane = 0; lane < LANES; lane++) total += sums[lane];
        const float inverse = 1.0f / sqrtf(total / (float)width + eps);
        for (i = 0; i < width; i++) row[i] *= inverse;
        if (at[WEIGHT]) {
            load_row(at[WEIGHT], operands[4 * WEIGHT + 1], width, other);
            for (i = 0; i < width; i++) row[i] *= other[i];
        }
        if (at[SCALE]) {
            load_row(at[SCALE], operands[4 * SCALE + 1], width, other);
            for (i = 0; i < width; i++) row[i] *= 1.0f + other[i];
        }
        if (at[SHIFT]) {
            load_row(at[SHIFT], operands[4 * SHIFT + 1], width, other);
            for (i = 0; i < width; i++) row[i] += other[i];
        }
        if (at[COS]) {
            load_row(at[COS], operands[4 * COS + 1], width / 2, other);
            load_row(at[SIN], operands[4 * SIN + 1], width / 2, rotation);
            for (int64_t h = 0; h < heads; h++) {
                float *one = row + 2 * h * half, *two = one + half;
                const float *c = other + h * half, *s = rotation + h * half;
                for (int64_t j = 0; j < half; j++) {
                    const float a = one[j], e = two[j];
                    one[j] = a * c[j] - e * s[j];
                    two[j] = e * c[j] + a * s[j];
                }
            }
        }
        store_row(row, operands[4 * OUT + 1], width, (void *)at[OUT]);
    }
}
"""
MAX_WIDTH = 16384
PARALLEL_ELEMENTS = 1 << 16        # split rows across threads only above this many elements
_KINDS = {torch.float32: 0, torch.bfloat16: 1}
_ORDER = ("x", "out", "weight", "shift", "scale", "cos", "sin")


class FusedNorm:
    """The loaded library: :meth:`run` computes one fused region into a new tensor, or returns None when the
    operands are outside what the kernel reads (the caller then runs the eager function)."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self._rows = library.fused_rows
        self._rows.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_float,
                               ctypes.c_int64, ctypes.c_int64]
        self._rows.restype = None
        self._splitter = native.RowSplitter("norm")

    def run(self, x: torch.Tensor, eps: float, weight: torch.Tensor | None = None,
            shift: torch.Tensor | None = None, scale: torch.Tensor | None = None,
            cos: torch.Tensor | None = None, sin: torch.Tensor | None = None) -> torch.Tensor | None:
        """x [B, T, D] -> rope(rms(x) * weight * (1 + scale) + shift), the absent steps left out; ``cos``/``sin``
        a split-layout table [B, T, H, 1, D / (2H)] (or broadcastable)."""
        if x.ndim != 3 or x.dtype not in _KINDS or x.device.type != "cpu" or not 0 < x.shape[-1] <= MAX_WIDTH:
            return None
        batch, tokens, width = x.shape
        heads = 0
        if cos is not None:
            heads = cos.shape[-3]
            if cos.shape[-2] != 1 or 2 * heads * cos.shape[-1] != width:
                return None
            cos, sin = (t.flatten(-3) if t.shape[-3:] == cos.shape[-3:] else None for t in (cos, sin))
            if cos is None or sin is None or any(t.stride(-1) != 1 and t.shape[-1] > 1 for t in (cos, sin)):
                return None
        out = torch.empty((batch, tokens, width), dtype=x.dtype)
        described = []
        for name, tensor in zip(_ORDER, (x, out, weight, shift, scale, cos, sin)):
            row = width // 2 if name in ("cos", "sin") else width
            operand = _operand(tensor, batch, tokens, row)
            if operand is None:
                return None
            described.extend(operand)
        operands = torch.tensor(described, dtype=torch.int64)
        self._splitter.run(self._rows, batch * tokens, width, (operands.data_ptr(), tokens, width, heads,
                                                               float(eps)), parallel_elements=PARALLEL_ELEMENTS)
        return out


def _operand(tensor: torch.Tensor | None, batch: int, tokens: int, row: int) -> list[int] | None:
    """[address, is_bfloat16, batch stride, token stride] of ``tensor`` read as [batch, tokens, row] (broadcast),
    [0, 0, 0, 0] when absent, None when the kernel cannot read it."""
    if tensor is None:
        return [0, 0, 0, 0]
    if tensor.dtype not in _KINDS or tensor.device.type != "cpu" or tensor.ndim > 3:
        return None
    try:
        view = tensor.expand(batch, tokens, row)
    except RuntimeError:
        return None
    if row > 1 and view.stride(-1) != 1:
        return None
    return [view.data_ptr(), _KINDS[tensor.dtype], view.stride(0), view.stride(1)]


@functools.cache
def load_fused_norm() -> FusedNorm | None:
    """The kernel for this machine, or None (no C compiler, a failed build, ``LTXGRAPH_NATIVE_KERNELS=0``)."""
    if os.environ.get("LTXGRAPH_NATIVE_KERNELS", "1") == "0":
        return None
    library = native.load_library("norm", SOURCE)
    return None if library is None else FusedNorm(library)


def native_kernels() -> elementwise.ElementwiseKernels | None:
    """The block's element-wise regions through the fused kernel (eager where it does not apply), or None
    where the kernel cannot be built."""
    kernel = load_fused_norm()
    if kernel is None:
        return None

    def modulated(x, eps, shift, scale):
        out = kernel.run(x, eps, shift=shift, scale=scale)
        return elementwise.modulated(x, eps, shift, scale) if out is None else out

    def normalized(x, weight, eps):
        out = kernel.run(x, eps, weight=weight)
        return elementwise.normalized(x, weight, eps) if out is None else out

    def normalized_rotated(x, weight, eps, cos, sin):
        out = kernel.run(x, eps, weight=weight, cos=cos, sin=sin)
        return elementwise.normalized_rotated(x, weight, eps, cos, sin) if out is None else out

    return elementwise.ElementwiseKernels("native", modulated, normalized, normalized_rotated)
