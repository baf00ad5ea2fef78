"""A one-pass CPU kernel for fp8 -> float32 / bfloat16, compiled once per machine with the system's C compiler.

torch's eager operations make every step of the conversion its own pass over memory (5 passes per chunk in
:func:`~ltxgraph_ops.weights.fp8.dequantize_into`'s eager path); inductor vectorises the float32 case well but
falls back to slow code for a bfloat16 output of integer operations (measured in BENCHMARKS.md, issue 17). This
kernel reads each code once and writes each value once:

- ``value = table[code] * scale[row]``: the 256-entry float32 table is torch's own ``codes.to(float32)`` for the
  format (e4m3fn or e5m2, NaN bits included), so the values are torch's by construction; the multiply is the
  same single float32 rounding as ``w.to(float32) * scale``.
- bfloat16: round to nearest even on the float32 bits; NaN becomes 0xFFFF, what torch's own float32 -> bfloat16
  conversion writes on the CPU.
- one scale for the whole weight (the common case): the 256 results are computed once per call with the same
  rounding, and every element is a table lookup. With AVX512-VBMI each byte of the results is a 64-lane byte
  permute of the codes (two registers per 128 codes, the code's top bit picks the pair), the bytes are
  interleaved into 16/32-bit values by permutes too, and outputs of a million elements or more are written with
  non-temporal stores (they leave the cache anyway; no read of the lines before the write). Without VBMI a plain
  loop does the lookup. Per-row scales keep the multiply per element.

The library is built by :mod:`ltxgraph_ops.native` (``cc -O3 -march=native``; the compiler vectorises both
loops: table gathers, AVX-512 where the CPU has it), once per machine. Without a C compiler (or if the build
fails) :func:`load_kernel` returns None and the caller keeps its eager path.
"""
from __future__ import annotations

import ctypes
import functools
import os

import torch

from ltxgraph_ops import native

SOURCE = r"""
#include <stdint.h>
#include <string.h>
#if defined(__AVX512VBMI__) && defined(__AVX512BW__)
#include <immintrin.h>
#define BYTE_PERMUTES 1
#endif

static inline uint16_t bfloat16_nearest_even(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFu;      /* NaN */
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

#ifdef BYTE_PERMUTES
/* 64 codes -> byte `plane` of their 256-entry table, held as four 64-byte registers (codes 0-63, ..., 192-255):
   the code's low 7 bits pick within a pair of registers, its top bit picks the pair */
static inline __m512i plane_lookup(const __m512i *plane, __m512i codes, __mmask64 top_bit) {
    __m512i lower = _mm512_permutex2var_epi8(plane[0], codes, plane[1]);
    __m512i upper = _mm512_permutex2var_epi8(plane[2], codes, plane[3]);
    return _mm512_mask_blend_epi8(top_bit, lower, upper);
}

static void load_planes(const uint8_t *table, int width, __m512i *planes) {
    uint8_t plane[256];
    for (int byte = 0; byte < width; byte++) {
        for (int code = 0; code < 256; code++) plane[code] = table[code * width + byte];
        for (int part = 0; part < 4; part++) planes[byte * 4 + part] = _mm512_loadu_si512(plane + 64 * part);
    }
}

/* index vectors that interleave two registers' elements of `bytes` bytes: half 0 takes elements [0, n/2)
   of each, half 1 elements [n/2, n) (n elements per register) */
static __m512i interleave_index(int bytes, int half) {
    uint8_t index[64];
    int elements = 64 / bytes;
    for (int slot = 0; slot < 64; slot++) {
        int element = slot / bytes, byte = slot % bytes;
        int source = (element & 1) ? 64 : 0, picked = half * elements / 2 + element / 2;
        index[slot] = (uint8_t)(source + picked * bytes + byte);
    }
    return _mm512_loadu_si512(index);
}

/* large outputs bypass the cache (non-temporal stores: no read of the lines first); small ones stay in it */
#define STREAMED_ELEMENTS (1 << 20)
static inline void store64(void *to, __m512i value, int streamed) {
    if (streamed) _mm512_stream_si512(to, value);
    else _mm512_storeu_si512(to, value);
}
#endif

/* out[i] = table[codes[i]] for i < count, entries of `width` bytes (2 or 4) */
static void lookup(const uint8_t *codes, const void *table, int width, int64_t count, void *out) {
    uint8_t *to = (uint8_t *)out;
    const uint8_t *entries = (const uint8_t *)table;
    int64_t i = 0;
#ifdef BYTE_PERMUTES
    __m512i planes[16], bytes_pair[4];
    load_planes(entries, width, planes);
    const __m512i bytes_first = interleave_index(1, 0), bytes_second = interleave_index(1, 1);
    const __m512i words_first = interleave_index(2, 0), words_second = interleave_index(2, 1);
    const int streamed = count >= STREAMED_ELEMENTS && (uintptr_t)out % 64 == 0;
    for (; i + 64 <= count; i += 64, to += 64 * width) {
        __m512i c = _mm512_loadu_si512(codes + i);
        __mmask64 top = _mm512_movepi8_mask(c);
        for (int pair = 0; pair < width / 2; pair++) {     /* bytes (0, 1), (2, 3): 16-bit values, 2 registers */
            __m512i low = plane_lookup(planes + 8 * pair, c, top), high = plane_lookup(planes + 8 * pair + 4, c, top);
            bytes_pair[2 * pair] = _mm512_permutex2var_epi8(low, bytes_first, high);      /* codes 0-31 */
            bytes_pair[2 * pair + 1] = _mm512_permutex2var_epi8(low, bytes_second, high); /* codes 32-63 */
        }
        if (width == 2) {
            store64(to, bytes_pair[0], streamed);
            store64(to + 64, bytes_pair[1], streamed);
            continue;
        }
        for (int half = 0; half < 2; half++) {             /* 16-bit halves (low, high) -> 32-bit values */
            store64(to + 128 * half, _mm512_permutex2var_epi8(bytes_pair[half], words_first, bytes_pair[2 + half]),
                    streamed);
            store64(to + 128 * half + 64,
                    _mm512_permutex2var_epi8(bytes_pair[half], words_second, bytes_pair[2 + half]), streamed);
        }
    }
    _mm_sfence();
#endif
    for (; i < count; i++, to += width) memcpy(to, entries + codes[i] * width, width);
}

/* rows [first, last) of a [rows, columns] code matrix; scale of row r at scales[r * scale_step]. One scale for
   all rows (scale_step 0): the 256 results are computed once and the rows are a table lookup. */
#define FP8_ROWS(NAME, OUT_TYPE, ROUND)                                                                      \
void NAME(const uint8_t *codes, const float *table, const float *scales, int64_t scale_step,                  \
          int64_t columns, int64_t first, int64_t last, OUT_TYPE *out) {                                     \
    if (scale_step == 0) {                                                                                 \
        OUT_TYPE results[256];                                                                             \
        for (int code = 0; code < 256; code++) results[code] = ROUND(table[code] * scales[0]);             \
        lookup(codes + first * columns, results, sizeof(OUT_TYPE), (last - first) * columns,                \
               out + first * columns);                                                                     \
        return;                                                                                            \
    }                                                                                                      \
    for (int64_t row = first; row < last; row++) {                                                         \
        const float scale = scales[row * scale_step];                                                      \
        const uint8_t *in = codes + row * columns;                                                         \
        OUT_TYPE *o = out + row * columns;                                                                 \
        for (int64_t i = 0; i < columns; i++) o[i] = ROUND(table[in[i]] * scale);                        \
    }                                                                                                      \
}

static inline uint32_t float32_bits(float value) { uint32_t bits; memcpy(&bits, &value, 4); return bits; }

FP8_ROWS(fp8_to_float32, uint32_t, float32_bits)
FP8_ROWS(fp8_to_bfloat16, uint16_t, bfloat16_nearest_even)
"""
COMPILE_FLAGS = (*native.BASE_FLAGS, "-ffp-contract=off")   # IEEE: no fast-math, no contraction
PARALLEL_ELEMENTS = 1 << 20        # split a conversion across threads only above this many elements
_ARGUMENTS = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
              ctypes.c_int64, ctypes.c_void_p]


