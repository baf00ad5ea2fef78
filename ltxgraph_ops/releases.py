"""Facts of the published LTX-2 releases that the code falls back on where a file does not carry them, and that
the tools writing full-size files and checking manifests read: the header sections of each release's components,
2.0 (19B), 2.3 (22B) and 2.5, in the header's own format.

- ``transformer``: the 19B section is the one its safetensors header publishes (the fields the reference
  configurator checks included); the 2.3 one is tests/data/reference/ltx23_22b_config.json (the 19B section plus
  :data:`LTX23_TRANSFORMER_CHANGES`); the 2.5 one is the 2.3 section plus :data:`LTX25_TRANSFORMER_CHANGES`, as
  ltx-core 1.2.0 reads it (no 2.5 header has been seen here).
- ``vae`` (video VAE): 2.0 and 2.3 the convolutional VAE's sections (the 2.3 one is the 22B header's), 2.5 the
  diffusion VAE's (``CausalDiffusionVAE``: 2.3's encoder, a diffusion decoder) as ltx-core 1.2.0 reads it.
- ``audio_vae``: one section for every release (reconstructed from a published dump; 2.3 and 2.5 read no field more).
- ``vocoder``: 2.0 the flat HiFi-GAN section (reconstructed), 2.3 and 2.5 the nested ``{"vocoder", "bwe"}`` one.
- latent upscalers: each file's whole header ``config``, by release file name (:data:`UPSCALER_FILES`).

``*_SECTIONS`` map a model version to a function returning a fresh section. Each full-size section builds every key
and shape of its release manifest (tests/test_releases.py). The tiny test models (:mod:`ltxgraph_ops.tiny`) shrink
these sections' widths; production code reads releases from here, never from the tiny package.
"""
from __future__ import annotations

from ltxgraph_ops.models.diffusion_decoder import DIFFUSION_VAE_CLASS

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


# ---- video VAE (header section ``vae``)

_VIDEO_VAE_COMMON = {
    "_class_name": "CausalVideoAutoencoder",
    "dims": 3, "in_channels": 3, "out_channels": 3, "latent_channels": 128, "patch_size": 4,
    "norm_layer": "pixel_norm", "latent_log_var": "uniform", "use_quant_conv": False,
    "causal_decoder": False, "timestep_conditioning": False, "scaling_factor": 1.0,
}


def _stages(residual: list[dict], resamplers: list[tuple[str, dict]]) -> list[list]:
    """Residual stages (``res_x`` with each of ``residual``'s settings) interleaved with the resamplers: res,
    resample, res, ..., res; every entry a fresh dict."""
    blocks: list[list] = []
    for index, settings in enumerate(residual):
        blocks.append(["res_x", dict(settings)])
        if index < len(resamplers):
            blocks.append([resamplers[index][0], dict(resamplers[index][1])])
    return blocks


def _layers(*counts: int) -> list[dict]:
    return [{"num_layers": count} for count in counts]


def video_vae_section_20() -> dict:
    """The 19B release's ``vae`` section as ltx-core's configurators read it: the LTX-2 block layout, a decoder
    without timestep conditioning, no ``spatial_padding_mode`` (the encoder pads with zeros, the decoder reflects)."""
    return {
        **_VIDEO_VAE_COMMON,
        "encoder_blocks": _stages(_layers(4, 6, 6, 2, 2), [("compress_space_res", {"multiplier": 2}),
                                                          ("compress_time_res", {"multiplier": 2}),
                                                          ("compress_all_res", {"multiplier": 2}),
                                                          ("compress_all_res", {"multiplier": 2})]),
        "decoder_blocks": _stages([{"num_layers": 5, "inject_noise": False}] * 4,
                                  [("compress_all", {"residual": True, "multiplier": 2})] * 3),
    }


