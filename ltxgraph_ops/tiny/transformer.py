"""Tiny and full-size configs of the LTX-2 audio-video transformer (checkpoint prefix ``model.diffusion_model.``).

The config dicts use the checkpoint header's ``transformer`` section format. ``full_config`` is the 19B
release's section as published in its safetensors header (keys the reference configurator checks included);
``full_config_23`` the LTX-2.3 22B release's (tests/data/reference/ltx23_22b_config.json), ``tiny_config_23``
its tiny stand-in; ``full_config_25`` / ``tiny_config_25`` the same for LTX-2.5. ``RELEASE_CONFIGS`` /
``TINY_CONFIGS`` map a model version to its release / tiny section
(tools/manifest_check.py, ``tiny.files.write_checkpoint``).
"""
from __future__ import annotations

import torch

from ltxgraph_ops.models.transformer import LTXAVTransformer, TransformerConfig

COMPONENT = "transformer"
PREFIX = "model.diffusion_model."
SECTION = "transformer"
MANIFEST_COMPONENT = "transformer"

# values the reference configurator insists on; the real header carries them too
_FIXED = {
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_type": "default",
    "av_cross_ada_norm": True,
    "cross_attention_norm": True,
    "double_self_attention": False,
    "dropout": 0.0,
    "norm_elementwise_affine": False,
    "num_embeds_ada_norm": 1000,
    "num_vector_embeds": None,
    "only_cross_attention": False,
    "positional_embedding_type": "rope",
    "qk_norm": "rms_norm",
    "share_ff": False,
    "standardization_norm": "rms_norm",
    "upcast_attention": False,
    "use_audio_video_cross_attention": True,
    "use_linear_projection": False,
    "use_middle_indices_grid": True,
}


def full_config() -> dict:
    """The 19B release's ``transformer`` header section."""
    return {
        **_FIXED,
        "_class_name": "AVTransformer3DModel",
        "attention_head_dim": 128,
        "audio_attention_head_dim": 64,
        "audio_cross_attention_dim": 2048,
        "audio_num_attention_heads": 32,
        "audio_out_channels": 128,
        "audio_positional_embedding_max_pos": [20],
        "av_ca_timestep_scale_multiplier": 1000.0,
        "caption_channels": 3840,
        "causal_temporal_positioning": True,
        "connector_attention_head_dim": 128,
        "connector_norm_output": True,
        "connector_num_attention_heads": 30,
        "connector_num_layers": 2,
        "connector_num_learnable_registers": 128,
        "connector_positional_embedding_max_pos": [4096],
        "cross_attention_dim": 4096,
        "frequencies_precision": "float64",
        "in_channels": 128,
        "norm_eps": 1e-06,
        "norm_num_groups": 32,
        "num_attention_heads": 32,
        "num_layers": 48,
        "out_channels": 128,
        "positional_embedding_max_pos": [20, 2048, 2048],
        "positional_embedding_theta": 10000.0,
        "rope_type": "split",
        "timestep_scale_multiplier": 1000,
        "use_embeddings_connector": True,
    }


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


# what the LTX-2.3 22B header's ``transformer`` section adds to or changes in the 19B one
_LTX23 = {
    "apply_gated_attention": True,
    "cross_attention_adaln": True,
    "caption_proj_before_connector": True,
    "caption_proj_input_norm": False,
    "caption_projection_first_linear": False,
    "caption_projection_second_linear": False,
    "connector_apply_gated_attention": True,
    "connector_learnable_registers_std": 1,
    "connector_num_attention_heads": 32,
    "connector_num_layers": 8,
    "audio_connector_attention_head_dim": 64,
    "audio_connector_num_attention_heads": 32,
    "text_encoder_norm_type": "per_token_rms",
}


def full_config_23() -> dict:
    """The LTX-2.3 22B release's ``transformer`` header section."""
    return {**full_config(), **_LTX23}


def tiny_config_23() -> dict:
    """The 2.3 keys at the tiny widths of :func:`tiny_config`; connectors as wide as the streams (video 2 x 16,
    audio 2 x 8), two layers (as ``tiny.connector.tiny_config_23``)."""
    return {**tiny_config(), **_LTX23, "connector_num_layers": 2, "connector_num_attention_heads": 2,
            "connector_attention_head_dim": 16, "audio_connector_num_attention_heads": 2,
            "audio_connector_attention_head_dim": 8}


# what LTX-2.5 changes in the 2.3 section (ltx-core 1.2.0's configurator and diffusers 0.42.1 name these fields; no
# 2.5 header has been seen here): bias-free feed-forwards, no sigma-driven prompt AdaLN (the per-block prompt
# tables stay, so text keys/values are computed once per prompt), the keyframe absolute-position embedding
_LTX25 = {
    "ff_bias": False,
    "audio_ff_bias": False,
    "use_prompt_adaln_single": False,
    "use_keyframes_abs_pos_embedding": True,
}


def full_config_25() -> dict:
    """The LTX-2.5 22B ``transformer`` section as ltx-core 1.2.0 reads it: the 2.3 one plus :data:`_LTX25`."""
    return {**full_config_23(), **_LTX25}


def tiny_config_25() -> dict:
    """The 2.5 keys at the tiny widths of :func:`tiny_config_23`."""
    return {**tiny_config_23(), **_LTX25}


RELEASE_CONFIGS = {"2.0": full_config, "2.3": full_config_23, "2.5": full_config_25}
TINY_CONFIGS = {"2.0": tiny_config, "2.3": tiny_config_23, "2.5": tiny_config_25}


def build(config: dict, device: str | torch.device = "cpu") -> LTXAVTransformer:
    return LTXAVTransformer(TransformerConfig.from_header(config), device=device)
