"""Parity of tiled video VAE decoding and encoding with ltx-core 1.0.0's ``VideoDecoder.tiled_decode`` and
``VideoEncoder.tiled_encode``: the tiny VAE of tools/oracle/video_vae.py (same seeded weights in both), the same
``TilingConfig`` settings (pixels and frames), float32. Ours: ``ltx_core_tiled_decode`` / ``ltx_core_tiled_encode``
of ltxgraph_ops/models/tiling.py."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.models.tiling import ltx_core_tiled_decode, ltx_core_tiled_encode  # noqa: E402
from tools.oracle.video_vae import SEED, compared, pair  # noqa: E402

Setting = tuple[int, int] | None    # (tile, overlap): pixels for space, frames for time; None: untiled axis

LATENT_SHAPE = (1, 5, 4, 6)         # latent frames, height, width (after the channels)
PIXEL_SHAPE = (33, 160, 192)        # frames (8k+1), height, width

# ltx-core's tiled decode needs a temporal setting (without one its chunking fails): "spatial" uses one temporal
# tile of 5 latent frames over the 5. Encode overlaps below 64 pixels / 16 frames are raised to those.
DECODE_SETTINGS: dict[str, tuple[Setting, Setting]] = {
    "spatial": ((96, 32), (40, 8)), "temporal": (None, (24, 8)), "both": ((96, 32), (24, 8)),
}
ENCODE_SETTINGS: dict[str, tuple[Setting, Setting]] = {
    "spatial": ((128, 64), None), "temporal": (None, (24, 16)), "both": ((128, 64), (24, 16)),
}


def tiling_config(spatial: Setting, temporal: Setting):
    """ltx-core's TilingConfig for our (tile, overlap) settings."""
    from ltx_core.model.video_vae.tiling import SpatialTilingConfig, TemporalTilingConfig, TilingConfig
    return TilingConfig(spatial_config=None if spatial is None else SpatialTilingConfig(*spatial),
                        temporal_config=None if temporal is None else TemporalTilingConfig(*temporal))


def sample_latent(channels: int) -> torch.Tensor:
    return torch.randn(1, channels, *LATENT_SHAPE[1:], generator=torch.Generator().manual_seed(SEED + 2))


def sample_pixels() -> torch.Tensor:
    return torch.rand(1, 3, *PIXEL_SHAPE, generator=torch.Generator().manual_seed(SEED + 3)) * 2 - 1


@torch.no_grad()
def check_tiled_decode(spatial: Setting, temporal: Setting) -> float:
    ours, _, decoder = pair()
    latent = sample_latent(ours.latent_channels)
    reference = torch.cat(list(decoder.tiled_decode(latent, tiling_config(spatial, temporal))), dim=2)
    return compared("tiled decode", ltx_core_tiled_decode(ours.decode, latent, spatial, temporal), reference)


@torch.no_grad()
def check_tiled_encode(spatial: Setting, temporal: Setting) -> float:
    ours, encoder, _ = pair()
    pixels = sample_pixels()
    reference = encoder.tiled_encode(pixels, tiling_config(spatial, temporal))
    return compared("tiled encode", ltx_core_tiled_encode(ours.encode, pixels, spatial, temporal), reference)


def _bind(check: Callable[[Setting, Setting], float], settings: tuple[Setting, Setting]) -> Callable[[], float]:
    return lambda: check(*settings)


CHECKS: dict[str, Callable[[], float]] = {
    **{f"video_vae_tiled_decode_{name}": _bind(check_tiled_decode, s) for name, s in DECODE_SETTINGS.items()},
    **{f"video_vae_tiled_encode_{name}": _bind(check_tiled_encode, s) for name, s in ENCODE_SETTINGS.items()},
}
