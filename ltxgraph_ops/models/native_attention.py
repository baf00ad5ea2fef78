"""bfloat16 attention as a CPU kernel of our own (AVX512-BF16), for CPUs where torch's flash attention gains
nothing from bf16.

On an AMD EPYC with AVX512-BF16 and no AMX (BENCHMARKS.md, machine B), torch's CPU flash attention runs at the
same ~150-170 GFLOP/s in bf16 as in float32, while a bf16 matmul runs at twice float32's rate; at the stage-2
step's token count attention is a third of a bf16 block. This kernel computes the same thing as flash attention
does in bf16 (exact softmax per query, online over blocks of keys):

- a block of 64 queries against a block of 256 keys: scores ``q k^T`` from bf16 pairs accumulated in float32
  (``vdpbf16ps``: 16 keys per register, the keys packed per head once per call);
- online softmax in float32: the running row maximum ``m`` of ``scale * s``, ``p = exp(scale * s - m)``, the
  running sum ``l`` of ``p``, and the output rows rescaled by ``exp(m_old - m)`` when the maximum grows;
- ``p`` rounded to bf16 and multiplied with the values (16 channels per register, values packed per key pair),
  accumulated in float32;
- after the last key block, ``out = o / l`` rounded once to bf16, written as [B, T, H, d].

Every query block is computed by one thread, in one order, so the result does not depend on the thread count.
Only bf16 q, k, v with a head size that is a multiple of 16 up to 256 take it, without a bias or with an additive
one that is the same for every head (text padding masks, self-attention masks; read in place, float32 or bf16);
the caller keeps ``scaled_dot_product_attention`` for everything else. The library is built by
:mod:`ltxgraph_ops.native` with ``-march=native``; without AVX512-BF16 in the build there is no kernel.

A float32 version of the same kernel (fused multiply-adds instead of bf16 pairs) ran at torch's float32 speed,
142-165 against 157-175 GFLOP/s, so float32 keeps torch's attention.

Which attention runs is a rule on the CPU, not a timing, so every process of a machine computes the same bits:
the kernel where the build has AVX512-BF16 and the CPU has no AMX (where torch's flash attention has tile
instructions this kernel does not use, and which this project could not measure), torch's elsewhere.
``LTXGRAPH_ATTENTION=native|sdpa`` fixes the choice; ``LTXGRAPH_NATIVE_KERNELS=0`` turns every native kernel off.
"""
from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass

import torch

from ltxgraph_ops import native

SETTING = "LTXGRAPH_ATTENTION"
CHOICES = ("auto", "native", "sdpa")
PROFILER_NAME = "ltxgraph::native_attention"
HEAD_SIZES = tuple(range(16, 257, 16))
PARALLEL_WORK = 1 << 20     # query x key pairs x heads below which one thread does the whole call

SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <immintrin.h>

#if defined(__AVX512BF16__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define QUERY_BLOCK 64
#define KEY_BLOCK 256
#define MAX_HEAD 256
#define PACKED_BYTES (16u << 20)     /* packed keys and values of a group of heads */

enum { BATCH, HEADS, QUERIES, KEYS, HEAD_SIZE, Q_BATCH, Q_HEAD, Q_TOKEN, K_BATCH, K_TOKEN, V_BATCH, V_TOKEN,
       OUT_BATCH, OUT_TOKEN, PARALLEL, BIAS_BF16, BIAS_BATCH, BIAS_QUERY, LAYOUT };

int attention_bf16_built(void) { return 1; }

/* exp(x) for x <= 0: 2^n p(r), x = n ln2 + r, |r| <= ln2 / 2, p of degree 7 (Cephes' expf coefficients); a
   NaN stays NaN (max returns its second operand when either is NaN) */
