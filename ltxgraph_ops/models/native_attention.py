"""Attention as a CPU kernel of our own, in bfloat16 (AVX512-BF16) and in float32 (AVX-512), for CPUs where
torch's flash attention leaves speed behind.

On an AMD EPYC with AVX512-BF16 and no AMX (BENCHMARKS.md, machine B), torch's CPU flash attention runs at the
same ~110-170 GFLOP/s in bf16 as in float32, while a bf16 matmul runs at twice float32's rate; at the stage-2
step's token count attention is a third of a bf16 block. In float32 its blocks are multiplied by torch's BLAS,
MKL, whose fast kernels are not chosen on that CPU (the reason float32 products go through oneDNN there,
:mod:`~ltxgraph_ops.models.float32_matmul`). This kernel computes the same thing as flash attention (exact
softmax per query, online over blocks of keys):

- a block of 64 queries against a block of 256 keys: scores ``q k^T`` accumulated in float32, from bf16 pairs
  (``vdpbf16ps``: 16 keys per register, the keys packed per head once per call) or by float32 fused
  multiply-adds (4 queries x 64 keys per tile, the keys packed by 64);
- online softmax in float32, in base 2: the running row maximum ``m`` of ``c s`` with ``c = scale log2(e)``,
  ``p = 2^(c s - m)`` (= ``exp(scale s - m / log2(e))``), the running sum ``l`` of ``p``, and the output rows
  rescaled by ``2^(m_old - m)`` when the maximum grows;
- ``p`` (rounded to bf16 in bf16) multiplied with the values, accumulated in float32;
- after the last key block, ``out = o / l`` (rounded once to bf16 in bf16), written as [B, T, H, d].

Every query block is computed by one thread, in one order, so the result does not depend on the thread count.
Only q, k, v of one dtype (bf16 or float32) with a head size that is a multiple of 16 up to 256 take it, without a
bias or with an additive one that is the same for every head (text padding masks, self-attention masks; read in
place, float32 or bf16); the caller keeps ``scaled_dot_product_attention`` for everything else. The library is
built by :mod:`ltxgraph_ops.native` with ``-march=native``: float32 where the build has AVX-512, bf16 where it
also has AVX512-BF16.

Which attention runs is a rule on the CPU, not a timing, so every process of a machine computes the same bits.
bf16: the kernel where it is built and the CPU has no AMX (where torch's flash attention has tile instructions
this kernel does not use, and which this project could not measure). float32: the kernel where it is built and
float32 products go through oneDNN (torch's BLAS is MKL on a CPU MKL's fast kernels are not chosen for); on Intel
CPUs, where MKL runs at the FMA peak inside torch's flash attention, torch's. ``LTXGRAPH_ATTENTION=native|sdpa``
fixes the choice for both; ``LTXGRAPH_NATIVE_KERNELS=0`` turns every native kernel off.
"""
from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass

import torch

from ltxgraph_ops import native
from ltxgraph_ops.models.float32_matmul import float32_matmul

SETTING = "LTXGRAPH_ATTENTION"
CHOICES = ("auto", "native", "sdpa")
PROFILER_NAME = "ltxgraph::native_attention"
HEAD_SIZES = tuple(range(16, 257, 16))
# no multiply and add fused unless the source says so: the exponent of a row's largest score must round as its
# maximum does (see the softmax)
EXACT_PRODUCTS = ("-ffp-contract=off",)
PARALLEL_WORK = 1 << 20     # query x key pairs x heads below which one thread does the whole call

SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <immintrin.h>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#if defined(__AVX512BF16__)
#define WITH_BF16 1
#else
#define WITH_BF16 0
#endif
#define QUERY_BLOCK 64
#define KEY_BLOCK 256
#define MAX_HEAD 256
#define PACKED_BYTES (16u << 20)     /* packed keys and values of a group of heads */

enum { BATCH, HEADS, QUERIES, KEYS, HEAD_SIZE, Q_BATCH, Q_HEAD, Q_TOKEN, K_BATCH, K_TOKEN, V_BATCH, V_TOKEN,
       OUT_BATCH, OUT_TOKEN, PARALLEL, BIAS_BF16, BIAS_BATCH, BIAS_QUERY, FLOAT32, LAYOUT };

