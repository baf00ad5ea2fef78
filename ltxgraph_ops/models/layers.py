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

# A stored (fp8/bf16) weight larger than this many elements is upcast and multiplied a slice of output rows at a
# time, so a huge layer (the text projection's 3840 x 188160) never needs its whole float32 copy at once.
DEQUANT_CHUNK_ELEMENTS = 1 << 25


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
        bias = None if self.bias is None else self.bias.to(dtype=x.dtype, device=x.device)
        if self.weight.dtype == x.dtype or self.weight.numel() <= DEQUANT_CHUNK_ELEMENTS:
            y = F.linear(x, self.dequantized_weight(x.dtype, x.device), bias)
        else:
            y = self._chunked(x, bias)
        for delta in self.deltas:
            y = y + delta.apply(x)
        return y

    def _chunked(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``F.linear`` with the weight upcast one slice of output rows at a time."""
        rows = max(1, DEQUANT_CHUNK_ELEMENTS // self.in_features)
        y = x.new_empty(*x.shape[:-1], self.out_features)
        scale = None if self.weight_scale is None else self.weight_scale.to(dtype=x.dtype, device=x.device)
        for start in range(0, self.out_features, rows):
            stop = min(start + rows, self.out_features)
            weight = self.weight[start:stop].to(dtype=x.dtype, device=x.device)
            if scale is not None:
                weight = weight * (scale if scale.ndim == 0 else scale[start:stop].reshape(-1, 1))
            y[..., start:stop] = F.linear(x, weight, None if bias is None else bias[start:stop])
        return y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, storage={self.weight.dtype}, loras={len(self.deltas)}")