static inline __m512 exp_nonpositive(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-87.0f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* keys [first, last) of one head into 16-key groups: per group and channel pair, the pair of each of 16 keys */
static void pack_keys(const uint16_t *k, int64_t stride, int64_t keys, int64_t pairs, uint32_t *packed,
                      int64_t first, int64_t last) {
    for (int64_t j = first; j < last; j++) {
        uint32_t *to = packed + (j / 16) * pairs * 16 + j % 16;
        const uint32_t *row = (const uint32_t *)(k + j * stride);
        for (int64_t p = 0; p < pairs; p++) to[p * 16] = j < keys ? row[p] : 0u;
    }
}

/* value rows [2 first, 2 last) of one head by key pair: per channel, the values of the pair's two keys */
static void pack_values(const uint16_t *v, int64_t stride, int64_t keys, int64_t size, uint16_t *packed,
                        int64_t first, int64_t last) {
    for (int64_t pair = first; pair < last; pair++)
        for (int64_t t = 0; t < 2; t++) {
            int64_t j = 2 * pair + t;
            uint16_t *to = packed + pair * size * 2 + t;
            const uint16_t *row = v + j * stride;
            for (int64_t c = 0; c < size; c++) to[c * 2] = j < keys ? row[c] : (uint16_t)0;
        }
}

/* scores of 4 queries x 64 keys: s[i][j] = sum_c q[i][c] k[j][c], float32 */
static inline void score_tile(const uint32_t *q, const uint32_t *keys, int64_t pairs, float *scores,
                              int64_t i0, int64_t g0) {
    __m512 acc[4][4];
    for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; p++) {
        __m512bh k[4];
        for (int b = 0; b < 4; b++) k[b] = (__m512bh)_mm512_loadu_si512(keys + ((g0 + b) * pairs + p) * 16);
        for (int a = 0; a < 4; a++) {
            __m512bh qa = (__m512bh)_mm512_set1_epi32((int)q[(i0 + a) * pairs + p]);
            for (int b = 0; b < 4; b++) acc[a][b] = _mm512_dpbf16_ps(acc[a][b], qa, k[b]);
        }
    }
    for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++)
        _mm512_storeu_ps(scores + (i0 + a) * KEY_BLOCK + (g0 + b) * 16, acc[a][b]);
}

/* o[i] += sum_j p[i][j] v[j] for ROWS queries from i0 and GROUPS x 16 channels, over key_pairs pairs of keys */
#define VALUE_TILE(GROUPS, ROWS)                                                                               \
static inline void value_tile_##GROUPS(const uint32_t *p, const uint16_t *values, int64_t key_pairs, float *o,  \
                                       int64_t i0) {                                                          \
    __m512 acc[ROWS][GROUPS];                                                                                 \
    for (int a = 0; a < ROWS; a++) for (int b = 0; b < GROUPS; b++)                                           \
        acc[a][b] = _mm512_loadu_ps(o + ((i0 + a) * GROUPS + b) * 16);                                        \
    for (int64_t jp = 0; jp < key_pairs; jp++) {                                                              \
        __m512bh v[GROUPS];                                                                                   \
        for (int b = 0; b < GROUPS; b++) v[b] = (__m512bh)_mm512_loadu_si512(values + (jp * GROUPS + b) * 32); \
        for (int a = 0; a < ROWS; a++) {                                                                      \
            __m512bh pa = (__m512bh)_mm512_set1_epi32((int)p[(i0 + a) * (KEY_BLOCK / 2) + jp]);               \
            for (int b = 0; b < GROUPS; b++) acc[a][b] = _mm512_dpbf16_ps(acc[a][b], pa, v[b]);               \
        }                                                                                                     \
    }                                                                                                         \
    for (int a = 0; a < ROWS; a++) for (int b = 0; b < GROUPS; b++)                                           \
        _mm512_storeu_ps(o + ((i0 + a) * GROUPS + b) * 16, acc[a][b]);                                        \
}
VALUE_TILE(1, 8)
VALUE_TILE(2, 8)
VALUE_TILE(4, 4)
VALUE_TILE(8, 2)
VALUE_TILE(16, 1)

static void value_tiles(const uint32_t *p, const uint16_t *values, int64_t key_pairs, float *o, int64_t groups) {
    for (int64_t i0 = 0; i0 < QUERY_BLOCK;) {
        switch (groups) {
            case 1: value_tile_1(p, values, key_pairs, o, i0); i0 += 8; break;
            case 2: value_tile_2(p, values, key_pairs, o, i0); i0 += 8; break;
            case 4: value_tile_4(p, values, key_pairs, o, i0); i0 += 4; break;
            case 8: value_tile_8(p, values, key_pairs, o, i0); i0 += 2; break;
            case 16: value_tile_16(p, values, key_pairs, o, i0); i0 += 1; break;
            default: {      /* 3, 5, 6, 7, ... groups: one 16-channel group at a time */
                for (int64_t b = 0; b < groups; b++) {
                    __m512 acc = _mm512_loadu_ps(o + (i0 * groups + b) * 16);
                    for (int64_t jp = 0; jp < key_pairs; jp++)
                        acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_set1_epi32((int)p[i0 * (KEY_BLOCK / 2) + jp]),
                                               (__m512bh)_mm512_loadu_si512(values + (jp * groups + b) * 32));
                    _mm512_storeu_ps(o + (i0 * groups + b) * 16, acc);
                }
                i0 += 1;
            }
        }
    }
}

