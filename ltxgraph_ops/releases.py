"""Facts of the published LTX-2 releases that the code falls back on where a file does not carry them: the
``transformer`` header section (``config`` JSON) of each release, 2.0 (19B), 2.3 (22B) and 2.5.

The 19B section is the one its safetensors header publishes (the fields the reference configurator checks
included); the 2.3 one is tests/data/reference/ltx23_22b_config.json (the 19B section plus
:data:`LTX23_TRANSFORMER_CHANGES`); the 2.5 one is the 2.3 section plus :data:`LTX25_TRANSFORMER_CHANGES`, as
ltx-core 1.2.0 reads it (no 2.5 header has been seen here). :data:`TRANSFORMER_SECTIONS` maps a model version
to its section. The tiny test models (:mod:`ltxgraph_ops.tiny.transformer`) shrink these sections' widths; the
sizes of the other releases' components (VAEs, vocoder, upscaler) are only needed by the tiny writer and stay
there.
"""
from __future__ import annotations

# values the reference configurator insists on; the real header carries them too
REFERENCE_FIXED_FIELDS = {
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


def transformer_section_20() -> dict:
    """The 19B release's ``transformer`` header section."""
    return {
        **REFERENCE_FIXED_FIELDS,
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


# what the LTX-2.3 22B header's ``transformer`` section adds to or changes in the 19B one
LTX23_TRANSFORMER_CHANGES = {
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


def transformer_section_23() -> dict:
    """The LTX-2.3 22B release's ``transformer`` header section."""
    return {**transformer_section_20(), **LTX23_TRANSFORMER_CHANGES}


# what LTX-2.5 changes in the 2.3 section (ltx-core 1.2.0's configurator and diffusers 0.42.1 name these fields; no
# 2.5 header has been seen here): bias-free feed-forwards, no sigma-driven prompt AdaLN (the per-block prompt
# tables stay, so text keys/values are computed once per prompt), the keyframe absolute-position embedding
LTX25_TRANSFORMER_CHANGES = {
    "ff_bias": False,
    "audio_ff_bias": False,
    "use_prompt_adaln_single": False,
    "use_keyframes_abs_pos_embedding": True,
}


def transformer_section_25() -> dict:
    """The LTX-2.5 22B ``transformer`` section as ltx-core 1.2.0 reads it: the 2.3 one plus
    :data:`LTX25_TRANSFORMER_CHANGES`."""
    return {**transformer_section_23(), **LTX25_TRANSFORMER_CHANGES}


TRANSFORMER_SECTIONS = {"2.0": transformer_section_20, "2.3": transformer_section_23,
                        "2.5": transformer_section_25}
