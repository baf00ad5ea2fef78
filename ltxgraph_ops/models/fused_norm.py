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
functions, which stay the reference. Rows are split over torch's own OpenMP threads (built with OpenMP, the
library uses the runtime torch has loaded; a pool of Python threads instead was measured 2x slower, its threads
waking on cores where torch's were still spinning). The library is built by :mod:`ltxgraph_ops.native` (without
OpenMP, if that build fails: one thread); ``LTXGRAPH_NATIVE_KERNELS=0`` keeps the eager regions.
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
#ifdef __AVX512F__
#include <immintrin.h>
#endif

enum { X, OUT, WEIGHT, SHIFT, SCALE, COS, SIN, OPERANDS };
#define MAX_WIDTH 16384

typedef struct { const void *data; int64_t bf16; } operand;   /* one row of an operand; data 0: not given */

typedef struct {
    operand x, out, weight, shift, scale, cos, sin;
    int64_t width, heads;                    /* heads: of the RoPE table (0: no rotation) */
    int64_t out_heads, out_head_stride;      /* out's row in out_heads parts of width / out_heads, each at
                                                out_head_stride elements from the last (1: one plain row) */
    float eps;
} row_job;

/* ---- scalar: any CPU ---- */
static inline float from_bfloat16(uint16_t bits) {
    uint32_t wide = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &wide, 4);
    return value;
}

static inline uint16_t to_bfloat16(float value) {       /* round to nearest even; NaN -> 0xFFFF */
    uint32_t bits;
    memcpy(&bits, &value, 4);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFu;
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

static inline float get(operand o, int64_t i) {
    return o.bf16 ? from_bfloat16(((const uint16_t *)o.data)[i]) : ((const float *)o.data)[i];
}

static inline void put(operand o, int64_t i, float value) {
    if (o.bf16) ((uint16_t *)o.data)[i] = to_bfloat16(value);
    else ((float *)o.data)[i] = value;
}

/* where element i of the row goes in out's row */
static inline int64_t out_at(const row_job *job, int64_t i) {
    if (job->out_heads == 1) return i;
    const int64_t part = job->width / job->out_heads, h = i / part;
    return h * job->out_head_stride + (i - h * part);
}

/* x[i] normalised (row[i] = x[i]), weighted, modulated */
static inline float finished(const row_job *job, const float *row, float inverse, int64_t i) {
    float v = row[i] * inverse;
    if (job->weight.data) v *= get(job->weight, i);
    if (job->scale.data) v *= 1.0f + get(job->scale, i);
    if (job->shift.data) v += get(job->shift, i);
    return v;
}

static void scalar_row(const row_job *job, float *row) {
    const int64_t width = job->width;
    float sums[16] = {0};
    for (int64_t i = 0; i < width; i++) {
        row[i] = get(job->x, i);
        sums[i % 16] += row[i] * row[i];
    }
    float total = 0.0f;
    for (int lane = 0; lane < 16; lane++) total += sums[lane];
    const float inverse = 1.0f / sqrtf(total / (float)width + job->eps);
    if (!job->cos.data) {
        for (int64_t i = 0; i < width; i++) put(job->out, out_at(job, i), finished(job, row, inverse, i));
        return;
    }
    const int64_t half = width / (2 * job->heads);
    for (int64_t h = 0; h < job->heads; h++)
        for (int64_t j = 0; j < half; j++) {
            const int64_t one = 2 * h * half + j, two = one + half;
            const float a = finished(job, row, inverse, one), e = finished(job, row, inverse, two);
            const float c = get(job->cos, h * half + j), s = get(job->sin, h * half + j);
            put(job->out, out_at(job, one), a * c - e * s);
            put(job->out, out_at(job, two), e * c + a * s);
        }
}

#ifdef __AVX512F__
/* ---- AVX-512: 16 values at a time, masked at the ends ---- */
static inline __mmask16 lanes(int64_t left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

static inline __m512 load16(operand o, int64_t i, __mmask16 m) {
    if (o.bf16) {
        __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)o.data + i);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    return _mm512_maskz_loadu_ps(m, (const float *)o.data + i);
}

static inline void store16(operand o, int64_t i, __m512 v, __mmask16 m) {
    if (!o.bf16) {
        _mm512_mask_storeu_ps((float *)o.data + i, m, v);
        return;
    }
    __m512i bits = _mm512_castps_si512(v);              /* nearest even, as to_bfloat16 */
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))), 16);
    rounded = _mm512_mask_mov_epi32(rounded, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0xFFFF));
    _mm256_mask_storeu_epi16((uint16_t *)o.data + i, m, _mm512_cvtepi32_epi16(rounded));
}