/* the dtypes built: 1 float32, 2 bf16 */
int attention_dtypes(void) { return 1 | (WITH_BF16 << 1); }

/* 2^x for x <= 0 (2^-126, the least normal float, below -126): 2^n p(r), n = round(x), r = x - n in
   [-1/2, 1/2] (exact), p of degree 6 fitted to 2^r (within 2 ulp); 2^0 is exactly 1; a NaN stays NaN (max
   returns its second operand when either is NaN) */
static inline __m512 exp2_nonpositive(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-126.0f), x);
    const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.5353361959569156e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3398875016719103e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.61843691766262e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.5503323674201965e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.4022647738456726e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.931471824645996e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

#if WITH_BF16
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
#endif

/* float32 keys [first, last) of one head by 64-key groups: per group and channel, the channel of its 64 keys */
static void pack_keys_f32(const float *k, int64_t stride, int64_t keys, int64_t size, float *packed,
                          int64_t first, int64_t last) {
    for (int64_t j = first; j < last; j++) {
        float *to = packed + (j / 64) * size * 64 + j % 64;
        const float *row = k + j * stride;
        for (int64_t c = 0; c < size; c++) to[c * 64] = j < keys ? row[c] : 0.0f;
    }
}

/* float32 value rows [first, last) of one head, contiguous (zero past the last key) */
static void pack_values_f32(const float *v, int64_t stride, int64_t keys, int64_t size, float *packed,
                            int64_t first, int64_t last) {
    for (int64_t j = first; j < last; j++)
        if (j < keys) memcpy(packed + j * size, v + j * stride, 4 * size);
        else memset(packed + j * size, 0, 4 * size);
}

/* float32 scores of 4 queries x 64 keys (a packed group) by fused multiply-adds; the key vectors are held in
   registers (loaded once per channel, not folded into each multiply-add: loads, not multiplies, would bound it) */
static inline void score_tile_f32(const float *q, const float *group, int64_t size, float *scores, int64_t i0,
                                  int64_t first_key) {
    __m512 acc[4][4];
    for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = _mm512_setzero_ps();
    for (int64_t c = 0; c < size; c++) {
        __m512 k[4];
        for (int b = 0; b < 4; b++) {
            k[b] = _mm512_loadu_ps(group + c * 64 + b * 16);
            __asm__("" : "+v"(k[b]));
        }
        for (int a = 0; a < 4; a++) {
            const __m512 qa = _mm512_set1_ps(q[(i0 + a) * size + c]);
            for (int b = 0; b < 4; b++) acc[a][b] = _mm512_fmadd_ps(qa, k[b], acc[a][b]);
        }
    }
    for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++)
        _mm512_storeu_ps(scores + (i0 + a) * KEY_BLOCK + first_key + b * 16, acc[a][b]);
}

/* o[i] += sum_j p[i][j] v[j] in float32 for ROWS queries from i0 and GROUPS x 16 channels, over `keys` keys */
#define VALUE_TILE_F32(GROUPS, ROWS)                                                                           \
static inline void value_tile_f32_##GROUPS(const float *p, const float *values, int64_t keys, float *o,      \
                                           int64_t i0) {                                                      \
    __m512 acc[ROWS][GROUPS];                                                                                 \
    for (int a = 0; a < ROWS; a++) for (int b = 0; b < GROUPS; b++)                                           \
        acc[a][b] = _mm512_loadu_ps(o + ((i0 + a) * GROUPS + b) * 16);                                        \
    for (int64_t j = 0; j < keys; j++) {                                                                      \
        __m512 v[GROUPS];                                                                                     \
        for (int b = 0; b < GROUPS; b++) {                                                                    \
            v[b] = _mm512_loadu_ps(values + (j * GROUPS + b) * 16);                                           \
            __asm__("" : "+v"(v[b]));                                                                         \
        }                                                                                                     \
        for (int a = 0; a < ROWS; a++) {                                                                      \
            const __m512 pa = _mm512_set1_ps(p[(i0 + a) * KEY_BLOCK + j]);                                    \
            for (int b = 0; b < GROUPS; b++) acc[a][b] = _mm512_fmadd_ps(pa, v[b], acc[a][b]);                \
        }                                                                                                     \
    }                                                                                                         \
    for (int a = 0; a < ROWS; a++) for (int b = 0; b < GROUPS; b++)                                           \
        _mm512_storeu_ps(o + ((i0 + a) * GROUPS + b) * 16, acc[a][b]);                                        \
}
VALUE_TILE_F32(1, 8)
VALUE_TILE_F32(2, 8)
VALUE_TILE_F32(4, 4)
VALUE_TILE_F32(8, 2)
VALUE_TILE_F32(16, 1)

