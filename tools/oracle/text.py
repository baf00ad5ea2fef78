"""Parity of the text feature path after Gemma with ltx-core 1.0.0: its FeatureExtractorV1 and embeddings
connectors (built by its configurators from the same header section, our seeded weights), float32. ltx-core's
register replacement only works for a batch of one, so its side runs each sample alone; ours runs the batch."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.models.text_connectors import normalise_features  # noqa: E402
from ltxgraph_ops.tiny import connector as tiny  # noqa: E402
from ltxgraph_ops.weights.writing import random_state  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402

SEED = 21
TOKENS = 256
PADDING = (200, 37)        # left padding of the two samples


def inputs(config: dict):
    g = torch.Generator().manual_seed(SEED)
    states = [torch.randn(2, TOKENS, config["caption_channels"], generator=g) * (i + 1)
              for i in range(tiny.hidden_states_for(config))]
    mask = torch.ones(2, TOKENS, dtype=torch.int64)
    for b, pad in enumerate(PADDING):
        mask[b, :pad] = 0
    return states, mask


def seeded_projector(config: dict, seed: int):
    """Our projector with seeded weights; the registers bf16-representable (ltx-core keeps them as a bf16
    parameter, the checkpoint stores them so too)."""
    ours = tiny.build(config).eval()
    state = random_state(ours, "", seed)
    for key in state:
        if key.endswith("learnable_registers"):
            state[key] = state[key].to(torch.bfloat16).float()
    ours.load_state_dict(state)
    return ours


def ltx_core_connectors(config: dict, state: dict[str, torch.Tensor]) -> dict[str, torch.nn.Module]:
    """ltx-core's video and audio connectors built by its configurators from header section ``config``, filled
    with the connector weights of our state dict; float32."""
    from ltx_core.text_encoders.gemma.embeddings_connector import (AudioEmbeddings1DConnectorConfigurator,
                                                                   Embeddings1DConnectorConfigurator)
    connectors = {}
    for stream, configurator in (("video", Embeddings1DConnectorConfigurator),
                                 ("audio", AudioEmbeddings1DConnectorConfigurator)):
        with torch.device("cpu"):
            connector = configurator.from_config({"transformer": config}).to_empty(device="cpu")
        prefix = f"model.diffusion_model.{stream}_embeddings_connector."
        connector.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        connectors[stream] = connector.float().eval()
    return connectors


def models(config: dict):
    from ltx_core.text_encoders.gemma.feature_extractor import FeatureExtractorV1
    ours = seeded_projector(config, SEED)
    state = ours.state_dict()
    connectors = ltx_core_connectors(config, state)
    weight = state["text_embedding_projection.aggregate_embed.weight"]
    aggregate = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    aggregate.load_state_dict({"weight": weight})
    extractor = FeatureExtractorV1(aggregate_embed=aggregate, is_av=True)
    return ours, extractor, connectors["video"], connectors["audio"]


@torch.no_grad()
def check_features() -> float:
    config = tiny.tiny_config()
    ours, extractor, _, _ = models(config)
    states, mask = inputs(config)
    theirs, _ = extractor(states, mask, padding_side="left")
    mine = ours.text_embedding_projection.aggregate_embed(normalise_features(states, mask))
    return compared("text features", mine, theirs)


@torch.no_grad()
def connector_error(stream: str) -> float:
    from ltx_core.text_encoders.gemma.embeddings_processor import convert_to_additive_mask
    config = tiny.tiny_config()
    ours, extractor, video, audio = models(config)
    states, mask = inputs(config)
    mine_video, mine_audio, mine_mask = ours(states, mask)
    errors = []
    for b in range(2):
        sample = [s[b:b + 1] for s in states]
        features, _ = extractor(sample, mask[b:b + 1], padding_side="left")
        connector = video if stream == "video" else audio
        theirs, _ = connector(features, convert_to_additive_mask(mask[b:b + 1], features.dtype))
        mine = (mine_video if stream == "video" else mine_audio)[b:b + 1]
        errors.append(compared(f"{stream} connector", mine, theirs))
    assert bool(mine_mask.all())
    return max(errors)


CHECKS: dict[str, Callable[[], float]] = {
    "text_features": check_features,
    "video_connector_batch2": lambda: connector_error("video"),
    "audio_connector_batch2": lambda: connector_error("audio"),
}
