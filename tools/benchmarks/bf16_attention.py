"""bf16-attention: torch's CPU attention (``scaled_dot_product_attention``) against the native bf16 kernel
(:mod:`ltxgraph_ops.models.native_attention`) at the transformer's attention shapes, with torch's float32
attention beside them for scale; the kernel ltxgraph picks on this machine. Medians of interleaved repeats, 2
threads; GFLOP/s count both products (4 T S d per head); errors are against float64 attention of the same bf16
operands (max abs; the bf16 rounding of the output is most of either).

float32-attention: the same in float32, torch's against the native float32 kernel, at the same shapes and at the
mid-size model's audio attentions (a head of 32); errors against float64 attention of the same float32 operands
(max and mean abs)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ltxgraph_ops import native
from ltxgraph_ops.models import native_attention
from tools.benchmarks.float32_matmul import interleaved_medians

THREADS = 2
# [heads, queries, keys, head size]: the mid-size benchmark model's video self-attention and its text attention;
# a 19B block's video self-attention at stage 1 (1536 tokens) and stage 2 (6144), its text attention at stage 2
SHAPES = ((16, 2304, 2304, 64), (16, 2304, 768, 64), (32, 1536, 1536, 128), (32, 6144, 6144, 128),
          (32, 6144, 1024, 128))


def by_torch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """torch's attention of q [1, H, T, d] and k, v [1, S, H d] computed in ``dtype``."""
    heads, size = q.shape[1], q.shape[3]
    k, v = (t.unflatten(-1, (heads, size)).transpose(1, 2).to(dtype) for t in (k, v))
    return F.scaled_dot_product_attention(q.to(dtype), k, v).transpose(1, 2).flatten(2)


def timed_row(shape: tuple[int, int, int, int], runs: dict, repeats: int) -> tuple[dict, dict[str, float]]:
    """The figures of ``runs`` at ``shape`` [heads, queries, keys, d] (milliseconds and GFLOP/s of each, medians of
    interleaved repeats; 2 repeats at the largest shapes), and the medians in seconds."""
    heads, queries, keys, size = shape
    medians = interleaved_medians(runs, repeats if queries * keys < 2**24 else 2)
    flop = 4 * heads * queries * keys * size
    return ({"shape": list(shape), **{f"{name}_ms": round(s * 1e3, 1) for name, s in medians.items()},
             **{f"{name}_gflops": round(flop / s / 1e9, 1) for name, s in medians.items()}}, medians)


def bf16_attention(repeats: int = 5) -> dict:
    torch.set_num_threads(THREADS)
    kernel = native_attention.load_native_attention()
    choice = native_attention.attention_choice()
    generator, rows = torch.Generator().manual_seed(0), []
    for heads, queries, keys, size in SHAPES:
        q = torch.randn(1, heads, queries, size, generator=generator).bfloat16()
        k, v = (torch.randn(1, keys, heads * size, generator=generator).bfloat16() for _ in range(2))
        runs = {"sdpa_float32": lambda: by_torch(q, k, v, torch.float32),
                "sdpa_bf16": lambda: by_torch(q, k, v, torch.bfloat16)}
        if kernel is not None:
            runs["native_bf16"] = lambda: kernel.run(q, k, v)
        row, medians = timed_row((heads, queries, keys, size), runs, repeats)
        exact = by_torch(q, k, v, torch.float64)
        row["sdpa_bf16_error"] = (by_torch(q, k, v, torch.bfloat16).double() - exact).abs().max().item()
        if kernel is not None:
            row["native_error"] = (kernel.run(q, k, v).double() - exact).abs().max().item()
            row["native_speedup"] = round(medians["sdpa_bf16"] / medians["native_bf16"], 2)
        rows.append(row)
    flags = native.cpu_flags()
    return {"threads": THREADS, "chosen": choice.kernel, "reason": choice.reason,
            "cpu_bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"}), "shapes": rows}


# the mid-size benchmark model's audio self-attention, text attention of the audio and the two attentions
# between the streams (a head of 32)
AUDIO_SHAPES = ((16, 256, 256, 32), (16, 256, 1024, 32), (16, 2304, 256, 32), (16, 256, 2304, 32))


def float32_attention(repeats: int = 5) -> dict:
    torch.set_num_threads(THREADS)
    kernel = native_attention.load_native_attention()
    choice = native_attention.attention_choice(torch.float32)
    generator, rows = torch.Generator().manual_seed(0), []
    for heads, queries, keys, size in SHAPES + AUDIO_SHAPES:
        q = torch.randn(1, heads, queries, size, generator=generator)
        k, v = (torch.randn(1, keys, heads * size, generator=generator) for _ in range(2))
        runs = {"sdpa_float32": lambda: by_torch(q, k, v, torch.float32)}
        if kernel is not None:
            runs["native_float32"] = lambda: kernel.run(q, k, v)
        row, medians = timed_row((heads, queries, keys, size), runs, repeats)
        exact = by_torch(q, k, v, torch.float64)
        outputs = {"sdpa": by_torch(q, k, v, torch.float32)}
        if kernel is not None:
            outputs["native"] = kernel.run(q, k, v)
            row["native_speedup"] = round(medians["sdpa_float32"] / medians["native_float32"], 2)
        for name, out in outputs.items():
            error = (out.double() - exact).abs()
            row[f"{name}_error_max"], row[f"{name}_error_mean"] = error.max().item(), error.mean().item()
        rows.append(row)
    return {"threads": THREADS, "chosen": choice.kernel, "reason": choice.reason, "shapes": rows}


BENCHMARKS = {"bf16-attention": bf16_attention, "float32-attention": float32_attention}
