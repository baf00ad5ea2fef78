"""From Gemma's hidden states to the transformer's text contexts (LTX-2.0 "V1" and LTX-2.3 "V2" layouts, told
apart by the header's ``caption_proj_before_connector`` fields).

1. Features: the L hidden states [B, T, H] (embeddings + every layer) stacked [B, T, H, L].
   V1: per sample and layer, normalised over the valid (non-padding) tokens: 8 (x - mean) / (max - min), padding
   zeroed; flattened and projected by ``aggregate_embed`` (H*L -> H, no bias), one feature for both streams.
   V2: per token and layer RMS-normalised over H, padding zeroed, flattened; per stream rescaled by sqrt(D / H)
   and projected by its own biased ``video_aggregate_embed`` / ``audio_aggregate_embed`` (H*L -> D, D the
   stream's transformer width): the caption projection happens here, before the connectors, and the
   transformer has none.
2. Connectors, one per stream (video, audio): valid tokens are moved to the front and the rest of the sequence is
   filled with learnable registers (position i takes register i mod R), then N blocks of pre-RMSNorm
   self-attention (RoPE over the token index; V2: per-head gated) and pre-RMSNorm GELU feed-forward, then a final
   RMSNorm. Every position is then valid. Each sample of a batch is handled on its own padding. V2's audio
   connector has its own width (``audio_connector_*`` fields).

Where ltx-core 1.2.0 and diffusers 0.42.1 differ, ltx-core is followed: V2 projection widths are the
transformer's (heads x head_dim per stream; diffusers: its own ``video/audio_hidden_dim``), the sqrt(D / H)
rescale uses Gemma's hidden size (diffusers: ``caption_channels``; equal in every release), a partial V2 config
is refused (diffusers: one ``per_modality_projections`` switch), the registers are bf16 values as stored
(diffusers keeps float32). Same results on release weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ltxgraph_ops.models.attention import Attention, rms_norm
from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.models.rope import RopeTable, rope_table
from ltxgraph_ops.models.transformer_block import FeedForward

NORM_EPS = 1e-6
FEATURE_EPS = 1e-6
# the one V2 combination the reference knows (ltx-core 1.2.0 refuses any other)
V2_FIELDS = {"caption_proj_before_connector": True, "caption_projection_first_linear": False,
             "caption_proj_input_norm": False, "caption_projection_second_linear": False}


def is_v2_layout(section: dict) -> bool:
    """True for the LTX-2.3 text path (all four ``V2_FIELDS`` at their values), False for LTX-2.0 (none of
    them); anything in between is refused naming the fields."""
    present = V2_FIELDS.keys() & section.keys()
    if not present:
        return False
    missing = sorted(V2_FIELDS.keys() - present)
    if missing:
        raise ValueError(f"partial V2 text-projection config: missing {', '.join(missing)}")
    wrong = [f"{key}={section[key]!r} (expected {V2_FIELDS[key]!r})" for key in sorted(present)
             if section[key] != V2_FIELDS[key]]
    if wrong:
        raise ValueError(f"unknown text-projection config: {', '.join(wrong)}")
    return True


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
    gated: bool = False

    @property
    def dim(self) -> int:
        return self.heads * self.head_dim

    @classmethod
    def from_header(cls, section: dict, audio: bool = False) -> "ConnectorConfig":
        if not section.get("connector_ff_bias", True):
            raise ValueError("connectors without feed-forward bias (connector_ff_bias false) are not supported")
        prefix = "audio_connector_" if audio else "connector_"

        def value(name: str, default):
            return section.get(prefix + name, section.get("connector_" + name, default))
        return cls(heads=value("num_attention_heads", 30), head_dim=value("attention_head_dim", 128),
                   layers=value("num_layers", 2), registers=section.get("connector_num_learnable_registers", 128),
                   theta=section.get("positional_embedding_theta", 10000.0),
                   max_pos=tuple(section.get("connector_positional_embedding_max_pos", [1])),
                   split_rope=section.get("rope_type", "interleaved") == "split",
                   float64=section.get("frequencies_precision") == "float64",
                   norm_output=section.get("connector_norm_output", True),
                   gated=bool(section.get("connector_apply_gated_attention", False)))


def normalise_features(hidden_states: list[torch.Tensor] | tuple[torch.Tensor, ...],
                       mask: torch.Tensor) -> torch.Tensor:
    """L hidden states [B, T, H] and mask [B, T] (1 = token) -> [B, T, H*L] normalised per sample and layer over
    the valid tokens (8 (x - mean) / (max - min)), padding zeroed; layer index fastest. Layer by layer into the
    output: one [B, T, H] float32 temporary at a time (stacking first would hold three copies of all L)."""
    valid = mask.bool()[:, :, None]
    count = mask.sum(dim=1).float() * hidden_states[0].shape[2]                # valid elements per sample

    def normalised(x: torch.Tensor) -> torch.Tensor:
        mean = x.masked_fill(~valid, 0.0).sum(dim=(1, 2), keepdim=True) / (count.view(-1, 1, 1) + FEATURE_EPS)
        low = x.masked_fill(~valid, float("inf")).amin(dim=(1, 2), keepdim=True)
        high = x.masked_fill(~valid, float("-inf")).amax(dim=(1, 2), keepdim=True)
        return (8 * (x - mean) / (high - low + FEATURE_EPS)).masked_fill(~valid, 0.0)
    return _per_layer(hidden_states, normalised)


def normalise_tokens(hidden_states: list[torch.Tensor] | tuple[torch.Tensor, ...],
                     mask: torch.Tensor) -> torch.Tensor:
    """V2: L hidden states [B, T, H] and mask [B, T] (1 = token) -> [B, T, H*L], each token's H channels of each
    layer divided by their RMS (eps 1e-6), padding zeroed; layer index fastest (layer by layer, as above)."""
    valid = mask.bool()[:, :, None]
    return _per_layer(hidden_states, lambda x: rms_norm(x, FEATURE_EPS).masked_fill(~valid, 0.0))


def _per_layer(hidden_states: list[torch.Tensor] | tuple[torch.Tensor, ...], normalised) -> torch.Tensor:
    """[B, T, H*L] float32 whose channel h * L + l is ``normalised(hidden_states[l].float())[..., h]``."""
    batch, tokens, width = hidden_states[0].shape
    out = torch.empty(batch, tokens, width, len(hidden_states))                # [B, T, H, L]
    for layer, state in enumerate(hidden_states):
        out[..., layer] = normalised(state.float())
    return out.flatten(2)


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
        self.attn1 = Attention(cfg.dim, cfg.dim, cfg.heads, cfg.head_dim, NORM_EPS, gated=cfg.gated)
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
    """``text_embedding_projection``: Gemma's L hidden states [B, T, H] -> (video features [B, T, Dv], audio
    features [B, T, Da]). V1 (``stream_widths`` None): ``aggregate_embed`` (H*L -> H, no bias) shared by both
    streams. V2: ``video_aggregate_embed`` / ``audio_aggregate_embed`` (H*L -> D, biased)."""

    def __init__(self, text_width: int, states: int, stream_widths: dict[str, int] | None = None) -> None:
        super().__init__()
        self.text_width = text_width
        self.v2 = stream_widths is not None
        if not self.v2:
            self.aggregate_embed = Linear(text_width * states, text_width, bias=False)
        for stream, width in (stream_widths or {}).items():
            setattr(self, f"{stream}_aggregate_embed", Linear(text_width * states, width))

    def layers(self) -> dict[str, Linear]:
        """The projection of each stream (V1: the shared one under both names)."""
        if not self.v2:
            return {"video": self.aggregate_embed, "audio": self.aggregate_embed}
        return {stream: getattr(self, f"{stream}_aggregate_embed") for stream in ("video", "audio")
                if hasattr(self, f"{stream}_aggregate_embed")}

    def forward(self, hidden_states: list[torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features per stream ({"video": [B, T, Dv], "audio": [B, T, Da]}); V1 gives one tensor twice. The
        normalisation runs in float32, the projections in the hidden states' dtype (the compute dtype)."""
        dtype = hidden_states[0].dtype
        if not self.v2:
            shared = self.aggregate_embed(normalise_features(hidden_states, mask).to(dtype))
            return {"video": shared, "audio": shared}
        normed = normalise_tokens(hidden_states, mask)
        return {stream: layer((normed * math.sqrt(layer.out_features / self.text_width)).to(dtype))
                for stream, layer in self.layers().items()}


