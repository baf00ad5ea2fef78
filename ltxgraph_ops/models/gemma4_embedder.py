"""Gemma 4 12B's encoder-free vision embedder (transformers' ``gemma4_unified``, LTX-2.5's text encoder): no vision
encoder at all; each cell of the image becomes one soft token on its own.

Cells: an image [3, H, W] in [0, 1] (H, W multiples of the cell c, 48 pixels: 16-pixel patches merged 3 x 3) is cut
into c x c cells in row-major order, each flattened (row, column, channel) to 3 c^2 values, as the raw pixels
(no ``2 (x - 0.5)``). Per cell: ``x = LN2(dense(LN1(cell)))``, plus the factorised position embedding
``pos[column, 0] + pos[row, 1]`` (a table [P, 2, D_mm]), then ``pos_norm``: three LayerNorms with weight and bias
(eps 1e-5), ``dense`` with a bias. Projector (``multi_modal_projector``, Gemma 4's): RMSNorm without weight, then
``embedding_projection`` to the text width. Cells never mix, so transformers' padding cells (positions -1, stripped
after the embedder) change nothing and are not made; computed in float32 (ComfyUI: in the file's dtype).

In the prompt the soft tokens of one image attend to each other both ways in every layer, sliding (within the
window) and global, while the prompt is read; text stays causal (ComfyUI's Gemma4_12B_Config
``vision_bidirectional``; transformers' ``use_bidirectional_attention="vision"``, whose ``generate`` opens only the
sliding layers: ComfyUI's behaviour is followed).

Key layouts: ComfyUI's file ``vision_model.{patch_ln1,patch_dense,patch_ln2,pos_norm}.{weight,bias}``,
``vision_model.pos_embedding``, ``multi_modal_projector.embedding_projection.weight``; transformers' saved
Gemma4UnifiedForConditionalGeneration ``model.vision_embedder.*`` (the same names) and
``model.embed_vision.embedding_projection.weight``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ltxgraph_ops.models.gemma4_vision import PROJECTION_KEY, Gemma4VisionProjector
from ltxgraph_ops.models.layers import Linear

PATCH_KEY = "patch_dense.weight"
LAYER_NORM_EPS = 1e-5     # torch's LayerNorm default, which both ComfyUI and transformers keep


@dataclass(frozen=True)
class Gemma4EmbedderConfig:
    """The embedder (transformers' Gemma4UnifiedVisionConfig names) and the image tokens of Gemma4UnifiedConfig."""

    model_patch_size: int = 48          # pixels per cell a side: patch_size x pooling_kernel_size
    mm_embed_dim: int = 3840
    mm_posemb_size: int = 1120          # rows of the position table: the most cells a side
    rms_norm_eps: float = 1e-6          # the projector's RMSNorm
    text_hidden_size: int = 3840
    boi_token_id: int = 255_999         # <|image>
    image_token_id: int = 258_880       # <|image|>, the placeholder the soft tokens replace
    eoi_token_id: int = 258_882         # <image|>
    bidirectional_images: bool = True   # an image's soft tokens see each other (ComfyUI's 12B: always)

    @property
    def cell(self) -> int:
        """Pixels per soft token along a side."""
        return self.model_patch_size

    @classmethod
    def from_tensors(cls, shapes: dict[str, tuple[int, ...]], overrides: dict | None = None
                     ) -> "Gemma4EmbedderConfig":
        """Sizes from the tensor shapes (keys ``vision_model.*`` and ``multi_modal_projector.*``); the projector's
        norm epsilon and the token ids from ``overrides`` (a Gemma4UnifiedConfig dict: ``vision_config``,
        ``*_token_id``) or Gemma 4 12B's values."""
        embed_dim, cell_inputs = shapes[f"vision_model.{PATCH_KEY}"]
        values = dict(model_patch_size=math.isqrt(cell_inputs // 3), mm_embed_dim=embed_dim,
                      mm_posemb_size=shapes["vision_model.pos_embedding"][0],
                      text_hidden_size=shapes[f"multi_modal_projector.{PROJECTION_KEY}"][0])
        overrides = overrides or {}
        vision = overrides.get("vision_config") or {}
        if "rms_norm_eps" in vision:
            values["rms_norm_eps"] = vision["rms_norm_eps"]
        for name in ("boi_token_id", "image_token_id", "eoi_token_id"):
            if name in overrides:
                values[name] = overrides[name]
        return cls(**values)


def image_cells(pixels: torch.Tensor, cell: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels [B, 3, H, W] -> cells [B, (H/c)(W/c), 3 c^2] in row-major order, each flattened (row, column,
    channel), and each cell's column and row [N]."""
    b, c, h, w = pixels.shape
    rows, cols = h // cell, w // cell
    cells = pixels.reshape(b, c, rows, cell, cols, cell).permute(0, 2, 4, 3, 5, 1).reshape(b, rows * cols, -1)
    return cells, torch.arange(cols).repeat(rows), torch.arange(rows).repeat_interleave(cols)


class CellEmbedder(nn.Module):
    """Cells -> features [B, N, D_mm]. State-dict keys: ``patch_ln1``, ``patch_dense``, ``patch_ln2``,
    ``pos_embedding``, ``pos_norm``."""

    def __init__(self, cfg: Gemma4EmbedderConfig) -> None:
        super().__init__()
        self.config = cfg
        cell_inputs, width = 3 * cfg.model_patch_size ** 2, cfg.mm_embed_dim
        self.patch_ln1 = nn.LayerNorm(cell_inputs, eps=LAYER_NORM_EPS)
        self.patch_dense = Linear(cell_inputs, width, bias=True)
        self.patch_ln2 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.pos_embedding = nn.Parameter(torch.zeros(cfg.mm_posemb_size, 2, width), requires_grad=False)
        self.pos_norm = nn.LayerNorm(width, eps=LAYER_NORM_EPS)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels [B, 3, H, W] in [0, 1] (H and W multiples of ``cell``) -> features [B, (H/c)(W/c), D_mm]."""
        cfg = self.config
        h, w = pixels.shape[-2:]
        if h % cfg.cell or w % cfg.cell or not h or not w:
            raise ValueError(f"image of {h} x {w} pixels: Gemma 4's encoder-free embedder needs sides that are "
                             f"multiples of {cfg.cell}")
        if max(h, w) // cfg.cell > cfg.mm_posemb_size:
            raise ValueError(f"image of {h} x {w} pixels: Gemma 4's encoder-free embedder places at most "
                             f"{cfg.mm_posemb_size} cells of {cfg.cell} pixels a side")
        cells, column, row = image_cells(pixels.float(), cfg.cell)
        x = self.patch_ln2(self.patch_dense(self.patch_ln1(cells)))
        table = self.pos_embedding.float()
        return self.pos_norm(x + table[column, 0] + table[row, 1])


class Gemma4Embedder(nn.Module):
    """Embedder + projector. State-dict keys as in ComfyUI's Gemma 4 12B file: ``vision_model.*`` and
    ``multi_modal_projector.*``."""

    def __init__(self, cfg: Gemma4EmbedderConfig) -> None:
        super().__init__()
        self.config = cfg
        self.vision_model = CellEmbedder(cfg)
        self.multi_modal_projector = Gemma4VisionProjector(cfg.mm_embed_dim, cfg.text_hidden_size, cfg.rms_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels [B, 3, H, W] in [0, 1] -> image soft tokens [B, (H/cell)(W/cell), D_text] (float32)."""
        return self.multi_modal_projector(self.vision_model(pixels))