static void value_tiles_f32(const float *p, const float *values, int64_t keys, float *o, int64_t groups) {
    for (int64_t i0 = 0; i0 < QUERY_BLOCK;) {
        switch (groups) {
            case 1: value_tile_f32_1(p, values, keys, o, i0); i0 += 8; break;
            case 2: value_tile_f32_2(p, values, keys, o, i0); i0 += 8; break;
            case 4: value_tile_f32_4(p, values, keys, o, i0); i0 += 4; break;
            case 8: value_tile_f32_8(p, values, keys, o, i0); i0 += 2; break;
            case 16: value_tile_f32_16(p, values, keys, o, i0); i0 += 1; break;
            default: {      /* 3, 5, 6, 7, ... groups: one 16-channel group at a time */
                for (int64_t b = 0; b < groups; b++) {
                    __m512 acc = _mm512_loadu_ps(o + (i0 * groups + b) * 16);
                    for (int64_t j = 0; j < keys; j++)
                        acc = _mm512_fmadd_ps(_mm512_set1_ps(p[i0 * KEY_BLOCK + j]),
                                              _mm512_loadu_ps(values + (j * groups + b) * 16), acc);
                    _mm512_storeu_ps(o + (i0 * groups + b) * 16, acc);
                }
                i0 += 1;
            }
        }
    }
}

typedef struct { void *q; float *scores; uint16_t *p; float *o; float *m, *l; } workspace;

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

/* queries [t0, t0 + rows) of one head against all its keys, packed by pack_keys and pack_values (float32: by
   their _f32 forms); `bias` from query t0; q and out in bf16, or in float32 where `f32` */
static void query_block(const void *q, int64_t q_stride, int64_t rows, const void *keys, const void *values,
                        bias_rows bias, int64_t key_count, int64_t size, float scale, void *out, int64_t out_stride,
                        workspace *w, int f32) {
    const int64_t groups = size / 16, element = f32 ? 4 : 2;
    memset(w->q, 0, element * QUERY_BLOCK * size);
    for (int64_t i = 0; i < rows; i++)
        memcpy((char *)w->q + i * size * element, (const char *)q + i * q_stride * element, element * size);
    memset(w->o, 0, sizeof(float) * QUERY_BLOCK * size);
    for (int64_t i = 0; i < QUERY_BLOCK; i++) { w->m[i] = -INFINITY; w->l[i] = 0.0f; }
    /* exponents in base 2: 2^(c s - m) with c = scale log2(e) and m the row's largest c s; with a bias the scores
       are first made scale s + bias in place, then c = log2(e) */
    const float row_scale = (bias.data ? 1.0f : scale) * 1.44269504088896341f;
    const __m512 scale_v = _mm512_set1_ps(row_scale);
    for (int64_t k0 = 0; k0 < key_count; k0 += KEY_BLOCK) {
        const int64_t valid = key_count - k0 < KEY_BLOCK ? key_count - k0 : KEY_BLOCK;
        const int64_t padded = (valid + 63) / 64 * 64;
        for (int64_t i0 = 0; i0 < QUERY_BLOCK; i0 += 4)
            for (int64_t g0 = 0; g0 < padded / 16; g0 += 4) {
                if (f32)
                    score_tile_f32((const float *)w->q, (const float *)keys + (k0 + g0 * 16) * size, size,
                                   w->scores, i0, g0 * 16);
#if WITH_BF16
                else
                    score_tile((const uint32_t *)w->q, (const uint32_t *)keys + k0 * (size / 2), size / 2,
                               w->scores, i0, g0);
#endif
            }
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
            /* m and the exponents round c s alike (no fused multiply-subtract), so the largest score's exponent
               is exactly 0: one key, or one dominant key, passes its value through unchanged */
            float m_new = _mm512_reduce_max_ps(top) * row_scale;
            if (m_new < w->m[i]) m_new = w->m[i];
            const float alpha = exp2f(w->m[i] - m_new);
            const __m512 shift = _mm512_set1_ps(m_new);
            __m512 sum = _mm512_setzero_ps();
            for (j = 0; j < padded; j += 16) {
                __m512 e = exp2_nonpositive(_mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(s + j), scale_v), shift));
                if (j + 16 > valid)
                    e = _mm512_maskz_mov_ps(j >= valid ? 0 : (__mmask16)((1u << (valid - j)) - 1u), e);
                sum = _mm512_add_ps(sum, e);
                if (f32) _mm512_storeu_ps(s + j, e);      /* the probabilities replace the scores */
#if WITH_BF16
                else _mm256_storeu_si256((__m256i *)(w->p + i * KEY_BLOCK + j), (__m256i)_mm512_cvtneps_pbh(e));
#endif
            }
            w->l[i] = w->l[i] * alpha + _mm512_reduce_add_ps(sum);
            w->m[i] = m_new;
            if (alpha != 1.0f)
                for (int64_t c = 0; c < size; c += 16)
                    _mm512_storeu_ps(w->o + i * size + c, _mm512_mul_ps(_mm512_set1_ps(alpha),
                                                                        _mm512_loadu_ps(w->o + i * size + c)));
        }
        if (f32) {
            for (int64_t i = rows; i < QUERY_BLOCK; i++) memset(w->scores + i * KEY_BLOCK, 0, 4 * KEY_BLOCK);
            value_tiles_f32(w->scores, (const float *)values + k0 * size, padded, w->o, groups);
        }