typedef struct { uint32_t *q; float *scores; uint16_t *p; float *o; float *m, *l; } workspace;

/* an additive bias over [queries, keys]: rows `query_stride` elements apart (0: one row for every query), float32
   or bf16; data NULL: none */
typedef struct { const void *data; int64_t bf16, query_stride; } bias_rows;

/* 16 values of a bias row from key j, those at or past `valid` read as 0 (never touched) */
static inline __m512 bias_at(const void *row, int64_t bf16, int64_t j, int64_t valid) {
    const __mmask16 mask = j + 16 <= valid ? (__mmask16)0xFFFF : j >= valid ? 0 : (__mmask16)((1u << (valid - j)) - 1u);
    if (!bf16) return _mm512_maskz_loadu_ps(mask, (const float *)row + j);
    const __m256i bits = _mm256_maskz_loadu_epi16(mask, (const uint16_t *)row + j);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}

/* queries [t0, t0 + rows) of one head against all its keys, packed by pack_keys and pack_values; `bias` from
   query t0 */
static void query_block(const uint16_t *q, int64_t q_stride, int64_t rows, const uint32_t *keys,
                        const uint16_t *values, bias_rows bias, int64_t key_count, int64_t size, float scale,
                        uint16_t *out, int64_t out_stride, workspace *w) {
    const int64_t pairs = size / 2, groups = size / 16;
    memset(w->q, 0, 2 * QUERY_BLOCK * size);
    for (int64_t i = 0; i < rows; i++) memcpy(w->q + i * pairs, q + i * q_stride, 2 * size);
    memset(w->o, 0, sizeof(float) * QUERY_BLOCK * size);
    for (int64_t i = 0; i < QUERY_BLOCK; i++) { w->m[i] = -INFINITY; w->l[i] = 0.0f; }
    /* with a bias the scores are first made scale s + bias in place, then taken with a scale of 1 */
    const float row_scale = bias.data ? 1.0f : scale;
    const __m512 scale_v = _mm512_set1_ps(row_scale);
    for (int64_t k0 = 0; k0 < key_count; k0 += KEY_BLOCK) {
        const int64_t valid = key_count - k0 < KEY_BLOCK ? key_count - k0 : KEY_BLOCK;
        const int64_t padded = (valid + 63) / 64 * 64;
        for (int64_t i0 = 0; i0 < QUERY_BLOCK; i0 += 4)
            for (int64_t g0 = 0; g0 < padded / 16; g0 += 4)
                score_tile(w->q, keys + (k0 / 16) * pairs * 16, pairs, w->scores, i0, g0);
        for (int64_t i = 0; i < rows; i++) {
            float *s = w->scores + i * KEY_BLOCK;
            if (bias.data) {
                const char *row = (const char *)bias.data + (i * bias.query_stride + k0) * (bias.bf16 ? 2 : 4);
                for (int64_t j = 0; j < padded; j += 16)
                    _mm512_storeu_ps(s + j, _mm512_fmadd_ps(_mm512_loadu_ps(s + j), _mm512_set1_ps(scale),
                                                            bias_at(row, bias.bf16, j, valid)));
            }
            __m512 top = _mm512_set1_ps(-INFINITY);
            int64_t j = 0;
            for (; j + 16 <= valid; j += 16) top = _mm512_max_ps(top, _mm512_loadu_ps(s + j));
            if (j < valid) top = _mm512_mask_max_ps(top, (__mmask16)((1u << (valid - j)) - 1u), top,
                                                    _mm512_loadu_ps(s + j));
            float m_new = _mm512_reduce_max_ps(top) * row_scale;
            if (m_new < w->m[i]) m_new = w->m[i];
            const float alpha = expf(w->m[i] - m_new);
            const __m512 shift = _mm512_set1_ps(m_new);
            __m512 sum = _mm512_setzero_ps();
            for (j = 0; j < padded; j += 16) {
                __m512 e = exp_nonpositive(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), scale_v, shift));
                if (j + 16 > valid)
                    e = _mm512_maskz_mov_ps(j >= valid ? 0 : (__mmask16)((1u << (valid - j)) - 1u), e);
                sum = _mm512_add_ps(sum, e);
                _mm256_storeu_si256((__m256i *)(w->p + i * KEY_BLOCK + j), (__m256i)_mm512_cvtneps_pbh(e));
            }
            w->l[i] = w->l[i] * alpha + _mm512_reduce_add_ps(sum);
            w->m[i] = m_new;
            if (alpha != 1.0f)
                for (int64_t c = 0; c < size; c += 16)
                    _mm512_storeu_ps(w->o + i * size + c, _mm512_mul_ps(_mm512_set1_ps(alpha),
                                                                        _mm512_loadu_ps(w->o + i * size + c)));
        }
        for (int64_t i = rows; i < QUERY_BLOCK; i++) memset(w->p + i * KEY_BLOCK, 0, 2 * KEY_BLOCK);
        value_tiles((const uint32_t *)w->p, values + k0 * size, padded / 2, w->o, groups);
    }
    for (int64_t i = 0; i < rows; i++) {
        const __m512 inverse = _mm512_set1_ps(1.0f / w->l[i]);
        for (int64_t c = 0; c < size; c += 16) {
            const __m512 row = _mm512_mul_ps(inverse, _mm512_loadu_ps(w->o + i * size + c));
            _mm256_storeu_si256((__m256i *)(out + i * out_stride + c), (__m256i)_mm512_cvtneps_pbh(row));
        }
    }
}

