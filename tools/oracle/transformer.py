"""Parity of ltxgraph's LTX-2 transformer with ltx-core 1.0.0's ``LTXModel`` on identical tiny weights.

The reference is built by ltx-core's own configurator from the same header-format dict that
``ltxgraph_ops/tiny/transformer.py`` returns, so the config format is proven along with the math. Every scenario runs a
batch of two in float32 and returns the max absolute difference of the velocities (or positions / x0).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from ltxgraph_ops.models.transformer import (LTXAVTransformer, Perturbations, StreamInput,  # noqa: E402
                                             TransformerConfig, denoised)
from ltxgraph_ops.models.transformer_tokens import (audio_positions, audio_tokens, guide_attention_mask,  # noqa: E402
                                                    video_positions, video_tokens)
from ltxgraph_ops.tiny import transformer as tiny  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402

BATCH = 2
FRAMES, HEIGHT, WIDTH = 3, 2, 3         # video latent grid
AUDIO_FRAMES = 5
TEXT_TOKENS = 7
FPS = 25.0
SEED = 1234


# ------------------------------------------------------------------------------------------- weights, models


def random_state(model: torch.nn.Module, seed: int = SEED) -> dict[str, torch.Tensor]:
    """Seeded weights that keep activations O(1): linear weights ~ N(0, 1/fan_in), biases and modulation
    tables ~ N(0, 0.1^2) and N(0, 0.5^2), norm weights ~ 1 + N(0, 0.1^2)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, tensor in sorted(model.state_dict().items()):
        noise = torch.randn(tensor.shape, generator=generator)
        if key.endswith("norm.weight"):
            value = 1 + 0.1 * noise
        elif "scale_shift_table" in key:
            value = 0.5 * noise
        elif key.endswith(".bias"):
            value = 0.1 * noise
        else:
            value = noise / tensor.shape[-1] ** 0.5
        state[key] = value
    return state


def reference_model(config: dict, video: bool = True, audio: bool = True) -> torch.nn.Module:
    """ltx-core's model from the header-format ``config`` (its configurator, CPU, materialised)."""
    from ltx_core.model.transformer.model_configurator import (LTXModelConfigurator,
                                                               LTXVideoOnlyModelConfigurator)
    with torch.device("cpu"):
        if video and audio:
            model = LTXModelConfigurator.from_config({"transformer": config})
        elif video:
            model = LTXVideoOnlyModelConfigurator.from_config({"transformer": config})
        else:
            model = audio_only_reference(config)
    return model.to_empty(device="cpu").float().eval()


def audio_only_reference(config: dict) -> torch.nn.Module:
    """ltx-core 1.0.0 has no configurator for audio-only models; its model class takes them directly."""
    from ltx_core.model.transformer.model import LTXModel, LTXModelType
    from ltx_core.model.transformer.rope import LTXRopeType
    from ltx_core.model.transformer.text_projection import create_caption_projection
    return LTXModel(
        model_type=LTXModelType.AudioOnly, num_layers=config["num_layers"],
        audio_num_attention_heads=config["audio_num_attention_heads"],
        audio_attention_head_dim=config["audio_attention_head_dim"],
        audio_cross_attention_dim=config["audio_cross_attention_dim"],
        audio_positional_embedding_max_pos=config["audio_positional_embedding_max_pos"],
        positional_embedding_theta=config["positional_embedding_theta"],
        timestep_scale_multiplier=config["timestep_scale_multiplier"], norm_eps=config["norm_eps"],
        rope_type=LTXRopeType(config["rope_type"]),
        double_precision_rope=config["frequencies_precision"] == "float64",
        audio_caption_projection=create_caption_projection(config, audio=True))


@dataclass
class Pair:
    ours: LTXAVTransformer
    reference: torch.nn.Module


def build_pair(config: dict, video: bool = True, audio: bool = True) -> Pair:
    ours = LTXAVTransformer(TransformerConfig.from_header(config, has_video=video, has_audio=audio))
    reference = reference_model(config, video, audio)
    state = random_state(ours)
    ours.load_state_dict(state, strict=True)
    reference.load_state_dict(state, strict=True)
    return Pair(ours.eval(), reference)


# ------------------------------------------------------------------------------------------- inputs


def random(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=generator)


def text_mask() -> torch.Tensor:
    """Sample 0 pads its last 2 text tokens, sample 1 its last 3."""
    mask = torch.ones(BATCH, TEXT_TOKENS, dtype=torch.int64)
    mask[0, -2:] = 0
    mask[1, -3:] = 0
    return mask


