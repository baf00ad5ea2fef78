"""Parity of the LTX-2.3 ("V2") text path after Gemma with diffusers 0.42.1: its ``LTX2TextConnectors`` with
per-modality biased projections and gated connectors, built at the tiny 2.3 config, our seeded weights, float32,
a batch of two prompts with different left padding. Intermediate values of diffusers' forward (the rescaled
features and each projection's output) are read with forward hooks on its projection layers.

The same against ltx-core (the installed 1.0.0, whose V2 feature extractor and gated connectors read as 1.2.0's;
``*_ltx_core`` keys): its ``FeatureExtractorV2`` and the connectors its configurators build from the same header
section. Its register replacement only works for a batch of one, so its side runs each sample alone.

Where diffusers and ltx-core 1.2.0 differ in this path, ltx-core is followed (and matched here): it keeps the
learnable registers in bfloat16, so the shared weights hold bf16-representable registers."""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.models.text_connectors import normalise_tokens  # noqa: E402
from ltxgraph_ops.tiny import connector as tiny  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402
from tools.oracle.text import ltx_core_connectors, seeded_projector  # noqa: E402

SEED = 23
TOKENS = 256
PADDING = (200, 37)        # left padding of the two samples
OUR_PREFIXES = {"text_embedding_projection.video_aggregate_embed.": "video_text_proj_in.",
                "text_embedding_projection.audio_aggregate_embed.": "audio_text_proj_in.",
                "model.diffusion_model.video_embeddings_connector.": "video_connector.",
                "model.diffusion_model.audio_embeddings_connector.": "audio_connector."}
OUR_NAMES = {"transformer_1d_blocks.": "transformer_blocks.", "attn1.q_norm.": "attn1.norm_q.",
             "attn1.k_norm.": "attn1.norm_k."}


def diffusers_key(key: str) -> str:
    """Our (checkpoint) key -> the key of diffusers' ``LTX2TextConnectors``."""
    for ours, theirs in OUR_PREFIXES.items():
        if key.startswith(ours):
            key = theirs + key[len(ours):]
            break
    for ours, theirs in OUR_NAMES.items():
        key = key.replace(ours, theirs)
    return key


def diffusers_config(section: dict, states: int) -> dict:
    """``LTX2TextConnectors`` arguments for a V2 header section (the mapping diffusers' converter uses)."""
    audio_heads = section.get("audio_connector_num_attention_heads", section["connector_num_attention_heads"])
    gated = section["connector_apply_gated_attention"]
    return dict(caption_channels=section["caption_channels"], text_proj_in_factor=states,
                video_connector_num_attention_heads=section["connector_num_attention_heads"],
                video_connector_attention_head_dim=section["connector_attention_head_dim"],
                video_connector_num_layers=section["connector_num_layers"],
                video_connector_num_learnable_registers=section["connector_num_learnable_registers"],
                video_gated_attn=gated,
                audio_connector_num_attention_heads=audio_heads,
                audio_connector_attention_head_dim=section["audio_connector_attention_head_dim"],
                audio_connector_num_layers=section.get("audio_connector_num_layers", section["connector_num_layers"]),
                audio_connector_num_learnable_registers=section["connector_num_learnable_registers"],
                audio_gated_attn=gated,
                connector_rope_base_seq_len=section["connector_positional_embedding_max_pos"][0],
                rope_theta=section["positional_embedding_theta"],
                rope_double_precision=section["frequencies_precision"] == "float64",
                rope_type=section["rope_type"], per_modality_projections=True,
                video_hidden_dim=section["num_attention_heads"] * section["attention_head_dim"],
                audio_hidden_dim=section["audio_num_attention_heads"] * section["audio_attention_head_dim"],
                proj_bias=True)


def inputs(config: dict) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Gemma-like hidden states (each [2, TOKENS, H], scale growing with depth and varying per token) and the
    left-padded mask [2, TOKENS]."""
    g = torch.Generator().manual_seed(SEED)
    states = [torch.randn(2, TOKENS, config["caption_channels"], generator=g) * (i + 1)
              * torch.rand(2, TOKENS, 1, generator=g).add(0.5) for i in range(tiny.hidden_states_for(config))]
    mask = torch.ones(2, TOKENS, dtype=torch.int64)
    for b, pad in enumerate(PADDING):
        mask[b, :pad] = 0
    return states, mask


def models(config: dict):
    """Our projector and diffusers' connectors on the same seeded weights."""
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
    ours = seeded_projector(config, SEED)
    theirs = LTX2TextConnectors(**diffusers_config(config, ours.states)).eval()
    theirs.load_state_dict({diffusers_key(k): v for k, v in ours.state_dict().items()})
    return ours, theirs


