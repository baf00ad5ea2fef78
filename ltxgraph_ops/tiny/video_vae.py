"""Tiny configs of the LTX-2 video VAE (checkpoint prefix ``vae.``, header section ``vae``), per release, and the
release sections they shrink, from :mod:`ltxgraph_ops.releases` under the names the tiny modules share:
``full_config`` the 19B release's, ``full_config_23`` the 22B release's. Each reproduces every key and shape of
its manifest. The tiny configs keep the block types, names and the 128 latent channels with one layer per stage
and narrow widths, so a tiny file has the release's exact key layout. ``RELEASE_CONFIGS`` / ``TINY_CONFIGS`` map a
model version to them (2.5's VAE is :mod:`ltxgraph_ops.tiny.diffusion_decoder`).
"""
from __future__ import annotations

import torch

from ltxgraph_ops import releases
from ltxgraph_ops.models.video_vae import VideoVAE, VideoVAEConfig

COMPONENT = "video_vae"
PREFIX = "vae."
SECTION = "vae"
MANIFEST_COMPONENT = "video_vae"

full_config = releases.video_vae_section_20
full_config_23 = releases.video_vae_section_23


def _tiny(release: dict) -> dict:
    """A release layout with one layer per stage, an encoder that keeps 128 channels and a 16-channel decoder
    base (128 channels at its bottleneck)."""
    release["encoder_blocks"] = [[name, {**settings, "num_layers": 1} if name == "res_x" else {"multiplier": 1}]
                                 for name, settings in release["encoder_blocks"]]
    release["decoder_blocks"] = [[name, {**settings, "num_layers": 1} if name == "res_x" else settings]
                                 for name, settings in release["decoder_blocks"]]
    release["decoder_base_channels"] = 16
    return release


def tiny_config() -> dict:
    return _tiny(full_config())


def tiny_config_23() -> dict:
    return _tiny(full_config_23())


RELEASE_CONFIGS = {"2.0": full_config, "2.3": full_config_23}   # full-size header section per release
TINY_CONFIGS = {"2.0": tiny_config, "2.3": tiny_config_23}


def build(config: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return VideoVAE(VideoVAEConfig.from_header(config))
