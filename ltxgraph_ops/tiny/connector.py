"""Tiny and full-size text connectors (feature projection + video/audio embeddings connectors) of the LTX-2
single-file checkpoint; they read the header's ``transformer`` section. The number of Gemma hidden states the
projection takes is not in the header: 49 (48 layers + embeddings) for the release, 3 for the tiny Gemma.

LTX-2.3 ("V2" text path): ``full_config_23`` / ``tiny_config_23`` are the transformer's 2.3 sections, whose
text-path fields the connectors read (the audio connector's depth is not in the header and follows the video
connector's: 8 layers at release).

LTX-2.5 (``*_25``): the 2.5 ``transformer`` section. ltx-core 1.2.0's connectors read 2.3's fields from it (and
``connector_ff_bias`` / ``audio_connector_num_layers``, defaulting to biased feed-forwards and the video connector's
depth; no 2.5 header seen here sets them, nor do diffusers 0.42.1's connectors have a switch for them); the
projection before them takes Gemma 4's hidden states."""
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


def full_config_23() -> dict:
    """The LTX-2.3 release's text path (connectors 8 layers, video 32 x 128, audio 32 x 64, gated): the 2.3
    ``transformer`` section, which the connectors share with the transformer."""
    return transformer.full_config_23()


def tiny_config_23() -> dict:
    """The 2.3 text path at the tiny transformer's widths: connectors 2 layers, video 2 x 16, audio 2 x 8."""
    return transformer.tiny_config_23()


def full_config_25() -> dict:
    """The LTX-2.5 release's text path: the 2.5 ``transformer`` section (2.3's connector fields)."""
    return transformer.full_config_25()


def tiny_config_25() -> dict:
    """The 2.5 text path at the tiny transformer's widths (as :func:`tiny_config_23`)."""
    return transformer.tiny_config_25()


RELEASE_CONFIGS = {"2.0": full_config, "2.3": full_config_23, "2.5": full_config_25}
TINY_CONFIGS = {"2.0": tiny_config, "2.3": tiny_config_23, "2.5": tiny_config_25}


def hidden_states_for(config: dict) -> int:
    return RELEASE_STATES if config.get("caption_channels") == 3840 else TINY_STATES


def build(config: dict, device: str | torch.device = "cpu", states: int | None = None) -> torch.nn.Module:
    """The projection and connectors for ``states`` Gemma hidden states (default: as :func:`hidden_states_for`)."""
    with torch.device(device):
        return TextProjector(config, states or hidden_states_for(config))
