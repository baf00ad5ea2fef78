"""Tiny and full-size configs of the LTX-2 video VAE (checkpoint prefix ``vae.``, header section ``vae``).

``full_config`` is the release's section as ltx-core's configurators read it (the LTX-2 block layout; decoder
without timestep conditioning, no ``spatial_padding_mode`` key so the encoder pads with zeros and the decoder
reflects); it reproduces every key and shape of the manifest. ``tiny_config`` keeps the block types and the 128
latent channels with one layer per stage and narrow widths.
"""
from __future__ import annotations

import copy

import torch

from ltxgraph_ops.models.video_vae import VideoVAE, VideoVAEConfig

COMPONENT = "video_vae"
PREFIX = "vae."
SECTION = "vae"
MANIFEST_COMPONENT = "video_vae"


def full_config() -> dict:
    return {
        "_class_name": "CausalVideoAutoencoder",
        "dims": 3, "in_channels": 3, "out_channels": 3, "latent_channels": 128, "patch_size": 4,
        "norm_layer": "pixel_norm", "latent_log_var": "uniform", "use_quant_conv": False,
        "causal_decoder": False, "timestep_conditioning": False, "scaling_factor": 1.0,
        "encoder_blocks": [
            ["res_x", {"num_layers": 4}], ["compress_space_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 6}], ["compress_time_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 6}], ["compress_all_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 2}], ["compress_all_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 2}],
        ],
        "decoder_blocks": [
            ["res_x", {"num_layers": 5, "inject_noise": False}], ["compress_all", {"residual": True, "multiplier": 2}],
            ["res_x", {"num_layers": 5, "inject_noise": False}], ["compress_all", {"residual": True, "multiplier": 2}],
            ["res_x", {"num_layers": 5, "inject_noise": False}], ["compress_all", {"residual": True, "multiplier": 2}],
            ["res_x", {"num_layers": 5, "inject_noise": False}],
        ],
    }


def tiny_config() -> dict:
    config = copy.deepcopy(full_config())
    config["encoder_blocks"] = [[name, {**settings, "num_layers": 1} if name == "res_x" else {"multiplier": 1}]
                                for name, settings in config["encoder_blocks"]]
    config["decoder_blocks"] = [[name, {**settings, "num_layers": 1} if name == "res_x" else settings]
                                for name, settings in config["decoder_blocks"]]
    config["decoder_base_channels"] = 16
    return config


def build(config: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return VideoVAE(VideoVAEConfig.from_header(config))
