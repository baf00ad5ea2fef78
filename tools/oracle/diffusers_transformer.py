"""Parity of ltxgraph's LTX-2 transformer with diffusers 0.42.1's ``LTX2VideoTransformer3DModel`` (a second,
independent reference) on identical tiny weights: LTX-2.0 (keys ``diffusers_transformer_*``), LTX-2.3 (gated
attention, cross-attention AdaLN, no caption projection; keys ``ltx23_transformer_*``) and LTX-2.5 (bias-free
feed-forwards, static prompt tables, keyframe embedding on the first latent frame; keys ``ltx25_transformer*``).

Every scenario runs a batch of two in float32 over a 3-frame, 2 x 3 (non-square) video grid and 5 audio frames,
with padded text and a different sigma per sample, asserts both outputs are finite and not constant, and returns
the max absolute difference of the velocities. LTX-2.0 scenarios also have per-token noise masks and a different
sigma per stream; LTX-2.3 scenarios give both streams the same sigma and no noise mask (see below).

Conventions bridged here (facts of the two codes, not approximations):
- diffusers takes timesteps and sigmas already multiplied by ``timestep_scale_multiplier``.
- audio<->video attention modulation. ltx-core 1.0.0: scale, shift and gate from the OTHER stream's sigma
  (diffusers ``use_cross_timestep=True``; our LTX-2.0 path). ltx-core 1.2.0: gate from the other stream's sigma,
  scale and shift from the stream's OWN per-token timesteps (our LTX-2.3+ path; ltx-core wins). diffusers has no
  mode for 1.2.0's mix (``False`` takes the gate from the own timesteps too), so LTX-2.3 is compared where the two
  coincide: every token's timestep equals both streams' sigma (no noise mask, one sigma per sample for both
  streams). tools/oracle/ltx_core_12_transformer.py compares the general case with ltx-core 1.2.0 itself.
- diffusers masks padded text with -10000, ltx-core with -max(float32): both give exactly 0 attention weight in
  float32 softmax.
- key names: ``DIFFUSERS_NAMES`` renames checkpoint (ltx-core) names to diffusers' module names.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from ltxgraph_ops.models.transformer import (LTXAVTransformer, Perturbations, StreamInput,  # noqa: E402
                                             TransformerConfig)
from ltxgraph_ops.models.transformer_tokens import (audio_positions, audio_tokens,  # noqa: E402
                                                    first_frame_keyframes_mask, video_positions, video_tokens)
from ltxgraph_ops.tiny import transformer as tiny  # noqa: E402
from tools.oracle.transformer import max_error, random_state  # noqa: E402

BATCH = 2
FRAMES, HEIGHT, WIDTH = 3, 2, 3
AUDIO_FRAMES = 5
TEXT_TOKENS = 7
FPS = 25.0
SEED = 4321

# checkpoint name fragment -> diffusers name fragment, applied in this order
DIFFUSERS_NAMES = (
    ("audio_patchify_proj.", "audio_proj_in."),
    ("patchify_proj.", "proj_in."),
    ("av_ca_video_scale_shift_adaln_single.", "av_cross_attn_video_scale_shift."),
    ("av_ca_audio_scale_shift_adaln_single.", "av_cross_attn_audio_scale_shift."),
    ("av_ca_a2v_gate_adaln_single.", "av_cross_attn_video_a2v_gate."),
    ("av_ca_v2a_gate_adaln_single.", "av_cross_attn_audio_v2a_gate."),
    ("audio_prompt_adaln_single.", "audio_prompt_adaln."),
    ("prompt_adaln_single.", "prompt_adaln."),
    ("audio_adaln_single.", "audio_time_embed."),
    ("adaln_single.", "time_embed."),
    ("scale_shift_table_a2v_ca_video", "video_a2v_cross_attn_scale_shift_table"),
    ("scale_shift_table_a2v_ca_audio", "audio_a2v_cross_attn_scale_shift_table"),
    (".q_norm.", ".norm_q."),
    (".k_norm.", ".norm_k."),
)


def diffusers_name(key: str) -> str:
    """A checkpoint key in diffusers' naming (longer names first, so ``adaln_single.`` meets only the bare one)."""
    for old, new in DIFFUSERS_NAMES:
        key = key.replace(old, new)
    return key


