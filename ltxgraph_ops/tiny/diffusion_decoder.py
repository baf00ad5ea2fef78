"""The tiny header section of the LTX-2.5 video VAE (``_class_name: CausalDiffusionVAE``: the LTX-2.3
convolutional encoder under ``encoder``, the diffusion decoder under ``decoder``), the release section it shrinks
(``full_config`` / ``full_config_25``: :func:`ltxgraph_ops.releases.video_vae_section_25`), and a writer of a
standalone VAE file in the real key layout (``vae.encoder.``, ``vae.decoder.`` with the fused ``attn.qkv`` and
``t_embedder.mlp.{0,2}`` names, ``vae.per_channel_statistics.``).

The tiny section keeps every path of the release (five stages, the four upsample kinds with their channel
reductions, 128 latent channels, patch 4, so 8 x 32 x 32 compression) with one block per stage, 8-wide heads
and small kernels, so a 2 x 3 x 3 latent decodes in well under a second.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ltxgraph_ops import releases
from ltxgraph_ops.models.diffusion_decoder import DiffusionVideoVAE
from ltxgraph_ops.tiny import video_vae as conv_vae
from ltxgraph_ops.weights.writing import header_metadata, random_state, save_atomic

COMPONENT = "video_vae"
PREFIX = "vae."
SECTION = "vae"
TINY_FILE = "ltx-2.5-vae.safetensors"

full_config = full_config_25 = releases.VIDEO_VAE_SECTIONS["2.5"]


def tiny_config() -> dict:
    """The release layout at toy size."""
    section = full_config()
    section["encoder"] = releases.diffusion_vae_encoder(conv_vae.tiny_config_23())
    section["decoder"].update({"head_dim": 8, "t_emb_dim": 32, "stage_channels": [64, 32, 16, 16, 8],
                               "stage_depths": [1, 1, 1, 1, 2], "stage5_kernel": [3, 5, 5],
                               "stage_kernels": [[3, 3, 3]] * 5})
    return section


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
