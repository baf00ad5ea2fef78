"""Tiny and full-size text connectors (feature projection + video/audio embeddings connectors) of the LTX-2
single-file checkpoint; they read the header's ``transformer`` section. The number of Gemma hidden states the
projection takes is not in the header: 49 (48 layers + embeddings) for the release, 3 for the tiny Gemma.

LTX-2.3 ("V2" text path): ``full_config_23`` / ``tiny_config_23`` are the 2.0 sections with the 2.3 release's
text-path fields (its transformer widths are the 2.0 ones: video 32 x 128, audio 32 x 64)."""
from __future__ import annotations

import torch

from ltxgraph_ops.models.text_connectors import V2_FIELDS, TextProjector
from ltxgraph_ops.tiny import transformer

COMPONENT = "connector"
PREFIX = ""
SECTION = "transformer"
MANIFEST_COMPONENT = "connector"
RELEASE_STATES = 49
TINY_STATES = 3
# the text-path fields of the LTX-2.3 release header (ltx-2.3-22b-dev, ``transformer`` section); the audio
# connector's depth is not in it and follows the video connector's (8 layers). ltx-core reads neither
# ``text_encoder_norm_type`` nor ``connector_learnable_registers_std`` (V2 is told by the caption fields).
RELEASE_23_TEXT_FIELDS = {
    **V2_FIELDS,
    "connector_apply_gated_attention": True,
    "connector_num_layers": 8,
    "connector_num_attention_heads": 32,
    "connector_attention_head_dim": 128,
    "audio_connector_num_attention_heads": 32,
    "audio_connector_attention_head_dim": 64,
    "connector_learnable_registers_std": 1,
    "text_encoder_norm_type": "per_token_rms",
}


def full_config() -> dict:
    return transformer.full_config()


def tiny_config() -> dict:
    return transformer.tiny_config()


def full_config_23() -> dict:
    """The LTX-2.3 release's text path (connectors 8 layers, video 32 x 128, audio 32 x 64, gated)."""
    return {**transformer.full_config(), **RELEASE_23_TEXT_FIELDS}


def tiny_config_23() -> dict:
    """The 2.3 text path at the tiny transformer's widths: connectors 2 layers, video 2 x 16, audio 2 x 8."""
    return {**transformer.tiny_config(), **RELEASE_23_TEXT_FIELDS, "connector_num_layers": 2,
            "connector_num_attention_heads": 2, "connector_attention_head_dim": 16,
            "audio_connector_num_attention_heads": 2, "audio_connector_attention_head_dim": 8}


def hidden_states_for(config: dict) -> int:
    return RELEASE_STATES if config.get("caption_channels") == 3840 else TINY_STATES


def build(config: dict, device: str | torch.device = "cpu", states: int | None = None) -> torch.nn.Module:
    """The projection and connectors for ``states`` Gemma hidden states (default: as :func:`hidden_states_for`)."""
    with torch.device(device):
        return TextProjector(config, states or hidden_states_for(config))