#if WITH_BF16
        else {
            for (int64_t i = rows; i < QUERY_BLOCK; i++) memset(w->p + i * KEY_BLOCK, 0, 2 * KEY_BLOCK);
            value_tiles((const uint32_t *)w->p, (const uint16_t *)values + k0 * size, padded / 2, w->o, groups);
        }
#endif
    }
    for (int64_t i = 0; i < rows; i++) {
        const __m512 inverse = _mm512_set1_ps(1.0f / w->l[i]);
        for (int64_t c = 0; c < size; c += 16) {
            const __m512 row = _mm512_mul_ps(inverse, _mm512_loadu_ps(w->o + i * size + c));
            if (f32) _mm512_storeu_ps((float *)out + i * out_stride + c, row);
#if WITH_BF16
            else _mm256_storeu_si256((__m256i *)((uint16_t *)out + i * out_stride + c), (__m256i)_mm512_cvtneps_pbh(row));
#endif
        }
    }
}

/* out [B, T, H, d] rows = softmax(scale q k^T + bias) v per batch and head; q [B, H, T, d], k and v [B, S, H d],
   bias [B, T, S] (or NULL), all strided as `layout` says (elements; the last dimension contiguous); q, k, v and
   out all bf16, or all float32 where layout[FLOAT32]. Returns 0, or -1 when its buffers could not be allocated
   (then out is not written) */
