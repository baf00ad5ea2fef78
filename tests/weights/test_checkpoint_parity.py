"""Parity with ltx-core's own single-file loader and LoRA fusion (tools/oracle/checkpoint.py)."""
from __future__ import annotations

import pytest

from tools.oracle.checkpoint import CHECKS

BOUND = 1e-5


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_loaded_checkpoint_matches_reference(name: str) -> None:
    error = CHECKS[name]()
    assert error <= BOUND, f"{name}: max abs error {error:.3g} > {BOUND}"
