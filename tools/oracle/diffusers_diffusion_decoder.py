"""Parity of the LTX-2.5 diffusion video decoder with diffusers 0.42.1's ``LTX2VideoDiffusionDecoderModel``
(its FlexAttention neighbourhood attention on CPU), float32, the same seeded weights renamed into diffusers'
layout (the fused ``qkv`` split into ``to_q/to_k/to_v``), the same noise generator.

Checks: an untiled decode of a [1, 128, 2, 3, 3] latent, and a tiled one of [1, 128, 3, 5, 5] cut into 2 x 2 x 2
stage-4 tiles with overlaps in every direction (both models' tiling: stages 1-3 whole, stage 4 and 5 per tile,
linear blends).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.models.diffusion_decoder import DecodeTiling, DiffusionDecoderConfig  # noqa: E402
from ltxgraph_ops.tiny import diffusion_decoder as tiny  # noqa: E402
from ltxgraph_ops.weights.writing import random_state  # noqa: E402

SEED = 25
WEIGHT_GAIN = 0.5
_ATTENTION_RENAMES = {"attn.proj.": "attn.to_out.0.", "attn.q_norm.": "attn.norm_q.", "attn.k_norm.": "attn.norm_k.",
                      "t_embedder.mlp.0.": "t_embedder.timestep_embedder.linear_1.",
                      "t_embedder.mlp.2.": "t_embedder.timestep_embedder.linear_2."}


def diffusers_config(cfg: DiffusionDecoderConfig) -> dict:
    """``LTX2VideoDiffusionDecoderModel`` arguments for our decoder config."""
    return {
        "out_channels": cfg.out_channels, "latent_channels": cfg.latent_channels, "patch_size": cfg.patch_size,
        "decoder_head_dim": cfg.head_dim, "decoder_stage_channels": cfg.stage_channels,
        "decoder_stage_depths": cfg.stage_depths, "decoder_stage_kernels": cfg.stage_kernels[:-1],
        "decoder_upsample_strides": tuple(stride for stride, _ in cfg.upsamples),
        "decoder_upsample_channel_reductions": tuple(reduction for _, reduction in cfg.upsamples),
        "decoder_stage5_kernel": cfg.stage5_kernel, "decoder_t_emb_dim": cfg.t_emb_dim,
        "decoder_timestep_scale_multiplier": cfg.timestep_scale_multiplier,
        "decoder_model_output_type": cfg.model_output_type, "decoder_num_inference_steps": cfg.num_inference_steps,
        "spatial_compression_ratio": cfg.scale_factors[1], "temporal_compression_ratio": cfg.scale_factors[0],
    }


def diffusers_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our decoder and statistics tensors (keys under ``decoder.`` / ``per_channel_statistics.``) in diffusers'
    names."""
    out = {}
    for key, value in state.items():
        if key.startswith("per_channel_statistics."):
            out[{"mean-of-means": "latents_mean", "std-of-means": "latents_std"}[key.rsplit(".", 1)[1]]] = value
        elif key.startswith("decoder."):
            if ".attn.qkv." in key:
                for name, part in zip(("to_q", "to_k", "to_v"), value.chunk(3)):
                    out[key.replace("attn.qkv.", f"attn.{name}.")] = part
                continue
            for ours, theirs in _ATTENTION_RENAMES.items():
                key = key.replace(ours, theirs)
            out[key] = value
    return out


def pair():
    """Our tiny LTX-2.5 VAE (decoder part) with seeded weights and diffusers' decoder holding the same."""
    from diffusers.models.autoencoders.ltx2_diffusion_decoder import LTX2VideoDiffusionDecoderModel
    section = tiny.tiny_config()
    ours = tiny.build(section).eval()
    # the writer's weights (N(0, 1/fan_in)) at WEIGHT_GAIN: an untrained residual stack otherwise grows its
    # activations to ~16 by stage 4, where float32 rounding alone (1e-7 relative per op, measured stage by stage)
    # adds up past 1e-5 absolute in the pixels
    state = {key: value * WEIGHT_GAIN if value.ndim == 2 and "scale_shift_table" not in key else value
             for key, value in random_state(ours, "", SEED).items()}
    ours.load_state_dict(state)
    reference = LTX2VideoDiffusionDecoderModel(**diffusers_config(ours.cfg)).float().eval()
    reference.load_state_dict(diffusers_state(state), strict=True)
    return ours, reference


def _raw(reference, latent: torch.Tensor) -> torch.Tensor:
    return latent * reference.latents_std.view(1, -1, 1, 1, 1) + reference.latents_mean.view(1, -1, 1, 1, 1)


def _compared(name: str, ours: torch.Tensor, theirs: torch.Tensor) -> float:
    if ours.shape != theirs.shape:
        raise AssertionError(f"{name}: shape {tuple(ours.shape)} != diffusers {tuple(theirs.shape)}")
    return float((ours - theirs).abs().max())


@torch.no_grad()
def check_decode() -> float:
    """normalised latent [1, 128, 2, 3, 3] -> pixels [1, 3, 9, 96, 96], untiled."""
    ours, reference = pair()
    latent = torch.randn(1, 128, 2, 3, 3, generator=torch.Generator().manual_seed(SEED))
    expected = reference.decode(_raw(reference, latent), generator=torch.Generator().manual_seed(SEED)).sample
    return _compared("decode", ours.decode(latent, torch.Generator().manual_seed(SEED)), expected)


TILING = DecodeTiling(height=64, width=64, frames=10, stride_height=48, stride_width=48, stride_frames=6)


@torch.no_grad()
def check_tiled_decode() -> float:
    """normalised latent [1, 128, 3, 5, 5] -> pixels [1, 3, 17, 160, 160] in 2 x 2 x 2 tiles (stage-4 grid 5 x 10
    x 10 cut into 5- and 8-cell tiles 3 and 6 apart), our chunks joined."""
    ours, reference = pair()
    latent = torch.randn(1, 128, 3, 5, 5, generator=torch.Generator().manual_seed(SEED + 1))
    reference.enable_tiling(tile_sample_min_height=TILING.height, tile_sample_min_width=TILING.width,
                            tile_sample_min_num_frames=TILING.frames, tile_sample_stride_height=TILING.stride_height,
                            tile_sample_stride_width=TILING.stride_width,
                            tile_sample_stride_num_frames=TILING.stride_frames)
    expected = reference.decode(_raw(reference, latent), generator=torch.Generator().manual_seed(SEED)).sample
    chunks = list(ours.decode_chunks(latent, TILING, torch.Generator().manual_seed(SEED)))
    if len(chunks) < 2:
        raise AssertionError(f"tiled decode gave {len(chunks)} temporal chunk(s), 2 expected")
    return _compared("tiled decode", torch.cat(chunks, dim=2), expected)


CHECKS: dict[str, Callable[[], float]] = {
    "ltx25_diffusion_decoder": check_decode,
    "ltx25_diffusion_decoder_tiled": check_tiled_decode,
}
