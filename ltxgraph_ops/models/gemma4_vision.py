"""Gemma 4's vision path (the encoder of Gemma 4 E2B / E4B / 31B: LTX-2.5's prompt enhancer is Gemma 4 E2B): a
ViT over 16-pixel patches whose soft tokens the text decoder reads in place of the image placeholder.

Patch embedding: an image [3, H, W] in [0, 1] (H, W multiples of patch x pooling kernel) is cut into p x p patches
in row-major order, each flattened (row, column, channel) and mapped to the width C by ``input_proj`` (no bias)
from pixels ``2 (x - 0.5)``, plus two learned position tables (column, row). Encoder layers (sandwich norms, as the
text decoder): ``x + post_norm(attn(pre_norm(x)))``, then ``x + post_ff_norm(mlp(pre_ff_norm(x)))``; norms are
RMSNorm scaled by ``w``. Attention: full, multi-head, per-head RMSNorm of q and k (weighted) and of v (no weight),
scores not scaled, 2-D RoPE (base 100): the first half of a head turns with the column, the second half with the
row, each half in the rotate-half layout over head_dim / 4 frequencies. MLP: ``down(gelu_tanh(gate(x)) * up(x))``.
Every projection may clip its input and output to stored bounds (``input_min`` ... ``output_max``: quantisation-
aware training). Pooling: the patch grid averaged over k x k cells (row-major), times sqrt(C).
Projector (``multi_modal_projector``): RMSNorm without weight, then ``embedding_projection`` to the text width.

ComfyUI pads an image's patches to 280 x k^2 with masked padding patches and strips the empty pooled tokens; masked
keys take no attention weight, so running the image's own patches alone gives the same soft tokens (fewer
operations). transformers' vision model may also standardise the pooled features (``std_bias``, ``std_scale``);
ComfyUI's does not, and a file that carries them is refused by the strict loader naming the key.

Key layout (ComfyUI's Gemma 4 files): ``vision_model.patch_embedder.{input_proj.weight,position_embedding_table}``,
``vision_model.encoder.layers.N.{self_attn,mlp}.*_proj.linear.weight`` (+ the clip bounds),
``vision_model.encoder.layers.N.*norm*.weight``, ``multi_modal_projector.embedding_projection.weight``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.gemma_layers import GemmaRMSNorm, rotate_half
from ltxgraph_ops.models.layers import Linear

PATCH_KEY = "patch_embedder.input_proj.weight"
PROJECTION_KEY = "embedding_projection.weight"
CLIP_BOUNDS = ("input_min", "input_max", "output_min", "output_max")


@dataclass(frozen=True)
class Gemma4VisionConfig:
    """The vision encoder (transformers' Gemma4VisionConfig names) and the image tokens of Gemma4Config."""

    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 16
    num_attention_heads: int = 12
    head_dim: int = 64
    patch_size: int = 16
    pooling_kernel_size: int = 3
    position_embedding_size: int = 10240
    rms_norm_eps: float = 1e-6
    rope_theta: float = 100.0
    clipped_linears: bool = True        # projections carry input / output clip bounds
    text_hidden_size: int = 1536
    boi_token_id: int = 255_999         # <|image>
    image_token_id: int = 258_880       # <|image|>, the placeholder the soft tokens replace
    eoi_token_id: int = 258_882         # <image|>
    bidirectional_images: bool = False  # an image's soft tokens see each other (ComfyUI's E2B / E4B: no)

    @property
    def cell(self) -> int:
        """Pixels per soft token along a side (patch size x pooling kernel: 48)."""
        return self.patch_size * self.pooling_kernel_size

    @classmethod
    def from_tensors(cls, shapes: dict[str, tuple[int, ...]], overrides: dict | None = None) -> "Gemma4VisionConfig":
        """Sizes from the tensor shapes (keys ``vision_model.*`` and ``multi_modal_projector.*``); the pooling
        kernel, norm epsilon, RoPE base and token ids from ``overrides`` (a Gemma4Config dict: ``vision_config``,
        ``*_token_id``) or Gemma 4 E2B's values."""
        tower = "vision_model."
        layer = f"{tower}encoder.layers.0."
        hidden, patch_inputs = shapes[f"{tower}{PATCH_KEY}"]
        head_dim = shapes[f"{layer}self_attn.q_norm.weight"][0]
        values = dict(hidden_size=hidden, patch_size=int(round(math.sqrt(patch_inputs // 3))), head_dim=head_dim,
                      num_hidden_layers=1 + max(int(key.split(".")[3]) for key in shapes
                                                if key.startswith(f"{tower}encoder.layers.")),
                      intermediate_size=shapes[f"{layer}mlp.gate_proj.linear.weight"][0],
                      num_attention_heads=shapes[f"{layer}self_attn.q_proj.linear.weight"][0] // head_dim,
                      position_embedding_size=shapes[f"{tower}patch_embedder.position_embedding_table"][1],
                      clipped_linears=f"{layer}self_attn.q_proj.input_min" in shapes,
                      text_hidden_size=shapes[f"multi_modal_projector.{PROJECTION_KEY}"][0])
        overrides = overrides or {}
        vision = overrides.get("vision_config") or {}
        for name in ("pooling_kernel_size", "rms_norm_eps"):
            if name in vision:
                values[name] = vision[name]
        rope = vision.get("rope_parameters") or {}
        if "rope_theta" in rope:
            values["rope_theta"] = rope["rope_theta"]
        for name in ("boi_token_id", "image_token_id", "eoi_token_id"):
            if name in overrides:
                values[name] = overrides[name]
        return cls(**values)


class ClippedLinear(nn.Module):
    """A bias-free projection that clamps its input and output to stored bounds (when the file has them)."""

    def __init__(self, in_features: int, out_features: int, clipped: bool) -> None:
        super().__init__()
        self.linear = Linear(in_features, out_features, bias=False)
        self.clipped = clipped
        for name in CLIP_BOUNDS if clipped else ():
            self.register_buffer(name, torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.clipped:
            return self.linear(x)
        x = x.clamp(self.input_min.to(x.dtype), self.input_max.to(x.dtype))
        out = self.linear(x)
        return out.clamp(self.output_min.to(out.dtype), self.output_max.to(out.dtype))


def axial_rope(columns: torch.Tensor, rows: torch.Tensor, head_dim: int, base: float,
               dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos / sin [T, head_dim] for patches at ``columns``, ``rows`` [T]: the first half of a head turns with the
    column, the second with the row, each half over head_dim / 4 frequencies ``base^(-2i / (head_dim / 2))``."""
    half = head_dim // 2
    inverse = 1.0 / (base ** (torch.arange(0, half, 2, dtype=torch.float32) / half))
    angles = [position.float()[:, None] * inverse[None, :] for position in (columns, rows)]
    angles = torch.cat([torch.cat([a, a], dim=-1) for a in angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_each_half(x: torch.Tensor) -> torch.Tensor:
    """rotate_half applied to the column half and the row half of the last dimension separately."""
    column, row = x.chunk(2, dim=-1)
    return torch.cat([rotate_half(column), rotate_half(row)], dim=-1)


class VisionAttention(nn.Module):
    def __init__(self, cfg: Gemma4VisionConfig) -> None:
        super().__init__()
        self.heads, self.head_dim = cfg.num_attention_heads, cfg.head_dim
        width, inner, clipped = cfg.hidden_size, cfg.num_attention_heads * cfg.head_dim, cfg.clipped_linears
        self.q_proj = ClippedLinear(width, inner, clipped)
        self.k_proj = ClippedLinear(width, inner, clipped)
        self.v_proj = ClippedLinear(width, inner, clipped)
        self.o_proj = ClippedLinear(inner, width, clipped)
        self.q_norm = GemmaRMSNorm(cfg.head_dim, cfg.rms_norm_eps, offset=0.0)
        self.k_norm = GemmaRMSNorm(cfg.head_dim, cfg.rms_norm_eps, offset=0.0)
        self.v_norm = GemmaRMSNorm(cfg.head_dim, cfg.rms_norm_eps, scaled=False)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """x [B, T, C]; rope cos / sin [T, head_dim]."""
        b, t, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(b, t, self.heads, self.head_dim)).transpose(1, 2)   # [B, H, T, d]
        k = self.k_norm(self.k_proj(x).view(b, t, self.heads, self.head_dim)).transpose(1, 2)
        v = self.v_norm(self.v_proj(x).view(b, t, self.heads, self.head_dim)).transpose(1, 2)
        cos, sin = rope
        q, k = q * cos + rotate_each_half(q) * sin, k * cos + rotate_each_half(k) * sin
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class VisionMLP(nn.Module):
    def __init__(self, cfg: Gemma4VisionConfig) -> None:
        super().__init__()
        width, inner, clipped = cfg.hidden_size, cfg.intermediate_size, cfg.clipped_linears
        self.gate_proj = ClippedLinear(width, inner, clipped)
        self.up_proj = ClippedLinear(width, inner, clipped)
        self.down_proj = ClippedLinear(inner, width, clipped)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class VisionLayer(nn.Module):
    """``x + post_norm(attn(pre_norm(x)))``, then ``x + post_ff_norm(mlp(pre_ff_norm(x)))``."""

    def __init__(self, cfg: Gemma4VisionConfig) -> None:
        super().__init__()
        width, eps = cfg.hidden_size, cfg.rms_norm_eps
        self.self_attn = VisionAttention(cfg)
        self.mlp = VisionMLP(cfg)
        self.input_layernorm = GemmaRMSNorm(width, eps, offset=0.0)
        self.post_attention_layernorm = GemmaRMSNorm(width, eps, offset=0.0)
        self.pre_feedforward_layernorm = GemmaRMSNorm(width, eps, offset=0.0)
        self.post_feedforward_layernorm = GemmaRMSNorm(width, eps, offset=0.0)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x = x + self.post_attention_layernorm(self.self_attn(self.input_layernorm(x), rope))
        return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))


class PatchEmbedder(nn.Module):
    """Pixels [B, 3, H, W] in [0, 1] -> patch tokens [B, (H/p)(W/p), C] (row-major), and each patch's column and
    row [T]."""

    def __init__(self, cfg: Gemma4VisionConfig) -> None:
        super().__init__()
        self.patch = cfg.patch_size
        self.input_proj = Linear(3 * cfg.patch_size ** 2, cfg.hidden_size, bias=False)
        self.position_embedding_table = nn.Parameter(torch.zeros(2, cfg.position_embedding_size, cfg.hidden_size),
                                                     requires_grad=False)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, c, h, w = pixels.shape
        p = self.patch
        rows, cols = h // p, w // p
        patches = pixels.reshape(b, c, rows, p, cols, p).permute(0, 2, 4, 3, 5, 1).reshape(b, rows * cols, -1)
        row = torch.arange(rows).repeat_interleave(cols)
        column = torch.arange(cols).repeat(rows)
        table = self.position_embedding_table
        x = self.input_proj(2.0 * (patches - 0.5))
        return x + (table[0][column] + table[1][row]).to(x.dtype), column, row


class VisionEncoder(nn.Module):
    def __init__(self, cfg: Gemma4VisionConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList([VisionLayer(cfg) for _ in range(cfg.num_hidden_layers)])


class Gemma4VisionTower(nn.Module):
    """State-dict keys: ``patch_embedder.*``, ``encoder.layers.N.*``."""

    def __init__(self, cfg: Gemma4VisionConfig) -> None:
        super().__init__()
        self.config = cfg
        self.patch_embedder = PatchEmbedder(cfg)
        self.encoder = VisionEncoder(cfg)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels [B, 3, H, W] in [0, 1] (H and W multiples of ``cell``) -> pooled features [B, (H/cell)(W/cell),
        C] (row-major), scaled by sqrt(C)."""
        cfg = self.config
        b, _, h, w = pixels.shape
        if h % cfg.cell or w % cfg.cell or not h or not w:
            raise ValueError(f"image of {h} x {w} pixels: Gemma 4's vision encoder needs sides that are multiples "
                             f"of {cfg.cell}")
        x, column, row = self.patch_embedder(pixels.to(self.patch_embedder.input_proj.weight.dtype))
        rope = axial_rope(column, row, cfg.head_dim, cfg.rope_theta, x.dtype)
        for layer in self.encoder.layers:
            x = layer(x, rope)
        k = cfg.pooling_kernel_size
        grid = x.transpose(1, 2).reshape(b, -1, h // cfg.patch_size, w // cfg.patch_size).float()
        pooled = F.avg_pool2d(grid, k, stride=k).flatten(2).transpose(1, 2)             # [B, N, C]
        return (pooled * math.sqrt(cfg.hidden_size)).to(x.dtype)


class Gemma4VisionProjector(nn.Module):
    """Image features [B, N, C] -> soft tokens [B, N, D_text]: RMSNorm without weight, then a projection (the
    vision encoder's and the 12B's encoder-free embedder's alike)."""

    def __init__(self, width: int, text_width: int, eps: float) -> None:
        super().__init__()
        self.norm = GemmaRMSNorm(width, eps, scaled=False)
        self.embedding_projection = Linear(width, text_width, bias=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.embedding_projection(self.norm(features))


class Gemma4Vision(nn.Module):
    """Vision encoder + projector. State-dict keys as in ComfyUI's Gemma 4 files: ``vision_model.*`` and
    ``multi_modal_projector.*``."""

    def __init__(self, cfg: Gemma4VisionConfig) -> None:
        super().__init__()
        self.config = cfg
        self.vision_model = Gemma4VisionTower(cfg)
        self.multi_modal_projector = Gemma4VisionProjector(cfg.hidden_size, cfg.text_hidden_size, cfg.rms_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels [B, 3, H, W] in [0, 1] -> image soft tokens [B, (H/cell)(W/cell), D_text]."""
        return self.multi_modal_projector(self.vision_model(pixels))
