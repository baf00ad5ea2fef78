"""The LTX-2 transformer as the guiders see it (:class:`ltxgraph_ops.sampling.guiders.GuidableModel`):
latents in their own layouts (video [B, C, F, H, W], audio [B, C, T, M]) and per-element timesteps in,
clean-latent estimates (x0) in the same layouts out.

This is where latents become token sequences with their positions: generated video frames on the pixel grid at
the conditioning's frame rate, guide frames (appended after them by LTXVAddGuide) at the positions of the frames
they guide, audio frames in seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import torch

from ltxgraph.budget import (ATTENTION_CHUNKED_WIDTHS, FEED_FORWARD_HIDDEN_WIDTHS, attention_chunk, chunk_within_forward,
                             feed_forward_chunk)
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.model_files import is_streamed
from ltxgraph_ops.models.progress import Counter
from ltxgraph_ops.models.attention import attention_chunks
from ltxgraph_ops.models.transformer import (LTXAVTransformer, Perturbations, PreparedText, ReferenceTokens,
                                             StackedPerturbations, StreamInput, denoised)
from ltxgraph_ops.models.transformer_block import feed_forward_chunks
from ltxgraph_ops.models.transformer_inputs import TextKeysValuesStore
from ltxgraph_ops.models.transformer_tokens import (audio_latent, audio_positions, audio_tokens,
                                                    first_frame_keyframes_mask, guide_attention_mask,
                                                    reference_audio_positions, video_latent, video_positions,
                                                    video_tokens)
from ltxgraph_ops.sampling.guiders import ModelPass
from ltxgraph_ops.sampling.pass_batches import activation_bytes, plan_pass_batches

DEFAULT_FPS = 25.0


@dataclass(frozen=True)
class StreamLayout:
    """One stream's tokens as the transformer sees them, for one prompt (guides place video tokens).

    tokens [B, T, C], positions [B, n_axes, T, 2], noise_mask [B, T] and attention [B, T, T] (None = full) of
    the T tokens the transformer sees; select: their indices among the latent's cells (None = all); reference:
    the prompt's reference voice placed before the audio tokens (None = none)."""

    tokens: torch.Tensor
    positions: torch.Tensor
    noise_mask: torch.Tensor
    attention: torch.Tensor | None
    select: torch.Tensor | None
    reference: ReferenceTokens | None = None

    def same_as(self, other: "StreamLayout") -> bool:
        def equal(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
            return (a is None) == (b is None) and (a is None or (a.shape == b.shape and torch.equal(a, b)))
        mine, theirs = self.reference, other.reference
        return (all(equal(getattr(self, name), getattr(other, name))
                    for name in ("tokens", "positions", "noise_mask", "attention", "select"))
                and (mine is None) == (theirs is None)
                and (mine is None or (equal(mine.tokens, theirs.tokens) and equal(mine.positions, theirs.positions))))

    def stacked(self, count: int) -> "StreamLayout":
        """The layout repeated ``count`` times along the batch (one copy per guidance pass)."""
        def repeat(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.repeat(count, *[1] * (t.ndim - 1))
        reference = self.reference
        if reference is not None and reference.tokens.shape[0] > 1:   # one voice per item: repeat per pass
            reference = ReferenceTokens(repeat(reference.tokens), repeat(reference.positions))
        return StreamLayout(repeat(self.tokens), repeat(self.positions), repeat(self.noise_mask),
                            repeat(self.attention), self.select, reference)


@dataclass
class LTXAVModel:
    """Callable as ``model(latents, timesteps, sigma, model_pass) -> x0s``; ``run_passes`` runs several guidance
    passes of one step stacked on the batch axis, in one transformer forward (one read of every block's weights)
    unless their estimated activations exceed ``activation_budget`` bytes (None = no limit), then in as few
    sequential sub-batches as fit (:mod:`ltxgraph_ops.sampling.pass_batches`).

    modalities names the latents' order ("video", "audio"); positive / negative are the prompts' conditionings
    (negative needed only for CFG passes); fps is used when the conditioning carries no frame rate.
    cache_text keeps the prompts' text keys/values for every block after the first step (they do not change
    between steps; cost per prompt and stream: 2 * layers * S * D floats, see ``PreparedText``); for a transformer
    whose text follows sigma (LTX-2.3) they are kept for the current step's guidance passes only. A streamed
    transformer keeps them as its first forward computes them, block by block (``TextKeysValuesStore``), when
    they fit the activation budget beside a step's activations, and not when its text follows sigma. The adapter
    must be used inside ``with model.applied():`` so the cached values include the LoRAs. on_block(done, total)
    is called after each transformer block of every forward. compute_dtype: what the transformer computes in
    (its tokens and text enter in it); positions, timesteps and the clean estimate x0 = x - v t stay float32, and
    x0s come back float32.
    """

    transformer: LTXAVTransformer
    modalities: tuple[str, ...]
    positive: Conditioning
    negative: Conditioning | None = None
    fps: float | None = None
    cache_text: bool = True
    on_block: Counter | None = None
    compute_dtype: torch.dtype = torch.float32
    activation_budget: int | None = None
    _prepared: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.modalities) - {"video", "audio"}
        if unknown or len(set(self.modalities)) != len(self.modalities) or not self.modalities:
            raise ValueError(f"modalities must be 'video' and/or 'audio', got {self.modalities}")

    def __call__(self, latents: tuple[torch.Tensor, ...], timesteps: tuple[torch.Tensor, ...], sigma: torch.Tensor,
                 model_pass: ModelPass = ModelPass()) -> tuple[torch.Tensor, ...]:
        return self.run_passes(latents, timesteps, sigma, [model_pass])[0]

    def run_passes(self, latents: tuple[torch.Tensor, ...], timesteps: tuple[torch.Tensor, ...], sigma: torch.Tensor,
                   passes: Sequence[ModelPass]) -> list[tuple[torch.Tensor, ...]]:
        """The x0s of every pass, in order: one forward per sub-batch that fits the activation budget."""
        outputs: list[tuple[torch.Tensor, ...]] = []
        for batch in plan_pass_batches(len(passes), self.pass_activation_bytes(latents), self.activation_budget):
            outputs.extend(self._forward(latents, timesteps, sigma, [passes[i] for i in batch]))
        return outputs

    def pass_activation_bytes(self, latents: tuple[torch.Tensor, ...]) -> int:
        """Estimated activations of one pass over these latents (see :func:`activation_bytes`)."""
        shapes = dict(zip(self.modalities, (latent.shape for latent in latents)))
        prompts = [c for c in (self.positive, self.negative) if c is not None]
        video = shapes.get("video")
        return activation_bytes(
            self.transformer.config, video_tokens=math.prod(video[2:]) if video else 0,
            audio_tokens=shapes["audio"][2] if "audio" in shapes else 0,
            text_tokens=max(c.video_context.shape[1] for c in prompts), rows=latents[0].shape[0],
            element_bytes=self.compute_dtype.itemsize, guide_attention=any(c.guides is not None for c in prompts))

    def feed_forward_chunk(self, latents: tuple[torch.Tensor, ...], passes: int) -> int | None:
        """Tokens per chunk of the feed-forwards in a forward of ``passes`` stacked passes: their 4x-wide hidden
        gets what the activation budget leaves after the rest of the forward's activations
        (:func:`ltxgraph.budget.feed_forward_chunk`, planned for the widest stream); None: all tokens at once."""
        return self._token_chunk(latents, passes, FEED_FORWARD_HIDDEN_WIDTHS, feed_forward_chunk)

    def attention_chunk(self, latents: tuple[torch.Tensor, ...], passes: int) -> int | None:
        """Tokens per chunk of the attentions (keys made, queries run) in a forward of ``passes`` stacked passes,
        planned like :meth:`feed_forward_chunk` for their per-chunk activations
        (:func:`ltxgraph.budget.attention_chunk`; the two never hold memory at the same time); None: all at once."""
        return self._token_chunk(latents, passes, ATTENTION_CHUNKED_WIDTHS, attention_chunk)

    def _token_chunk(self, latents: tuple[torch.Tensor, ...], passes: int, widths: int,
                     plan: Callable[[int, int, int, int, int | None], int | None]) -> int | None:
        """``plan(tokens, width, rows, element_bytes, available)`` for the widest stream, where ``available`` is
        the activation budget less the forward's activations other than the ``widths`` widths per token being
        chunked."""
        if self.activation_budget is None:
            return None
        config = self.transformer.config
        shapes = dict(zip(self.modalities, (latent.shape for latent in latents)))
        streams = [(math.prod(shape[2:]) if name == "video" else shape[2],
                    config.video_dim if name == "video" else config.audio_dim) for name, shape in shapes.items()]
        tokens, width = max(streams, key=lambda stream: stream[0] * stream[1])
        return chunk_within_forward(plan, tokens, width, latents[0].shape[0] * passes, self.compute_dtype.itemsize,
                                    widths, self.pass_activation_bytes(latents) * passes, self.activation_budget)

    def _conditioning(self, role: str) -> Conditioning:
        conditioning = self.positive if role == "positive" else self.negative
        if conditioning is None:
            raise ValueError("a negative-prompt pass was asked for, but no negative conditioning was given")
        return conditioning

    def _forward(self, latents: tuple[torch.Tensor, ...], timesteps: tuple[torch.Tensor, ...], sigma: torch.Tensor,
                 passes: list[ModelPass]) -> list[tuple[torch.Tensor, ...]]:
        """One transformer forward over ``passes`` stacked on the batch axis (pass i = rows i*B .. (i+1)*B)."""
        if len({p.reference for p in passes}) > 1:   # with and without the reference voice: lengths differ
            return self._split(latents, timesteps, sigma, passes, lambda p: p.reference)
        roles = list(dict.fromkeys(p.conditioning for p in passes))
        prompts = [self._conditioning(role) for role in roles]
        batch = latents[0].shape[0]
        sigma = sigma.reshape(-1).to(torch.float32).expand(batch) if sigma.numel() == 1 else sigma.reshape(batch)
        layouts = {name: [self._layout(name, latent, step, sigma, prompt, passes[0].reference)
                          for prompt in prompts]
                   for name, latent, step in zip(self.modalities, latents, timesteps)}
        if not all(layout.same_as(found[0]) for found in layouts.values() for layout in found):
            # prompts place tokens differently
            return self._split(latents, timesteps, sigma, passes, lambda p: p.conditioning)
        store_fits = (is_streamed(self.transformer)                     # only a streamed model keeps a store
                      and self._text_store_fits(latents, len(prompts), len(passes)))
        text_rows = torch.cat([roles.index(p.conditioning) * batch + torch.arange(batch) for p in passes])
        if torch.equal(text_rows, torch.arange(len(prompts) * batch)):
            text_rows = None                                              # each prompt read once, in order
        streams = {}
        for name, latent in zip(self.modalities, latents):
            own_sigma = stream_sigma(sigma, layouts[name][0].noise_mask)          # [B]: 0 where all kept
            layout = layouts[name][0].stacked(len(passes))
            context, context_mask, store = self._text(name, prompts, own_sigma, store_fits)
            streams[name] = StreamInput(latent=layout.tokens.float(), sigma=own_sigma.repeat(len(passes)),
                                        positions=layout.positions.float(), context=context,
                                        context_mask=context_mask, noise_mask=layout.noise_mask,
                                        attention_mask=layout.attention, text_rows=text_rows,
                                        reference=layout.reference,
                                        keyframes_mask=self._keyframes(name, latent, layout),
                                        text_store=store)
        perturbations = [self._perturbations(p) for p in passes]
        computed = {name: replace(s, latent=s.latent.to(self.compute_dtype)) for name, s in streams.items()}
        with (feed_forward_chunks(self.transformer, self.feed_forward_chunk(latents, len(passes))),
              attention_chunks(self.transformer, self.attention_chunk(latents, len(passes)))):
            velocity = self.transformer(computed.get("video"), computed.get("audio"),
                                        perturbations[0] if len(passes) == 1 else
                                        StackedPerturbations(tuple(perturbations), (batch,) * len(passes)),
                                        on_block=self.on_block)
        per_stream = []
        for name, latent in zip(self.modalities, latents):
            x0 = denoised(streams[name], getattr(velocity, name)).split(batch)
            per_stream.append([self._latent(name, latent, part, layouts[name][0].select) for part in x0])
        return [tuple(outputs) for outputs in zip(*per_stream)]

    def _keyframes(self, name: str, latent: torch.Tensor, layout: StreamLayout) -> torch.Tensor | None:
        """For a model with the keyframe embedding (LTX-2.5): the video tokens of the latent's [B, C, F, H, W]
        first frame marked (see :func:`first_frame_keyframes_mask`); else None."""
        if name != "video" or not self.transformer.config.use_keyframes_abs_pos_embedding:
            return None
        return first_frame_keyframes_mask(layout.tokens.shape[0], layout.tokens.shape[1],
                                          latent.shape[3] * latent.shape[4], layout.tokens.device)

    def _split(self, latents: tuple[torch.Tensor, ...], timesteps: tuple[torch.Tensor, ...], sigma: torch.Tensor,
               passes: list[ModelPass], group: Callable[[ModelPass], object]) -> list[tuple[torch.Tensor, ...]]:
        """One forward per group of ``passes`` (same ``group(pass)``), for passes whose tokens differ."""
        outputs: dict[int, tuple[torch.Tensor, ...]] = {}
        for key in dict.fromkeys(group(p) for p in passes):
            chosen = [i for i, p in enumerate(passes) if group(p) == key]
            outputs.update(zip(chosen, self._forward(latents, timesteps, sigma, [passes[i] for i in chosen])))
        return [outputs[i] for i in range(len(passes))]

    @staticmethod
    def _latent(name: str, latent: torch.Tensor, x0: torch.Tensor, select: torch.Tensor | None) -> torch.Tensor:
        """x0 tokens [B, T', C] back in the latent's layout; cells that are not tokens (dilated guides) come back
        unchanged."""
        if name == "audio":
            return audio_latent(x0, latent.shape[1])
        if select is not None:
            full = video_tokens(latent).clone()
            full[:, select] = x0.to(full.dtype)
            x0 = full
        return video_latent(x0, *latent.shape[2:])

    def _perturbations(self, model_pass: ModelPass) -> Perturbations:
        skip = dict(zip(self.modalities, model_pass.skip_self_attention or (None,) * len(self.modalities)))
        no_cross = dict(zip(self.modalities, model_pass.no_cross_attention_into or (False,) * len(self.modalities)))

        def cross(into: str):
            return "all" if model_pass.isolate_modalities or no_cross.get(into, False) else frozenset()
        return Perturbations(skip_video_self_attention=frozenset(skip.get("video") or ()),
                             skip_audio_self_attention=frozenset(skip.get("audio") or ()),
                             skip_audio_to_video=cross("video"), skip_video_to_audio=cross("audio"))

    def _layout(self, name: str, latent: torch.Tensor, timesteps: torch.Tensor, sigma: torch.Tensor,
                conditioning: Conditioning, use_reference: bool = True) -> StreamLayout:
        """The tokens of ``latent`` for one prompt; ``timesteps`` per element, sigma [B]; the prompt's reference
        voice (audio) unless ``use_reference`` is False."""
        batch = latent.shape[0]
        per_element = timesteps.expand(batch, 1, *latent.shape[2:]).to(torch.float32)
        sigma = sigma.clamp(min=torch.finfo(torch.float32).tiny).view(batch, *[1] * (latent.ndim - 1))
        noise_mask = per_element / sigma
        if name == "audio":
            tokens = audio_tokens(latent)
            reference = None
            if use_reference and conditioning.reference_audio is not None:
                reference = self._reference_audio(conditioning.reference_audio, tokens)
            return StreamLayout(tokens, audio_positions(latent.shape[2], batch, device=latent.device),
                                noise_mask[:, 0, :, 0], None, None, reference)
        tokens, positions, attention, select = self._video_layout(latent, conditioning)
        noise_mask = video_tokens(noise_mask)[..., 0]
        if select is not None:
            tokens, noise_mask = tokens[:, select], noise_mask[:, select]
        return StreamLayout(tokens, positions, noise_mask, attention, select)

    def _text_store_fits(self, latents: tuple[torch.Tensor, ...], prompts: int, passes: int) -> bool:
        """Whether a streamed transformer's text keys/values of every block (both streams, ``prompts`` prompts)
        fit the activation budget beside the activations of a forward of ``passes`` stacked passes."""
        if self.activation_budget is None:
            return True
        c = self.transformer.config
        text_tokens = max(p.video_context.shape[1] for p in (self.positive, self.negative) if p is not None)
        widths = sum(c.video_dim if name == "video" else c.audio_dim for name in self.modalities)
        kept = 2 * c.num_layers * latents[0].shape[0] * prompts * text_tokens * widths * self.compute_dtype.itemsize
        return kept + self.pass_activation_bytes(latents) * passes <= self.activation_budget

    def _text(self, name: str, prompts: list[Conditioning], sigma: torch.Tensor, store_fits: bool
              ) -> tuple[torch.Tensor | PreparedText, torch.Tensor | None, TextKeysValuesStore | None]:
        """The text of ``name`` for the distinct ``prompts`` stacked on the batch axis ([P*B, S, C], shorter
        prompts padded at the end and masked out) and its mask, or (cache_text) its :class:`PreparedText`; and
        (cache_text, a streamed transformer, ``store_fits``) the store its blocks keep their pairs in."""
        if name == "audio" and any(p.audio_context is None for p in prompts):
            raise ValueError("this conditioning has no audio context (a video-only text encoder?)")
        contexts = [(p.video_context if name == "video" else p.audio_context).to(self.compute_dtype)
                    for p in prompts]
        context, context_mask = stack_text(contexts, [p.context_mask for p in prompts])
        if not self.cache_text:
            return context, context_mask, None
        follows_sigma = self.transformer.config.text_follows_sigma   # LTX-2.3: per step, shared by its passes
        key = (tuple(id(p) for p in prompts), name, tuple(sigma.tolist()) if follows_sigma else None)
        if is_streamed(self.transformer):
            if follows_sigma or not (store_fits or key in self._prepared):
                return context, context_mask, None
            blocks = len(self.transformer.transformer_blocks)
            return context, context_mask, self._prepared.setdefault(key, TextKeysValuesStore(name, blocks))
        if key not in self._prepared:
            if follows_sigma:   # keep only this step's entries
                self._prepared = {k: v for k, v in self._prepared.items() if k[2] == key[2]}
            self._prepared[key] = self.transformer.prepare_text(name, context, context_mask,
                                                                sigma=sigma.repeat(len(prompts)))
        return self._prepared[key], None, None

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


def stream_sigma(sigma: torch.Tensor, noise_mask: torch.Tensor) -> torch.Tensor:
    """The sigma [rows] a stream announces to the other stream's cross-attention modulation (and, LTX-2.3, to
    its own prompt AdaLN): the step's sigma, or 0 for a row whose tokens are all kept (noise mask [rows, T] all
    0: a frozen stream, e.g. the given soundtrack of audio-to-video). ltx-core 1.2.0 zeroes a frozen stream's
    sigma; ComfyUI reads the stream's largest per-token timestep: the same for every mask whose largest value is
    0 or 1. sigma [B], noise_mask [B, T]."""
    return torch.where(noise_mask.amax(dim=1) > 0, sigma, torch.zeros_like(sigma))


def stack_text(contexts: list[torch.Tensor], masks: list[torch.Tensor | None]
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Prompts' texts [B, S_p, C] (masks [B, S_p], None = all valid) -> [P*B, max S_p, C] with the shorter ones
    zero-padded at the end, and the stacked mask (padding 0; None when no prompt is padded or masked)."""
    if len(contexts) == 1:
        return contexts[0], masks[0]
    length = max(c.shape[1] for c in contexts)
    if all(c.shape[1] == length for c in contexts) and all(m is None for m in masks):
        return torch.cat(contexts), None
    padded, padded_masks = [], []
    for context, mask in zip(contexts, masks):
        missing = length - context.shape[1]
        mask = torch.ones(context.shape[:2], device=context.device) if mask is None else mask.float()
        padded.append(torch.nn.functional.pad(context, (0, 0, 0, missing)))
        padded_masks.append(torch.nn.functional.pad(mask, (0, missing)))
    return torch.cat(padded), torch.cat(padded_masks)