def video_input(config: dict, generator: torch.Generator) -> StreamInput:
    latent = random((BATCH, config["in_channels"], FRAMES, HEIGHT, WIDTH), generator)
    tokens = FRAMES * HEIGHT * WIDTH
    noise_mask = torch.ones(BATCH, tokens)
    noise_mask[:, : HEIGHT * WIDTH] = 0.0          # first frame kept (image-to-video)
    noise_mask[1, -2:] = 0.5                       # a partly renoised region in sample 1
    return StreamInput(
        latent=video_tokens(latent),
        sigma=torch.tensor([0.7, 0.4]),
        positions=video_positions(FRAMES, HEIGHT, WIDTH, FPS, batch=BATCH),
        context=random((BATCH, TEXT_TOKENS, config["caption_channels"]), generator),
        context_mask=text_mask(),
        noise_mask=noise_mask,
    )


def audio_input(config: dict, generator: torch.Generator) -> StreamInput:
    latent = random((BATCH, 8, AUDIO_FRAMES, 16), generator)
    noise_mask = torch.ones(BATCH, AUDIO_FRAMES)
    noise_mask[0, :2] = 0.0
    return StreamInput(
        latent=audio_tokens(latent),
        sigma=torch.tensor([0.9, 0.25]),
        positions=audio_positions(AUDIO_FRAMES, batch=BATCH),
        context=random((BATCH, TEXT_TOKENS, config["caption_channels"]), generator),
        context_mask=text_mask(),
        noise_mask=noise_mask,
    )


def to_modality(stream: StreamInput | None):
    """The same stream in ltx-core's input type (timesteps [B, T, 1] as its pipelines build them)."""
    from ltx_core.model.transformer.modality import Modality
    if stream is None:
        return None
    return Modality(latent=stream.latent, sigma=stream.sigma, timesteps=stream.timesteps().unsqueeze(-1),
                    positions=stream.positions, context=stream.context, enabled=stream.enabled,
                    context_mask=stream.context_mask, attention_mask=stream.attention_mask)


def to_reference_perturbations(p: Perturbations, batch: int):
    """Our perturbation description as ltx-core's per-sample configs."""
    from ltx_core.guidance.perturbations import (BatchedPerturbationConfig, Perturbation, PerturbationConfig,
                                                 PerturbationType)
    kinds = [(PerturbationType.SKIP_VIDEO_SELF_ATTN, p.skip_video_self_attention),
             (PerturbationType.SKIP_AUDIO_SELF_ATTN, p.skip_audio_self_attention),
             (PerturbationType.SKIP_A2V_CROSS_ATTN, p.skip_audio_to_video),
             (PerturbationType.SKIP_V2A_CROSS_ATTN, p.skip_video_to_audio)]
    listed = [Perturbation(type=kind, blocks=None if blocks == "all" else sorted(blocks))
              for kind, blocks in kinds if blocks == "all" or blocks]
    samples = [True] * batch if p.samples is None else [bool(s) for s in p.samples]
    return BatchedPerturbationConfig([PerturbationConfig(listed if chosen else []) for chosen in samples])


def max_error(a: torch.Tensor | None, b: torch.Tensor | None) -> float:
    if a is None and b is None:
        return 0.0
    if a is None or b is None or a.shape != b.shape:
        raise AssertionError(f"outputs differ in presence or shape: {getattr(a, 'shape', None)} vs "
                             f"{getattr(b, 'shape', None)}")
    return compared("transformer", a, b)


@torch.no_grad()
def compare(pair: Pair, video: StreamInput | None, audio: StreamInput | None,
            perturbations: Perturbations = Perturbations()) -> float:
    ours = pair.ours(video, audio, perturbations)
    ref_v, ref_a = pair.reference(to_modality(video), to_modality(audio),
                                  to_reference_perturbations(perturbations, BATCH))
    return max(max_error(ours.video, ref_v), max_error(ours.audio, ref_a))


def scenario(config: dict | None = None, video: bool = True, audio: bool = True,
             model_video: bool = True, model_audio: bool = True,
             perturbations: Perturbations = Perturbations(),
             edit: Callable[[StreamInput | None, StreamInput | None], tuple] | None = None) -> float:
    config = config or tiny.tiny_config()
    pair = build_pair(config, model_video, model_audio)
    generator = torch.Generator().manual_seed(SEED + 1)
    v = video_input(config, generator) if video else None
    a = audio_input(config, generator) if audio else None
    if edit is not None:
        v, a = edit(v, a)
    return compare(pair, v, a, perturbations)


# ------------------------------------------------------------------------------------------- scenarios


