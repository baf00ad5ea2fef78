"""From Gemma's hidden states to the transformer's text contexts (LTX-2 19B layout).

1. Features: the L hidden states [B, T, H] (embeddings + every layer) stacked [B, T, H, L]; per sample and layer,
   normalised over the valid (non-padding) tokens: 8 (x - mean) / (max - min), padding zeroed; flattened and
   projected by ``aggregate_embed`` (H*L -> H, no bias).
2. Connectors, one per stream (video, audio): valid tokens are moved to the front and the rest of the sequence is
   filled with learnable registers (position i takes register i mod R), then N blocks of pre-RMSNorm
   self-attention (RoPE over the token index) and pre-RMSNorm GELU feed-forward, then a final RMSNorm. Every
   position is then valid. Each sample of a batch is handled on its own padding.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ltxgraph_ops.models.attention import Attention, rms_norm
from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.models.rope import RopeTable, rope_table
from ltxgraph_ops.models.transformer_block import FeedForward

NORM_EPS = 1e-6
FEATURE_EPS = 1e-6
V2_KEYS = ("caption_proj_before_connector", "caption_projection_first_linear", "caption_proj_input_norm",
           "caption_projection_second_linear")


@dataclass(frozen=True)
class ConnectorConfig:
    """Connector settings from the header's ``transformer`` section."""

    heads: int = 30
    head_dim: int = 128
    layers: int = 2
    registers: int = 128
    theta: float = 10000.0
    max_pos: tuple[int, ...] = (1,)
    split_rope: bool = False
    float64: bool = False
    norm_output: bool = True

    @property
    def dim(self) -> int:
        return self.heads * self.head_dim

    @classmethod
    def from_header(cls, section: dict, audio: bool = False) -> "ConnectorConfig":
        if section.get("connector_apply_gated_attention", False):
            raise ValueError("gated-attention connectors (connector_apply_gated_attention) are not supported")
        if any(key in section and section[key] for key in V2_KEYS):
            raise ValueError("this checkpoint's text projection is the V2 layout (caption projection before the "
                             "connectors); only the LTX-2 19B layout is supported")
        prefix = "audio_connector_" if audio else "connector_"

        def value(name: str, default):
            return section.get(prefix + name, section.get("connector_" + name, default))
        return cls(heads=value("num_attention_heads", 30), head_dim=value("attention_head_dim", 128),
                   layers=value("num_layers", 2), registers=section.get("connector_num_learnable_registers", 128),
                   theta=section.get("positional_embedding_theta", 10000.0),
                   max_pos=tuple(section.get("connector_positional_embedding_max_pos", [1])),
                   split_rope=section.get("rope_type", "interleaved") == "split",
                   float64=section.get("frequencies_precision") == "float64",
                   norm_output=section.get("connector_norm_output", True))


def normalise_features(hidden_states: list[torch.Tensor] | tuple[torch.Tensor, ...],
                       mask: torch.Tensor) -> torch.Tensor:
    """L hidden states [B, T, H] and mask [B, T] (1 = token) -> [B, T, H*L] normalised per sample and layer over
    the valid tokens (8 (x - mean) / (max - min)), padding zeroed; layer index fastest."""
    x = torch.stack(list(hidden_states), dim=-1).float()                      # [B, T, H, L]
    valid = mask.bool()[:, :, None, None]
    count = mask.sum(dim=1).float() * x.shape[2]                              # valid elements per sample
    mean = x.masked_fill(~valid, 0.0).sum(dim=(1, 2), keepdim=True) / (count.view(-1, 1, 1, 1) + FEATURE_EPS)
    low = x.masked_fill(~valid, float("inf")).amin(dim=(1, 2), keepdim=True)
    high = x.masked_fill(~valid, float("-inf")).amax(dim=(1, 2), keepdim=True)
    normed = 8 * (x - mean) / (high - low + FEATURE_EPS)
    return normed.masked_fill(~valid, 0.0).flatten(2)