class Fp8Kernel:
    """The loaded library: :meth:`convert` writes ``out = table[codes] * scale`` in float32 or bfloat16."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self._functions = {torch.float32: library.fp8_to_float32, torch.bfloat16: library.fp8_to_bfloat16}
        for function in self._functions.values():
            function.argtypes, function.restype = _ARGUMENTS, None
        self._tables: dict[torch.dtype, torch.Tensor] = {}
        self._splitter = native.RowSplitter("fp8")

    def table(self, fp8: torch.dtype) -> torch.Tensor:
        """The 256 codes of ``fp8`` as float32, converted by torch (its NaN bits included)."""
        if fp8 not in self._tables:
            self._tables[fp8] = torch.arange(256, dtype=torch.uint8).view(fp8).to(torch.float32)
        return self._tables[fp8]

    def convert(self, codes: torch.Tensor, out: torch.Tensor, scales: torch.Tensor, threads: int = 1) -> None:
        """``codes``: contiguous fp8 [rows, columns] on the CPU; ``out``: contiguous float32/bfloat16 of that
        shape; ``scales``: float32, one value (all rows) or one per row. Rows are split over ``threads``
        (the library runs without Python's lock, so threads overlap)."""
        rows, columns = codes.shape
        step = 0 if scales.numel() == 1 else 1
        function, table = self._functions[out.dtype], self.table(codes.dtype)
        self._splitter.run(function, rows, columns, (codes.data_ptr(), table.data_ptr(), scales.data_ptr(), step,
                                                     columns), (out.data_ptr(),), threads, PARALLEL_ELEMENTS)


@functools.cache
def load_kernel() -> Fp8Kernel | None:
    """The compiled kernel for this machine (built on first use, then read from
    :func:`~ltxgraph_ops.native.kernel_folder`), or None
    where it cannot be had: no C compiler, a failed build, or ``LTXGRAPH_FP8_KERNEL=0``."""
    if os.environ.get("LTXGRAPH_FP8_KERNEL", "1") == "0":
        return None
    library = native.load_library("fp8", SOURCE, COMPILE_FLAGS)
    return None if library is None else Fp8Kernel(library)
