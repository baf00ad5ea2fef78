"""Building blocks of the LTX-2 audio VAE: 2-D convolutions over [B, C, T, M] (time, mel bins), causal in time.

The causal axis is the header's ``causality_axis``: "height" (time, the release), "width" or "none".
A causal convolution pads (k - 1) * dilation frames before the first frame and none after, so output frame t
sees input frames <= t; the other axis is padded symmetrically.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pixel_norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x / RMS over channels, per position: [B, C, T, M] -> same."""
    return x / torch.sqrt(torch.mean(x * x, dim=1, keepdim=True) + eps)


def causal_padding(kernel: int, dilation: int, axis: str | None) -> tuple[int, int, int, int]:
    """F.pad tuple (mel left, mel right, time before, time after) for a k x k kernel."""
    total = (kernel - 1) * dilation
    before, after = total // 2, total - total // 2
    if axis == "height":
        return (before, after, total, 0)
    if axis in ("width", "width-compatibility"):
        return (total, 0, before, after)
    return (before, after, before, after)


class CausalConv2d(nn.Module):
    """k x k convolution (stride 1) with causal padding; the weight lives in ``.conv``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, causality_axis: str | None):
        super().__init__()
        self.padding = causal_padding(kernel, 1, causality_axis)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


class ResnetBlock(nn.Module):
    """x + conv(silu(norm(conv(silu(norm(x)))))), with a 1x1 projection of x when the width changes."""

    def __init__(self, in_channels: int, out_channels: int, causality_axis: str | None):
        super().__init__()
        self.conv1 = CausalConv2d(in_channels, out_channels, 3, causality_axis)
        self.conv2 = CausalConv2d(out_channels, out_channels, 3, causality_axis)
        if in_channels != out_channels:
            self.nin_shortcut = CausalConv2d(in_channels, out_channels, 1, causality_axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(pixel_norm(x)))
        h = self.conv2(F.silu(pixel_norm(h)))
        skip = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return skip + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all T x M positions, 1x1-conv projections, residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, m = x.shape
        h = pixel_norm(x)
        q, k, v = (proj(h).flatten(2).transpose(1, 2) for proj in (self.q, self.k, self.v))   # [B, T*M, C]
        weights = torch.softmax(q @ k.transpose(1, 2) * c ** -0.5, dim=-1)                     # [B, TM, TM]
        out = (weights @ v).transpose(1, 2).reshape(b, c, t, m)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Stride-2 3x3 convolution halving time and mel bins; causal: 2 frames of zeros before, 1 mel bin after."""

    def __init__(self, channels: int, causality_axis: str | None):
        super().__init__()
        # (mel left, mel right, time before, time after): the stride-2 window needs one extra cell per axis
        if causality_axis == "height":
            self.padding = (0, 1, 2, 0)
        elif causality_axis == "width":
            self.padding = (2, 0, 0, 1)
        elif causality_axis == "width-compatibility":
            self.padding = (1, 0, 0, 1)
        else:
            self.padding = (0, 1, 0, 1)
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


class Upsample(nn.Module):
    """Nearest x2 in time and mel, causal 3x3 conv; the first causal step is dropped (T -> 2T - 1)."""

    def __init__(self, channels: int, causality_axis: str | None):
        super().__init__()
        self.causality_axis = causality_axis
        self.conv = CausalConv2d(channels, channels, 3, causality_axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        if self.causality_axis == "height":
            return x[:, :, 1:]
        if self.causality_axis == "width":
            return x[:, :, :, 1:]
        return x


class MidBlock(nn.Module):
    """Two resnet blocks at the bottleneck, optionally with attention between them."""

    def __init__(self, channels: int, causality_axis: str | None, attention: bool):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, causality_axis)
        self.attn_1 = AttnBlock(channels) if attention else nn.Identity()
        self.block_2 = ResnetBlock(channels, channels, causality_axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))
