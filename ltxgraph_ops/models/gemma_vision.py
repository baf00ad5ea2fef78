"""Gemma 3's vision path: the SigLIP vision tower and the multi-modal projector that turn an image into the
soft tokens the text decoder reads in place of the image placeholders.

Tower (SigLIP, no class token, no pooling head): a patch conv (kernel = stride = patch size) plus learned
position embeddings, then pre-norm encoder layers ``x + attn(ln1(x))``, ``x + mlp(ln2(x))`` with full
bidirectional multi-head attention (biased q/k/v/out projections, scale ``head_dim^-1/2``) and
``fc2(gelu_tanh(fc1(x)))``, then a final LayerNorm. Projector: the patch grid average-pooled to
``mm_tokens_per_image`` tokens, Gemma's RMSNorm, then ``x @ W`` with W [vision width, text width].

Image preprocessing (Gemma 3's processor, no pan-and-scan): resize to ``image_size`` square with bilinear
antialiased filtering, values in [0, 1], normalised with mean 0.5 and std 0.5 (so pixels lie in [-1, 1]).

Prompt layout (Gemma 3's processor): every image placeholder becomes ``"\\n\\n" <start_of_image>
<image_soft_token> x mm_tokens_per_image <end_of_image> "\\n\\n"``; the soft tokens (and only they) are replaced
by the projected features and attend to each other in both directions.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.gemma_layers import GemmaRMSNorm
from ltxgraph_ops.models.layers import Linear

IMAGE_MEAN = 0.5
IMAGE_STD = 0.5


@dataclass(frozen=True)
class GemmaVisionConfig:
    """The vision tower (transformers' SiglipVisionConfig names) and the multi-modal fields of Gemma3Config."""

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    image_size: int = 896
    patch_size: int = 14
    layer_norm_eps: float = 1e-6
    text_hidden_size: int = 3840
    mm_tokens_per_image: int = 256
    boi_token_id: int = 255_999
    eoi_token_id: int = 256_000
    image_token_id: int = 262_144

    @property
    def patches_per_side(self) -> int:
        return self.image_size // self.patch_size

    @property
    def tokens_per_side(self) -> int:
        return int(round(self.mm_tokens_per_image ** 0.5))

    @classmethod
    def from_tensors(cls, shapes: dict[str, tuple[int, ...]], overrides: dict | None = None) -> "GemmaVisionConfig":
        """Sizes from the tensor shapes (keys ``vision_model.*`` and ``multi_modal_projector.*``), the head count,
        norm epsilon, token count and token ids from ``overrides`` (a Gemma3Config dict: ``vision_config``,
        ``mm_tokens_per_image``, ``*_token_index``) or Gemma 3 12B's values."""
        hidden, _, patch, _ = shapes["vision_model.embeddings.patch_embedding.weight"]
        positions = shapes["vision_model.embeddings.position_embedding.weight"][0]
        layers = 1 + max(int(key.split(".")[3]) for key in shapes if key.startswith("vision_model.encoder.layers."))
        values = dict(hidden_size=hidden, patch_size=patch, image_size=int(round(positions ** 0.5)) * patch,
                      num_hidden_layers=layers,
                      intermediate_size=shapes["vision_model.encoder.layers.0.mlp.fc1.weight"][0],
                      text_hidden_size=shapes["multi_modal_projector.mm_input_projection_weight"][1])
        overrides = dict(overrides or {})
        vision = overrides.get("vision_config") or {}
        for name in ("num_attention_heads", "layer_norm_eps"):
            if name in vision:
                values[name] = vision[name]
        for name, key in (("mm_tokens_per_image", "mm_tokens_per_image"), ("boi_token_id", "boi_token_index"),
                          ("eoi_token_id", "eoi_token_index"), ("image_token_id", "image_token_index")):
            if key in overrides:
                values[name] = overrides[key]
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class VisionEmbeddings(nn.Module):
    """Pixels [B, 3, S, S] -> patch tokens [B, (S/p)^2, C]: the patch conv plus a learned position per patch."""

    def __init__(self, cfg: GemmaVisionConfig) -> None:
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, cfg.hidden_size, cfg.patch_size, stride=cfg.patch_size)
        self.position_embedding = nn.Embedding(cfg.patches_per_side ** 2, cfg.hidden_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(pixels.to(self.patch_embedding.weight.dtype))   # [B, C, S/p, S/p]
        return patches.flatten(2).transpose(1, 2) + self.position_embedding.weight[None]


class VisionAttention(nn.Module):
    """Full (bidirectional) multi-head self-attention over the patches."""

    def __init__(self, cfg: GemmaVisionConfig) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        width = cfg.hidden_size
        self.q_proj = Linear(width, width)
        self.k_proj = Linear(width, width)
        self.v_proj = Linear(width, width)
        self.out_proj = Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (proj(x).view(b, t, self.heads, -1).transpose(1, 2)          # [B, H, T, d]
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v)                          # scale d^-1/2
        return self.out_proj(out.transpose(1, 2).reshape(b, t, c))


class VisionMLP(nn.Module):
    def __init__(self, cfg: GemmaVisionConfig) -> None:
        super().__init__()
        self.fc1 = Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x, activation="gelu_tanh"))


