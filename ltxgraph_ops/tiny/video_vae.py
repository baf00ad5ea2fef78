"""Tiny and full-size configs of the LTX-2 video VAE (checkpoint prefix ``vae.``, header section ``vae``), per release.

``full_config(version)`` is the release's section as ltx-core's configurators read it: for 2.0 the LTX-2 block
layout (decoder without timestep conditioning, no ``spatial_padding_mode`` key so the encoder pads with zeros and the
decoder reflects); for 2.3 the 22B layout (decoder ``compress_all`` x2, ``compress_all`` x1, ``compress_time`` x2,
``compress_space`` x2 without residuals, encoder ending at 1024 channels, zero padding). Each reproduces every key
and shape of its manifest. ``tiny_config(version)`` keeps the block types, names and the 128 latent channels with
one layer per stage and narrow widths, so a tiny file has the release's exact key layout.
"""
from __future__ import annotations

import copy

import torch

from ltxgraph_ops.models.video_vae import VideoVAE, VideoVAEConfig

COMPONENT = "video_vae"
PREFIX = "vae."
SECTION = "vae"
MANIFEST_COMPONENT = "video_vae"
VERSIONS = ("2.0", "2.3")

_COMMON = {
    "_class_name": "CausalVideoAutoencoder",
    "dims": 3, "in_channels": 3, "out_channels": 3, "latent_channels": 128, "patch_size": 4,
    "norm_layer": "pixel_norm", "latent_log_var": "uniform", "use_quant_conv": False,
    "causal_decoder": False, "timestep_conditioning": False, "scaling_factor": 1.0,
}


def _stages(layers: list[int], resamplers: list[tuple[str, dict]]) -> list[list]:
    """Residual stages of ``layers`` blocks interleaved with the resamplers: res, resample, res, ..., res."""
    blocks: list[list] = []
    for index, num_layers in enumerate(layers):
        blocks.append(["res_x", {"num_layers": num_layers}])
        if index < len(resamplers):
            blocks.append([resamplers[index][0], dict(resamplers[index][1])])
    return blocks


def _full_config_20() -> dict:
    decoder_stage = {"num_layers": 5, "inject_noise": False}
    upsample = ["compress_all", {"residual": True, "multiplier": 2}]
    return {
        **_COMMON,
        "encoder_blocks": _stages([4, 6, 6, 2, 2], [("compress_space_res", {"multiplier": 2}),
                                                    ("compress_time_res", {"multiplier": 2}),
                                                    ("compress_all_res", {"multiplier": 2}),
                                                    ("compress_all_res", {"multiplier": 2})]),
        "decoder_blocks": [["res_x", dict(decoder_stage)], copy.deepcopy(upsample),
                           ["res_x", dict(decoder_stage)], copy.deepcopy(upsample),
                           ["res_x", dict(decoder_stage)], copy.deepcopy(upsample),
                           ["res_x", dict(decoder_stage)]],
    }


def _full_config_23() -> dict:
    return {
        **_COMMON,
        "encoder_blocks": _stages([4, 6, 4, 2, 2], [("compress_space_res", {"multiplier": 2}),
                                                    ("compress_time_res", {"multiplier": 2}),
                                                    ("compress_all_res", {"multiplier": 2}),
                                                    ("compress_all_res", {"multiplier": 1})]),
        "decoder_blocks": _stages([4, 6, 4, 2, 2], [("compress_space", {"multiplier": 2}),
                                                    ("compress_time", {"multiplier": 2}),
                                                    ("compress_all", {"multiplier": 1}),
                                                    ("compress_all", {"multiplier": 2})]),
        "normalize_latent_channels": False,
        "encoder_base_channels": 128,
        "decoder_base_channels": 128,
        "spatial_padding_mode": "zeros",
    }


_FULL = {"2.0": _full_config_20, "2.3": _full_config_23}


def full_config(version: str = "2.0") -> dict:
    """The release's ``vae`` header section of LTX-``version`` (one of :data:`VERSIONS`)."""
    if version not in _FULL:
        raise ValueError(f"no video VAE config for LTX-{version}: known versions {', '.join(VERSIONS)}")
    return _FULL[version]()


def tiny_config(version: str = "2.0") -> dict:
    """The release layout with one layer per stage, an encoder that keeps 128 channels and a 16-channel decoder
    base (128 channels at its bottleneck)."""
    config = full_config(version)
    config["encoder_blocks"] = [[name, {**settings, "num_layers": 1} if name == "res_x" else {"multiplier": 1}]
                                for name, settings in config["encoder_blocks"]]
    config["decoder_blocks"] = [[name, {**settings, "num_layers": 1} if name == "res_x" else settings]
                                for name, settings in config["decoder_blocks"]]
    config["decoder_base_channels"] = 16
    return config


def build(config: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return VideoVAE(VideoVAEConfig.from_header(config))