/* out [B, T, H, d] rows = softmax(scale q k^T + bias) v per batch and head; q [B, H, T, d], k and v [B, S, H d],
   bias [B, T, S] (or NULL), all strided as `layout` says (elements; the last dimension contiguous). Returns 0, or
   -1 when its buffers could not be allocated (then out is not written) */
int attention_bf16(const uint16_t *q, const uint16_t *k, const uint16_t *v, const void *bias, uint16_t *out,
                   const int64_t *layout, float scale) {
    const int64_t batch = layout[BATCH], heads = layout[HEADS], queries = layout[QUERIES];
    const int64_t keys = layout[KEYS], size = layout[HEAD_SIZE];
    const int64_t padded_keys = (keys + 63) / 64 * 64, pairs = size / 2;
    const int64_t head_bytes = padded_keys * size * 2;           /* packed keys (or values) of one head */
    int64_t group = (int64_t)PACKED_BYTES / (2 * head_bytes);
    const int64_t total = batch * heads, blocks = (queries + QUERY_BLOCK - 1) / QUERY_BLOCK;
    group = group < 1 ? 1 : group > total ? total : group;
    char *packed_keys = aligned_alloc(64, group * head_bytes), *packed_values = aligned_alloc(64, group * head_bytes);
    int failed = !packed_keys || !packed_values;
    #pragma omp parallel if (layout[PARALLEL] && !failed)
    {
        workspace w = {aligned_alloc(64, QUERY_BLOCK * MAX_HEAD * 2), aligned_alloc(64, QUERY_BLOCK * KEY_BLOCK * 4),
                       aligned_alloc(64, QUERY_BLOCK * KEY_BLOCK * 2), aligned_alloc(64, QUERY_BLOCK * MAX_HEAD * 4),
                       malloc(QUERY_BLOCK * 4), malloc(QUERY_BLOCK * 4)};
        if (!w.q || !w.scores || !w.p || !w.o || !w.m || !w.l) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp barrier
        for (int64_t first = 0; !failed && first < total; first += group) {
            const int64_t count = total - first < group ? total - first : group;
            const int64_t key_groups = padded_keys / 16;
            #pragma omp for schedule(static)
            for (int64_t job = 0; job < count * key_groups; job++) {
                const int64_t head = first + job / key_groups, g = job % key_groups, slot = job / key_groups;
                const int64_t b = head / heads, h = head % heads;
                const int64_t k_at = b * layout[K_BATCH] + h * size, v_at = b * layout[V_BATCH] + h * size;
                pack_keys(k + k_at, layout[K_TOKEN], keys, pairs, (uint32_t *)(packed_keys + slot * head_bytes),
                          g * 16, g * 16 + 16);
                pack_values(v + v_at, layout[V_TOKEN], keys, size, (uint16_t *)(packed_values + slot * head_bytes),
                            g * 8, g * 8 + 8);
            }
            #pragma omp for schedule(static)
            for (int64_t job = 0; job < count * blocks; job++) {
                const int64_t head = first + job / blocks, t0 = (job % blocks) * QUERY_BLOCK, slot = job / blocks;
                const int64_t b = head / heads, h = head % heads;
                const int64_t rows = queries - t0 < QUERY_BLOCK ? queries - t0 : QUERY_BLOCK;
                const int64_t q_at = b * layout[Q_BATCH] + h * layout[Q_HEAD] + t0 * layout[Q_TOKEN];
                const int64_t out_at = b * layout[OUT_BATCH] + t0 * layout[OUT_TOKEN] + h * size;
                const int64_t bias_at_row = b * layout[BIAS_BATCH] + t0 * layout[BIAS_QUERY];
                const bias_rows rows_bias = {bias ? (const char *)bias + bias_at_row * (layout[BIAS_BF16] ? 2 : 4)
                                                  : NULL, layout[BIAS_BF16], layout[BIAS_QUERY]};
                query_block(q + q_at, layout[Q_TOKEN], rows, (const uint32_t *)(packed_keys + slot * head_bytes),
                            (const uint16_t *)(packed_values + slot * head_bytes), rows_bias, keys, size, scale,
                            out + out_at, layout[OUT_TOKEN], &w);
            }
        }
        free(w.q); free(w.scores); free(w.p); free(w.o); free(w.m); free(w.l);
    }
    free(packed_keys);
    free(packed_values);
    return failed ? -1 : 0;
}
#else
int attention_bf16_built(void) { return 0; }
int attention_bf16(const uint16_t *q, const uint16_t *k, const uint16_t *v, const void *bias, uint16_t *out,
                   const int64_t *layout, float scale) { abort(); }
