"""Tiny and full-size configs of the LTX-2 audio-video transformer (checkpoint prefix ``model.diffusion_model.``).

The config dicts use the checkpoint header's ``transformer`` section format. The release sections come from
:mod:`ltxgraph_ops.releases` under this module's names: ``full_config`` the 19B release's, ``full_config_23`` the
LTX-2.3 22B release's, ``full_config_25`` LTX-2.5's; ``tiny_config`` / ``tiny_config_23`` / ``tiny_config_25``
are their tiny stand-ins. ``RELEASE_CONFIGS`` / ``TINY_CONFIGS`` map a model version to its release / tiny
section (tools/manifest_check.py, ``tiny.files.write_checkpoint``).
"""
from __future__ import annotations

import torch

from ltxgraph_ops import releases
from ltxgraph_ops.models.transformer import LTXAVTransformer, TransformerConfig

COMPONENT = "transformer"
PREFIX = "model.diffusion_model."
SECTION = "transformer"
MANIFEST_COMPONENT = "transformer"

# the releases' sections under the names the tiny modules share (``full_config`` of each component)
full_config = releases.transformer_section_20
full_config_23 = releases.transformer_section_23
full_config_25 = releases.transformer_section_25
RELEASE_CONFIGS = releases.TRANSFORMER_SECTIONS


def tiny_config() -> dict:
    """Same keys, tiny widths: 2 blocks, video 2 heads x 16, audio 2 heads x 8, text 24 channels."""
    return {
        **full_config(),
        "num_layers": 2,
        "num_attention_heads": 2,
        "attention_head_dim": 16,
        "cross_attention_dim": 32,
        "audio_num_attention_heads": 2,
        "audio_attention_head_dim": 8,
        "audio_cross_attention_dim": 16,
        "caption_channels": 24,
        "connector_attention_head_dim": 8,
        "connector_num_attention_heads": 3,
    }


def tiny_config_23() -> dict:
    """The 2.3 keys at the tiny widths of :func:`tiny_config`; connectors as wide as the streams (video 2 x 16,
    audio 2 x 8), two layers (as ``tiny.connector.tiny_config_23``)."""
    return {**tiny_config(), **releases.LTX23_TRANSFORMER_CHANGES, "connector_num_layers": 2,
            "connector_num_attention_heads": 2, "connector_attention_head_dim": 16,
            "audio_connector_num_attention_heads": 2, "audio_connector_attention_head_dim": 8}


def tiny_config_25() -> dict:
    """The 2.5 keys at the tiny widths of :func:`tiny_config_23`."""
    return {**tiny_config_23(), **releases.LTX25_TRANSFORMER_CHANGES}


TINY_CONFIGS = {"2.0": tiny_config, "2.3": tiny_config_23, "2.5": tiny_config_25}


def build(config: dict, device: str | torch.device = "cpu") -> LTXAVTransformer:
    return LTXAVTransformer(TransformerConfig.from_header(config), device=device)
