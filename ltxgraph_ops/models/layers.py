"""Building blocks shared by every model: a Linear layer whose weight may stay in a storage dtype (fp8, bf16)
and is upcast to the compute dtype per call, with low-rank (LoRA) deltas applied at compute time.

Keeping the stored weight untouched is what lets a fp8 checkpoint cost its file size in memory, and lets LoRAs
be stacked, re-weighted or removed without re-quantising anything.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LowRankDelta:
    """A LoRA delta ``W += scale * up @ down``: down [rank, in_features], up [out_features, rank]."""

    down: torch.Tensor
    up: torch.Tensor
    scale: float

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Delta of the layer output for input ``x`` [..., in_features] -> [..., out_features]."""
        down = self.down.to(dtype=x.dtype, device=x.device)
        up = self.up.to(dtype=x.dtype, device=x.device)
        return F.linear(F.linear(x, down), up) * self.scale


class Linear(nn.Module):
    """``y = x W^T + b`` with W kept in its storage dtype and dequantised per call.

    State-dict keys are ``weight`` and ``bias`` exactly as in the checkpoint. ``weight_scale`` (a scalar or
    per-row tensor, set by the checkpoint loader for scaled fp8 files) multiplies the upcast weight.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype),
                                   requires_grad=False)
        self.bias = (nn.Parameter(torch.empty(out_features, device=device, dtype=dtype), requires_grad=False)
                     if bias else None)
        self.weight_scale: torch.Tensor | None = None
        self.deltas: list[LowRankDelta] = []

    def dequantized_weight(self, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
        """The weight in ``dtype`` with its fp8 scale applied: [out_features, in_features]."""
        weight = self.weight.to(dtype=dtype, device=device)
        if self.weight_scale is not None:
            scale = self.weight_scale.to(dtype=dtype, device=weight.device)
            weight = weight * (scale if scale.ndim == 0 else scale.reshape(-1, 1))
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.dequantized_weight(x.dtype, x.device)
        bias = None if self.bias is None else self.bias.to(dtype=x.dtype, device=x.device)
        y = F.linear(x, weight, bias)
        for delta in self.deltas:
            y = y + delta.apply(x)
        return y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, storage={self.weight.dtype}, loras={len(self.deltas)}")