#endif
"""


@dataclass(frozen=True)
class AttentionChoice:
    """Which bf16 attention runs and why. kernel: "native" | "sdpa"; reason: a few words for reports."""

    kernel: str
    reason: str

    @property
    def native(self) -> bool:
        return self.kernel == "native"


def kernel_for(setting: str, built: bool, cpu_flags: frozenset[str]) -> AttentionChoice:
    """The rule: ``setting`` ("auto", "native" or "sdpa"); ``built``: whether the kernel was built with
    AVX512-BF16; ``cpu_flags``: the CPU's feature flags as /proc/cpuinfo lists them."""
    if setting not in CHOICES:
        raise ValueError(f"{SETTING}={setting!r} is not one of {', '.join(CHOICES)}")
    if setting == "sdpa":
        return AttentionChoice("sdpa", f"{SETTING}=sdpa")
    if not built:
        return AttentionChoice("sdpa", "no native bf16 attention on this machine (needs AVX512-BF16 and a C compiler)")
    if setting == "native":
        return AttentionChoice("native", f"{SETTING}=native")
    if "amx_bf16" in cpu_flags:
        return AttentionChoice("sdpa", "torch's flash attention: this CPU has AMX tiles")
    return AttentionChoice("native", "native bf16 attention: AVX512-BF16 without AMX")


def attention_choice() -> AttentionChoice:
    """:func:`kernel_for` this machine and ``LTXGRAPH_ATTENTION`` (read on every call; an unknown value is a
    ``ValueError`` naming it)."""
    setting = os.environ.get(SETTING, "auto") or "auto"
    if setting not in CHOICES:
        raise ValueError(f"{SETTING}={setting!r} is not one of {', '.join(CHOICES)}")
    if os.environ.get("LTXGRAPH_NATIVE_KERNELS", "1") == "0":
        return AttentionChoice("sdpa", "LTXGRAPH_NATIVE_KERNELS=0")
    if setting == "sdpa":
        return kernel_for(setting, False, frozenset())
    return kernel_for(setting, load_native_attention() is not None, native.cpu_flags())