class VisionEncoderLayer(nn.Module):
    """Pre-norm block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``."""

    def __init__(self, cfg: GemmaVisionConfig) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.self_attn = VisionAttention(cfg)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = VisionMLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionEncoder(nn.Module):
    def __init__(self, cfg: GemmaVisionConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList([VisionEncoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class VisionTower(nn.Module):
    """SigLIP vision model. State-dict keys: ``embeddings.*``, ``encoder.layers.N.*``, ``post_layernorm.*``."""

    def __init__(self, cfg: GemmaVisionConfig) -> None:
        super().__init__()
        self.embeddings = VisionEmbeddings(cfg)
        self.encoder = VisionEncoder(cfg)
        self.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels [B, 3, S, S] -> patch features [B, (S/p)^2, C] after the final norm."""
        return self.post_layernorm(self.encoder(self.embeddings(pixels)))


class MultiModalProjector(nn.Module):
    """Patch features [B, P*P, C] -> soft tokens [B, mm_tokens_per_image, D_text]: average pooling of the patch
    grid to ``tokens_per_side``^2 cells, RMSNorm, ``x @ mm_input_projection_weight``."""

    def __init__(self, cfg: GemmaVisionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mm_input_projection_weight = nn.Parameter(torch.zeros(cfg.hidden_size, cfg.text_hidden_size),
                                                       requires_grad=False)
        self.mm_soft_emb_norm = GemmaRMSNorm(cfg.hidden_size, cfg.layer_norm_eps)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        b, _, c = patches.shape
        side = self.cfg.patches_per_side
        grid = patches.transpose(1, 2).reshape(b, c, side, side)
        kernel = side // self.cfg.tokens_per_side
        pooled = F.avg_pool2d(grid, kernel, stride=kernel).flatten(2).transpose(1, 2)   # [B, N, C]
        return self.mm_soft_emb_norm(pooled) @ self.mm_input_projection_weight.to(pooled.dtype)


class GemmaVision(nn.Module):
    """Vision tower + projector. State-dict keys as in ComfyUI's Gemma 3 file: ``vision_model.*`` and
    ``multi_modal_projector.*``."""

    def __init__(self, cfg: GemmaVisionConfig) -> None:
        super().__init__()
        self.config = cfg
        self.vision_model = VisionTower(cfg)
        self.multi_modal_projector = MultiModalProjector(cfg)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels [B, 3, S, S] -> image soft tokens [B, mm_tokens_per_image, D_text]."""
        return self.multi_modal_projector(self.vision_model(pixels))

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        return preprocess_image(image, self.config.image_size)


def preprocess_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """Image(s) [H, W, 3] or [B, H, W, 3] (ComfyUI IMAGE, float in [0, 1]; an alpha channel is dropped) ->
    pixels [B, 3, size, size]: bilinear antialiased resize to a square, then ``(x - 0.5) / 0.5``."""
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[-1] < 3:
        raise ValueError(f"image of shape {list(image.shape)}: expected [H, W, 3] or [B, H, W, 3]")
    pixels = image[..., :3].permute(0, 3, 1, 2).float()
    if pixels.shape[-2:] != (size, size):
        pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (pixels - IMAGE_MEAN) / IMAGE_STD


def image_token_sequence(cfg: GemmaVisionConfig, newline_ids: list[int]) -> list[int]:
    """Ids one image expands to: ``newline_ids`` (the tokenizer's ids of "\\n\\n"), <start_of_image>, the soft
    tokens, <end_of_image>, ``newline_ids``."""
    return [*newline_ids, cfg.boi_token_id, *[cfg.image_token_id] * cfg.mm_tokens_per_image, cfg.eoi_token_id,
            *newline_ids]