int attention(const void *q, const void *k, const void *v, const void *bias, void *out, const int64_t *layout,
              float scale) {
    const int f32 = layout[FLOAT32] != 0;
    if (!f32 && !WITH_BF16) abort();
    const int64_t batch = layout[BATCH], heads = layout[HEADS], queries = layout[QUERIES];
    const int64_t keys = layout[KEYS], size = layout[HEAD_SIZE], element = f32 ? 4 : 2;
    const int64_t padded_keys = (keys + 63) / 64 * 64;
    const int64_t head_bytes = padded_keys * size * element;     /* packed keys (or values) of one head */
    int64_t group = (int64_t)PACKED_BYTES / (2 * head_bytes);
    const int64_t total = batch * heads, blocks = (queries + QUERY_BLOCK - 1) / QUERY_BLOCK;
    group = group < 1 ? 1 : group > total ? total : group;
    char *packed_keys = aligned_alloc(64, group * head_bytes), *packed_values = aligned_alloc(64, group * head_bytes);
    int failed = !packed_keys || !packed_values;
    #pragma omp parallel if (layout[PARALLEL] && !failed)
    {
        workspace w = {aligned_alloc(64, QUERY_BLOCK * MAX_HEAD * 4), aligned_alloc(64, QUERY_BLOCK * KEY_BLOCK * 4),
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
                char *to_keys = packed_keys + slot * head_bytes, *to_values = packed_values + slot * head_bytes;
                if (f32) {
                    pack_keys_f32((const float *)k + k_at, layout[K_TOKEN], keys, size, (float *)to_keys,
                                  g * 16, g * 16 + 16);
                    pack_values_f32((const float *)v + v_at, layout[V_TOKEN], keys, size, (float *)to_values,
                                    g * 16, g * 16 + 16);
                }
#if WITH_BF16
                else {
                    pack_keys((const uint16_t *)k + k_at, layout[K_TOKEN], keys, size / 2, (uint32_t *)to_keys,
                              g * 16, g * 16 + 16);
                    pack_values((const uint16_t *)v + v_at, layout[V_TOKEN], keys, size, (uint16_t *)to_values,
                                g * 8, g * 8 + 8);
                }
#endif
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
                query_block((const char *)q + q_at * element, layout[Q_TOKEN], rows, packed_keys + slot * head_bytes,
                            packed_values + slot * head_bytes, rows_bias, keys, size, scale,
                            (char *)out + out_at * element, layout[OUT_TOKEN], &w, f32);
            }
        }
        free(w.q); free(w.scores); free(w.p); free(w.o); free(w.m); free(w.l);
    }
    free(packed_keys);
    free(packed_values);
    return failed ? -1 : 0;
}
#else
int attention_dtypes(void) { return 0; }
int attention(const void *q, const void *k, const void *v, const void *bias, void *out, const int64_t *layout,
              float scale) { abort(); }
