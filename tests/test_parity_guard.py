"""The shared parity comparison refuses outputs that cannot tell a right model from a wrong one."""
from __future__ import annotations

import pytest
import torch

from tools.oracle.guard import DegenerateOutput, compared


def test_compared_returns_the_max_abs_difference() -> None:
    ours = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert compared("x", ours, ours + torch.tensor([[0.0, 0.5], [0.0, -0.25]])) == 0.5


@pytest.mark.parametrize("bad", [torch.full((2, 3), 0.3), torch.tensor([1.0, float("nan")]), torch.zeros(0),
                                 torch.tensor([1.0, float("inf")])])
def test_constant_non_finite_or_empty_outputs_are_refused(bad: torch.Tensor) -> None:
    with pytest.raises(DegenerateOutput, match="decode"):
        compared("decode", bad, bad.clone())


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(DegenerateOutput, match="shapes differ"):
        compared("encode", torch.randn(2, 3), torch.randn(3, 2))
