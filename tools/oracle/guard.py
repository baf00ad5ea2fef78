"""The one comparison every parity check ends with: both outputs finite, not constant and of one shape, then the
max absolute difference. A check whose outputs are NaN, zero or constant on both sides would otherwise pass."""
from __future__ import annotations

import torch


class DegenerateOutput(AssertionError):
    """A parity check's output cannot tell a right model from a wrong one."""


def compared(name: str, ours: torch.Tensor, reference: torch.Tensor) -> float:
    """Max abs difference of ``ours`` and ``reference`` (in float64), after checking each is finite and not
    constant and that their shapes agree; raises DegenerateOutput naming ``name`` otherwise."""
    if ours.shape != reference.shape:
        raise DegenerateOutput(f"{name}: shapes differ, ours {tuple(ours.shape)} vs {tuple(reference.shape)}")
    for label, value in (("ours", ours), ("reference", reference)):
        if value.numel() < 2 or not bool(torch.isfinite(value).all()) or float(value.double().std()) == 0.0:
            raise DegenerateOutput(f"{name}: {label} output is empty, not finite or constant")
    return float((ours.double() - reference.double()).abs().max())
