"""LTX-2.5 duration head: proposes a clip length (seconds) from the prompt, before any diffusion.

It reads the text as the transformer does (the embeddings connectors' outputs, video [B, S, video width] and/or
audio [B, S, audio width]). Each stream is projected to a shared pooler width and tagged with a learned modality
vector; learned query tokens cross-attend over all those tokens (multi-head attention, no mask: the connectors
already replaced padding with registers); the pooled queries go through Linear, GELU (tanh), Linear to one
log-duration per sample, returned as seconds = exp(log-duration).

Checkpoint layout (ltx-core 1.2.0's ``DurationHead``, its own file, ``duration_head.`` prefix): ``video_input_proj``,
``video_modality_emb`` [P], the audio pair, ``attention_pooler.query_tokens`` [Q, P],
``attention_pooler.cross_attn.{in_proj_weight [3P, P], in_proj_bias [3P], out_proj}`` (queries, keys, values
stacked in that order), ``mlp_hidden``, ``mlp_out``. Widths from the header: the stream widths from its
``transformer`` section (``cross_attention_dim``, ``audio_cross_attention_dim``), the rest from its
``duration_head`` section (defaults 256 wide, 1 query, 4 heads, MLP 256: the reference's).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.layers import Linear

PREFIX = "duration_head."


@dataclass(frozen=True)
class DurationHeadConfig:
    """Widths of the head (names as the header's ``duration_head`` section, stream widths as ``transformer``'s)."""

    video_dim: int = 4096
    audio_dim: int = 2048
    pooler_hidden_dim: int = 256
    num_queries: int = 1
    num_pooler_heads: int = 4
    mlp_hidden: int = 256

    @classmethod
    def from_header(cls, config: Mapping[str, Mapping]) -> "DurationHeadConfig":
        """From a file's header ``config`` (its ``transformer`` and optional ``duration_head`` sections)."""
        transformer, head = config.get("transformer", {}), config.get("duration_head", {})
        defaults = cls()
        return cls(video_dim=int(transformer.get("cross_attention_dim", defaults.video_dim)),
                   audio_dim=int(transformer.get("audio_cross_attention_dim", defaults.audio_dim)),
                   **{name: int(head.get(name, getattr(defaults, name)))
                      for name in ("pooler_hidden_dim", "num_queries", "num_pooler_heads", "mlp_hidden")})

    def __post_init__(self) -> None:
        if self.pooler_hidden_dim % self.num_pooler_heads:
            raise ValueError(f"duration head: pooler_hidden_dim {self.pooler_hidden_dim} is not a multiple of "
                             f"num_pooler_heads {self.num_pooler_heads}")


