"""Image-conditioned text generation with Gemma (prompt enhancement that looks at an image): finding and reading the
vision tower in a text-encoder file, and laying out a Gemma 3 chat prompt with an image.

Key layouts read (strictly: every tensor of the tower and the projector, nothing else under their prefixes):

- Gemma 3, ComfyUI's single file (``gemma_3_12B_it*.safetensors``): ``vision_model.*`` (SigLIP) and
  ``multi_modal_projector.*`` beside the text model's ``model.*``.
- Gemma 3, a Hugging Face Gemma3ForConditionalGeneration folder: ``vision_tower.vision_model.*`` and
  ``multi_modal_projector.*`` (original release), or the same under ``model.`` (files saved by transformers 5).
- Gemma 4 (E2B / E4B / 31B), ComfyUI's file (``gemma4_e2b_it*.safetensors``): ``vision_model.*`` (the Gemma 4
  vision encoder, told apart by ``patch_embedder``) and ``multi_modal_projector.embedding_projection.weight``;
  a Hugging Face Gemma4ForConditionalGeneration file: ``model.vision_tower.*`` and ``model.embed_vision.*``.
- Gemma 4 12B (transformers' ``gemma4_unified``, LTX-2.5's encoder), ComfyUI's file: the encoder-free embedder
  ``vision_model.*`` (told apart by ``patch_dense``) and ``multi_modal_projector.embedding_projection.weight``; a
  file saved by transformers' Gemma4UnifiedForConditionalGeneration: ``model.vision_embedder.*`` and
  ``model.embed_vision.*``.

A file with none is text-only: it still encodes prompts, and image-conditioned generation is refused naming it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ltxgraph_ops.models import gemma4_embedder, gemma4_vision
from ltxgraph_ops.models.gemma import ImageTokens
from ltxgraph_ops.models.gemma4_embedder import Gemma4Embedder, Gemma4EmbedderConfig
from ltxgraph_ops.models.gemma4_vision import Gemma4Vision, Gemma4VisionConfig
from ltxgraph_ops.models.gemma_tokenizer import BOS_ID
from ltxgraph_ops.models.gemma_vision import GemmaVision, GemmaVisionConfig, image_token_sequence
from ltxgraph_ops.weights.loading import load_component, match_component, parameters_on_meta
from ltxgraph_ops.weights.safetensors_file import CheckpointError

COMFYUI_IMAGE_AREA = 896 * 896   # pixels ComfyUI's Gemma 3 tokenizer resizes a prompt image to, whatever the tower


@dataclass(frozen=True)
class VisionLayout:
    """Where a file keeps the vision tower (or Gemma 4 12B's encoder-free embedder) and the projector, and which
    Gemma's they are (3 or 4)."""

    tower: str
    projector: str
    generation: int = 3
    encoder_free: bool = False   # Gemma 4 12B's embedder: no vision encoder

    @property
    def model(self) -> str:
        """The vision model's name, a key of VISION_MODELS."""
        return "gemma4_unified" if self.encoder_free else f"gemma{self.generation}"

    @property
    def tower_key(self) -> str:
        if self.encoder_free:
            return gemma4_embedder.PATCH_KEY
        return "embeddings.patch_embedding.weight" if self.generation == 3 else gemma4_vision.PATCH_KEY

    @property
    def projection_key(self) -> str:
        return "mm_input_projection_weight" if self.generation == 3 else gemma4_vision.PROJECTION_KEY

    @property
    def label(self) -> str:
        return "Gemma 4 12B encoder-free" if self.encoder_free else f"Gemma {self.generation}"


LAYOUTS = (VisionLayout("vision_model.", "multi_modal_projector."),
           VisionLayout("vision_tower.vision_model.", "multi_modal_projector."),
           VisionLayout("model.vision_tower.vision_model.", "model.multi_modal_projector."),
           VisionLayout("vision_model.", "multi_modal_projector.", 4),
           VisionLayout("model.vision_tower.", "model.embed_vision.", 4),
           VisionLayout("vision_model.", "multi_modal_projector.", 4, encoder_free=True),
           VisionLayout("model.vision_embedder.", "model.embed_vision.", 4, encoder_free=True))
VISION_MODELS = {"gemma3": (GemmaVisionConfig, GemmaVision), "gemma4": (Gemma4VisionConfig, Gemma4Vision),
                 "gemma4_unified": (Gemma4EmbedderConfig, Gemma4Embedder)}


def vision_layout(file) -> VisionLayout | None:
    """The file's vision layout, None for a text-only file; a tower without a projector (or the reverse) is a
    :class:`CheckpointError` naming the file."""
    keys = file.entries.keys()
    for layout in LAYOUTS:
        if {f"{layout.tower}{layout.tower_key}", f"{layout.projector}{layout.projection_key}"} <= keys:
            return layout
    for layout in LAYOUTS:
        if f"{layout.tower}{layout.tower_key}" in keys:
            raise CheckpointError(f"{file.path}: {layout.label} vision weights are incomplete: "
                                  f"'{layout.projector}{layout.projection_key}' is missing")
    for layout in LAYOUTS:
        if f"{layout.projector}{layout.projection_key}" in keys and any(k.startswith(layout.tower) for k in keys):
            towers = " or ".join(f"'{other.tower}{other.tower_key}'" for other in LAYOUTS
                                 if (other.tower, other.projector) == (layout.tower, layout.projector)
                                 and other.projection_key == layout.projection_key)
            raise CheckpointError(f"{file.path}: {layout.label} vision weights are incomplete: {towers} is "
                                  "missing")
    return None


VisionConfig = GemmaVisionConfig | Gemma4VisionConfig | Gemma4EmbedderConfig
VisionModel = GemmaVision | Gemma4Vision | Gemma4Embedder


def vision_config(file, layout: VisionLayout) -> VisionConfig:
    shapes = {f"vision_model.{key[len(layout.tower):]}": entry.shape
              for key, entry in file.entries.items() if key.startswith(layout.tower)}
    shapes.update({f"multi_modal_projector.{key[len(layout.projector):]}": entry.shape
                   for key, entry in file.entries.items() if key.startswith(layout.projector)})
    try:
        return VISION_MODELS[layout.model][0].from_tensors(shapes, file.config())
    except KeyError as exc:
        raise CheckpointError(f"{file.path}: {layout.label} vision weights are incomplete: "
                              f"{exc} is missing") from None


def check_vision(file, layout: VisionLayout, text_hidden: int) -> VisionConfig:
    """Config of the file's vision weights, every key and shape checked from the header alone."""
    config = vision_config(file, layout)
    if config.text_hidden_size != text_hidden:
        raise CheckpointError(f"{file.path}: '{layout.projector}{layout.projection_key}' projects to "
                              f"{config.text_hidden_size}, the text model is {text_hidden} wide")
    with torch.device("meta"):
        model = VISION_MODELS[layout.model][1](config)
    match_component(model.vision_model, file, layout.tower)
    match_component(model.multi_modal_projector, file, layout.projector)
    return config


def load_vision(file, layout: VisionLayout, config: VisionConfig) -> VisionModel:
    with parameters_on_meta():
        model = VISION_MODELS[layout.model][1](config)
    load_component(model.vision_model, file, layout.tower)
    load_component(model.multi_modal_projector, file, layout.projector)
    return model.eval()


def image_chat_ids(tokenizer, config: GemmaVisionConfig, system: str, prompt: str) -> list[int]:
    """Token ids of a one-image user turn as Gemma 3's chat template and processor lay it out (the system prompt
    opens the user turn, the image comes before the text, as ltx-core's image-to-video enhancement asks):
    ``<bos><start_of_turn>user\\n{system}\\n\\n`` + image + ``User Raw Input Prompt: {prompt}.<end_of_turn>\\n
    <start_of_turn>model\\n``, the image being ``\\n\\n<start_of_image>`` + soft tokens + ``<end_of_image>\\n\\n``
    (the newlines tokenized together with the text around them, as the processor's string expansion does)."""
    encode = tokenizer.processor.encode
    before = f"<start_of_turn>user\n{system.strip()}\n\n\n\n"
    after = f"\n\nUser Raw Input Prompt: {prompt.strip()}.<end_of_turn>\n<start_of_turn>model\n"
    image = image_token_sequence(config, [])
    return [BOS_ID, *encode(before), *image, *encode(after)]


def image_tokens(vision: GemmaVision, ids: torch.Tensor, image: torch.Tensor) -> ImageTokens:
    """The soft-token slots of ``ids`` [1, T] filled with ``image`` [H, W, 3] (or [B, H, W, 3]: the first)."""
    first = image if image.dim() == 3 else image[:1]
    with torch.inference_mode():
        features = vision(vision.preprocess(first))
    return ImageTokens(ids == vision.config.image_token_id, features)


def comfyui_image_pixels(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images [B, H, W, C] (ComfyUI IMAGE, float in [0, 1]) -> pixels [B, 3, size, size] for the vision tower, as
    ComfyUI's Gemma 3 prepares a prompt image (comfy/text_encoders/lt.py, comfy/clip_model.py): an area resize to
    about COMFYUI_IMAGE_AREA pixels keeping the aspect ratio (sides rounded), a bicubic antialiased resize of the
    shorter side to ``size``, a centre crop, rounding to 8-bit levels, then ``(x - 0.5) / 0.5``."""
    pixels = images[..., :3].movedim(-1, 1).float()                            # [B, 3, H, W]
    height, width = pixels.shape[-2:]
    area_scale = math.sqrt(COMFYUI_IMAGE_AREA / (height * width))
    pixels = F.interpolate(pixels, size=(round(height * area_scale), round(width * area_scale)), mode="area")
    height, width = pixels.shape[-2:]
    if (height, width) != (size, size):
        scale = size / min(height, width)
        pixels = F.interpolate(pixels, size=(round(scale * height), round(scale * width)), mode="bicubic",
                               antialias=True)
        top, left = (pixels.shape[-2] - size) // 2, (pixels.shape[-1] - size) // 2
        pixels = pixels[..., top:top + size, left:left + size]
    pixels = torch.clamp(pixels * 255.0, 0, 255).round() / 255.0
    return (pixels - 0.5) / 0.5
