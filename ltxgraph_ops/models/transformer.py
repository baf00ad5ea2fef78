"""LTX-2 audio-video diffusion transformer (48 blocks in the 19B release).

Two token streams, video and audio, each a DiT with adaLN-single timestep modulation: per block, a stream runs
gated self-attention (RoPE over its positions), text cross-attention, then the two streams exchange information
through audio->video and video->audio cross-attention (time-only RoPE, modulated by the other stream's noise
level), then each runs a gated feed-forward. The network predicts the flow-matching velocity v per token;
the clean estimate is ``x0 = x - v * t`` with the per-token timestep ``t = noise_mask * sigma``.

One class for every LTX-2 version, switched by header fields (:class:`TransformerConfig`). LTX-2.3 (22B): gated
attention, cross-attention AdaLN (9 adaLN rows per block; the text modulated per block from sigma by
``prompt_adaln_single``), no caption projection here (the text path projects the captions), and (as ltx-core
1.2.0) audio<->video scale/shift from each stream's own timesteps. LTX-2.5: bias-free feed-forwards (``ff_bias``),
no sigma-driven prompt AdaLN (``use_prompt_adaln_single`` False: the text keys/values hold for every step, see
:class:`PreparedText`), and a learned keyframe absolute-position embedding added to the embedded video tokens that
encode one pixel frame (``use_keyframes_abs_pos_embedding``; :attr:`StreamInput.keyframes_mask`).

Inputs are token sequences (see :mod:`ltxgraph_ops.models.transformer_tokens` for the latent <-> token layout
and positions). Config keys are the checkpoint header's ``transformer`` section keys.
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.models.progress import Counter, counted
from ltxgraph_ops.models.rope import RopeTable, rope_table
from ltxgraph_ops.models.timestep import AdaLNSingle, Modulation
from ltxgraph_ops.models.transformer_block import AVBlock, CaptionProjection, StreamState, learned_table
from ltxgraph_ops.models.transformer_inputs import (NO_PERTURBATIONS, PassPerturbations, Perturbations,
                                                    PreparedText, ReferenceTokens, StackedPerturbations,
                                                    StreamInput, TransformerConfig, Velocity, denoised)

__all__ = ["LTXAVTransformer", "TransformerConfig", "StreamInput", "ReferenceTokens", "PreparedText",
           "Perturbations", "StackedPerturbations", "Velocity", "denoised", "NO_PERTURBATIONS"]


def read_text_span(mask: torch.Tensor | None) -> slice | None:
    """The text columns [first, last] some row of ``mask`` [B, S] (1 = token) reads, as a slice over S, when that
    leaves out padding (left or right) every row ignores; None when nothing can be left out. A masked key adds
    exactly 0 to the softmax (its bias -max underflows), so attending over the span equals attending over all S,
    unless a row has no token at all (then every key weighs alike: nothing is dropped)."""
    if mask is None:
        return None
    read = mask.bool().any(dim=0)
    if not bool(mask.bool().any(dim=1).all()) or bool(read.all()):
        return None
    columns = read.nonzero().flatten()
    return slice(int(columns[0]), int(columns[-1]) + 1)


class LTXAVTransformer(nn.Module):
    """The whole transformer. State-dict keys are the checkpoint's ``model.diffusion_model.*`` keys minus that
    prefix. ``transformer_blocks`` is looped over one block at a time, so a streaming wrapper can load and
    release blocks between calls of :meth:`run_block`."""

    def __init__(self, config: TransformerConfig, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.config = c = config
        projects_text = not c.caption_proj_before_connector
        if c.has_video:
            self.patchify_proj = Linear(c.in_channels, c.video_dim, device=device)
            if c.use_keyframes_abs_pos_embedding:   # LTX-2.5: marks tokens that encode one pixel frame
                self.keyframes_abs_pos_embedding = learned_table(1, c.video_dim, device)
            if projects_text:
                self.caption_projection = CaptionProjection(c.caption_channels, c.video_dim, device)
            self.adaln_single = AdaLNSingle(c.video_dim, c.modulation_rows, device)
            if c.text_follows_sigma:
                self.prompt_adaln_single = AdaLNSingle(c.video_dim, 2, device)
            self.scale_shift_table = learned_table(2, c.video_dim, device)
            self.proj_out = Linear(c.video_dim, c.out_channels, device=device)
        if c.has_audio:
            self.audio_patchify_proj = Linear(c.audio_in_channels, c.audio_dim, device=device)
            if projects_text:
                self.audio_caption_projection = CaptionProjection(c.caption_channels, c.audio_dim, device)
            self.audio_adaln_single = AdaLNSingle(c.audio_dim, c.modulation_rows, device)
            if c.text_follows_sigma:
                self.audio_prompt_adaln_single = AdaLNSingle(c.audio_dim, 2, device)
            self.audio_scale_shift_table = learned_table(2, c.audio_dim, device)
            self.audio_proj_out = Linear(c.audio_dim, c.audio_out_channels, device=device)
        if c.has_video and c.has_audio:
            self.av_ca_video_scale_shift_adaln_single = AdaLNSingle(c.video_dim, 4, device)
            self.av_ca_audio_scale_shift_adaln_single = AdaLNSingle(c.audio_dim, 4, device)
            self.av_ca_a2v_gate_adaln_single = AdaLNSingle(c.video_dim, 1, device)
            self.av_ca_v2a_gate_adaln_single = AdaLNSingle(c.audio_dim, 1, device)
        self.transformer_blocks = nn.ModuleList([AVBlock(i, c, device) for i in range(c.num_layers)])

    def forward(self, video: StreamInput | None, audio: StreamInput | None,
                perturbations: PassPerturbations = NO_PERTURBATIONS, on_block: Counter | None = None) -> Velocity:
        """Velocity per stream for the given inputs (either may be None); ``on_block(done, total)`` after each
        block (resident or streamed)."""
        v_state, a_state = self.prepare(video, audio)
        for block in counted(self.transformer_blocks, on_block):
            v_state, a_state = block(v_state, a_state, perturbations)
        return self.output(v_state, a_state)

    # ---- before the blocks

    def prepare_text(self, stream: str, context: torch.Tensor, context_mask: torch.Tensor | None = None,
                     sigma: torch.Tensor | None = None) -> PreparedText:
        """Caption projection and every block's text keys/values for ``stream`` ("video" or "audio"), computed
        once per prompt: context [B, S, caption_channels] -> :class:`PreparedText` (memory cost documented
        there). When the text follows sigma (``config.text_follows_sigma``, LTX-2.3) ``sigma`` [B] is required
        and the result holds for that sigma only. Needs every block's weights resident; a block-streaming caller
        can instead build the per-block pairs with ``transformer_blocks[i].text_keys_values`` while block i is
        loaded."""
        if stream not in ("video", "audio"):
            raise ValueError(f"stream must be 'video' or 'audio', not {stream!r}")
        if not (self.config.has_video if stream == "video" else self.config.has_audio):
            raise ValueError(f"this transformer has no {stream} stream")
        projected = self._project_text(stream, context)                       # [B, S, D]
        prompt_modulation = None
        if self.config.text_follows_sigma:
            if sigma is None:
                raise ValueError(f"this transformer modulates the text by sigma (cross-attention AdaLN): "
                                 f"prepare_text({stream!r}, ...) needs the step's sigma")
            sigma = self._per_sample(sigma, context.shape[0])
            prompt_modulation = self._prompt_modulation(stream, sigma, context.dtype)
        pairs = [block.text_keys_values(stream, projected, prompt_modulation) for block in self.transformer_blocks]
        return PreparedText(stream, tuple(k for k, _ in pairs), tuple(v for _, v in pairs), context_mask,
                            sigma if self.config.text_follows_sigma else None)

    def _project_text(self, stream: str, context: torch.Tensor) -> torch.Tensor:
        """Text [B, S, caption_channels] -> [B, S, stream width]: the caption projection, or (LTX-2.3, where the
        text path projects) the text as given, its width checked."""
        caption = getattr(self, "caption_projection" if stream == "video" else "audio_caption_projection", None)
        if caption is not None:
            return caption(context)
        width = self.config.video_dim if stream == "video" else self.config.audio_dim
        if context.shape[-1] != width:
            raise ValueError(f"the {stream} text context is {context.shape[-1]} wide; this transformer takes text "
                             f"already projected to its {stream} width {width} (caption_proj_before_connector)")
        return context

    @staticmethod
    def _per_sample(sigma: torch.Tensor, batch: int) -> torch.Tensor:
        """sigma as [B] float32 (a scalar is broadcast)."""
        return sigma.reshape(-1).to(torch.float32).expand(batch) if sigma.numel() == 1 else sigma.reshape(batch)

    def _prompt_modulation(self, stream: str, sigma: torch.Tensor, dtype: torch.dtype) -> Modulation:
        """The text's (shift, scale) modulation from sigma [B] (prompt AdaLN): a :class:`Modulation` of 2 rows."""
        adaln = self.prompt_adaln_single if stream == "video" else self.audio_prompt_adaln_single
        return adaln(sigma.reshape(-1, 1).to(torch.float32) * self.config.timestep_scale_multiplier, dtype)

    def prepare(self, video: StreamInput | None, audio: StreamInput | None
                ) -> tuple[StreamState | None, StreamState | None]:
        """Embed tokens, text, timesteps, RoPE tables and masks once per forward."""
        if video is None and audio is None:
            raise ValueError("the transformer needs a video or an audio input")
        if video is not None and not self.config.has_video:
            raise ValueError("this transformer has no video stream, but a video input was given")
        if audio is not None and not self.config.has_audio:
            raise ValueError("this transformer has no audio stream, but an audio input was given")
        c = self.config
        v_state = a_state = None
        for name, s in (("video", video), ("audio", audio)):
            if s is not None and isinstance(s.context, PreparedText):
                self._check_prepared(name, s)
        if video is not None:
            v_state = self._stream("video", video, self.patchify_proj, self.adaln_single,
                                   c.positional_embedding_max_pos, c.video_dim, c.num_attention_heads)
        if audio is not None:
            a_state = self._stream("audio", audio, self.audio_patchify_proj, self.audio_adaln_single,
                                   c.audio_positional_embedding_max_pos, c.audio_dim, c.audio_num_attention_heads)
        if video is not None and audio is not None:
            v_state = self._cross(v_state, video, other_sigma=audio.sigma, heads=c.num_attention_heads,
                                  scale_shift=self.av_ca_video_scale_shift_adaln_single,
                                  gate=self.av_ca_a2v_gate_adaln_single)
            a_state = self._cross(a_state, audio, other_sigma=video.sigma, heads=c.audio_num_attention_heads,
                                  scale_shift=self.av_ca_audio_scale_shift_adaln_single,
                                  gate=self.av_ca_v2a_gate_adaln_single)
        return v_state, a_state

    def _check_prepared(self, name: str, s: StreamInput) -> None:
        """A PreparedText context fits this stream, these blocks and (when the text follows sigma) this sigma."""
        prepared = s.context
        if prepared.stream != name or len(prepared.keys) != len(self.transformer_blocks):
            raise ValueError(f"the {name} input's PreparedText was built for the {prepared.stream} "
                             f"stream with {len(prepared.keys)} blocks")
        if s.context_mask is not None:
            raise ValueError(f"the {name} input has a PreparedText context: its mask lives there, "
                             "context_mask must be None")
        if self.config.text_follows_sigma:
            sigma = self._text_sigma(s)
            if prepared.sigma is None or not torch.equal(prepared.sigma.to(sigma.device), sigma):
                found = None if prepared.sigma is None else prepared.sigma.tolist()
                raise ValueError(f"the {name} input's PreparedText was modulated for sigma {found}, the input has "
                                 f"sigma {sigma.tolist()}: this transformer's text keys/values follow sigma "
                                 "(cross-attention AdaLN), prepare them per step")

    def _text_sigma(self, s: StreamInput) -> torch.Tensor:
        """sigma [rows of the text] of ``s``: per latent row, or (with ``text_rows``) of the latent rows reading
        each text row (rows read by none keep sigma 0)."""
        sigma = self._per_sample(s.sigma, s.latent.shape[0])
        if s.text_rows is None:
            return sigma
        context = s.context.keys[0] if isinstance(s.context, PreparedText) else s.context
        return sigma.new_zeros(context.shape[0]).index_copy_(0, s.text_rows.to(sigma.device), sigma)

    def _rope(self, positions: torch.Tensor, max_pos: tuple[int, ...], dim: int, heads: int, midpoint: bool,
              dtype: torch.dtype) -> RopeTable:
        c = self.config
        return rope_table(positions, max_pos, dim, heads, theta=c.positional_embedding_theta,
                          split=c.rope_type == "split", float64_ladder=c.frequencies_precision == "float64",
                          use_midpoint=midpoint, dtype=dtype)

    def _stream(self, name: str, s: StreamInput, patchify: Linear, adaln: AdaLNSingle, max_pos: tuple[int, ...],
                dim: int, heads: int) -> StreamState:
        dtype = s.latent.dtype
        tokens, positions, timesteps = s.sequence()       # reference tokens (if any) first, at timestep 0
        cache = s.context if isinstance(s.context, PreparedText) else None
        mask = s.context_mask if cache is None else cache.context_mask
        context = s.context
        span = read_text_span(mask)
        if span is not None:   # padding no row reads is dropped; the rest stays masked
            mask = mask[:, span]
            if cache is not None:
                cache = replace(cache, keys=tuple(k[:, span] for k in cache.keys),
                                values=tuple(v[:, span] for v in cache.values), context_mask=mask)
            else:
                context = context[:, span]
        store = s.text_store
        if store is not None:   # pairs of the columns read, as the blocks compute them
            if cache is not None or self.config.text_follows_sigma:
                raise ValueError(f"the {name} input has a text store, which needs a text context (not a "
                                 "PreparedText) and a transformer whose text keys/values do not follow sigma")
            store.check(name, len(self.transformer_blocks), context)
            if store.complete():
                cache, store = store.prepared(mask), None
        context_bias = None
        if mask is not None and not bool(mask.all()):   # 0 -> -max, 1 -> 0
            context_bias = (mask.to(dtype) - 1).reshape(mask.shape[0], 1, 1, -1) * torch.finfo(dtype).max
        self_bias = None
        if s.attention_mask is not None:  # weights in [0, 1] -> log weights, 0 -> most negative
            weights = s.attention_mask.to(dtype)
            floor = torch.full_like(weights, torch.finfo(dtype).min)
            self_bias = torch.where(weights > 0, weights.clamp(min=torch.finfo(dtype).tiny).log(), floor)[:, None]
        prompt_modulation = None
        if self.config.text_follows_sigma and cache is None:
            prompt_modulation = self._prompt_modulation(name, self._text_sigma(s), dtype)
        return StreamState(
            x=self._mark_keyframes(patchify(tokens), s) if name == "video" else patchify(tokens),
            context=None if cache is not None else self._project_text(name, context),
            text_cache=cache,
            text_store=store,
            prompt_modulation=prompt_modulation,
            context_bias=context_bias,
            modulation=adaln(timesteps * self.config.timestep_scale_multiplier, dtype),
            rope=self._rope(positions, max_pos, dim, heads, self.config.use_middle_indices_grid, dtype),
            self_bias=self_bias,
            enabled=s.enabled,
            text_rows=None if s.text_rows is None else s.text_rows.to(s.latent.device),
            reference_tokens=0 if s.reference is None else s.reference.count,
        )

    def _mark_keyframes(self, x: torch.Tensor, s: StreamInput) -> torch.Tensor:
        """Embedded tokens [B, R + T, D] plus the keyframe absolute-position embedding on the tokens
        ``s.keyframes_mask`` marks (LTX-2.5); unchanged without a mask or without the embedding."""
        embedding = getattr(self, "keyframes_abs_pos_embedding", None)
        if embedding is None or s.keyframes_mask is None:
            return x
        marked = (s.keyframes_mask > 0).to(x.dtype)                               # [B, T]
        if s.reference is not None:   # reference tokens (first) are never marked
            marked = torch.cat([marked.new_zeros(marked.shape[0], s.reference.count), marked], dim=1)
        return x + marked[..., None] * embedding.to(x.dtype)

    def _cross(self, state: StreamState, s: StreamInput, other_sigma: torch.Tensor, heads: int,
               scale_shift: AdaLNSingle, gate: AdaLNSingle) -> StreamState:
        """Audio<->video attention inputs: time-only RoPE; the gate from the other stream's sigma; the scale and
        shift from the other stream's sigma too (LTX-2.0, as ltx-core 1.0.0) or from this stream's own
        per-token timesteps (LTX-2.3+, as ltx-core 1.2.0: ``config.av_modulation_own_timesteps``)."""
        c = self.config
        dtype = s.latent.dtype
        _, positions, timesteps = s.sequence()
        time_max = max(c.positional_embedding_max_pos[0], c.audio_positional_embedding_max_pos[0])
        other = other_sigma.reshape(-1, 1).to(torch.float32).expand(s.latent.shape[0], 1)
        other = other * c.timestep_scale_multiplier                        # [B, 1]
        gate_factor = c.av_ca_timestep_scale_multiplier / c.timestep_scale_multiplier
        own = timesteps * c.timestep_scale_multiplier                      # [B, T]
        return replace(
            state,
            cross_rope=self._rope(positions[:, :1], (time_max,), c.audio_cross_attention_dim, heads, True, dtype),
            cross_modulation=scale_shift(own if c.av_modulation_own_timesteps else other, dtype),
            cross_gate=gate(other * gate_factor, dtype),
        )

    # ---- the blocks

    def run_block(self, index: int, video: StreamState | None, audio: StreamState | None,
                  perturbations: PassPerturbations = NO_PERTURBATIONS) -> tuple[StreamState | None, StreamState | None]:
        """Run block ``index`` (for callers that stream blocks in and out)."""
        return self.transformer_blocks[index](video, audio, perturbations)

    # ---- after the blocks

    def output(self, video: StreamState | None, audio: StreamState | None) -> Velocity:
        """Final modulated LayerNorm and projection to latent channels."""
        v = a = None
        if video is not None:
            v = self._head(video, self.scale_shift_table, self.proj_out)
        if audio is not None:
            a = self._head(audio, self.audio_scale_shift_table, self.audio_proj_out)
        return Velocity(v, a)

    def _head(self, s: StreamState, sst: torch.Tensor, proj: Linear) -> torch.Tensor:
        """The stream's own tokens [B, T, D] -> velocity [B, T, C] (reference tokens dropped first)."""
        x = s.x[:, s.reference_tokens:]
        embedded = s.modulation.embedded()                                    # [B, R + T or 1, D]
        if embedded.shape[1] > 1:
            embedded = embedded[:, s.reference_tokens:]
        embedded = embedded[:, :, None]                                       # [B, T or 1, 1, D]
        shift, scale = (sst.to(x.dtype)[None, None] + embedded).unbind(dim=2)
        h = F.layer_norm(x, (x.shape[-1],), eps=self.config.norm_eps)
        return proj(h * (1 + scale) + shift)