def video_vae_section_23() -> dict:
    """The 22B (LTX-2.3) release's ``vae`` section: decoder ``compress_all`` x2, ``compress_all`` x1,
    ``compress_time`` x2, ``compress_space`` x2 without residuals, encoder ending at 1024 channels, zero padding."""
    return {
        **_VIDEO_VAE_COMMON,
        "encoder_blocks": _stages(_layers(4, 6, 4, 2, 2), [("compress_space_res", {"multiplier": 2}),
                                                          ("compress_time_res", {"multiplier": 2}),
                                                          ("compress_all_res", {"multiplier": 2}),
                                                          ("compress_all_res", {"multiplier": 1})]),
        "decoder_blocks": _stages(_layers(4, 6, 4, 2, 2), [("compress_space", {"multiplier": 2}),
                                                          ("compress_time", {"multiplier": 2}),
                                                          ("compress_all", {"multiplier": 1}),
                                                          ("compress_all", {"multiplier": 2})]),
        "normalize_latent_channels": False,
        "encoder_base_channels": 128,
        "decoder_base_channels": 128,
        "spatial_padding_mode": "zeros",
    }


# the diffusion decoder's four upsamplers: [[frames, height, width] factors, channel reduction]
DIFFUSION_VAE_UPSAMPLES = [[[1, 2, 2], 2], [[2, 1, 1], 2], [[2, 2, 2], 1], [[2, 2, 2], 2]]


def diffusion_vae_encoder(section_23: dict) -> dict:
    """The diffusion VAE's nested ``encoder`` config (``blocks``) from a flat LTX-2.3 ``vae`` section."""
    return {"blocks": section_23["encoder_blocks"], "in_channels": 3, "out_channels": 128, "patch_size": 4,
            "norm_layer": "pixel_norm", "latent_log_var": section_23.get("latent_log_var", "uniform"),
            "spatial_padding_mode": section_23.get("spatial_padding_mode", "zeros"), "dims": 3}


def video_vae_section_25() -> dict:
    """The LTX-2.5 release's ``vae`` section (the split ``ltx-2.5-video-vae`` file and the single file) as ltx-core
    1.2.0 reads it: 2.3's encoder; a decoder of stage widths 2048 ... 256, depths 4, 6, 4, 2 and 8 diffusion
    blocks, one x0 step with timesteps x 1000, as diffusers 0.42.1 ships it."""
    return {
        "_class_name": DIFFUSION_VAE_CLASS, "latent_channels": 128, "model_output_type": "x0",
        "temporal_compression_ratio": 8, "spatial_compression_ratio": 32,
        "encoder": diffusion_vae_encoder(video_vae_section_23()),
        "decoder": {"in_channels": 128, "out_channels": 3, "patch_size": 4, "head_dim": 64, "t_emb_dim": 384,
                    "stage_channels": [2048, 1024, 512, 512, 256], "stage_depths": [4, 6, 4, 2, 8],
                    "stage_kernels": [[3, 7, 7], [3, 7, 7], [3, 5, 5], [3, 5, 5], [3, 3, 3]],
                    "upsamples": [[list(factors), reduction] for factors, reduction in DIFFUSION_VAE_UPSAMPLES],
                    "stage5_kernel": [11, 11, 11], "default_num_inference_steps": 1,
                    "timestep_scale_multiplier": 1000.0},
    }


VIDEO_VAE_SECTIONS = {"2.0": video_vae_section_20, "2.3": video_vae_section_23, "2.5": video_vae_section_25}


# ---- audio VAE (header section ``audio_vae``)

def audio_vae_section() -> dict:
    """The ``audio_vae`` section of every release (2.0's, reconstructed from a published dump; 2.3's has the same
    architecture, 102 tensors as in the 22B manifest; ltx-core 1.2.0's configurators read no field 2.5 adds, and
    its split ``ltx-2.5-audio-vae`` file carries the same section), as ltx-core's Audio{En,De}coderConfigurator
    read it: ``model.params.ddconfig`` (architecture), ``model.params.sampling_rate``, ``preprocessing``."""
    return {
        "model": {"params": {
            "ddconfig": {
                "double_z": True, "mel_bins": 64, "z_channels": 8, "resolution": 256, "downsample_time": False,
                "in_channels": 2, "out_ch": 2, "ch": 128, "ch_mult": [1, 2, 4], "num_res_blocks": 2,
                "attn_resolutions": [], "dropout": 0.0, "mid_block_add_attention": False, "norm_type": "pixel",
                "causality_axis": "height",
            },
            "sampling_rate": 16000,
        }},
        "preprocessing": {
            "audio": {"sampling_rate": 16000, "max_wav_value": 32768.0, "duration": 5.12, "stereo": True,
                      "causal_padding": 3},
            "stft": {"filter_length": 1024, "hop_length": 160, "win_length": 1024, "causal": True},
            "mel": {"n_mel_channels": 64, "mel_fmin": 0, "mel_fmax": 8000},
        },
    }


