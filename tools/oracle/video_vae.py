"""Parity of the video VAE with ltx-core 1.0.0: its encoder and decoder built by its configurators from the same
header section, our seeded weights loaded into both, float32."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.tiny import video_vae as tiny  # noqa: E402
from ltxgraph_ops.weights.writing import random_state  # noqa: E402

SEED = 77


def pair(config: dict | None = None):
    from ltx_core.model.video_vae.model_configurator import VideoDecoderConfigurator, VideoEncoderConfigurator
    config = config or tiny.tiny_config()
    ours = tiny.build(config).eval()
    state = random_state(ours, "", SEED)
    ours.load_state_dict(state)
    stats = {k: v for k, v in state.items() if k.startswith("per_channel_statistics.")}
    with torch.device("cpu"):
        encoder = VideoEncoderConfigurator.from_config({"vae": config})
        decoder = VideoDecoderConfigurator.from_config({"vae": config})
    encoder = encoder.to_empty(device="cpu").float().eval()
    decoder = decoder.to_empty(device="cpu").float().eval()
    encoder.load_state_dict({**{k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")},
                             **stats})
    decoder.load_state_dict({**{k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")},
                             **stats})
    return ours, encoder, decoder


@torch.no_grad()
def check_encode() -> float:
    ours, encoder, _ = pair()
    pixels = torch.rand(2, 3, 17, 64, 96, generator=torch.Generator().manual_seed(SEED)) * 2 - 1
    return float((ours.encode(pixels) - encoder(pixels)).abs().max())


@torch.no_grad()
def check_decode() -> float:
    ours, _, decoder = pair()
    latent = torch.randn(2, 128, 3, 2, 3, generator=torch.Generator().manual_seed(SEED + 1))
    return float((ours.decode(latent) - decoder(latent)).abs().max())


CHECKS: dict[str, Callable[[], float]] = {"video_vae_encode": check_encode, "video_vae_decode": check_decode}
