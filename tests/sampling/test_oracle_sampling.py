"""Parity of the sampling math with ltx-core / ltx-pipelines 1.0.0 (tools/oracle/sampling.py)."""
from __future__ import annotations

import pytest

from tools.oracle import sampling as oracle

BOUNDS = {
    "sampling.ltxv_schedule": 0.0,
    "sampling.basic_schedules": 0.0,
    "sampling.euler_step": 1e-6,
    "sampling.noiser_masked": 1e-6,
    "sampling.multimodal_guider": 1e-6,
    "sampling.multimodal_guider_batch2": 1e-6,
    "sampling.res2s_step": 1e-6,
    "sampling.euler_loop_masked_av": 1e-6,
    "sampling.res2s_loop_masked_video": 1e-6,
}


def test_every_check_has_a_bound():
    assert set(oracle.CHECKS) == set(BOUNDS)


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_parity_with_reference(name):
    assert oracle.CHECKS[name]() <= BOUNDS[name]


@pytest.mark.oracle
def test_full_distilled_av_loop_with_the_tiny_transformer_matches_reference():
    from tools.oracle import sampling_loop
    error = sampling_loop.CHECKS["sampling.distilled_8_step_av_loop"]()
    assert error <= 1e-4, error
