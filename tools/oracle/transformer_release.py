"""Transformer parity on a release-shaped input, the reference's side built entirely by ltx-core's own latent tools.

Batch 2, a non-square multi-frame video grid (4 x 3 x 5 latent cells), per-token timesteps (sigma per sample times a
noise mask with kept, partial and generated tokens), two keyframe guides appended by ltx-core's conditioning items
(positions, denoise mask and attention weights from them), audio positions from its audio latent tools, and text
left-padded as the release pipelines pad it. ltxgraph's input is built by its own helpers from the same tensors;
the two forwards are compared after checking both are finite and not constant.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from ltxgraph_ops.models.transformer import Perturbations, StreamInput  # noqa: E402
from ltxgraph_ops.models.transformer_tokens import (audio_positions, audio_tokens, guide_attention_mask,  # noqa: E402
                                                    video_positions, video_tokens)
from ltxgraph_ops.tiny import transformer as tiny  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402
from tools.oracle.transformer import FPS, SEED, build_pair, random, to_reference_perturbations  # noqa: E402

BATCH = 2
FRAMES, HEIGHT, WIDTH = 4, 3, 5
AUDIO_FRAMES, AUDIO_CHANNELS, AUDIO_BINS = 9, 8, 16
TEXT_TOKENS = 9
GUIDES = ((0, 1.0, 1.0), (19, 0.75, 0.5))  # (pixel frame, strength, attention weight) of each keyframe guide
SIGMAS = {"video": torch.tensor([0.8, 0.35]), "audio": torch.tensor([0.6, 0.95])}


def left_padded_text_mask() -> torch.Tensor:
    """[B, T]: sample 0 pads its first 3 text tokens, sample 1 its first 5 (1 = token)."""
    mask = torch.ones(BATCH, TEXT_TOKENS, dtype=torch.int64)
    mask[0, :3] = 0
    mask[1, :5] = 0
    return mask


def video_noise_mask() -> torch.Tensor:
    """[B, T] over the generated tokens: first frame kept in sample 0, a partial band in sample 1."""
    cells = HEIGHT * WIDTH
    mask = torch.ones(BATCH, FRAMES * cells)
    mask[0, :cells] = 0.0
    mask[1, cells: 2 * cells] = 0.4
    mask[1, -4:] = 0.7
    return mask


def audio_noise_mask() -> torch.Tensor:
    mask = torch.ones(BATCH, AUDIO_FRAMES)
    mask[1, :3] = 0.0
    mask[0, -2:] = 0.5
    return mask


def reference_states(video: torch.Tensor, guides: list[torch.Tensor], audio: torch.Tensor):
    """(video state with the guides appended, audio state), as ltx-core's latent tools and conditioning build them."""
    from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier
    from ltx_core.conditioning.types.attention_strength_wrapper import ConditioningItemAttentionStrengthWrapper
    from ltx_core.conditioning.types.keyframe_cond import VideoConditionByKeyframeIndex
    from ltx_core.tools import AudioLatentTools, VideoLatentTools
    from ltx_core.types import AudioLatentShape, VideoLatentShape
    tools = VideoLatentTools(VideoLatentPatchifier(1), VideoLatentShape.from_torch_shape(video.shape), fps=FPS)
    state = tools.create_initial_state("cpu", torch.float32, initial_latent=video)
    state.denoise_mask[:, : FRAMES * HEIGHT * WIDTH, 0] = video_noise_mask()
    for latent, (frame, strength, weight) in zip(guides, GUIDES):
        item = VideoConditionByKeyframeIndex(latent, frame, strength)
        state = ConditioningItemAttentionStrengthWrapper(item, weight).apply_to(state, tools)
    audio_tools = AudioLatentTools(AudioPatchifier(AUDIO_BINS), AudioLatentShape.from_torch_shape(audio.shape))
    audio_state = audio_tools.create_initial_state("cpu", torch.float32, initial_latent=audio)
    audio_state.denoise_mask[..., 0] = audio_noise_mask()
    return state, audio_state


def reference_modality(state, sigma: torch.Tensor, context: torch.Tensor):
    from ltx_core.model.transformer.modality import Modality
    return Modality(latent=state.latent, sigma=sigma, timesteps=state.denoise_mask * sigma.view(-1, 1, 1),
                    positions=state.positions, context=context, enabled=True,
                    context_mask=left_padded_text_mask(), attention_mask=state.attention_mask)


def our_streams(video: torch.Tensor, guides: list[torch.Tensor], audio: torch.Tensor,
                contexts: dict[str, torch.Tensor]) -> tuple[StreamInput, StreamInput]:
    cells = HEIGHT * WIDTH
    video_stream = StreamInput(
        latent=torch.cat([video_tokens(video)] + [video_tokens(g) for g in guides], 1),
        sigma=SIGMAS["video"],
        positions=torch.cat([video_positions(FRAMES, HEIGHT, WIDTH, FPS, batch=BATCH)] +
                            [video_positions(1, HEIGHT, WIDTH, FPS, batch=BATCH, first_frame=frame)
                             for frame, _, _ in GUIDES], 2),
        context=contexts["video"], context_mask=left_padded_text_mask(),
        noise_mask=torch.cat([video_noise_mask()] + [torch.full((BATCH, cells), 1.0 - strength)
                                                     for _, strength, _ in GUIDES], 1),
        attention_mask=guide_attention_mask(FRAMES * cells, [cells] * len(GUIDES), [w for _, _, w in GUIDES],
                                            batch=BATCH))
    audio_stream = StreamInput(latent=audio_tokens(audio), sigma=SIGMAS["audio"],
                               positions=audio_positions(AUDIO_FRAMES, batch=BATCH), context=contexts["audio"],
                               context_mask=left_padded_text_mask(), noise_mask=audio_noise_mask())
    return video_stream, audio_stream


@torch.no_grad()
def check_release_shaped_av_batch2() -> float:
    config = tiny.tiny_config()
    pair = build_pair(config)
    generator = torch.Generator().manual_seed(SEED + 5)
    video = random((BATCH, config["in_channels"], FRAMES, HEIGHT, WIDTH), generator)
    guides = [random((BATCH, config["in_channels"], 1, HEIGHT, WIDTH), generator) for _ in GUIDES]
    audio = random((BATCH, AUDIO_CHANNELS, AUDIO_FRAMES, AUDIO_BINS), generator)
    contexts = {name: random((BATCH, TEXT_TOKENS, config["caption_channels"]), generator)
                for name in ("video", "audio")}
    state, audio_state = reference_states(video, guides, audio)
    ref_video, ref_audio = pair.reference(reference_modality(state, SIGMAS["video"], contexts["video"]),
                                          reference_modality(audio_state, SIGMAS["audio"], contexts["audio"]),
                                          to_reference_perturbations(Perturbations(), BATCH))
    ours = pair.ours(*our_streams(video, guides, audio, contexts))
    return max(compared("release-shaped video", ours.video, ref_video),
               compared("release-shaped audio", ours.audio, ref_audio))


CHECKS: dict[str, Callable[[], float]] = {
    "transformer_release_shaped_av_batch2": check_release_shaped_av_batch2,
}
