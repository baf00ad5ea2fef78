"""Parity of the latent upscaler with ltx-core 1.0.0 (its LatentUpsampler from the same config, our seeded
weights), including the un-normalise / re-normalise wrapper against its ``upsample_video``."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.models.upscaler import upscale_normalised  # noqa: E402
from ltxgraph_ops.tiny import upscaler as tiny  # noqa: E402
from ltxgraph_ops.weights.writing import random_state  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402


@torch.no_grad()
def check_upscaler() -> float:
    from ltx_core.model.upsampler import LatentUpsamplerConfigurator
    from ltx_core.model.upsampler.model import upsample_video
    from ltx_core.model.video_vae.ops import PerChannelStatistics
    config = tiny.tiny_config()
    ours = tiny.build(config).eval()
    state = random_state(ours, "", 5)
    ours.load_state_dict(state)
    with torch.device("cpu"):
        reference = LatentUpsamplerConfigurator.from_config(config).to_empty(device="cpu").float().eval()
    reference.load_state_dict(state)
    g = torch.Generator().manual_seed(6)
    latent = torch.randn(2, 128, 3, 4, 5, generator=g)
    mean, std = 0.1 * torch.randn(128, generator=g), 1 + 0.1 * torch.rand(128, generator=g)

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.per_channel_statistics = PerChannelStatistics(128)
            self.per_channel_statistics.load_state_dict({"mean-of-means": mean, "std-of-means": std})

    plain = compared("upscaler", ours(latent), reference(latent))
    wrapped = compared("upscaler wrapped", upscale_normalised(ours, latent, mean, std),
                       upsample_video(latent, Encoder(), reference))
    return max(plain, wrapped)


CHECKS: dict[str, Callable[[], float]] = {"upscaler": check_upscaler}
