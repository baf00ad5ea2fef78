"""Timestep conditioning: sinusoidal features of ``sigma * multiplier``, an MLP embedding, and adaLN-single
modulation (PixArt-alpha, arXiv:2310.00426 section 2.3) that turns one embedding into K vectors of width D.

Per-token timesteps usually take only a handful of distinct values (1 on generated tokens, 0 on kept ones),
so modulation is computed once per distinct timestep and looked up per token (:class:`Modulation`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.layers import Linear

SINUSOID_CHANNELS = 256


def sinusoidal_features(timesteps: torch.Tensor, channels: int = SINUSOID_CHANNELS,
                        max_period: float = 10000.0) -> torch.Tensor:
    """``[N]`` timesteps -> ``[N, channels]`` features: cosines first, then sines; frequencies
    ``max_period ** (-i / (channels / 2))``."""
    half = channels // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    angles = timesteps.float()[:, None] * torch.exp(exponent)[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TimestepMLP(nn.Module):
    """Linear(256 -> D), SiLU, Linear(D -> D)."""

    def __init__(self, dim: int, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.linear_1 = Linear(SINUSOID_CHANNELS, dim, device=device)
        self.linear_2 = Linear(dim, dim, device=device)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(features)))


class TimestepEmbedding(nn.Module):
    """Sinusoidal features followed by the MLP (checkpoint name ``emb.timestep_embedder``)."""

    def __init__(self, dim: int, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.timestep_embedder = TimestepMLP(dim, device=device)

    def forward(self, timesteps: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``[N]`` scaled timesteps -> ``[N, D]``."""
        return self.timestep_embedder(sinusoidal_features(timesteps).to(dtype))


@dataclass(frozen=True)
class Modulation:
    """Per-token modulation stored once per distinct timestep.

    ``values``: ``[U, K, D]`` (K modulation vectors per distinct timestep); ``embedding``: ``[U, D]`` (the
    timestep embedding before the modulation head); ``index``: ``[B, T]`` which distinct row each token uses,
    or ``[B, 1]`` when every token of a sample shares one (then rows are ``[B, 1, D]`` and broadcast over
    tokens instead of being gathered per token).
    """

    values: torch.Tensor
    embedding: torch.Tensor
    index: torch.Tensor

    def rows(self, table: torch.Tensor, start: int, stop: int) -> list[torch.Tensor]:
        """``table[start:stop] + values[:, start:stop]`` per token: a list of ``[B, T or 1, D]`` tensors.

        ``table`` is a learned ``[K', D]`` table whose rows ``start:stop`` pair with modulation rows
        ``start:stop``.
        """
        per_value = table[start:stop].to(self.values.dtype)[None] + self.values[:, start:stop]  # [U, k, D]
        return list(per_value[self.index].unbind(dim=2))

    def embedded(self) -> torch.Tensor:
        """The timestep embedding per token: ``[B, T or 1, D]``."""
        return self.embedding[self.index]


class AdaLNSingle(nn.Module):
    """Timestep embedding + SiLU + Linear(D -> K*D): K modulation vectors per timestep."""

    def __init__(self, dim: int, count: int, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.count = count
        self.emb = TimestepEmbedding(dim, device=device)
        self.linear = Linear(dim, count * dim, device=device)

    def forward(self, timesteps: torch.Tensor, dtype: torch.dtype) -> Modulation:
        """``[B, T]`` scaled timesteps (T may be 1) -> :class:`Modulation`."""
        distinct, index = torch.unique(timesteps, return_inverse=True)
        if bool((index == index[:, :1]).all()):
            index = index[:, :1]                                                # [B, 1]: one row per sample
        embedding = self.emb(distinct, dtype)                                   # [U, D]
        values = self.linear(F.silu(embedding)).unflatten(-1, (self.count, -1))  # [U, K, D]
        return Modulation(values=values, embedding=embedding, index=index)