AUDIO_VAE_SECTIONS = {"2.0": audio_vae_section, "2.3": audio_vae_section, "2.5": audio_vae_section}


# ---- vocoder (header section ``vocoder``)

def vocoder_section_20() -> dict:
    """The 19B release's flat ``vocoder`` section (ltx-core's VocoderConfigurator for pre-2.3 checkpoints;
    reconstructed from the facts and the manifest's shapes): no ``output_sampling_rate``, so 24 kHz."""
    return {
        "resblock": "1",
        "stereo": True,
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "upsample_rates": [6, 5, 2, 2, 2],
        "upsample_kernel_sizes": [16, 15, 8, 4, 4],
        "upsample_initial_channel": 1024,
    }


def vocoder_section_23() -> dict:
    """The 22B release's nested ``vocoder`` section: a BigVGAN v2 stage at 16 kHz (``vocoder``) and the bandwidth
    extension to 48 kHz (``bwe``). LTX-2.5 ships the same (ltx-trainer 1.2.0's model table: ``VocoderWithBWE``,
    chosen by the nested ``bwe`` section)."""
    stage = {"resblock": "AMP1", "activation": "snakebeta", "stereo": True, "use_tanh_at_final": False,
             "use_bias_at_final": False, "resblock_kernel_sizes": [3, 7, 11],
             "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]]}
    return {
        "vocoder": {**stage, "upsample_initial_channel": 1536, "upsample_rates": [5, 2, 2, 2, 2, 2],
                    "upsample_kernel_sizes": [11, 4, 4, 4, 4, 4]},
        "bwe": {**stage, "upsample_initial_channel": 512, "upsample_rates": [6, 5, 2, 2, 2],
                "upsample_kernel_sizes": [12, 11, 4, 4, 4], "apply_final_activation": False,
                "input_sampling_rate": 16000, "output_sampling_rate": 48000, "hop_length": 80, "n_fft": 512,
                "win_size": 512, "num_mels": 64},
    }


VOCODER_SECTIONS = {"2.0": vocoder_section_20, "2.3": vocoder_section_23, "2.5": vocoder_section_23}


# ---- latent upscalers (a file of its own each: the whole header ``config``)

def upscaler_spatial_x2() -> dict:
    """The x2 spatial upscaler's header (2.0 x2 1.0, 2.3 x2 1.1)."""
    return {"_class_name": "LatentUpsampler", "in_channels": 128, "mid_channels": 1024, "num_blocks_per_stage": 4,
            "dims": 3, "spatial_upsample": True, "temporal_upsample": False, "spatial_scale": 2.0,
            "rational_resampler": False}


def upscaler_spatial_x1_5() -> dict:
    """The 2.3 x1.5 spatial upscaler's header (reconstructed from the reference configurator's fields)."""
    return {**upscaler_spatial_x2(), "spatial_scale": 1.5, "rational_resampler": True}


def upscaler_temporal_x2() -> dict:
    """The 2.3 x2 temporal upscaler's header (reconstructed from the reference configurator's fields)."""
    return {**upscaler_spatial_x2(), "spatial_upsample": False, "temporal_upsample": True}


UPSCALER_FILES = {  # release file name -> its header ``config``
    "ltx-2-spatial-upscaler-x2-1.0.safetensors": upscaler_spatial_x2,
    "ltx-2.3-spatial-upscaler-x2-1.1.safetensors": upscaler_spatial_x2,
    "ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors": upscaler_spatial_x1_5,
    "ltx-2.3-temporal-upscaler-x2-1.0.safetensors": upscaler_temporal_x2,
    # the name ComfyUI's LTX-2.5 templates load; no 2.5 upscaler header has been seen: the x2 one is assumed
    "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors": upscaler_spatial_x2,
}