static inline __m512 finished16(const row_job *job, const float *row, __m512 inverse, int64_t i, __mmask16 m) {
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + i), inverse);
    if (job->weight.data) v = _mm512_mul_ps(v, load16(job->weight, i, m));
    if (job->scale.data) v = _mm512_mul_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), load16(job->scale, i, m)));
    if (job->shift.data) v = _mm512_add_ps(v, load16(job->shift, i, m));
    return v;
}

static void vector_row(const row_job *job, float *row) {
    const int64_t width = job->width;
    __m512 squares = _mm512_setzero_ps();
    for (int64_t i = 0; i < width; i += 16) {
        const __mmask16 m = lanes(width - i);
        __m512 v = load16(job->x, i, m);
        _mm512_mask_storeu_ps(row + i, m, v);
        squares = _mm512_fmadd_ps(v, v, squares);
    }
    const float total = _mm512_reduce_add_ps(squares);
    const __m512 inverse = _mm512_set1_ps(1.0f / sqrtf(total / (float)width + job->eps));
    if (!job->cos.data) {                                /* part by part: no 16 lanes span two parts */
        const int64_t part = width / job->out_heads;
        for (int64_t h = 0; h < job->out_heads; h++)
            for (int64_t j = 0; j < part; j += 16) {
                const __mmask16 m = lanes(part - j);
                store16(job->out, h * job->out_head_stride + j, finished16(job, row, inverse, h * part + j, m), m);
            }
        return;
    }
    const int64_t half = width / (2 * job->heads);
    for (int64_t h = 0; h < job->heads; h++)
        for (int64_t j = 0; j < half; j += 16) {
            const __mmask16 m = lanes(half - j);
            const int64_t one = 2 * h * half + j, two = one + half;
            const __m512 a = finished16(job, row, inverse, one, m), e = finished16(job, row, inverse, two, m);
            const __m512 c = load16(job->cos, h * half + j, m), s = load16(job->sin, h * half + j, m);
            store16(job->out, out_at(job, one), _mm512_sub_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(e, s)), m);
            store16(job->out, out_at(job, two), _mm512_add_ps(_mm512_mul_ps(e, c), _mm512_mul_ps(a, s)), m);
        }
}
#endif

static operand at_row(const int64_t *o, int64_t b, int64_t t) {   /* o: [address, is_bfloat16, strides b, t] */
    operand row = {0, o[1]};
    if (o[0]) row.data = (const char *)(intptr_t)o[0] + (b * o[2] + t * o[3]) * (o[1] ? 2 : 4);
    return row;
}

/* operands: OPERANDS x [address, is_bfloat16, batch stride, token stride] (strides in elements; address 0: not
   given). All rows of the [batch * tokens, width] activation, row r = (r / tokens, r % tokens), on the OpenMP
   threads when `parallel` (built with OpenMP: the runtime torch has loaded, so torch's own threads). out's row
   is out_heads parts out_head_stride apart (out_heads = RoPE heads, or 1: a plain row). */
