"""Tiny and full-size configs of the LTX-2 video VAE (checkpoint prefix ``vae.``, header section ``vae``), per release.

``full_config`` is the 19B release's section as ltx-core's configurators read it (the LTX-2 block layout; decoder
without timestep conditioning, no ``spatial_padding_mode`` key so the encoder pads with zeros and the decoder
reflects); ``full_config_23`` the 22B release's (decoder ``compress_all`` x2, ``compress_all`` x1, ``compress_time``
x2, ``compress_space`` x2 without residuals, encoder ending at 1024 channels, zero padding). Each reproduces every
key and shape of its manifest. The tiny configs keep the block types, names and the 128 latent channels with one
layer per stage and narrow widths, so a tiny file has the release's exact key layout. ``RELEASE_CONFIGS`` /
``TINY_CONFIGS`` map a model version to them.
"""
from __future__ import annotations

import copy

import torch

from ltxgraph_ops.models.video_vae import VideoVAE, VideoVAEConfig

COMPONENT = "video_vae"
PREFIX = "vae."
SECTION = "vae"
MANIFEST_COMPONENT = "video_vae"

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


def full_config() -> dict:
    """The 19B release's ``vae`` header section."""
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


def full_config_23() -> dict:
    """The 22B (LTX-2.3) release's ``vae`` header section."""
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
