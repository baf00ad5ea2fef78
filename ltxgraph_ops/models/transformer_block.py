"""One LTX-2 transformer block over the video and audio streams, and the per-forward state it reads.

LTX-2.3 changes (config fields, see :class:`TransformerConfig`): every attention is gated per head; the text
attention is modulated like the others (cross-attention AdaLN): its queries by three more adaLN rows (shift,
scale, gate) and the text itself by a per-block prompt table plus a modulation computed from sigma."""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

import torch
from torch import nn

from ltxgraph_ops.models.attention import Attention
from ltxgraph_ops.models.elementwise import EAGER, ElementwiseKernels
from ltxgraph_ops.models.layers import Linear, layers_set
from ltxgraph_ops.models.rope import RopeTable
from ltxgraph_ops.models.timestep import Modulation
from ltxgraph_ops.models.transformer_inputs import (NO_PERTURBATIONS, PassPerturbations, PreparedText,
                                                    TextKeysValuesStore, TransformerConfig)


@dataclass(frozen=True)
class StreamState:
    """A stream prepared for the blocks: hidden tokens and everything constant across blocks."""

    x: torch.Tensor                           # [B, T, D]
    context: torch.Tensor | None              # [B, S, D] projected text (None when text_cache is given)
    context_bias: torch.Tensor | None         # [B, 1, 1, S] additive text mask
    modulation: Modulation                    # 6 rows: (shift, scale, gate) attention, (shift, scale, gate) MLP
    rope: RopeTable
    self_bias: torch.Tensor | None            # [B, 1, T, T] additive
    enabled: bool
    cross_rope: RopeTable | None = None       # time-only, for audio<->video attention
    cross_modulation: Modulation | None = None  # 4 rows: other stream's sigma (2.0) / own timesteps (2.3+)
    cross_gate: Modulation | None = None        # 1 row from the OTHER stream's sigma
    text_cache: PreparedText | None = None      # per-block text keys/values computed once per prompt
    text_store: TextKeysValuesStore | None = None  # pairs kept as the blocks compute them (block streaming)
    prompt_modulation: Modulation | None = None  # 2 rows (shift, scale) of the text from sigma (LTX-2.3)
    text_rows: torch.Tensor | None = None     # [B] the text row each latent row reads (None: the same row)
    reference_tokens: int = 0                   # clean reference tokens at the front of x (dropped by the output)


class CaptionProjection(nn.Module):
    """Text embedding -> stream width: Linear, GELU (tanh), Linear."""

    def __init__(self, in_dim: int, dim: int, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.linear_1 = Linear(in_dim, dim, device=device)
        self.linear_2 = Linear(dim, dim, device=device)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.linear_1(text, activation="gelu_tanh"))


class GeluProjection(nn.Module):
    def __init__(self, dim: int, hidden: int, device: torch.device | str | None = None, bias: bool = True) -> None:
        super().__init__()
        self.proj = Linear(dim, hidden, bias=bias, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x, activation="gelu_tanh")                  # GELU (tanh) of the projection


