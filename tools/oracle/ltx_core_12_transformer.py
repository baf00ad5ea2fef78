"""Parity of our LTX-2.3 and LTX-2.5 transformer (keys ltx23_* / ltx25_*) with Lightricks' newest reference,
ltx-core 1.2.0, on identical tiny weights: the general case diffusers cannot express (per-token noise masks,
different sigmas per stream; see tools/oracle/diffusers_transformer.py), LTX-2.5's keyframe embedding on the first
latent frame, plus STG, the static prompt table, and reference-voice tokens (ID-LoRA /
lipdub): ours puts them before the audio tokens (as ComfyUI does), ltx-core 1.2.0's
``AudioConditionByReferenceLatent`` appends them after with denoise mask 0; both give them their own negative
times, so the target tokens' velocities must agree.

ltx-core 1.2.0 is not on the package index; its checks register only when the ``ltx_core`` on the path is 1.2
(its ``BatchedPerturbationConfig`` takes ``num_blocks``), e.g. with its source from the Lightricks/LTX-2 repository:
``git -C LTX-2 archive HEAD packages/ltx-core/src | tar -x -C /tmp/ltx12`` then
``PYTHONPATH=/tmp/ltx12/packages/ltx-core/src:. python tools/parity.py --only ltx23_transformer_ltx_core_12``.
With ltx-core 1.0.0 installed (CI) ``CHECKS`` is empty; tests/models/test_transformer_reference_audio.py
runs them from the git mirror of Lightricks/LTX-2 when this machine has one (skipped elsewhere).
"""
from __future__ import annotations

import inspect
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from ltxgraph_ops.models.transformer import LTXAVTransformer, Perturbations, StreamInput  # noqa: E402
from ltxgraph_ops.models.transformer import ReferenceTokens, TransformerConfig  # noqa: E402
from ltxgraph_ops.models.transformer_tokens import (first_frame_keyframes_mask,  # noqa: E402
                                                    reference_audio_positions)
from ltxgraph_ops.tiny import transformer as tiny  # noqa: E402
from tools.oracle.diffusers_transformer import BATCH, HEIGHT, WIDTH, informative, stream_inputs  # noqa: E402
from tools.oracle.transformer import max_error, random_state  # noqa: E402


def available() -> bool:
    """True when the importable ltx_core is 1.2 (its perturbation config is built per number of blocks)."""
    try:
        from ltx_core.guidance.perturbations import BatchedPerturbationConfig
    except ImportError:
        return False
    return "num_blocks" in inspect.signature(BatchedPerturbationConfig).parameters


def reference_inputs(stream: StreamInput):
    from ltx_core.model.transformer.modality import Modality
    keyframes = None if stream.keyframes_mask is None else stream.keyframes_mask.unsqueeze(-1)
    return Modality(latent=stream.latent, sigma=stream.sigma, timesteps=stream.timesteps().unsqueeze(-1),
                    positions=stream.positions, context=stream.context, context_mask=stream.context_mask,
                    keyframes_mask=keyframes)


def reference_perturbations(blocks: list[int], num_blocks: int):
    from ltx_core.guidance.perturbations import (BatchedPerturbationConfig, Perturbation, PerturbationConfig,
                                                 PerturbationType)
    listed = [Perturbation(type=kind, blocks=blocks) for kind in (PerturbationType.SKIP_VIDEO_SELF_ATTN,
                                                                  PerturbationType.SKIP_AUDIO_SELF_ATTN)] if blocks else []
    return BatchedPerturbationConfig([PerturbationConfig(listed)] * BATCH, num_blocks)


REFERENCE_FRAMES = 5


def with_reference_voice(audio: StreamInput, seed: int = 7) -> StreamInput:
    """``audio`` with REFERENCE_FRAMES random reference-voice tokens (batch 1, broadcast) at negative times."""
    tokens = torch.randn(1, REFERENCE_FRAMES, audio.latent.shape[-1], generator=torch.Generator().manual_seed(seed))
    return replace(audio, reference=ReferenceTokens(tokens, reference_audio_positions(REFERENCE_FRAMES)))


def appended_reference(stream: StreamInput) -> StreamInput:
    """The stream as ltx-core 1.2.0's AudioConditionByReferenceLatent hands it to the transformer: the reference
    tokens appended after the stream's own, with denoise mask 0 (clean), and no separate reference."""
    if stream.reference is None:
        return stream
    batch, count = stream.latent.shape[0], stream.reference.count
    mask = stream.noise_mask if stream.noise_mask is not None else torch.ones(batch, stream.latent.shape[1])
    return replace(stream, reference=None,
                   latent=torch.cat([stream.latent, stream.reference.tokens.expand(batch, -1, -1)], dim=1),
                   positions=torch.cat([stream.positions, stream.reference.positions.expand(batch, -1, -1, -1)], 2),
                   noise_mask=torch.cat([mask, torch.zeros(batch, count)], dim=1))


@torch.no_grad()
def scenario(config: dict, stg_blocks: list[int] = (), reference_voice: bool = False) -> float:
    from ltx_core.model.transformer.model_configurator import LTXModelConfigurator
    ours = LTXAVTransformer(TransformerConfig.from_header(config)).eval()
    with torch.device("cpu"):
        reference = LTXModelConfigurator.from_metadata({"config": {"transformer": config}})
    reference = reference.to_empty(device="cpu").float().eval()
    state = random_state(ours)
    ours.load_state_dict(state, strict=True)
    reference.load_state_dict(state, strict=True)
    video, audio = stream_inputs(ours.config)
    if ours.config.use_keyframes_abs_pos_embedding:   # LTX-2.5: the first latent frame marked, as ltx-core's tools
        video = replace(video, keyframes_mask=first_frame_keyframes_mask(BATCH, video.latent.shape[1],
                                                                         HEIGHT * WIDTH))
    if reference_voice:
        audio = with_reference_voice(audio)
    out = ours(video, audio, Perturbations.stg(list(stg_blocks)))
    ref_video, ref_audio = reference(reference_inputs(video), reference_inputs(appended_reference(audio)),
                                     reference_perturbations(list(stg_blocks), config["num_layers"]))
    ref_audio = ref_audio[:, :audio.latent.shape[1]]          # the target tokens (ltx-core keeps the reference's)
    return max(max_error(informative("our video velocity", out.video), informative("ltx-core video", ref_video)),
               max_error(informative("our audio velocity", out.audio), informative("ltx-core audio", ref_audio)))


CHECKS: dict[str, Callable[[], float]] = {
    "ltx23_transformer_ltx_core_12_av": lambda: scenario(tiny.tiny_config_23()),
    "ltx23_transformer_ltx_core_12_stg_block_1": lambda: scenario(tiny.tiny_config_23(), [1]),
    "ltx23_transformer_ltx_core_12_static_prompt_table": lambda: scenario(
        {**tiny.tiny_config_23(), "use_prompt_adaln_single": False}),
    "ltx23_transformer_ltx_core_12_reference_audio": lambda: scenario(tiny.tiny_config_23(), reference_voice=True),
    "ltx23_transformer_ltx_core_12_reference_audio_stg": lambda: scenario(tiny.tiny_config_23(), [1],
                                                                          reference_voice=True),
    "ltx25_transformer_ltx_core_12_av": lambda: scenario(tiny.tiny_config_25()),
    "ltx25_transformer_ltx_core_12_stg_block_1": lambda: scenario(tiny.tiny_config_25(), [1]),
    "ltx25_transformer_ltx_core_12_reference_audio": lambda: scenario(tiny.tiny_config_25(), reference_voice=True),
} if available() else {}
