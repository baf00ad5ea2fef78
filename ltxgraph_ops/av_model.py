"""The LTX-2 transformer as the guiders see it (:class:`ltxgraph_ops.sampling.guiders.GuidableModel`):
latents in their own layouts (video [B, C, F, H, W], audio [B, C, T, M]) and per-element timesteps in,
clean-latent estimates (x0) in the same layouts out.

This is where latents become token sequences with their positions: generated video frames on the pixel grid at
the conditioning's frame rate, guide frames (appended after them by LTXVAddGuide) at the positions of the frames
they guide, audio frames in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.models.progress import Counter
from ltxgraph_ops.models.transformer import LTXAVTransformer, Perturbations, ReferenceTokens, StreamInput, denoised
from ltxgraph_ops.models.transformer_tokens import (audio_latent, audio_positions, audio_tokens,
                                                    guide_attention_mask, reference_audio_positions, video_latent,
                                                    video_positions, video_tokens)
from ltxgraph_ops.sampling.guiders import ModelPass

DEFAULT_FPS = 25.0


@dataclass
class LTXAVModel:
    """Callable as ``model(latents, timesteps, sigma, model_pass) -> x0s``.

    modalities names the latents' order ("video", "audio"); positive / negative are the prompts' conditionings
    (negative needed only for CFG passes); fps is used when the conditioning carries no frame rate.
    cache_text keeps each prompt's text keys/values for every block after the first step (they do not change
    between steps; cost per prompt and stream: 2 * layers * S * D floats, see ``PreparedText``); for a transformer
    whose text follows sigma (LTX-2.3) they are kept for the current step's guidance passes only. The adapter
    must be used inside ``with model.applied():`` so the cached values include the LoRAs. on_block(done, total)
    is called after each transformer block of every pass.
    """

    transformer: LTXAVTransformer
    modalities: tuple[str, ...]
    positive: Conditioning
    negative: Conditioning | None = None
    fps: float | None = None
    cache_text: bool = True
    on_block: Counter | None = None
    _prepared: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.modalities) - {"video", "audio"}
        if unknown or len(set(self.modalities)) != len(self.modalities) or not self.modalities:
            raise ValueError(f"modalities must be 'video' and/or 'audio', got {self.modalities}")

    def __call__(self, latents: tuple[torch.Tensor, ...], timesteps: tuple[torch.Tensor, ...], sigma: torch.Tensor,
                 model_pass: ModelPass = ModelPass()) -> tuple[torch.Tensor, ...]:
        conditioning = self.positive if model_pass.conditioning == "positive" else self.negative
        if conditioning is None:
            raise ValueError("a negative-prompt pass was asked for, but no negative conditioning was given")
        streams, selections = {}, {}
        for name, latent, step in zip(self.modalities, latents, timesteps):
            streams[name], selections[name] = self._stream(name, latent, step, sigma, conditioning,
                                                           model_pass.reference)
        velocity = self.transformer(streams.get("video"), streams.get("audio"), self._perturbations(model_pass),
                                    on_block=self.on_block)
        out = []
        for name, latent in zip(self.modalities, latents):
            x0 = denoised(streams[name], getattr(velocity, name))
            if name == "video":
                select = selections[name]
                if select is not None:  # cells that are not tokens (dilated guides) come back unchanged
                    full = video_tokens(latent).clone()
                    full[:, select] = x0.to(full.dtype)
                    x0 = full
                out.append(video_latent(x0, *latent.shape[2:]))
            else:
                out.append(audio_latent(x0, latent.shape[1]))
        return tuple(out)

    def _perturbations(self, model_pass: ModelPass) -> Perturbations:
        skip = dict(zip(self.modalities, model_pass.skip_self_attention or (None,) * len(self.modalities)))
        no_cross = dict(zip(self.modalities, model_pass.no_cross_attention_into or (False,) * len(self.modalities)))

        def cross(into: str):
            return "all" if model_pass.isolate_modalities or no_cross.get(into, False) else frozenset()
        return Perturbations(skip_video_self_attention=frozenset(skip.get("video") or ()),
                             skip_audio_self_attention=frozenset(skip.get("audio") or ()),
                             skip_audio_to_video=cross("video"), skip_video_to_audio=cross("audio"))

    def _stream(self, name: str, latent: torch.Tensor, timesteps: torch.Tensor, sigma: torch.Tensor,
                conditioning: Conditioning, use_reference: bool = True) -> tuple[StreamInput, torch.Tensor | None]:
        batch = latent.shape[0]
        sigma = sigma.reshape(-1).to(torch.float32).expand(batch) if sigma.numel() == 1 else sigma.reshape(batch)
        per_element = timesteps.expand(batch, 1, *latent.shape[2:]).to(torch.float32)
        noise_mask = per_element / sigma.clamp(min=torch.finfo(torch.float32).tiny).view(batch, *[1] * (latent.ndim - 1))
        select = reference = None
        if name == "video":
            tokens, positions, attention, select = self._video_layout(latent, conditioning)
            noise_mask = video_tokens(noise_mask)[..., 0]
            if select is not None:
                tokens, noise_mask = tokens[:, select], noise_mask[:, select]
            context = conditioning.video_context
        else:
            tokens, positions, attention = audio_tokens(latent), audio_positions(latent.shape[2], batch,
                                                                                 device=latent.device), None
            noise_mask = noise_mask[:, 0, :, 0]
            if conditioning.audio_context is None:
                raise ValueError("this conditioning has no audio context (a video-only text encoder?)")
            context = conditioning.audio_context
            if use_reference and conditioning.reference_audio is not None:
                reference = self._reference_audio(conditioning.reference_audio, tokens)
        context_mask = conditioning.context_mask
        if self.cache_text:
            follows_sigma = self.transformer.config.text_follows_sigma   # LTX-2.3: per step, shared by its passes
            key = (id(conditioning), name, tuple(sigma.tolist()) if follows_sigma else None)
            if key not in self._prepared:
                if follows_sigma:   # keep only this step's entries
                    self._prepared = {k: v for k, v in self._prepared.items() if k[2] == key[2]}
                self._prepared[key] = self.transformer.prepare_text(name, context, context_mask, sigma=sigma)
            context, context_mask = self._prepared[key], None
        return StreamInput(latent=tokens, sigma=sigma, positions=positions.to(tokens.dtype), context=context,
                           context_mask=context_mask, noise_mask=noise_mask, attention_mask=attention,
                           reference=reference), select

    @staticmethod
    def _reference_audio(reference: torch.Tensor, tokens: torch.Tensor) -> ReferenceTokens:
        """A reference voice's tokens [B or 1, R, C * M] (LTXVSetAudioRefTokens / LTXVReferenceAudio) before the
        audio tokens [B, T, C * M], at negative times (ComfyUI's ``ref_audio``, ltx-core's reference audio)."""
        if reference.ndim != 3 or reference.shape[-1] != tokens.shape[-1]:
            raise ValueError(f"the reference audio tokens {tuple(reference.shape)} do not fit the audio latent's "
                             f"tokens [B, T, {tokens.shape[-1]}] (an audio latent of another model?)")
        if reference.shape[0] not in (1, tokens.shape[0]):
            raise ValueError(f"the reference audio has batch {reference.shape[0]}, the audio latent "
                             f"{tokens.shape[0]}")
        positions = reference_audio_positions(reference.shape[1], reference.shape[0], device=tokens.device)
        return ReferenceTokens(reference.to(tokens.device, tokens.dtype), positions.to(tokens.dtype))

    def _video_layout(self, latent: torch.Tensor, conditioning: Conditioning
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """All latent cells as tokens [B, T, C]; positions [B, 3, T', 2] and guide attention weights of the
        T' cells the transformer sees; the indices of those cells (None = all)."""
        batch, _, frames, height, width = latent.shape
        fps = conditioning.frame_rate or self.fps or DEFAULT_FPS
        guides = conditioning.guides
        generated = frames - (guides.frames if guides else 0)
        if generated < 1:
            raise ValueError(f"the latent has {frames} frames, fewer than its {guides.frames} guide frames")
        positions = video_positions(generated, height, width, fps, batch, device=latent.device)
        tokens = video_tokens(latent)
        if not guides:
            return tokens, positions, None, None
        generated_tokens = generated * height * width
        if tokens.shape[1] - generated_tokens != guides.latent_tokens:
            raise ValueError(f"the latent's {tokens.shape[1] - generated_tokens} guide cells do not match the "
                             f"conditioning's {guides.latent_tokens} (was LTXVCropGuides applied to one but not the "
                             "other?)")
        guide_positions = guides.positions.to(positions.device, positions.dtype).expand(batch, -1, -1, -1).clone()
        guide_positions[:, 0] /= fps  # pixel frames -> seconds
        positions = torch.cat([positions, guide_positions], dim=2)
        select = None
        if guides.kept is not None:
            kept = guides.kept.reshape(-1).to(latent.device).nonzero().flatten() + generated_tokens
            select = torch.cat([torch.arange(generated_tokens, device=latent.device), kept])
        attention = None
        if any(s != 1.0 for s in guides.strengths) or guides.token_weights is not None:
            attention = guide_attention_mask(generated_tokens, list(guides.token_counts), list(guides.strengths),
                                             batch, device=latent.device, token_weights=guides.token_weights)
        return tokens, positions, attention, select