def with_registers(x: torch.Tensor, mask: torch.Tensor, registers: torch.Tensor) -> torch.Tensor:
    """Valid tokens of each sample moved to the front, every other position filled with a register (position i
    takes register i mod R): [B, T, D] -> [B, S, D], S = T rounded up to a multiple of R."""
    batch, tokens, _ = x.shape
    count = registers.shape[0]
    length = -(-tokens // count) * count                                       # S
    out = registers.to(x.dtype).repeat(length // count, 1).expand(batch, -1, -1).clone()   # [B, S, D]
    for b in range(batch):
        kept = x[b, mask[b].bool()]
        out[b, : kept.shape[0]] = kept
    return out


class ConnectorBlock(nn.Module):
    """x + attn(rms(x)), then x + ff(rms(x)); checkpoint names ``attn1`` and ``ff``."""

    def __init__(self, cfg: ConnectorConfig) -> None:
        super().__init__()
        self.attn1 = Attention(cfg.dim, cfg.dim, cfg.heads, cfg.head_dim, NORM_EPS)
        self.ff = FeedForward(cfg.dim)

    def forward(self, x: torch.Tensor, rope: RopeTable, bias: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn1(rms_norm(x, NORM_EPS), bias=bias, q_rope=rope)
        return x + self.ff(rms_norm(x, NORM_EPS))


class EmbeddingsConnector(nn.Module):
    """features [B, T, D] and mask [B, T] -> context [B, T, D] (all positions valid when registers are used)."""

    def __init__(self, cfg: ConnectorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.transformer_1d_blocks = nn.ModuleList([ConnectorBlock(cfg) for _ in range(cfg.layers)])
        if cfg.registers:
            self.learnable_registers = nn.Parameter(torch.empty(cfg.registers, cfg.dim), requires_grad=False)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bias = None
        if self.cfg.registers:
            x = with_registers(features, mask, self.learnable_registers)
            mask = torch.ones(x.shape[:2], dtype=mask.dtype, device=mask.device)
        else:
            x = features
            bias = ((mask.to(x.dtype) - 1) * torch.finfo(x.dtype).max)[:, None, None, :]
        index = torch.arange(x.shape[1], dtype=torch.float32, device=x.device)
        positions = index.view(1, 1, -1, 1).expand(x.shape[0], 1, -1, 2)
        rope = rope_table(positions, self.cfg.max_pos, self.cfg.dim, self.cfg.heads, theta=self.cfg.theta,
                          split=self.cfg.split_rope, float64_ladder=self.cfg.float64, use_midpoint=False,
                          dtype=x.dtype)
        for block in self.transformer_1d_blocks:
            x = block(x, rope, bias)
        if self.cfg.norm_output:
            x = rms_norm(x, NORM_EPS)
        return x, mask


class TextProjection(nn.Module):
    """``text_embedding_projection``: the aggregate embedding over all hidden states."""

    def __init__(self, hidden: int, states: int) -> None:
        super().__init__()
        self.aggregate_embed = Linear(hidden * states, hidden, bias=False)


class TextProjector(nn.Module):
    """Feature extraction and both connectors. State-dict keys are the checkpoint's own
    (``text_embedding_projection.*``, ``model.diffusion_model.{video,audio}_embeddings_connector.*``)."""

    def __init__(self, section: dict, states: int, audio: bool = True) -> None:
        super().__init__()
        video_cfg = ConnectorConfig.from_header(section)
        self.text_embedding_projection = TextProjection(video_cfg.dim, states)
        self.model = nn.Module()
        self.model.diffusion_model = nn.Module()
        self.model.diffusion_model.video_embeddings_connector = EmbeddingsConnector(video_cfg)
        if audio:
            self.model.diffusion_model.audio_embeddings_connector = EmbeddingsConnector(
                ConnectorConfig.from_header(section, audio=True))

    @property
    def states(self) -> int:
        """How many hidden states (embeddings + layers) the projection expects."""
        layer = self.text_embedding_projection.aggregate_embed
        return layer.in_features // layer.out_features

    def forward(self, hidden_states: list[torch.Tensor], mask: torch.Tensor, length: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Gemma hidden states (each [B, T, H]) and mask [B, T] -> (video context, audio context or None,
        context mask), contexts [B, S, D]. ``length`` (>= T) is the padded prompt length when the states cover
        only its last T positions (leading padding was not run through Gemma); S is it rounded up to a multiple
        of the registers."""
        if len(hidden_states) != self.states:
            raise ValueError(f"the text projection expects {self.states} hidden states, got {len(hidden_states)}")
        features = self.text_embedding_projection.aggregate_embed(normalise_features(hidden_states, mask))
        missing = (length or mask.shape[1]) - mask.shape[1]
        if missing > 0:   # padding features are zero (normalised to 0, no bias): put the dropped columns back
            features = torch.nn.functional.pad(features, (0, 0, missing, 0))
            mask = torch.nn.functional.pad(mask, (missing, 0))
        connectors = self.model.diffusion_model
        video, out_mask = connectors.video_embeddings_connector(features, mask)
        audio = None
        if hasattr(connectors, "audio_embeddings_connector"):
            audio, _ = connectors.audio_embeddings_connector(features, mask)
        return video, audio, out_mask
