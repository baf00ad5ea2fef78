"""Tiny and full-size configs of the LTX-2 HiFi-GAN vocoder (checkpoint prefix ``vocoder.``).

The dicts use the header's flat ``vocoder`` section format (ltx-core's VocoderConfigurator for pre-2.3
checkpoints: ``resblock`` "1", ``stereo`` true). Keys reconstructed from the facts and the manifest's shapes;
``output_sampling_rate`` is absent, so 24 kHz comes from the reference's default (ours is the same).
"""
from __future__ import annotations

import torch

from ltxgraph_ops.models.vocoder import Vocoder, VocoderConfig

COMPONENT = "vocoder"
PREFIX = "vocoder."
SECTION = "vocoder"
MANIFEST_COMPONENT = "vocoder"


def full_config() -> dict:
    """The 19B release's ``vocoder`` header section (reconstructed)."""
    return {
        "resblock": "1",
        "stereo": True,
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "upsample_rates": [6, 5, 2, 2, 2],
        "upsample_kernel_sizes": [16, 15, 8, 4, 4],
        "upsample_initial_channel": 1024,
    }


def tiny_config() -> dict:
    """Same keys; 32 channels, two stages x3, x2 (x6 samples per mel frame), two resblocks per stage.

    The input stays 2 x 64 mel channels: the reference's conv_pre is fixed at 128 inputs."""
    return {
        **full_config(),
        "resblock_kernel_sizes": [3, 5],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 2, 3]],
        "upsample_rates": [8, 6, 5],
        "upsample_kernel_sizes": [16, 12, 11],
        "upsample_initial_channel": 32,
    }


def build(config: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return Vocoder(VocoderConfig.from_header(config))