def diffusers_model(config: dict) -> torch.nn.Module:
    """diffusers' transformer with the header-format ``config``'s architecture (float32, CPU)."""
    from diffusers import LTX2VideoTransformer3DModel
    c = TransformerConfig.from_header(config)
    video_max = c.positional_embedding_max_pos
    model = LTX2VideoTransformer3DModel(
        in_channels=c.in_channels, out_channels=c.out_channels, num_attention_heads=c.num_attention_heads,
        attention_head_dim=c.attention_head_dim, cross_attention_dim=c.cross_attention_dim,
        pos_embed_max_pos=video_max[0], base_height=video_max[1], base_width=video_max[2],
        audio_in_channels=c.audio_in_channels, audio_out_channels=c.audio_out_channels,
        audio_num_attention_heads=c.audio_num_attention_heads, audio_attention_head_dim=c.audio_attention_head_dim,
        audio_cross_attention_dim=c.audio_cross_attention_dim,
        audio_pos_embed_max_pos=c.audio_positional_embedding_max_pos[0], num_layers=c.num_layers,
        norm_eps=c.norm_eps, caption_channels=c.caption_channels, rope_theta=c.positional_embedding_theta,
        rope_double_precision=c.frequencies_precision == "float64", rope_type=c.rope_type,
        timestep_scale_multiplier=c.timestep_scale_multiplier,
        cross_attn_timestep_scale_multiplier=c.av_ca_timestep_scale_multiplier,
        gated_attn=c.apply_gated_attention, audio_gated_attn=c.apply_gated_attention,
        cross_attn_mod=c.cross_attention_adaln, audio_cross_attn_mod=c.cross_attention_adaln,
        use_prompt_embeddings=not c.caption_proj_before_connector,
        use_prompt_adaln_single=c.use_prompt_adaln_single, ff_bias=c.ff_bias, audio_ff_bias=c.audio_ff_bias,
        use_keyframes_abs_pos_embedding=c.use_keyframes_abs_pos_embedding,
        perturbed_attn=True)   # its attention processor that implements STG (same weights)
    return model.float().eval()


@dataclass
class Pair:
    ours: LTXAVTransformer
    reference: torch.nn.Module
    config: TransformerConfig


def build_pair(config: dict, seed: int = SEED) -> Pair:
    """Ours and diffusers' with the same seeded weights; every tensor of each is filled (strict both ways)."""
    ours = LTXAVTransformer(TransformerConfig.from_header(config))
    reference = diffusers_model(config)
    state = random_state(ours, seed)
    ours.load_state_dict(state, strict=True)
    reference.load_state_dict({diffusers_name(key): value for key, value in state.items()}, strict=True)
    return Pair(ours.eval(), reference, ours.config)