class NativeAttention:
    """The loaded library: :meth:`run` computes one attention, or returns None for operands it does not take."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self._attend = library.attention_bf16
        self._attend.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_float]
        self._attend.restype = ctypes.c_int

    def run(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None,
            scale: float | None = None) -> torch.Tensor | None:
        """q [B, H, T, d], k and v [B, S, H d] (bf16, CPU, each with its last dimension contiguous) ->
        softmax(scale q k^T + bias) v as [B, T, H d] bf16; scale defaults to d^-1/2; ``bias``: additive, float32
        or bf16, broadcastable to [B, 1, T, S] (a text padding mask [B, 1, 1, S], a self-attention mask [B, 1,
        T, S]; read where it is, without a copy). None when the operands are outside what the kernel takes (a
        bias that varies by head, a boolean mask among them)."""
        if q.ndim != 4 or k.ndim != 3 or v.ndim != 3:
            return None
        batch, heads, queries, size = q.shape
        keys = k.shape[1]
        if (size not in HEAD_SIZES or keys == 0 or queries == 0 or k.shape != (batch, keys, heads * size)
                or v.shape != k.shape
                or any(t.dtype != torch.bfloat16 or t.device.type != "cpu" or t.stride(-1) != 1 for t in (q, k, v))):
            return None
        bias_view = None if bias is None else bias_rows(bias, batch, queries, keys)
        if bias is not None and bias_view is None:
            return None
        bias_layout = [0, 0, 0] if bias_view is None else [int(bias_view.dtype == torch.bfloat16),
                                                          bias_view.stride(0), bias_view.stride(1)]
        out = torch.empty(batch, queries, heads * size, dtype=torch.bfloat16)
        work = batch * heads * queries * keys
        layout = torch.tensor([batch, heads, queries, keys, size, q.stride(0), q.stride(1), q.stride(2),
                               k.stride(0), k.stride(1), v.stride(0), v.stride(1), out.stride(0), out.stride(1),
                               int(work >= PARALLEL_WORK), *bias_layout], dtype=torch.int64)
        with torch.profiler.record_function(PROFILER_NAME):
            status = self._attend(q.data_ptr(), k.data_ptr(), v.data_ptr(),
                                  0 if bias_view is None else bias_view.data_ptr(), out.data_ptr(), layout.data_ptr(),
                                  size ** -0.5 if scale is None else scale)
        if status != 0:
            raise MemoryError(f"native attention of {batch} x {heads} heads, {queries} queries x {keys} keys: its "
                              "working buffers could not be allocated")
        return out


def bias_rows(bias: torch.Tensor, batch: int, queries: int, keys: int) -> torch.Tensor | None:
    """``bias`` as the kernel reads it: a view [B, T, S] (float32 or bf16, keys contiguous; a broadcast dimension
    has stride 0), a float32 copy for another floating dtype, None for a bias that varies by head, a boolean one
    (True attends: not additive) or one that does not broadcast."""
    if (bias.device.type != "cpu" or not bias.is_floating_point() or bias.ndim > 4
            or bias.ndim >= 3 and bias.shape[-3] != 1):
        return None
    try:
        view = bias.reshape(*bias.shape[:-3], *bias.shape[-2:]) if bias.ndim >= 3 else bias
        view = view.expand(batch, queries, keys)
    except RuntimeError:
        return None
    if view.dtype not in (torch.float32, torch.bfloat16):
        view = view.float()
    return view if view.stride(-1) == 1 or keys == 1 else view.contiguous()


@functools.cache
def load_native_attention() -> NativeAttention | None:
    """The kernel for this machine, or None (no C compiler, a failed build, a build without AVX512-BF16)."""
    library = (native.load_library("attention", SOURCE, native.OPENMP_FLAGS)
               or native.load_library("attention", SOURCE))
    if library is None or not library.attention_bf16_built():
        return None
    return NativeAttention(library)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor | None:
    """Attention of q [B, H, T, d] against k, v [B, S, H d] as [B, T, H d] through the native kernel, where
    :func:`attention_choice` picks it and it takes these operands; None otherwise (the caller runs torch's)."""
    if (q.dtype != torch.bfloat16 or not attention_choice().native
            or torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))):    # the kernel has no backward
        return None
    return load_native_attention().run(q, k, v, bias)