def stream_widths(section: dict, audio: bool) -> dict[str, int]:
    """V2: each stream's transformer width (the aggregate projections' outputs), checked against its
    connector's width."""
    widths = {"video": section["num_attention_heads"] * section["attention_head_dim"]}
    if audio:
        widths["audio"] = section["audio_num_attention_heads"] * section["audio_attention_head_dim"]
    for stream, width in widths.items():
        connector = ConnectorConfig.from_header(section, audio=stream == "audio").dim
        if connector != width:
            raise ValueError(f"the {stream} connector is {connector} wide but the {stream} transformer stream is "
                             f"{width}: V2 connectors work at the transformer's width")
    return widths


def with_leading_padding(features: torch.Tensor, missing: int, layer: Linear) -> torch.Tensor:
    """features [B, T, D] -> [B, missing + T, D], the new leading rows what ``layer`` gives a padding token
    (zero features): its bias, or zero."""
    fill = features.new_zeros(features.shape[0], missing, features.shape[2])
    if layer.bias is not None:
        fill += layer.bias.to(fill.dtype)
    return torch.cat([fill, features], dim=1)


class TextProjector(nn.Module):
    """Feature extraction and both connectors. State-dict keys are the checkpoint's own
    (``text_embedding_projection.*``, ``model.diffusion_model.{video,audio}_embeddings_connector.*``).
    ``text_width``: Gemma's hidden size H (default: the header's ``caption_channels``)."""

    def __init__(self, section: dict, states: int, audio: bool = True, text_width: int | None = None) -> None:
        super().__init__()
        video_cfg = ConnectorConfig.from_header(section)
        text_width = text_width or section.get("caption_channels", video_cfg.dim)
        widths = stream_widths(section, audio) if is_v2_layout(section) else None
        if widths is None and video_cfg.dim != text_width:
            raise ValueError(f"V1 connectors are as wide as the text encoder ({text_width}), not {video_cfg.dim}")
        self.text_embedding_projection = TextProjection(text_width, states, widths)
        self.model = nn.Module()
        self.model.diffusion_model = nn.Module()
        self.model.diffusion_model.video_embeddings_connector = EmbeddingsConnector(video_cfg)
        if audio:
            self.model.diffusion_model.audio_embeddings_connector = EmbeddingsConnector(
                ConnectorConfig.from_header(section, audio=True))

    @property
    def states(self) -> int:
        """How many hidden states (embeddings + layers) the projection expects."""
        projection = self.text_embedding_projection
        return projection.layers()["video"].in_features // projection.text_width

    def forward(self, hidden_states: list[torch.Tensor], mask: torch.Tensor, length: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Gemma hidden states (each [B, T, H]) and mask [B, T] -> (video context, audio context or None,
        context mask), contexts [B, S, D]. ``length`` (>= T) is the padded prompt length when the states cover
        only its last T positions (leading padding was not run through Gemma); S is it rounded up to a multiple
        of the registers."""
        return self.connect(self.project(hidden_states, mask), mask, length)

    def project(self, hidden_states: list[torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The projected features per stream ({"video": [B, T, Dv], "audio": [B, T, Da]})."""
        if len(hidden_states) != self.states:
            raise ValueError(f"the text projection expects {self.states} hidden states, got {len(hidden_states)}")
        return self.text_embedding_projection(hidden_states, mask)

    def connect(self, features: dict[str, torch.Tensor], mask: torch.Tensor, length: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """:meth:`forward` from the projected features on."""
        missing = (length or mask.shape[1]) - mask.shape[1]
        if missing > 0:   # put the columns Gemma skipped back, as the projection maps a padding token
            layers = self.text_embedding_projection.layers()
            features = {stream: with_leading_padding(f, missing, layers[stream]) for stream, f in features.items()}
            mask = torch.nn.functional.pad(mask, (missing, 0))
        connectors = self.model.diffusion_model
        video, out_mask = connectors.video_embeddings_connector(features["video"], mask)
        audio = None
        if hasattr(connectors, "audio_embeddings_connector"):
            audio, _ = connectors.audio_embeddings_connector(features["audio"], mask)
        return video, audio, out_mask
