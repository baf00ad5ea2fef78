"""float32-matmul-libraries: float32 products through the BLAS (``F.linear``, MKL on x86) and through oneDNN, at
the transformer's shapes, on this machine; with the library ltxgraph picks here
(:mod:`ltxgraph_ops.models.float32_matmul`). Medians of interleaved repeats, 2 threads."""
from __future__ import annotations

import platform
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from ltxgraph_ops.models.float32_matmul import cpu_vendor, float32_matmul

THREADS = 2
# [M, K, N] of x [M, K] times a weight [N, K]: AdaLN rows, the mid-size benchmark model's projections and
# feed-forward (2304 tokens, width 1024), a stage-1 19B block's (1536 tokens, width 4096)
SHAPES = ((1, 1024, 6144), (256, 512, 2048), (2304, 1024, 1024), (2304, 1024, 4096), (2304, 4096, 1024),
          (1536, 4096, 4096), (1536, 4096, 16384))


def interleaved_medians(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each run, repeats interleaved (a, b, c, a, b, c, ...) after one warm-up each."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def float32_matmul_libraries(repeats: int = 9) -> dict:
    torch.set_num_threads(THREADS)
    generator, rows = torch.Generator().manual_seed(0), []
    for m, k, n in SHAPES:
        x, weight = torch.randn(m, k, generator=generator), torch.randn(n, k, generator=generator) * k ** -0.5
        bias = torch.randn(n, generator=generator)
        packed = torch.ops.mkldnn._reorder_linear_weight(weight)
        medians = interleaved_medians({
            "blas": lambda: F.linear(x, weight, bias),
            "onednn": lambda: torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], ""),
            "onednn_packed": lambda: torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")},
            repeats if m * k * n < 2**33 else 3)
        flop = 2 * m * k * n
        rows.append({"shape": [m, k, n], **{f"{name}_ms": round(s * 1e3, 3) for name, s in medians.items()},
                     **{f"{name}_gflops": round(flop / s / 1e9, 1) for name, s in medians.items()},
                     "onednn_speedup": round(medians["blas"] / medians["onednn"], 2)})
    choice = float32_matmul()
    return {"threads": THREADS, "cpu_vendor": cpu_vendor(), "machine": platform.machine(),
            "chosen": choice.library, "reason": choice.reason, "shapes": rows}


BENCHMARKS = {"float32-matmul-libraries": float32_matmul_libraries}