def stream_inputs(config: TransformerConfig, seed: int = SEED + 1, same_timesteps: bool = False
                  ) -> tuple[StreamInput, StreamInput]:
    """Video and audio inputs: first video frame kept, a half-renoised region in sample 1, two audio frames kept
    in sample 0, different sigmas per sample and stream, text padded by 2 and 3 tokens. ``same_timesteps``: no
    noise masks and the video's sigmas for the audio too."""
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator)

    def text_width(stream_width: int) -> int:
        return stream_width if config.caption_proj_before_connector else config.caption_channels

    mask = torch.ones(BATCH, TEXT_TOKENS, dtype=torch.int64)
    mask[0, -2:] = 0
    mask[1, -3:] = 0
    video_mask = torch.ones(BATCH, FRAMES * HEIGHT * WIDTH)
    video_mask[:, :HEIGHT * WIDTH] = 0.0
    video_mask[1, -2:] = 0.5
    audio_mask = torch.ones(BATCH, AUDIO_FRAMES)
    audio_mask[0, :2] = 0.0
    video = StreamInput(latent=video_tokens(randn(BATCH, config.in_channels, FRAMES, HEIGHT, WIDTH)),
                        sigma=torch.tensor([0.7, 0.4]),
                        positions=video_positions(FRAMES, HEIGHT, WIDTH, FPS, batch=BATCH),
                        context=randn(BATCH, TEXT_TOKENS, text_width(config.video_dim)), context_mask=mask,
                        noise_mask=video_mask)
    audio = StreamInput(latent=audio_tokens(randn(BATCH, 8, AUDIO_FRAMES, config.audio_in_channels // 8)),
                        sigma=torch.tensor([0.9, 0.25]), positions=audio_positions(AUDIO_FRAMES, batch=BATCH),
                        context=randn(BATCH, TEXT_TOKENS, text_width(config.audio_dim)), context_mask=mask,
                        noise_mask=audio_mask)
    if same_timesteps:
        video, audio = replace(video, noise_mask=None), replace(audio, sigma=video.sigma, noise_mask=None)
    return video, audio


def raw_text(stream: StreamInput, original: StreamInput) -> StreamInput:
    """``stream`` with the text of ``original`` (undoes a PreparedText for the reference)."""
    return replace(stream, context=original.context, context_mask=original.context_mask)


@torch.no_grad()
def reference_velocity(pair: Pair, video: StreamInput, audio: StreamInput, perturbations: Perturbations
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """diffusers' velocities for the same inputs; ``perturbations`` as diffusers expresses them: STG on the same
    blocks of both streams (value-only self-attention, perturbed samples masked 0) and modality isolation."""
    stg_blocks = sorted(perturbations.skip_video_self_attention)
    if stg_blocks != sorted(perturbations.skip_audio_self_attention):
        raise ValueError("diffusers applies STG to the same blocks of both streams")
    isolate = perturbations.skip_audio_to_video == "all" and perturbations.skip_video_to_audio == "all"
    keep = None if perturbations.samples is None else (~perturbations.samples.bool()).float()
    scale = pair.config.timestep_scale_multiplier
    out = pair.reference(
        hidden_states=video.latent, audio_hidden_states=audio.latent,
        encoder_hidden_states=video.context, audio_encoder_hidden_states=audio.context,
        timestep=video.timesteps() * scale, audio_timestep=audio.timesteps() * scale,
        sigma=video.sigma * scale, audio_sigma=audio.sigma * scale,
        encoder_attention_mask=video.context_mask, audio_encoder_attention_mask=audio.context_mask,
        video_coords=video.positions, audio_coords=audio.positions, use_cross_timestep=True,
        video_keyframes_mask=None if video.keyframes_mask is None else video.keyframes_mask[..., None],
        spatio_temporal_guidance_blocks=stg_blocks, perturbation_mask=keep, isolate_modalities=isolate,
        return_dict=False)
    return out[0], out[1]


def informative(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` after asserting it is finite and not constant (a parity of two broken outputs proves nothing)."""
    if not bool(torch.isfinite(tensor).all()):
        raise AssertionError(f"{name} has non-finite values")
    if float(tensor.max() - tensor.min()) == 0.0:
        raise AssertionError(f"{name} is constant")
    return tensor


@torch.no_grad()
def scenario(config: dict, perturbations: Perturbations = Perturbations(), prepared_text: bool = False) -> float:
    pair = build_pair(config)
    video, audio = stream_inputs(pair.config, same_timesteps=pair.config.av_modulation_own_timesteps)
    if pair.config.use_keyframes_abs_pos_embedding:   # LTX-2.5: the first latent frame marked (as ltx-core 1.2.0)
        video = replace(video, keyframes_mask=first_frame_keyframes_mask(BATCH, video.latent.shape[1],
                                                                         HEIGHT * WIDTH))
    ours_video, ours_audio = video, audio
    if prepared_text:
        prepared = {name: pair.ours.prepare_text(name, s.context, s.context_mask, sigma=s.sigma)
                    for name, s in (("video", video), ("audio", audio))}
        ours_video = replace(video, context=prepared["video"], context_mask=None)
        ours_audio = replace(audio, context=prepared["audio"], context_mask=None)
    ours = pair.ours(ours_video, ours_audio, perturbations)
    ref_video, ref_audio = reference_velocity(pair, video, audio, perturbations)
    return max(max_error(informative("our video velocity", ours.video), informative("diffusers video", ref_video)),
               max_error(informative("our audio velocity", ours.audio), informative("diffusers audio", ref_audio)))


def ltx20() -> dict:
    return tiny.tiny_config()


def ltx23() -> dict:
    return tiny.tiny_config_23()


def ltx25() -> dict:
    return tiny.tiny_config_25()


STG_SAMPLE_1 = Perturbations(skip_video_self_attention=frozenset({0}), skip_audio_self_attention=frozenset({0}),
                             samples=torch.tensor([False, True]))

CHECKS: dict[str, Callable[[], float]] = {
    "diffusers_transformer_av": lambda: scenario(ltx20()),
    "diffusers_transformer_stg_block_1": lambda: scenario(ltx20(), Perturbations.stg([1])),
    "diffusers_transformer_modality_isolation": lambda: scenario(ltx20(), Perturbations.isolate_modalities()),
    "ltx23_transformer_av": lambda: scenario(ltx23()),
    "ltx23_transformer_stg_block_1": lambda: scenario(ltx23(), Perturbations.stg([1])),
    "ltx23_transformer_stg_partial_batch": lambda: scenario(ltx23(), STG_SAMPLE_1),
    "ltx23_transformer_modality_isolation": lambda: scenario(ltx23(), Perturbations.isolate_modalities()),
    "ltx23_transformer_text_prepared": lambda: scenario(ltx23(), prepared_text=True),
    "ltx23_transformer_static_prompt_table": lambda: scenario({**ltx23(), "use_prompt_adaln_single": False},
                                                              prepared_text=True),
    "ltx23_transformer_interleaved_rope": lambda: scenario({**ltx23(), "rope_type": "interleaved",
                                                            "frequencies_precision": "float32"}),
    "ltx25_transformer": lambda: scenario(ltx25()),
    "ltx25_transformer_text_prepared": lambda: scenario(ltx25(), prepared_text=True),
    "ltx25_transformer_stg_partial_batch": lambda: scenario(ltx25(), STG_SAMPLE_1),
    "ltx25_transformer_modality_isolation": lambda: scenario(ltx25(), Perturbations.isolate_modalities()),
}
