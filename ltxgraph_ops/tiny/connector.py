"""Tiny and full-size text connectors (feature projection + video/audio embeddings connectors) of the LTX-2
single-file checkpoint; they read the header's ``transformer`` section. The number of Gemma hidden states the
projection takes is not in the header: 49 (48 layers + embeddings) for the release, 3 for the tiny Gemma."""
from __future__ import annotations

import torch

from ltxgraph_ops.models.text_connectors import TextProjector
from ltxgraph_ops.tiny import transformer

COMPONENT = "connector"
PREFIX = ""
SECTION = "transformer"
MANIFEST_COMPONENT = "connector"
RELEASE_STATES = 49
TINY_STATES = 3


def full_config() -> dict:
    return transformer.full_config()


def tiny_config() -> dict:
    return transformer.tiny_config()


def hidden_states_for(config: dict) -> int:
    return RELEASE_STATES if config.get("caption_channels") == 3840 else TINY_STATES


def build(config: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return TextProjector(config, hidden_states_for(config))
