"""Parity of the video VAE with ltx-core 1.0.0: its encoder and decoder built by its configurators from the same
header section, our seeded weights loaded into both, float32.

The 2.3 checks use ltx-core 1.0.0 too: its encoder, residual blocks and resamplers are those of ltx-core 1.2.0
(the 2.3 reference, not installable); 1.2.0 only derives the decoder's first width from the blocks' channel
reductions where 1.0.0 fixes it at 8 x base, and 2.3's reductions (2, 1, 2, 2) multiply to 8 as well."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.tiny import video_vae as tiny  # noqa: E402
from ltxgraph_ops.weights.writing import random_state  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402

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


def small_config(version: str) -> dict:
    """The release ``vae`` section of ``version`` at 16 latent channels, an 8-channel decoder base and two
    layers per residual stage: every resampler and channel change of the release, small."""
    config = tiny.RELEASE_CONFIGS[version]()
    for key in ("encoder_blocks", "decoder_blocks"):
        config[key] = [[name, {**settings, "num_layers": 2} if name == "res_x" else settings]
                       for name, settings in config[key]]
    config["latent_channels"] = 16
    config["decoder_base_channels"] = 8
    return config


@torch.no_grad()
def check_encode(config: dict | None = None) -> float:
    ours, encoder, _ = pair(config)
    pixels = torch.rand(2, 3, 17, 64, 96, generator=torch.Generator().manual_seed(SEED)) * 2 - 1
    return compared("encode", ours.encode(pixels), encoder(pixels))


@torch.no_grad()
def check_decode(config: dict | None = None) -> float:
    ours, _, decoder = pair(config)
    latent = torch.randn(2, ours.latent_channels, 3, 2, 3, generator=torch.Generator().manual_seed(SEED + 1))
    return compared("decode", ours.decode(latent), decoder(latent))


CHECKS: dict[str, Callable[[], float]] = {
    "video_vae_encode": check_encode, "video_vae_decode": check_decode,
    "video_vae_encode_release_blocks": lambda: check_encode(small_config("2.0")),
    "video_vae_decode_release_blocks": lambda: check_decode(small_config("2.0")),
    "ltx23_video_vae_encode_ltx_core": lambda: check_encode(small_config("2.3")),
    "ltx23_video_vae_decode_ltx_core": lambda: check_decode(small_config("2.3")),
}
