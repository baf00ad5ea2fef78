"""The real-scale step benchmarks compare each step with the peaks probed just before and after it."""
from __future__ import annotations

import pytest

from tools.benchmarks.real_scale import (ATTENTION_KERNELS, best_rates, kernel_figures, linear_peak, median_round,
                                         paired_rounds, projected_seconds)

SHAPES = [((100, 10, 10), 2e12), ((100, 10, 40), 1e12)]       # FLOP weights of two GEMM shapes
FLOPS = {"total": 4e12, "linear_total": 3e12}


def probe(first: float, second: float, attention: float) -> tuple[dict, list[float]]:
    """Probed [wall, CPU] rates of the two shapes and of attention (CPU = wall / 2)."""
    return ({"100x10x10": [first, first / 2], "100x10x40": [second, second / 2]}, [attention, attention / 2])


def step(seconds: float) -> dict:
    return {"seconds": seconds, "user_seconds": 2 * seconds, "system_seconds": 0.0}


def rounds_of(probes: list, seconds: list[float]) -> list[dict]:
    """Rounds as the benchmark's child reports them: probe, step, probe, step, ..., probe."""
    return [{"step": step(s), "gemm_before": probes[i][0], "attention_before": probes[i][1],
             "gemm_after": probes[i + 1][0], "attention_after": probes[i + 1][1]} for i, s in enumerate(seconds)]


def test_linear_peak_is_the_flop_weighted_harmonic_mean() -> None:
    gemm, _ = probe(1000.0, 500.0, 0.0)
    assert linear_peak(gemm, SHAPES, 0) == pytest.approx(3 / (2 / 1000 + 1 / 500))    # 750
    assert linear_peak(gemm, SHAPES, 1) == pytest.approx(375.0)
    assert best_rates([1.0, 5.0], [3.0, 2.0]) == [3.0, 5.0]


def test_each_step_is_compared_with_the_better_probe_around_it() -> None:
    probes = [probe(1000, 1000, 800), probe(600, 600, 400), probe(1500, 1500, 900)]
    first, second = paired_rounds(rounds_of(probes, [8.0, 4.0]), SHAPES, FLOPS)
    assert first["peak"] == pytest.approx(1000.0)             # the probe before it; not the later 1500
    assert second["peak"] == pytest.approx(1500.0)            # the probe after it
    assert first["achieved"] == pytest.approx(500.0)          # 4 TFLOP in 8 s
    assert first["share"] == pytest.approx(0.5) and second["share"] == pytest.approx(1000 / 1500)
    assert first["share_cpu"] == pytest.approx(0.5)           # CPU clock: half the rates, twice the seconds
    # Linear at 1000 GFLOP/s (3 s) plus attention's 1 TFLOP at 800 (1.25 s) against the 8 s step
    assert first["share_of_peaks"] == pytest.approx(4.25 / 8.0)


def test_the_reported_round_is_the_one_of_the_median_share() -> None:
    probes = [probe(1000, 1000, 800)] * 4
    rounds = paired_rounds(rounds_of(probes, [8.0, 5.0, 10.0]), SHAPES, FLOPS)
    assert median_round(rounds)["step"]["seconds"] == 8.0


def test_a_step_is_projected_with_its_one_off_work_counted_once() -> None:
    """The first block carries the work before the blocks: from 2 blocks it is counted once, not 48 times."""
    three_blocks = {"seconds": 6.5, "block_seconds": [3.0, 2.0, 1.0]}      # 0.5 s after the last block
    # the middle block (read of the next beside it) for 46 blocks, the last (no read beside it) once
    assert projected_seconds(three_blocks, 48) == pytest.approx(3.0 + 46 * 2.0 + 1.0 + 0.5)
    four_blocks = {"seconds": 9.0, "block_seconds": [3.0, 2.0, 2.5, 1.0]}
    assert projected_seconds(four_blocks, 48) == pytest.approx(3.0 + 46 * 2.25 + 1.0 + 0.5)
    two_blocks = {"seconds": 5.5, "block_seconds": [3.0, 2.0]}
    assert projected_seconds(two_blocks, 48) == pytest.approx(3.0 + 47 * 2.0 + 0.5)
    one_block = {"seconds": 3.5, "block_seconds": [3.0]}
    assert projected_seconds(one_block, 48) == pytest.approx(48 * 3.0 + 0.5)


def test_the_projected_step_has_its_own_share_of_the_peak() -> None:
    probes = [probe(1000, 1000, 800)] * 2
    measured = rounds_of(probes, [8.0])
    measured[0]["step"]["block_seconds"] = [5.0, 2.0]                       # 1 s after the blocks
    (pair,) = paired_rounds(measured, SHAPES, FLOPS, release_flops={"total": 96e12})
    assert pair["seconds_48"] == pytest.approx(5.0 + 47 * 2.0 + 1.0)
    assert pair["share_48"] == pytest.approx(96e12 / 100.0 / 1e9 / 1000.0)
    assert "share_48" not in paired_rounds(measured, SHAPES, FLOPS)[0]


@pytest.mark.parametrize("attention_kernel", ATTENTION_KERNELS)      # torch's flash attention, or ours in bf16
def test_a_profiled_step_reports_its_kernels_against_the_probes(attention_kernel: str) -> None:
    """4 TFLOP in an 8 s step whose GEMMs took 4 s (3 TFLOP: 750 GFLOP/s) and attention 2 s (1 TFLOP: 500)."""
    probes = [probe(1000, 1000, 800)] * 2
    (profiled,) = rounds_of(probes, [8.0])
    profiled["kernel_seconds"] = {"mkldnn::_linear_pointwise": 3.0, "aten::addmm": 1.0, attention_kernel: 2.0}
    figures = kernel_figures(profiled, SHAPES, FLOPS)
    assert figures["linear_kernel_seconds"] == 4.0 and figures["attention_kernel_seconds"] == 2.0
    assert figures["kernel_share_of_step"] == pytest.approx(0.75)
    assert figures["linear_kernel_gflops"] == pytest.approx(750.0)
    assert figures["linear_kernel_share_of_peak"] == pytest.approx(0.75)
    assert figures["attention_kernel_gflops"] == pytest.approx(500.0)
    assert figures["share_of_peak"] == pytest.approx(0.5)
    assert figures["share_ceiling"] == pytest.approx(4e12 / 6.0 / 1e9 / 1000, abs=5e-4)     # rounded to 3 places