def check_av_split_float64() -> float:
    """The release's settings: split RoPE, float64 frequency ladder; noise masks, padded text."""
    return scenario()


def check_av_interleaved_float32() -> float:
    return scenario({**tiny.tiny_config(), "rope_type": "interleaved", "frequencies_precision": "float32"})


def check_av_other_rope_constants() -> float:
    """``use_middle_indices_grid: false`` is rejected by ltx-core's configurator; the interleaved layout
    with a different theta and max_pos covers the remaining RoPE arithmetic."""
    return scenario({**tiny.tiny_config(), "rope_type": "interleaved", "positional_embedding_theta": 500.0,
                     "positional_embedding_max_pos": [12, 256, 512], "audio_positional_embedding_max_pos": [30]})


def check_av_unequal_heads() -> float:
    """Video and audio with different head counts (split RoPE tables cut per stream's heads)."""
    return scenario({**tiny.tiny_config(), "num_attention_heads": 4, "attention_head_dim": 8,
                     "audio_num_attention_heads": 2, "audio_attention_head_dim": 8})


def check_av_gate_multiplier_default() -> float:
    """ltx-core's code default av_ca_timestep_scale_multiplier 1 (gate timestep = sigma, not sigma * 1000)."""
    return scenario({**tiny.tiny_config(), "av_ca_timestep_scale_multiplier": 1})


def guided_video(stream: StreamInput, generator: torch.Generator) -> StreamInput:
    """Append two guides: a 1-frame keyframe at pixel frame 0 (strength 1, full attention) and a 1-frame
    keyframe at pixel frame 17 (strength 0.8, attention weight 0.6)."""
    channels = stream.latent.shape[-1]
    guides = [(0, 1.0, 1.0), (17, 0.8, 0.6)]
    latents, positions, masks = [stream.latent], [stream.positions], [stream.noise_mask]
    for frame, strength, _ in guides:
        latent = random((BATCH, channels, 1, HEIGHT, WIDTH), generator)
        latents.append(video_tokens(latent))
        positions.append(video_positions(1, HEIGHT, WIDTH, FPS, batch=BATCH, first_frame=frame))
        masks.append(torch.full((BATCH, HEIGHT * WIDTH), 1.0 - strength))
    weights = guide_attention_mask(FRAMES * HEIGHT * WIDTH, [HEIGHT * WIDTH] * len(guides),
                                   [w for _, _, w in guides], batch=BATCH)
    return replace(stream, latent=torch.cat(latents, 1), positions=torch.cat(positions, 2),
                   noise_mask=torch.cat(masks, 1), attention_mask=weights)


def check_guides_with_attention_strength() -> float:
    generator = torch.Generator().manual_seed(SEED + 2)
    return scenario(edit=lambda v, a: (guided_video(v, generator), a))


def check_guide_positions_and_mask_match_reference_conditioning() -> float:
    """Our position helpers and guide attention weights equal what ltx-core's conditioning items build."""
    from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier
    from ltx_core.conditioning.types.attention_strength_wrapper import ConditioningItemAttentionStrengthWrapper
    from ltx_core.conditioning.types.keyframe_cond import VideoConditionByKeyframeIndex
    from ltx_core.tools import AudioLatentTools, VideoLatentTools
    from ltx_core.types import AudioLatentShape, VideoLatentShape

    tools = VideoLatentTools(VideoLatentPatchifier(1), VideoLatentShape(BATCH, 4, FRAMES, HEIGHT, WIDTH), fps=FPS)
    state = tools.create_initial_state("cpu", torch.float32)
    keyframe = torch.zeros(BATCH, 4, 1, HEIGHT, WIDTH)
    for frame, weight in ((0, 1.0), (17, 0.6)):
        state = ConditioningItemAttentionStrengthWrapper(VideoConditionByKeyframeIndex(keyframe, frame, 0.8),
                                                         weight).apply_to(state, tools)
    ours = torch.cat([video_positions(FRAMES, HEIGHT, WIDTH, FPS, batch=BATCH),
                      video_positions(1, HEIGHT, WIDTH, FPS, batch=BATCH, first_frame=0),
                      video_positions(1, HEIGHT, WIDTH, FPS, batch=BATCH, first_frame=17)], dim=2)
    weights = guide_attention_mask(FRAMES * HEIGHT * WIDTH, [HEIGHT * WIDTH] * 2, [1.0, 0.6], batch=BATCH)
    audio_tools = AudioLatentTools(AudioPatchifier(16), AudioLatentShape(BATCH, 8, AUDIO_FRAMES, 16))
    audio_state = audio_tools.create_initial_state("cpu", torch.float32)
    return max(max_error(ours, state.positions), max_error(weights, state.attention_mask),
               max_error(audio_positions(AUDIO_FRAMES, batch=BATCH), audio_state.positions))