void fused_rows(const int64_t *operands, int64_t tokens, int64_t width, int64_t heads, int64_t out_heads,
                int64_t out_head_stride, float eps, int64_t rows, int64_t parallel) {
    #pragma omp parallel for schedule(static) if (parallel)
    for (int64_t r = 0; r < rows; r++) {
        float row[MAX_WIDTH];
        const int64_t b = r / tokens, t = r % tokens;
        const row_job job = {at_row(operands + 4 * X, b, t), at_row(operands + 4 * OUT, b, t),
                             at_row(operands + 4 * WEIGHT, b, t), at_row(operands + 4 * SHIFT, b, t),
                             at_row(operands + 4 * SCALE, b, t), at_row(operands + 4 * COS, b, t),
                             at_row(operands + 4 * SIN, b, t), width, heads, out_heads, out_head_stride,
                             eps};
#ifdef __AVX512F__
        vector_row(&job, row);
#else
        scalar_row(&job, row);
#endif
    }
}
"""
MAX_WIDTH = 16384
PARALLEL_ELEMENTS = 1 << 16        # split rows across threads only above this many elements
PROFILER_NAME = "ltxgraph::fused_norm"
_KINDS = {torch.float32: 0, torch.bfloat16: 1}
_ORDER = ("x", "out", "weight", "shift", "scale", "cos", "sin")


class FusedNorm:
    """The loaded library: :meth:`run` computes one fused region into a new tensor, or returns None when the
    operands are outside what the kernel reads (the caller then runs the eager function)."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self._rows = library.fused_rows
        self._rows.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                               ctypes.c_int64, ctypes.c_float, ctypes.c_int64, ctypes.c_int64]
        self._rows.restype = None

    def run(self, x: torch.Tensor, eps: float, weight: torch.Tensor | None = None,
            shift: torch.Tensor | None = None, scale: torch.Tensor | None = None,
            cos: torch.Tensor | None = None, sin: torch.Tensor | None = None,
            heads_first: int | None = None) -> torch.Tensor | None:
        """x [B, T, D] -> rope(rms(x) * weight * (1 + scale) + shift), the absent steps left out; ``cos``/``sin``
        a split-layout table [B, T, H, 1, D / (2H)] (or broadcastable). The result has the dtype the eager
        functions give (x's, promoted with those of shift, scale, cos and sin). ``heads_first``: the result as
        [B, heads_first, T, D / heads_first], written head by head (contiguous: attention reads its queries
        fastest that way); it must equal the table's H."""
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
        promoted = x.dtype          # the dtype eager gives: x's, widened by the modulation's and the table's
        for operand in (shift, scale, cos, sin):
            promoted = promoted if operand is None else torch.promote_types(promoted, operand.dtype)
        if promoted not in _KINDS or heads_first is not None and (
                heads_first < 1 or width % heads_first or heads and heads_first != heads):
            return None
        parts = heads_first or 1
        out = torch.empty((batch, parts, tokens, width // parts), dtype=promoted)
        described = []
        for name, tensor in zip(_ORDER, (x, out, weight, shift, scale, cos, sin)):
            if name == "out":      # [B, parts, T, width / parts]: its rows' strides, its parts' apart below
                described.extend([out.data_ptr(), _KINDS[promoted], out.stride(0), out.stride(2)])
                continue
            operand = _operand(tensor, batch, tokens, width // 2 if name in ("cos", "sin") else width)
            if operand is None:
                return None
            described.extend(operand)
        operands = torch.tensor(described, dtype=torch.int64)
        with torch.profiler.record_function(PROFILER_NAME):     # else a profile would not see the kernel's time
            self._rows(operands.data_ptr(), tokens, width, heads, parts, out.stride(1), float(eps), batch * tokens,
                       int(x.numel() >= PARALLEL_ELEMENTS))
        return out if heads_first else out.view(batch, tokens, width)


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
    library = native.load_library("norm", SOURCE, native.OPENMP_FLAGS) or native.load_library("norm", SOURCE)
    return None if library is None else FusedNorm(library)


def native_kernels(kernel: FusedNorm | None = None) -> elementwise.ElementwiseKernels | None:
    """The block's element-wise regions through ``kernel`` (default: :func:`load_fused_norm`'s), eager where it
    does not apply; None where the kernel cannot be built."""
    kernel = kernel or load_fused_norm()
    if kernel is None:
        return None

    def modulated(x, eps, shift, scale):
        out = kernel.run(x, eps, shift=shift, scale=scale)
        return elementwise.modulated(x, eps, shift, scale) if out is None else out

    def normalized(x, weight, eps, heads=None):
        out = kernel.run(x, eps, weight=weight, heads_first=heads)
        return elementwise.normalized(x, weight, eps, heads) if out is None else out

    def normalized_rotated(x, weight, eps, cos, sin, heads=None):
        out = kernel.run(x, eps, weight=weight, cos=cos, sin=sin, heads_first=heads)
        return elementwise.normalized_rotated(x, weight, eps, cos, sin, heads) if out is None else out

    return elementwise.ElementwiseKernels("native", modulated, normalized, normalized_rotated)
