"""Tiny and full-size configs of the LTX-2 audio VAE (checkpoint prefix ``audio_vae.``).

The dicts use the header's ``audio_vae`` section format, as ltx-core's Audio{En,De}coderConfigurator read it:
``model.params.ddconfig`` (architecture), ``model.params.sampling_rate``, ``preprocessing.stft`` /
``preprocessing.mel``. ``full_config`` follows a published dump of a release header's ``audio_vae`` section (the
same section ships with later releases) and agrees with the manifest's shapes (no attention weights).
"""
from __future__ import annotations

import copy

import torch

from ltxgraph_ops.models.audio_vae import AudioVAE, AudioVAEConfig

COMPONENT = "audio_vae"
PREFIX = "audio_vae."
SECTION = "audio_vae"
MANIFEST_COMPONENT = "audio_vae"


def full_config() -> dict:
    """The 19B release's ``audio_vae`` header section (reconstructed)."""
    return {
        "model": {"params": {
            "ddconfig": {
                "double_z": True, "mel_bins": 64, "z_channels": 8, "resolution": 256, "downsample_time": False,
                "in_channels": 2, "out_ch": 2, "ch": 128, "ch_mult": [1, 2, 4], "num_res_blocks": 2,
                "attn_resolutions": [], "dropout": 0.0, "mid_block_add_attention": False, "norm_type": "pixel",
                "causality_axis": "height",
            },
            "sampling_rate": 16000,
        }},
        "preprocessing": {
            "audio": {"sampling_rate": 16000, "max_wav_value": 32768.0, "duration": 5.12, "stereo": True,
                      "causal_padding": 3},
            "stft": {"filter_length": 1024, "hop_length": 160, "win_length": 1024, "causal": True},
            "mel": {"n_mel_channels": 64, "mel_fmin": 0, "mel_fmax": 8000},
        },
    }


def tiny_config() -> dict:
    """Same keys, one resnet block per level and constant width; the latent keeps the release's 8 channels x 16
    mel bins (the transformer's audio tokens are 128 wide), so the statistics buffers (``ch`` entries, which
    must equal z_channels * mel_bins / 4) keep ch = 128."""
    config = copy.deepcopy(full_config())
    config["model"]["params"]["ddconfig"].update({"ch": 128, "ch_mult": [1, 1, 1], "num_res_blocks": 1,
                                                  "z_channels": 8})
    return config


def full_config_23() -> dict:
    """The LTX-2.3 release's ``audio_vae`` section: the 2.0 architecture unchanged (102 tensors, as in the 22B
    manifest)."""
    return full_config()


def tiny_config_23() -> dict:
    return tiny_config()


def full_config_25() -> dict:
    """The LTX-2.5 release's ``audio_vae`` section: 2.3's (ltx-core 1.2.0's audio VAE configurators read no field
    that 2.5 adds; its split ``ltx-2.5-audio-vae`` file carries the same section)."""
    return full_config_23()


def tiny_config_25() -> dict:
    return tiny_config_23()


RELEASE_CONFIGS = {"2.0": full_config, "2.3": full_config_23, "2.5": full_config_25}
TINY_CONFIGS = {"2.0": tiny_config, "2.3": tiny_config_23, "2.5": tiny_config_25}


def build(config: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return AudioVAE(AudioVAEConfig.from_header(config))
