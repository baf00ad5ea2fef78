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


def build(config: dict, device: str | torch.device = "cpu", states: int | None = None) -> torch.nn.Module:
    """The projection and connectors for ``states`` Gemma hidden states (default: as :func:`hidden_states_for`)."""
    with torch.device(device):
        return TextProjector(config, states or hidden_states_for(config))