def check_stg_block_1() -> float:
    """STG as the reference pipelines run it: value-only self-attention of both streams in block 1."""
    return scenario(perturbations=Perturbations.stg([1]))


def check_stg_video_only_partial_batch() -> float:
    """STG on the video stream in block 0 for sample 0 only (a batched guidance pass)."""
    return scenario(perturbations=Perturbations(skip_video_self_attention=frozenset({0}),
                                                samples=torch.tensor([True, False])))


def check_modality_isolation() -> float:
    """Modality guidance: both audio<->video attentions skipped in every block."""
    return scenario(perturbations=Perturbations.isolate_modalities())


def check_modality_isolation_partial() -> float:
    return scenario(perturbations=Perturbations(skip_audio_to_video="all", skip_video_to_audio=frozenset({1}),
                                                samples=torch.tensor([False, True])))


def check_video_input_only() -> float:
    return scenario(audio=False)


def check_audio_input_only() -> float:
    return scenario(video=False)


def check_video_only_model() -> float:
    return scenario(audio=False, model_audio=False)


def check_audio_only_model() -> float:
    return scenario(video=False, model_video=False)


def check_audio_stream_disabled() -> float:
    """A stream the guider skips this step: its tokens stay fixed but still feed the video stream."""
    return scenario(edit=lambda v, a: (v, replace(a, enabled=False)))


@torch.no_grad()
def check_denoised_x0() -> float:
    """x0 = x - v * (noise_mask * sigma) against ltx-core's X0Model."""
    from ltx_core.model.transformer.model import X0Model
    config = tiny.tiny_config()
    pair = build_pair(config)
    generator = torch.Generator().manual_seed(SEED + 1)
    v, a = video_input(config, generator), audio_input(config, generator)
    velocity = pair.ours(v, a)
    ref_v, ref_a = X0Model(pair.reference)(to_modality(v), to_modality(a), to_reference_perturbations(
        Perturbations(), BATCH))
    return max(max_error(denoised(v, velocity.video), ref_v), max_error(denoised(a, velocity.audio), ref_a))


@torch.no_grad()
def check_text_cache() -> float:
    """Ours with the text keys/values prepared once (PreparedText) vs ltx-core on the raw text, with STG on
    block 1 (the cached values also feed nothing else: the value-only path reads the stream's own tokens)."""
    config = tiny.tiny_config()
    pair = build_pair(config)
    generator = torch.Generator().manual_seed(SEED + 1)
    v, a = video_input(config, generator), audio_input(config, generator)
    cached_v = replace(v, context=pair.ours.prepare_text("video", v.context, v.context_mask), context_mask=None)
    cached_a = replace(a, context=pair.ours.prepare_text("audio", a.context, a.context_mask), context_mask=None)
    errors = []
    for perturbations in (Perturbations(), Perturbations.stg([1])):
        ours = pair.ours(cached_v, cached_a, perturbations)
        ref_v, ref_a = pair.reference(to_modality(v), to_modality(a),
                                      to_reference_perturbations(perturbations, BATCH))
        errors += [max_error(ours.video, ref_v), max_error(ours.audio, ref_a)]
    return max(errors)


CHECKS: dict[str, Callable[[], float]] = {
    "transformer_av_split_float64": check_av_split_float64,
    "transformer_av_interleaved_float32": check_av_interleaved_float32,
    "transformer_av_other_rope_constants": check_av_other_rope_constants,
    "transformer_av_unequal_heads": check_av_unequal_heads,
    "transformer_av_gate_multiplier_default": check_av_gate_multiplier_default,
    "transformer_guides_attention_strength": check_guides_with_attention_strength,
    "transformer_positions_match_reference_tools": check_guide_positions_and_mask_match_reference_conditioning,
    "transformer_stg_block_1": check_stg_block_1,
    "transformer_stg_partial_batch": check_stg_video_only_partial_batch,
    "transformer_modality_isolation": check_modality_isolation,
    "transformer_modality_isolation_partial": check_modality_isolation_partial,
    "transformer_video_input_only": check_video_input_only,
    "transformer_audio_input_only": check_audio_input_only,
    "transformer_video_only_model": check_video_only_model,
    "transformer_audio_only_model": check_audio_only_model,
    "transformer_audio_stream_disabled": check_audio_stream_disabled,
    "transformer_denoised_x0": check_denoised_x0,
    "transformer_text_cache": check_text_cache,
}