@lru_cache(maxsize=1)
def outputs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name -> (ours, diffusers') for every compared value."""
    config = tiny.tiny_config_23()
    ours, theirs = models(config)
    states, mask = inputs(config)
    seen: dict[str, torch.Tensor] = {}
    hooks = [getattr(theirs, f"{stream}_text_proj_in").register_forward_hook(
        lambda _, args, out, stream=stream: seen.update({f"{stream}_in": args[0], f"{stream}_out": out}))
        for stream in ("video", "audio")]
    with torch.no_grad():
        their_video, their_audio, their_mask = theirs(torch.stack(states, dim=-1), mask)
        features = ours.text_embedding_projection(states, mask)
        our_video, our_audio, our_mask = ours(states, mask)
        text_width = config["caption_channels"]
        scale = (our_video.shape[-1] / text_width) ** 0.5
        our_normed = normalise_tokens(states, mask) * scale
    for hook in hooks:
        hook.remove()
    assert bool(our_mask.all()) and bool(their_mask.bool().all())
    return {"features": (our_normed, seen["video_in"]),
            "video_projection": (features["video"], seen["video_out"]),
            "audio_projection": (features["audio"], seen["audio_out"]),
            "video_connector": (our_video, their_video),
            "audio_connector": (our_audio, their_audio)}


@lru_cache(maxsize=1)
def ltx_core_outputs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name -> (ours, ltx-core's), each sample of the batch run alone on ltx-core's side."""
    from ltx_core.text_encoders.gemma.embeddings_processor import convert_to_additive_mask
    from ltx_core.text_encoders.gemma.feature_extractor import FeatureExtractorV2
    config = tiny.tiny_config_23()
    ours = seeded_projector(config, SEED)
    state = ours.state_dict()
    projections = {}
    for stream in ("video", "audio"):
        weight = state[f"text_embedding_projection.{stream}_aggregate_embed.weight"]
        projections[stream] = torch.nn.Linear(weight.shape[1], weight.shape[0])
        projections[stream].load_state_dict({"weight": weight,
                                             "bias": state[f"text_embedding_projection.{stream}_aggregate_embed.bias"]})
    extractor = FeatureExtractorV2(projections["video"], config["caption_channels"], projections["audio"])
    connectors = ltx_core_connectors(config, state)
    states, mask = inputs(config)
    with torch.no_grad():
        our_features = ours.text_embedding_projection(states, mask)
        our_video, our_audio, _ = ours(states, mask)
        their_features = extractor(states, mask)
        theirs = {"video": [], "audio": []}
        for b in range(mask.shape[0]):
            sample = extractor([s[b:b + 1] for s in states], mask[b:b + 1])
            additive = convert_to_additive_mask(mask[b:b + 1], sample[0].dtype)
            for stream, features in zip(("video", "audio"), sample):
                theirs[stream].append(connectors[stream](features, additive)[0])
    return {"video_projection_ltx_core": (our_features["video"], their_features[0]),
            "audio_projection_ltx_core": (our_features["audio"], their_features[1]),
            "video_connector_ltx_core": (our_video, torch.cat(theirs["video"])),
            "audio_connector_ltx_core": (our_audio, torch.cat(theirs["audio"]))}


def error(name: str) -> float:
    """Max abs difference of one compared value, after checking both are finite and not constant."""
    mine, theirs = (ltx_core_outputs() if name.endswith("_ltx_core") else outputs())[name]
    return compared(f"ltx23_text_{name}", mine, theirs)


NAMES = ("features", "video_projection", "audio_projection", "video_connector", "audio_connector",
         "video_projection_ltx_core", "audio_projection_ltx_core", "video_connector_ltx_core",
         "audio_connector_ltx_core")
CHECKS: dict[str, Callable[[], float]] = {f"ltx23_text_{name}": (lambda name=name: error(name)) for name in NAMES}