class PoolerAttention(nn.Module):
    """Multi-head attention with stacked query/key/value projections (``in_proj_*``) and ``out_proj``."""

    def __init__(self, dim: int, heads: int, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim, device=device), requires_grad=False)
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim, device=device), requires_grad=False)
        self.out_proj = Linear(dim, dim, device=device)

    def forward(self, queries: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """queries [B, Q, P] attend over tokens [B, T, P] -> [B, Q, P]."""
        w_q, w_k, w_v = self.in_proj_weight.to(queries.dtype).chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.to(queries.dtype).chunk(3)

        def heads(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
            return F.linear(x, weight, bias).unflatten(-1, (self.heads, -1)).transpose(1, 2)  # [B, h, N, P/h]
        attended = F.scaled_dot_product_attention(heads(queries, w_q, b_q), heads(tokens, w_k, b_k),
                                                  heads(tokens, w_v, b_v))
        return self.out_proj(attended.transpose(1, 2).flatten(2))


class AttentionPooler(nn.Module):
    """Learned query tokens [Q, P] cross-attending over the tokens: a fixed [B, Q, P] whatever the length."""

    def __init__(self, dim: int, queries: int, heads: int, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.query_tokens = nn.Parameter(torch.empty(queries, dim, device=device), requires_grad=False)
        self.cross_attn = PoolerAttention(dim, heads, device)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        queries = self.query_tokens.to(tokens.dtype).expand(tokens.shape[0], -1, -1)
        return self.cross_attn(queries, tokens)


class DurationHead(nn.Module):
    """Connector outputs -> predicted duration in seconds [B]; state-dict keys: the file's minus ``duration_head.``."""

    def __init__(self, config: DurationHeadConfig, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.config = c = config
        self.video_input_proj = Linear(c.video_dim, c.pooler_hidden_dim, device=device)
        self.video_modality_emb = nn.Parameter(torch.empty(c.pooler_hidden_dim, device=device), requires_grad=False)
        self.audio_input_proj = Linear(c.audio_dim, c.pooler_hidden_dim, device=device)
        self.audio_modality_emb = nn.Parameter(torch.empty(c.pooler_hidden_dim, device=device), requires_grad=False)
        self.attention_pooler = AttentionPooler(c.pooler_hidden_dim, c.num_queries, c.num_pooler_heads, device)
        self.mlp_hidden = Linear(c.pooler_hidden_dim * c.num_queries, c.mlp_hidden, device=device)
        self.mlp_out = Linear(c.mlp_hidden, 1, device=device)

    def forward(self, video: torch.Tensor | None = None, audio: torch.Tensor | None = None) -> torch.Tensor:
        """video [B, S_v, video_dim] and/or audio [B, S_a, audio_dim] connector outputs -> seconds [B] (float32)."""
        groups = []
        for name, tokens, proj, tag in (("video", video, self.video_input_proj, self.video_modality_emb),
                                        ("audio", audio, self.audio_input_proj, self.audio_modality_emb)):
            if tokens is None:
                continue
            if tokens.ndim != 3 or tokens.shape[-1] != proj.in_features:
                raise ValueError(f"duration head: the {name} text is {tuple(tokens.shape)}, expected "
                                 f"[B, S, {proj.in_features}] (the {name} connector's output)")
            tokens = tokens.to(torch.float32)          # a few MFLOP: always float32, whatever the weights' dtype
            groups.append(proj(tokens) + tag.to(tokens.dtype))                   # [B, S, P]
        if not groups:
            raise ValueError("duration head: needs the video or the audio text (or both)")
        pooled = self.attention_pooler(torch.cat(groups, dim=1)).flatten(1)      # [B, Q * P]
        log_seconds = self.mlp_out(F.gelu(self.mlp_hidden(pooled), approximate="tanh")).squeeze(-1)
        return log_seconds.exp()


def frames_for_seconds(seconds: float, frame_rate: float, min_seconds: float = 1.0, max_seconds: float = 20.0,
                       frames_per_latent: int = 8) -> int:
    """A frame count on the causal VAE's ``8n + 1`` grid for ``seconds`` at ``frame_rate``: the frames rounded,
    clamped to [round(min_seconds * fps) (at least 1), round(max_seconds * fps)], then floored onto the grid; a
    floor below the minimum goes up to the next grid count instead (ltx-pipelines' ``seconds_to_clamped_num_frames``,
    ComfyUI's LTXVDurationPredictor: 2.0 s at 24 fps -> 41 frames). When that passes the maximum too (a window
    with no grid count in it) the nearer of the two grid counts is taken, as diffusers does: ltx-pipelines and
    ComfyUI then return the maximum itself, which need not be 8n + 1 and which no VAE decodes."""
    if frame_rate <= 0 or min_seconds <= 0 or max_seconds < min_seconds:
        raise ValueError(f"need frame_rate > 0 and 0 < min_seconds <= max_seconds, got frame_rate {frame_rate}, "
                         f"min_seconds {min_seconds}, max_seconds {max_seconds}")
    low, high = max(1, round(min_seconds * frame_rate)), round(max_seconds * frame_rate)
    frames = max(low, min(round(seconds * frame_rate), high))
    on_grid = (frames - 1) // frames_per_latent * frames_per_latent + 1
    if on_grid < low:
        above = on_grid + frames_per_latent
        on_grid = above if above <= high or above - frames < frames - on_grid else on_grid
    return on_grid
