"""transformer-vs-reference's floor: the share of our forward spent in the GEMM and attention kernels the reference
calls too, and the ratio it would leave if nothing else took time."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tools.benchmarks.transformer import profile_figures, profile_summary


def test_the_shared_share_counts_gemms_and_attention_and_nothing_else() -> None:
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    q = torch.randn(1, 4, 512, 64)          # large enough that the kernel, not the call around it, takes the time
    gemm, elementwise = (lambda: [a @ b for _ in range(20)]), (lambda: [torch.exp(a) for _ in range(20)])
    attention = lambda: [F.scaled_dot_product_attention(q, q, q) for _ in range(10)]  # noqa: E731
    for run in (gemm, elementwise, attention):      # warmed up, as the benchmark profiles a warm forward
        run()
    (_, gemm_only), (_, elementwise_only), (_, attention_only) = map(profile_summary, (gemm, elementwise, attention))
    assert gemm_only > 0.8 and attention_only > 0.8
    assert elementwise_only == 0.0


def test_the_floor_is_the_ratio_scaled_by_the_shared_share() -> None:
    a = torch.randn(128, 128)
    figures = profile_figures(lambda: (a @ a, torch.exp(a)), ratio=0.8)
    assert 0 < figures["ours_shared_kernel_share"] < 1
    assert abs(figures["ratio_floor"] - 0.8 * figures["ours_shared_kernel_share"]) <= 0.0011   # both rounded
    assert figures["ours_profile"][0]["op"]