class FeedForward(nn.Module):
    """Linear(D -> 4D), GELU (tanh), Linear(4D -> D); checkpoint names ``net.0.proj`` and ``net.2``.

    Row-wise (each token's output depends on that token alone), so it runs over near-equal parts of at most
    ``token_chunk`` tokens when set (:func:`feed_forward_chunks`): the 4D-wide hidden then exists for one part
    only. The output is the same values; bit for bit when every part has enough rows for the BLAS to take the
    same kernels as for the whole (measured here from 64 rows; :data:`ltxgraph.budget.MIN_TOKEN_CHUNK`)."""

    def __init__(self, dim: int, device: torch.device | str | None = None, bias: bool = True) -> None:
        super().__init__()
        self.net = nn.ModuleList([GeluProjection(dim, 4 * dim, device, bias), nn.Identity(),
                                  Linear(4 * dim, dim, bias=bias, device=device)])
        self.token_chunk: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]."""
        chunk = self.token_chunk
        if chunk is None or x.shape[1] <= chunk:
            return self.net[2](self.net[0](x))
        flat = x.reshape(-1, x.shape[-1])                 # [B T, D]: parts of whole rows, each contiguous
        out = flat.new_empty(flat.shape[0], self.net[2].out_features)
        parts = -(-x.shape[1] // chunk)                   # near-equal parts of B x chunk rows at most
        for rows, part in zip(out.tensor_split(parts), flat.tensor_split(parts)):
            rows.copy_(self.net[2](self.net[0](part)))
        return out.reshape(*x.shape[:-1], -1)


def feed_forward_chunks(model: nn.Module, token_chunk: int | None) -> AbstractContextManager[None]:
    """Within it, every :class:`FeedForward` of ``model`` (resident or streamed blocks alike) runs over
    ``token_chunk`` tokens at a time (None: all at once); the previous setting comes back after."""
    return layers_set(model, FeedForward, "token_chunk", token_chunk)


def learned_table(rows: int, dim: int, device: torch.device | str | None) -> nn.Parameter:
    return nn.Parameter(torch.empty(rows, dim, device=device), requires_grad=False)


class AVBlock(nn.Module):
    """One transformer block over both streams (either may be absent). ``kernels``: how its AdaLN modulations
    run (:mod:`ltxgraph_ops.models.elementwise`)."""

    kernels: ElementwiseKernels = EAGER

    def __init__(self, index: int, config: TransformerConfig, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.index = index
        self.eps = config.norm_eps
        c = config
        gated = c.apply_gated_attention
        if c.has_video:
            self.attn1 = Attention(c.video_dim, c.video_dim, c.num_attention_heads, c.attention_head_dim, c.norm_eps,
                                   device, gated)
            self.attn2 = Attention(c.video_dim, c.cross_attention_dim, c.num_attention_heads, c.attention_head_dim,
                                   c.norm_eps, device, gated)
            self.ff = FeedForward(c.video_dim, device, c.ff_bias)
            self.scale_shift_table = learned_table(c.modulation_rows, c.video_dim, device)
            if c.cross_attention_adaln:   # rows (shift, scale) of the text
                self.prompt_scale_shift_table = learned_table(2, c.video_dim, device)
        if c.has_audio:
            self.audio_attn1 = Attention(c.audio_dim, c.audio_dim, c.audio_num_attention_heads,
                                         c.audio_attention_head_dim, c.norm_eps, device, gated)
            self.audio_attn2 = Attention(c.audio_dim, c.audio_cross_attention_dim, c.audio_num_attention_heads,
                                         c.audio_attention_head_dim, c.norm_eps, device, gated)
            self.audio_ff = FeedForward(c.audio_dim, device, c.audio_ff_bias)
            self.audio_scale_shift_table = learned_table(c.modulation_rows, c.audio_dim, device)
            if c.cross_attention_adaln:
                self.audio_prompt_scale_shift_table = learned_table(2, c.audio_dim, device)
        if c.has_video and c.has_audio:
            # both directions attend with the audio stream's heads; gates are per head from the query side
            self.audio_to_video_attn = Attention(c.video_dim, c.audio_dim, c.audio_num_attention_heads,
                                                 c.audio_attention_head_dim, c.norm_eps, device, gated)
            self.video_to_audio_attn = Attention(c.audio_dim, c.video_dim, c.audio_num_attention_heads,
                                                 c.audio_attention_head_dim, c.norm_eps, device, gated)
            # rows 0:2 (scale, shift) audio->video, rows 2:4 (scale, shift) video->audio, row 4 gate
            self.scale_shift_table_a2v_ca_audio = learned_table(5, c.audio_dim, device)
            self.scale_shift_table_a2v_ca_video = learned_table(5, c.video_dim, device)

    def _text_parts(self, stream: str) -> tuple[Attention, torch.Tensor | None]:
        """The text attention of ``stream`` and its prompt table (None without cross-attention AdaLN)."""
        if stream == "video":
            return self.attn2, getattr(self, "prompt_scale_shift_table", None)
        return self.audio_attn2, getattr(self, "audio_prompt_scale_shift_table", None)

    @staticmethod
    def modulated_text(context: torch.Tensor, prompt_table: torch.Tensor | None,
                       prompt_modulation: Modulation | None) -> torch.Tensor:
        """The text [B, S, D] as the text attention reads it: unchanged (LTX-2.0), or ``text * (1 + scale) +
        shift`` with (shift, scale) = the block's prompt table rows plus the sigma modulation (if any)."""
        if prompt_table is None:
            return context
        if prompt_modulation is None:
            shift, scale = prompt_table.to(context.dtype).unbind(0)                    # [D] each
        else:
            shift, scale = prompt_modulation.rows(prompt_table, 0, 2)                   # [B, 1, D] each
        return torch.addcmul(shift, context, 1 + scale)

    def text_keys_values(self, stream: str, context: torch.Tensor, prompt_modulation: Modulation | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """This block's text keys and values for ``stream`` from the stream-width text [B, S, D] (see
        :class:`PreparedText`); ``prompt_modulation`` is the sigma modulation when the text follows sigma."""
        attn, table = self._text_parts(stream)
        return attn.keys_values(self.modulated_text(context, table, prompt_modulation))

    def _attend_self_and_text(self, s: StreamState, stream: str, attn1: Attention, sst: torch.Tensor,
                              keep: torch.Tensor | None | str) -> torch.Tensor:
        """x + gate * attn1(rms(x) * (1 + scale) + shift), then the text attention (:meth:`_attend_text`).
        ``keep`` is the STG selection from :meth:`Perturbations.keep_mask`."""
        shift, scale, gate = s.modulation.rows(sst, 0, 3)
        attended = attn1(self.kernels.modulated(s.x, self.eps, shift, scale), bias=s.self_bias, q_rope=s.rope,
                         values_only=isinstance(keep, str),
                         keep_attention=keep if isinstance(keep, torch.Tensor) else None)
        x = torch.addcmul(s.x, attended, gate)
        return x + self._attend_text(s, stream, x, sst)

    def _attend_text(self, s: StreamState, stream: str, x: torch.Tensor, sst: torch.Tensor) -> torch.Tensor:
        """LTX-2.0: attn2(rms(x), text), neither modulated nor gated. Cross-attention AdaLN (LTX-2.3):
        gate * attn2(rms(x) * (1 + scale) + shift, modulated text) with (shift, scale, gate) = rows 6:9."""
        attn2, prompt_table = self._text_parts(stream)
        cached = None if s.text_cache is None else (s.text_cache.keys[self.index], s.text_cache.values[self.index])
        if cached is None and s.text_store is not None:
            cached = s.text_store.get(self.index)
        context = None if cached is not None else self.modulated_text(s.context, prompt_table, s.prompt_modulation)
        if cached is None and s.text_store is not None:
            cached, context = s.text_store.put(self.index, attn2.keys_values(context)), None
        bias = s.context_bias
        if s.text_rows is not None:   # each distinct prompt projected once, then read by the rows that use it
            cached = tuple(t[s.text_rows] for t in (cached or attn2.keys_values(context)))
            context, bias = None, None if bias is None else bias[s.text_rows]
        if prompt_table is None:
            return attn2(self.kernels.normalized(x, None, self.eps), context, bias=bias, keys_values=cached)
        shift, scale, gate = s.modulation.rows(sst, 6, 9)
        queries = self.kernels.modulated(x, self.eps, shift, scale)
        return attn2(queries, context, bias=bias, keys_values=cached) * gate

    def _feed_forward(self, s: StreamState, ff: FeedForward, sst: torch.Tensor) -> torch.Tensor:
        """x + gate * ff(rms(x) * (1 + scale) + shift)."""
        shift, scale, gate = s.modulation.rows(sst, 3, 6)
        return torch.addcmul(s.x, ff(self.kernels.modulated(s.x, self.eps, shift, scale)), gate)

    def forward(self, video: StreamState | None, audio: StreamState | None,
                perturbations: PassPerturbations = NO_PERTURBATIONS) -> tuple[StreamState | None, StreamState | None]:
        p, i = perturbations, self.index
        has_v = video is not None and video.x.shape[1] > 0
        has_a = audio is not None and audio.x.shape[1] > 0
        run_v = has_v and video.enabled
        run_a = has_a and audio.enabled
        if run_v:
            keep = p.keep("video_self_attention", i, video.x.shape[0], video.x)
            video = replace(video, x=self._attend_self_and_text(video, "video", self.attn1, self.scale_shift_table,
                                                                keep))
        if run_a:
            keep = p.keep("audio_self_attention", i, audio.x.shape[0], audio.x)
            audio = replace(audio, x=self._attend_self_and_text(audio, "audio", self.audio_attn1,
                                                                self.audio_scale_shift_table, keep))
        if has_v and has_a and (run_v or run_a):
            video, audio = self._exchange(video, audio, run_v, run_a, p)
        if run_v:
            video = replace(video, x=self._feed_forward(video, self.ff, self.scale_shift_table))
        if run_a:
            audio = replace(audio, x=self._feed_forward(audio, self.audio_ff, self.audio_scale_shift_table))
        return video, audio

    def _exchange(self, video: StreamState, audio: StreamState, run_v: bool, run_a: bool, p: PassPerturbations
                  ) -> tuple[StreamState, StreamState]:
        """Audio->video then video->audio cross-attention; both read the streams as they were before either
        update. Each side is RMS-normalised and modulated by its own table rows plus its cross modulation (see
        ``LTXAVTransformer._cross``); the output is gated by the query side's gate row (other stream's sigma)."""
        v_table, a_table = self.scale_shift_table_a2v_ca_video, self.scale_shift_table_a2v_ca_audio
        modulated = self.kernels.modulated
        new_v, new_a = video.x, audio.x
        keep = p.keep("audio_to_video", self.index, video.x.shape[0], video.x)
        if run_v and not isinstance(keep, str):
            v_scale, v_shift = video.cross_modulation.rows(v_table, 0, 2)
            a_scale, a_shift = audio.cross_modulation.rows(a_table, 0, 2)
            (gate,) = video.cross_gate.rows(v_table[4:], 0, 1)
            out = self.audio_to_video_attn(modulated(video.x, self.eps, v_shift, v_scale),
                                           modulated(audio.x, self.eps, a_shift, a_scale),
                                           q_rope=video.cross_rope, k_rope=audio.cross_rope)
            new_v = _gated_residual(video.x, out, gate, keep)
        keep = p.keep("video_to_audio", self.index, audio.x.shape[0], audio.x)
        if run_a and not isinstance(keep, str):
            a_scale, a_shift = audio.cross_modulation.rows(a_table, 2, 4)
            v_scale, v_shift = video.cross_modulation.rows(v_table, 2, 4)
            (gate,) = audio.cross_gate.rows(a_table[4:], 0, 1)
            out = self.video_to_audio_attn(modulated(audio.x, self.eps, a_shift, a_scale),
                                           modulated(video.x, self.eps, v_shift, v_scale),
                                           q_rope=audio.cross_rope, k_rope=video.cross_rope)
            new_a = _gated_residual(audio.x, out, gate, keep)
        return replace(video, x=new_v), replace(audio, x=new_a)


def _gated_residual(x: torch.Tensor, out: torch.Tensor, gate: torch.Tensor, keep: torch.Tensor | None
                    ) -> torch.Tensor:
    """``x + out * gate``, times the STG selection ``keep`` [B, 1, 1] when given; one pass without it."""
    return torch.addcmul(x, out, gate) if keep is None else x + out * gate * keep
