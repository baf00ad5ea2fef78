"""Tiny configs of the LTX-2 audio VAE (checkpoint prefix ``audio_vae.``) and the release section they shrink
(:func:`ltxgraph_ops.releases.audio_vae_section`, the same for every release) under the names the tiny modules
share: ``full_config`` / ``full_config_23`` / ``full_config_25``.
"""
from __future__ import annotations

import torch

from ltxgraph_ops import releases
from ltxgraph_ops.models.audio_vae import AudioVAE, AudioVAEConfig

COMPONENT = "audio_vae"
PREFIX = "audio_vae."
SECTION = "audio_vae"
MANIFEST_COMPONENT = "audio_vae"

full_config = releases.AUDIO_VAE_SECTIONS["2.0"]
full_config_23 = releases.AUDIO_VAE_SECTIONS["2.3"]
full_config_25 = releases.AUDIO_VAE_SECTIONS["2.5"]


def tiny_config() -> dict:
    """Same keys, one resnet block per level and constant width; the latent keeps the release's 8 channels x 16
    mel bins (the transformer's audio tokens are 128 wide), so the statistics buffers (``ch`` entries, which
    must equal z_channels * mel_bins / 4) keep ch = 128."""
    config = full_config()
    config["model"]["params"]["ddconfig"].update({"ch": 128, "ch_mult": [1, 1, 1], "num_res_blocks": 1,
                                                  "z_channels": 8})
    return config


def tiny_config_23() -> dict:
    return tiny_config()


def tiny_config_25() -> dict:
    return tiny_config_23()


RELEASE_CONFIGS = releases.AUDIO_VAE_SECTIONS
TINY_CONFIGS = {"2.0": tiny_config, "2.3": tiny_config_23, "2.5": tiny_config_25}


def build(config: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return AudioVAE(AudioVAEConfig.from_header(config))
