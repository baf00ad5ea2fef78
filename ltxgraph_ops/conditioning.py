"""CONDITIONING values: what the text path hands the sampler, and the guide (keyframe) tokens ops add to it."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated

import torch

from ltxgraph import Port, op
from ltxgraph.values import storable


@storable
@dataclass(frozen=True)
class Guides:
    """Guide (keyframe) latents appended after the generated video frames, as the transformer sees them.

    positions: [B, 3, N, 2] token [start, end) ranges (time in pixel frames, height px, width px) of the N
    guide tokens the transformer sees, in the order their frames are appended (time becomes seconds at the
    sampler's frame rate); token_counts: such tokens per guide group; strengths: attention weight of each group
    towards the generated tokens (1 = full); latent_frames: latent frames each group appended.
    token_weights: [N] per-token multipliers of the strength (a guide's attention mask), None = all 1.
    kept: [guide cells in the latent] which cells of the appended frames are transformer tokens (a small-grid
    IC-LoRA guide sits dilated in the latent), None = all.
    """

    positions: torch.Tensor
    token_counts: tuple[int, ...]
    strengths: tuple[float, ...]
    latent_frames: tuple[int, ...]
    token_weights: torch.Tensor | None = None
    kept: torch.Tensor | None = None

    @property
    def tokens(self) -> int:
        return sum(self.token_counts)

    @property
    def frames(self) -> int:
        return sum(self.latent_frames)

    @property
    def latent_tokens(self) -> int:
        """Cells the guide frames occupy in the latent (tokens plus dilation gaps)."""
        return self.kept.numel() if self.kept is not None else self.tokens


@storable
@dataclass(frozen=True)
class Conditioning:
    """Text conditioning of LTX-2 after the embeddings connectors.

    video_context / audio_context: [B, S, caption_channels] per stream (audio None for video-only models);
    context_mask: [B, S] 1 = token, 0 = padding (None: all tokens valid); frame_rate: frames per second the
    video is generated at (LTXVConditioning); guides: keyframe tokens added by LTXVAddGuide;
    reference_audio: [B, T, C * M] patchified audio-latent tokens of a reference voice (LTXVSetAudioRefTokens,
    LTXVReferenceAudio) that the LTX-2.3 transformer prepends to the audio stream at negative times.
    """

    video_context: torch.Tensor
    audio_context: torch.Tensor | None = None
    context_mask: torch.Tensor | None = None
    frame_rate: float | None = None
    guides: Guides | None = None
    reference_audio: torch.Tensor | None = None

    def with_frame_rate(self, frame_rate: float) -> "Conditioning":
        return replace(self, frame_rate=frame_rate)

    def with_guides(self, guides: Guides | None) -> "Conditioning":
        return replace(self, guides=guides)

    def with_reference_audio(self, tokens: torch.Tensor | None) -> "Conditioning":
        return replace(self, reference_audio=tokens)

    def zeroed(self) -> "Conditioning":
        """ConditioningZeroOut: the same shapes filled with zeros."""
        return replace(self, video_context=torch.zeros_like(self.video_context),
                       audio_context=None if self.audio_context is None else torch.zeros_like(self.audio_context))


@op("LTXVConditioning", outputs={"positive": "CONDITIONING", "negative": "CONDITIONING"},
    category="conditioning/ltxv")
def ltxv_conditioning(positive: Annotated[Conditioning, Port("CONDITIONING")],
                      negative: Annotated[Conditioning, Port("CONDITIONING")],
                      frame_rate: Annotated[float, Port("FLOAT", min=0.0, max=1000.0)] = 25.0
                      ) -> tuple[Conditioning, Conditioning]:
    """Attach the frame rate (frames per second) the video is generated at to both prompts."""
    return positive.with_frame_rate(frame_rate), negative.with_frame_rate(frame_rate)


@op("ConditioningZeroOut", outputs={"CONDITIONING": "CONDITIONING"}, category="conditioning")
def conditioning_zero_out(conditioning: Annotated[Conditioning, Port("CONDITIONING")]) -> Conditioning:
    """The same conditioning with every text embedding set to zero (a neutral negative prompt)."""
    return conditioning.zeroed()