#endif
"""


@dataclass(frozen=True)
class AttentionChoice:
    """Which attention runs in one dtype and why. kernel: "native" | "sdpa"; reason: a few words for reports."""

    kernel: str
    reason: str

    @property
    def native(self) -> bool:
        return self.kernel == "native"


def kernel_for(setting: str, built: bool, cpu_flags: frozenset[str], dtype: torch.dtype = torch.bfloat16,
               float32_onednn: bool = False) -> AttentionChoice:
    """The rule for attention in ``dtype`` (bf16 or float32): ``setting`` ("auto", "native" or "sdpa");
    ``built``: whether the kernel was built for that dtype (bf16: with AVX512-BF16; float32: with AVX-512);
    ``cpu_flags``: the CPU's feature flags as /proc/cpuinfo lists them; ``float32_onednn``: whether float32
    products go through oneDNN on this machine (:mod:`~ltxgraph_ops.models.float32_matmul`: torch's BLAS is MKL
    on a CPU its fast kernels are not chosen for, and torch's float32 flash attention multiplies with it)."""
    if setting not in CHOICES:
        raise ValueError(f"{SETTING}={setting!r} is not one of {', '.join(CHOICES)}")
    if setting == "sdpa":
        return AttentionChoice("sdpa", f"{SETTING}=sdpa")
    name = "float32" if dtype == torch.float32 else "bf16"
    if not built:
        needs = "AVX-512" if dtype == torch.float32 else "AVX512-BF16"
        return AttentionChoice("sdpa", f"no native {name} attention on this machine (needs {needs} and a C compiler)")
    if setting == "native":
        return AttentionChoice("native", f"{SETTING}=native")
    if dtype == torch.float32:
        if float32_onednn:
            return AttentionChoice("native", "native float32 attention: torch's multiplies with MKL on a CPU MKL "
                                             "is slow on")
        return AttentionChoice("sdpa", "torch's float32 flash attention: its BLAS is fast on this CPU")
    if "amx_bf16" in cpu_flags:
        return AttentionChoice("sdpa", "torch's flash attention: this CPU has AMX tiles")
    return AttentionChoice("native", "native bf16 attention: AVX512-BF16 without AMX")


def attention_choice(dtype: torch.dtype = torch.bfloat16) -> AttentionChoice:
    """:func:`kernel_for` this machine, ``dtype`` and ``LTXGRAPH_ATTENTION`` (read on every call; an unknown value
    is a ``ValueError`` naming it)."""
    setting = os.environ.get(SETTING, "auto") or "auto"
    if setting not in CHOICES:
        raise ValueError(f"{SETTING}={setting!r} is not one of {', '.join(CHOICES)}")
    if os.environ.get("LTXGRAPH_NATIVE_KERNELS", "1") == "0":
        return AttentionChoice("sdpa", "LTXGRAPH_NATIVE_KERNELS=0")
    if setting == "sdpa":
        return kernel_for(setting, False, frozenset())
    kernel = load_native_attention()
    built = kernel is not None and dtype in kernel.dtypes
    return kernel_for(setting, built, native.cpu_flags(), dtype,
                      dtype == torch.float32 and float32_matmul().onednn)


class NativeAttention:
    """The loaded library: :meth:`run` computes one attention, or returns None for operands it does not take.
    dtypes: those it was built for (float32, and bf16 where the build has AVX512-BF16)."""

    def __init__(self, library: ctypes.CDLL) -> None:
        built = library.attention_dtypes()
        self.dtypes = frozenset(dtype for bit, dtype in ((1, torch.float32), (2, torch.bfloat16)) if built & bit)
        self._attend = library.attention
        self._attend.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_float]
        self._attend.restype = ctypes.c_int

    def run(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None,
            scale: float | None = None) -> torch.Tensor | None:
        """q [B, H, T, d], k and v [B, S, H d] (all bf16 or all float32, CPU, each with its last dimension
        contiguous) -> softmax(scale q k^T + bias) v as [B, T, H d] in their dtype; scale defaults to d^-1/2;
        ``bias``: additive, float32 or bf16, broadcastable to [B, 1, T, S] (a text padding mask [B, 1, 1, S], a
        self-attention mask [B, 1, T, S]; read where it is, without a copy). None when the operands are outside
        what the kernel takes (a bias that varies by head, a boolean mask among them)."""
        if q.ndim != 4 or k.ndim != 3 or v.ndim != 3:
            return None
        batch, heads, queries, size = q.shape
        keys = k.shape[1]
        if (size not in HEAD_SIZES or keys == 0 or queries == 0 or k.shape != (batch, keys, heads * size)
                or v.shape != k.shape or q.dtype not in self.dtypes
                or any(t.dtype != q.dtype or t.device.type != "cpu" or t.stride(-1) != 1 for t in (q, k, v))):
            return None
        bias_view = None if bias is None else bias_rows(bias, batch, queries, keys)
        if bias is not None and bias_view is None:
            return None
        bias_layout = [0, 0, 0] if bias_view is None else [int(bias_view.dtype == torch.bfloat16),
                                                          bias_view.stride(0), bias_view.stride(1)]
        out = torch.empty(batch, queries, heads * size, dtype=q.dtype)
        work = batch * heads * queries * keys
        layout = torch.tensor([batch, heads, queries, keys, size, q.stride(0), q.stride(1), q.stride(2),
                               k.stride(0), k.stride(1), v.stride(0), v.stride(1), out.stride(0), out.stride(1),
                               int(work >= PARALLEL_WORK), *bias_layout, int(q.dtype == torch.float32)],
                              dtype=torch.int64)
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
    """The kernel for this machine, or None (no C compiler, a failed build, a build without AVX-512)."""
    library = (native.load_library("attention", SOURCE, (*native.OPENMP_FLAGS, *EXACT_PRODUCTS))
               or native.load_library("attention", SOURCE, (*native.BASE_FLAGS, *EXACT_PRODUCTS)))
    if library is None or not library.attention_dtypes():
        return None
    return NativeAttention(library)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor | None:
    """Attention of q [B, H, T, d] against k, v [B, S, H d] as [B, T, H d] through the native kernel, where
    :func:`attention_choice` picks it for their dtype and it takes these operands; None otherwise (the caller runs
    torch's)."""
    if (q.dtype not in (torch.bfloat16, torch.float32) or not attention_choice(q.dtype).native
            or torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))):    # the kernel has no backward
        return None
    return load_native_attention().run(q, k, v, bias)
