"""Parity of the video VAE (LTX-2.0 and LTX-2.3 layouts) with diffusers 0.42.1's ``AutoencoderKLLTX2Video``, the
second reference beside ltx-core: the diffusers model built from the same header section (translated below), our
seeded weights renamed into its key layout, float32.

The configs are small but keep every path the releases use: two layers per stage, channel-changing
space-to-depth downsamplers (x2 and x1), depth-to-space upsamplers in all three directions with x2 and x1 channel
reductions, with and without residuals, and both padding modes.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.models.video_vae import VideoVAEConfig, decoder_bottleneck_channels  # noqa: E402
from ltxgraph_ops.tiny import video_vae as tiny  # noqa: E402
from ltxgraph_ops.weights.writing import random_state  # noqa: E402
from tools.oracle.video_vae import compared, small_config  # noqa: E402

SEED = 91
RESAMPLE_TYPES = {"space": "spatial", "time": "temporal", "all": "spatiotemporal"}


def _stages(blocks: list) -> tuple[list[int], list[tuple[str, dict]]]:
    """(layers of each residual stage, the resamplers between them) of a res, resample, ..., res block list."""
    layers, resamplers = [], []
    for index, (name, settings) in enumerate(blocks):
        if (name == "res_x") != (index % 2 == 0):
            raise ValueError(f"block {index} {name!r}: diffusers needs residual stages between resamplers")
        if name == "res_x":
            layers.append(settings["num_layers"])
        else:
            resamplers.append((name.removeprefix("compress_").removesuffix("_res"), settings))
    return layers, resamplers


def diffusers_config(section: dict) -> dict:
    """``AutoencoderKLLTX2Video`` arguments for a header ``vae`` section. diffusers lists decoder widths, layers,
    factors and residual flags from the pixel end but upsample types in the order they run."""
    cfg = VideoVAEConfig.from_header(section)
    enc_layers, downsamplers = _stages(section["encoder_blocks"])
    width, enc_widths = cfg.latent_channels, []
    for _, settings in downsamplers:
        width *= settings.get("multiplier", 2)
        enc_widths.append(width)
    dec_layers, upsamplers = _stages(section["decoder_blocks"][::-1])
    width, dec_widths = decoder_bottleneck_channels(cfg), []
    for _, settings in upsamplers:
        dec_widths.append(width)
        width //= settings.get("multiplier", 1)
    return {
        "in_channels": cfg.in_channels, "out_channels": cfg.out_channels, "latent_channels": cfg.latent_channels,
        "block_out_channels": tuple(enc_widths), "layers_per_block": tuple(enc_layers),
        "down_block_types": ("LTX2VideoDownBlock3D",) * len(downsamplers),
        "spatio_temporal_scaling": (True,) * len(downsamplers),
        "downsample_type": tuple(RESAMPLE_TYPES[kind] for kind, _ in downsamplers),
        "decoder_block_out_channels": tuple(dec_widths[::-1]), "decoder_layers_per_block": tuple(dec_layers[::-1]),
        "decoder_spatio_temporal_scaling": (True,) * len(upsamplers),
        "decoder_inject_noise": (False,) * len(dec_layers),
        "upsample_type": tuple(RESAMPLE_TYPES[kind] for kind, _ in upsamplers),
        "upsample_factor": tuple(s.get("multiplier", 1) for _, s in upsamplers[::-1]),
        "upsample_residual": tuple(bool(s.get("residual", False)) and kind == "all" for kind, s in upsamplers[::-1]),
        "timestep_conditioning": False, "patch_size": cfg.patch_size, "patch_size_t": 1,
        "encoder_causal": True, "decoder_causal": cfg.causal_decoder,
        "encoder_spatial_padding_mode": cfg.encoder_padding, "decoder_spatial_padding_mode": cfg.decoder_padding,
    }


def diffusers_key(key: str, encoder_stages: int, decoder_stages: int) -> str:
    """Our (ltx-core) key -> diffusers' key: stage j of ``down_blocks`` / ``up_blocks`` becomes a down/up block's
    resnets or its resampler, the last encoder stage and the first decoder stage the ``mid_block``."""
    if key.startswith("per_channel_statistics."):
        return {"mean-of-means": "latents_mean", "std-of-means": "latents_std"}[key.rsplit(".", 1)[1]]
    part, kind, rest = key.split(".", 2)
    if kind not in ("down_blocks", "up_blocks"):
        return key
    index, rest = rest.split(".", 1)
    index, rest = int(index), rest.replace("res_blocks.", "resnets.")
    if kind == "down_blocks":
        stage = index // 2
        if index % 2:
            return f"{part}.down_blocks.{stage}.downsamplers.0.{rest}"
        return f"{part}.mid_block.{rest}" if stage == encoder_stages - 1 else f"{part}.down_blocks.{stage}.{rest}"
    if index == 0:
        return f"{part}.mid_block.{rest}"
    if index % 2:
        return f"{part}.up_blocks.{index // 2}.upsamplers.0.{rest}"
    return f"{part}.up_blocks.{index // 2 - 1}.{rest}"


def pair(section: dict):
    """Our VAE with seeded weights and diffusers' built from the same section, holding the same weights."""
    from diffusers import AutoencoderKLLTX2Video
    ours = tiny.build(section).eval()
    state = random_state(ours, "", SEED)
    ours.load_state_dict(state)
    encoder_stages = len(_stages(section["encoder_blocks"])[0])
    decoder_stages = len(_stages(section["decoder_blocks"])[0])
    reference = AutoencoderKLLTX2Video(**diffusers_config(section)).float().eval()
    reference.load_state_dict({diffusers_key(k, encoder_stages, decoder_stages): v for k, v in state.items()},
                              strict=True)
    return ours, reference


@torch.no_grad()
def check_encode(version: str) -> float:
    """pixels [2, 3, 17, 64, 96] -> normalised latents [2, 16, 3, 2, 3]."""
    ours, reference = pair(small_config(version))
    pixels = torch.rand(2, 3, 17, 64, 96, generator=torch.Generator().manual_seed(SEED)) * 2 - 1
    means = reference.encode(pixels).latent_dist.mode()
    stats = (reference.latents_mean.view(1, -1, 1, 1, 1), reference.latents_std.view(1, -1, 1, 1, 1))
    return compared(f"{version} encode", ours.encode(pixels), (means - stats[0]) / stats[1])


@torch.no_grad()
def check_decode(version: str) -> float:
    """normalised latents [2, 16, 3, 2, 3] -> pixels [2, 3, 17, 64, 96]."""
    ours, reference = pair(small_config(version))
    latent = torch.randn(2, 16, 3, 2, 3, generator=torch.Generator().manual_seed(SEED + 1))
    raw = latent * reference.latents_std.view(1, -1, 1, 1, 1) + reference.latents_mean.view(1, -1, 1, 1, 1)
    return compared(f"{version} decode", ours.decode(latent), reference.decode(raw).sample)


CHECKS: dict[str, Callable[[], float]] = {
    "diffusers_video_vae_encode": lambda: check_encode("2.0"),
    "diffusers_video_vae_decode": lambda: check_decode("2.0"),
    "ltx23_video_vae_encode": lambda: check_encode("2.3"),
    "ltx23_video_vae_decode": lambda: check_decode("2.3"),
}
