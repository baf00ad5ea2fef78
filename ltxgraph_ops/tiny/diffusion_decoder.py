"""Tiny and full-size header sections of the LTX-2.5 video VAE (``_class_name: CausalDiffusionVAE``: the
LTX-2.3 convolutional encoder under ``encoder``, the diffusion decoder under ``decoder``), and a writer of a
standalone VAE file in the real key layout (``vae.encoder.``, ``vae.decoder.`` with the fused ``attn.qkv`` and
``t_embedder.mlp.{0,2}`` names, ``vae.per_channel_statistics.``).

The tiny section keeps every path of the release (five stages, the four upsample kinds with their channel
reductions, 128 latent channels, patch 4, so 8 x 32 x 32 compression) with one block per stage, 8-wide heads
and small kernels, so a 2 x 3 x 3 latent decodes in well under a second.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ltxgraph_ops.models.diffusion_decoder import DIFFUSION_VAE_CLASS, DiffusionVideoVAE
from ltxgraph_ops.tiny import video_vae as conv_vae
from ltxgraph_ops.weights.writing import header_metadata, random_state, save_atomic

COMPONENT = "video_vae"
PREFIX = "vae."
SECTION = "vae"
TINY_FILE = "ltx-2.5-vae.safetensors"
_UPSAMPLES = [[[1, 2, 2], 2], [[2, 1, 1], 2], [[2, 2, 2], 1], [[2, 2, 2], 2]]


def _encoder_section(section_23: dict) -> dict:
    """ltx-core's nested encoder config (``blocks``) from an LTX-2.3 flat section."""
    return {"blocks": section_23["encoder_blocks"], "in_channels": 3, "out_channels": 128, "patch_size": 4,
            "norm_layer": "pixel_norm", "latent_log_var": section_23.get("latent_log_var", "uniform"),
            "spatial_padding_mode": section_23.get("spatial_padding_mode", "zeros"), "dims": 3}


def full_config() -> dict:
    """The LTX-2.5 release's ``vae`` section as ltx-core 1.2.0 reads it (decoder: stage widths 2048 ... 256,
    depths 4, 6, 4, 2 and 8 diffusion blocks, one x0 step with timesteps x 1000, as diffusers 0.42.1 ships it)."""
    return {
        "_class_name": DIFFUSION_VAE_CLASS, "latent_channels": 128, "model_output_type": "x0",
        "temporal_compression_ratio": 8, "spatial_compression_ratio": 32,
        "encoder": _encoder_section(conv_vae.full_config_23()),
        "decoder": {"in_channels": 128, "out_channels": 3, "patch_size": 4, "head_dim": 64, "t_emb_dim": 384,
                    "stage_channels": [2048, 1024, 512, 512, 256], "stage_depths": [4, 6, 4, 2, 8],
                    "stage_kernels": [[3, 7, 7], [3, 7, 7], [3, 5, 5], [3, 5, 5], [3, 3, 3]],
                    "upsamples": _UPSAMPLES, "stage5_kernel": [11, 11, 11],
                    "default_num_inference_steps": 1, "timestep_scale_multiplier": 1000.0},
    }


def tiny_config() -> dict:
    """The release layout at toy size."""
    section = full_config()
    section["encoder"] = _encoder_section(conv_vae.tiny_config_23())
    section["decoder"].update({"head_dim": 8, "t_emb_dim": 32, "stage_channels": [64, 32, 16, 16, 8],
                               "stage_depths": [1, 1, 1, 1, 2], "stage5_kernel": [3, 5, 5],
                               "stage_kernels": [[3, 3, 3]] * 5})
    return section


def full_config_25() -> dict:
    """The video VAE section of an LTX-2.5 release file (the split ``ltx-2.5-video-vae`` and the single file)."""
    return full_config()


def tiny_config_25() -> dict:
    return tiny_config()


def build(section: dict, device: str | torch.device = "cpu") -> DiffusionVideoVAE:
    with torch.device(device):
        return DiffusionVideoVAE.from_header(section)


def write(path: Path, section: dict | None = None, seed: int = 0, dtype: torch.dtype = torch.bfloat16) -> Path:
    """A standalone LTX-2.5 VAE file at ``path``: random weights from ``seed`` in ``dtype`` (statistics in
    float32), the section in the header."""
    section = section or tiny_config()
    model = build(section)
    state = random_state(model, PREFIX, seed)
    tensors = {key: value if "per_channel_statistics" in key else value.to(dtype) for key, value in state.items()}
    return save_atomic(path, tensors, header_metadata({SECTION: section}))
