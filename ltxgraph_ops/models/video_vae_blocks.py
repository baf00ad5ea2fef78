"""Building blocks of the LTX video VAE: causal 3-D convolutions, pixel norm, residual blocks and the
space<->depth resamplers. Tensors are [B, C, F, H, W]."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PIXEL_NORM_EPS = 1e-8


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    """RMS normalisation over channels at every position: x / sqrt(mean_c(x^2) + eps)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + PIXEL_NORM_EPS)


def space_to_depth(x: torch.Tensor, stride: tuple[int, int, int]) -> torch.Tensor:
    """[B, C, F*s0, H*s1, W*s2] -> [B, C*s0*s1*s2, F, H, W], channels ordered (c, s0, s1, s2)."""
    b, c, f, h, w = x.shape
    s0, s1, s2 = stride
    x = x.reshape(b, c, f // s0, s0, h // s1, s1, w // s2, s2)
    return x.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(b, c * s0 * s1 * s2, f // s0, h // s1, w // s2)


def depth_to_space(x: torch.Tensor, stride: tuple[int, int, int]) -> torch.Tensor:
    """Inverse of :func:`space_to_depth`."""
    b, channels, f, h, w = x.shape
    s0, s1, s2 = stride
    c = channels // (s0 * s1 * s2)
    x = x.reshape(b, c, s0, s1, s2, f, h, w)
    return x.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, c, f * s0, h * s1, w * s2)


class CausalConv3d(nn.Module):
    """3-D convolution whose time padding repeats edge frames: the first frame k-1 times before (causal) or
    the first and last (k-1)/2 times (non-causal); space is padded by ``padding_mode`` ("zeros" or
    "reflect"). Weights live in ``.conv`` as in the checkpoint."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: tuple[int, int, int] = (1, 1, 1),
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride=stride,
                              padding=(0, kernel // 2, kernel // 2), padding_mode=padding_mode)

    def forward(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
        if causal:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.kernel - 1, -1, -1), x], dim=2)
        else:
            edge = (self.kernel - 1) // 2
            x = torch.cat([x[:, :, :1].expand(-1, -1, edge, -1, -1), x,
                           x[:, :, -1:].expand(-1, -1, edge, -1, -1)], dim=2)
        return self.conv(x)


class ResBlock(nn.Module):
    """x + conv2(silu(norm(conv1(silu(norm(x)))))); with a channel change, the skip is a 1x1x1 conv of the
    LayerNorm-ed input (``norm3`` + ``conv_shortcut``)."""

    def __init__(self, in_channels: int, out_channels: int, padding_mode: str) -> None:
        super().__init__()
        self.conv1 = CausalConv3d(in_channels, out_channels, padding_mode=padding_mode)
        self.conv2 = CausalConv3d(out_channels, out_channels, padding_mode=padding_mode)
        if in_channels != out_channels:
            self.norm3 = nn.GroupNorm(1, in_channels, eps=1e-6)
            self.conv_shortcut = nn.Conv3d(in_channels, out_channels, 1)
        else:
            self.norm3 = self.conv_shortcut = None

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        h = self.conv1(F.silu(pixel_norm(x)), causal)
        h = self.conv2(F.silu(pixel_norm(h)), causal)
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(self.norm3(x))
        return x + h


class ResStage(nn.Module):
    """``num_layers`` residual blocks at one width (the config's ``res_x``)."""

    def __init__(self, channels: int, num_layers: int, padding_mode: str) -> None:
        super().__init__()
        self.res_blocks = nn.ModuleList([ResBlock(channels, channels, padding_mode) for _ in range(num_layers)])

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x, causal)
        return x


class StridedConv(nn.Module):
    """A causal convolution with stride 2 on some axes (``compress_time`` / ``_space`` / ``_all``)."""

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int, int], padding_mode: str) -> None:
        super().__init__()
        self.conv = CausalConv3d(in_channels, out_channels, stride=stride, padding_mode=padding_mode)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        return self.conv(x, causal)


class SpaceToDepthDown(nn.Module):
    """Downsampling by ``stride`` into ``out_channels``: space-to-depth of a causal convolution, plus the
    space-to-depth of the input averaged over channel groups (``compress_*_res``). With time stride 2 the
    first frame is duplicated first, so 1 + 2n frames become 1 + n."""

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int, int], padding_mode: str) -> None:
        super().__init__()
        self.stride = stride
        self.group = in_channels * math.prod(stride) // out_channels
        self.conv = CausalConv3d(in_channels, out_channels // math.prod(stride), padding_mode=padding_mode)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        if self.stride[0] == 2:
            x = torch.cat([x[:, :, :1], x], dim=2)
        skip = space_to_depth(x, self.stride)
        b, c, f, h, w = skip.shape
        skip = skip.reshape(b, c // self.group, self.group, f, h, w).mean(dim=2)
        return space_to_depth(self.conv(x, causal), self.stride) + skip


class DepthToSpaceUp(nn.Module):
    """Upsampling by ``stride``: a causal convolution to prod(stride) * C / reduction channels, depth-to-space,
    first frame dropped after a time upsampling (so 1 + n frames become 1 + 2n); ``residual`` adds the
    depth-to-space of the input, channel-repeated."""

    def __init__(self, in_channels: int, stride: tuple[int, int, int], reduction: int, residual: bool,
                 padding_mode: str) -> None:
        super().__init__()
        self.stride, self.reduction, self.residual = stride, reduction, residual
        self.conv = CausalConv3d(in_channels, math.prod(stride) * in_channels // reduction, padding_mode=padding_mode)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        out = depth_to_space(self.conv(x, causal), self.stride)
        if self.residual:
            skip = depth_to_space(x, self.stride).repeat(1, math.prod(self.stride) // self.reduction, 1, 1, 1)
            out = out + skip
        return out[:, :, 1:] if self.stride[0] == 2 else out
