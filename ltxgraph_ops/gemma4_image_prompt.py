"""TextGenerateLTX2Prompt with Gemma 4 (LTX-2.5's prompt enhancer), as ComfyUI runs it: its Gemma 4 chat and the
image the chat looks at (comfy_extras/nodes_textgen.py and comfy/text_encoders/gemma4.py, Comfy-Org/ComfyUI at
1ac2d83 / 7fbd81a: the first snapshots with the LTX-2.5 "Gemma 4" branch of the node).

Chat: ``<|turn>system\\n{instructions}<turn|>\\n<|turn>user\\n{media}{user}<turn|>\\n<|turn>model\\n<|channel>final\\n``
with the LTX "2.4" instructions (image-to-video with an image, text-to-video without), media
``<|image><|image|><image|>\\n\\n`` with an image (else nothing), user text ``User Raw Input Prompt: {prompt}.``
with an image, ``user prompt: {prompt}`` without. Tokens: BOS, then the text as it is, each marker one token (the
tokenizer adds nothing else; no padding). The one <|image|> becomes the image's soft tokens (only the first image
of a batch: the chat has one placeholder), attended causally like text with Gemma 4 E2B / E4B's vision encoder, both
ways among themselves with Gemma 4 12B's encoder-free embedder (ComfyUI's ``vision_bidirectional``). Generation stops
at EOS or <turn|>; the reply's markers are dropped and it is stripped.

Pixels (ComfyUI's Gemma 4 tokenizer, the rule transformers' Gemma4ImageProcessor also uses): the image scaled
by sqrt(280 x 9 x 16^2 / (H W)), each side floored to a multiple of 48 (a side that would be 0 becomes 48 and the
other floor(ratio) x 48, at most 280 / 9 x 48); the 8-bit codes ``int(x 255)`` (truncated) resized bicubic with
antialiasing as torchvision's ``transforms.functional.resize`` does for a uint8 tensor (in float32, clamped to
[0, 255], rounded; not torch's own uint8 kernel, which differs by up to 23 levels), then ``x (1 / 255)``. The
vision encoder maps them to ``2 (x - 0.5)`` itself; the 12B's embedder reads them as they are. The size rule is the
tokenizer's whatever the model, so the 12B's cells are the same 48-pixel squares.
"""
from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F

from ltxgraph_ops.models.gemma import ImageTokens
from ltxgraph_ops.models.gemma4_embedder import Gemma4Embedder
from ltxgraph_ops.models.gemma4_vision import Gemma4Vision
from ltxgraph_ops.models.gemma_config import GemmaConfig
from ltxgraph_ops.models.gemma_tokenizer import BOS_ID, EOS_ID, GemmaTokenizer
from ltxgraph_ops.textgen_prompts import LTX24_I2V_INSTRUCTIONS, LTX24_T2V_INSTRUCTIONS

TURN_START, TURN_END = "<|turn>", "<turn|>"
IMAGE_START, IMAGE_SLOT, IMAGE_END = "<|image>", "<|image|>", "<image|>"
CHANNEL = "<|channel>"
SUPPRESSED_12B = ("<audio|>", IMAGE_END)    # ComfyUI's Gemma4_12B_Config suppress_tokens (258883, 258882)
MARKERS = (TURN_START, TURN_END, IMAGE_START, IMAGE_SLOT, IMAGE_END, CHANNEL)
# ComfyUI's Gemma 4 tokenizer sizes a prompt image with these, whatever the encoder: 16-pixel patches pooled 3 x 3,
# at most 280 soft tokens
COMFYUI_PATCH, COMFYUI_POOLING, COMFYUI_SOFT_TOKENS = 16, 3, 280
COMFYUI_CELL = COMFYUI_PATCH * COMFYUI_POOLING


def gemma4_chat(prompt: str, image: bool) -> str:
    """ComfyUI's Gemma 4 chat text for LTX-2 prompt writing (with the image's placeholder when ``image``)."""
    system = (LTX24_I2V_INSTRUCTIONS if image else LTX24_T2V_INSTRUCTIONS).strip()
    media = f"{IMAGE_START}{IMAGE_SLOT}{IMAGE_END}\n\n" if image else ""
    user = f"User Raw Input Prompt: {prompt}." if image else f"user prompt: {prompt}"
    return (f"{TURN_START}system\n{system}{TURN_END}\n{TURN_START}user\n{media}{user}{TURN_END}\n"
            f"{TURN_START}model\n{CHANNEL}final\n")


def marker_ids(tokenizer: GemmaTokenizer) -> dict[str, int]:
    """The Gemma 4 chat markers' ids in ``tokenizer``; a KeyError naming a marker its vocabulary lacks."""
    return {marker: tokenizer.piece_id(marker) for marker in MARKERS}


def gemma4_chat_ids(tokenizer: GemmaTokenizer, text: str) -> list[int]:
    """BOS, then ``text``'s tokens: each marker one token, every other piece SentencePiece's, whitespace kept."""
    special = marker_ids(tokenizer)
    ids = [BOS_ID]
    for part in re.split("(" + "|".join(map(re.escape, MARKERS)) + ")", text):
        if part in special:
            ids.append(special[part])
        elif part:
            ids.extend(tokenizer.processor.encode(part))
    return ids


def stop_ids(tokenizer: GemmaTokenizer) -> tuple[int, ...]:
    """Where Gemma 4's reply ends: EOS or <turn|>."""
    return EOS_ID, tokenizer.piece_id(TURN_END)


def suppressed_ids(tokenizer: GemmaTokenizer, config: GemmaConfig) -> tuple[int, ...]:
    """Tokens ComfyUI's Gemma 4 12B never writes: <audio|> and <image|> (its ``suppress_tokens`` 258883, 258882),
    those of them ``tokenizer`` has; none for E2B / E4B / 31B. The 12B is told as ComfyUI's configs tell it apart:
    its global layers take their values from the key projection (``attention_k_eq_v``)."""
    if not config.attention_k_eq_v:
        return ()
    found = []
    for piece in SUPPRESSED_12B:
        try:
            found.append(tokenizer.piece_id(piece))
        except KeyError:
            continue
    return tuple(found)


def reply_text(tokenizer: GemmaTokenizer, generated: list[int]) -> str:
    """The reply's text: markers and control tokens dropped, surrounding whitespace stripped."""
    markers = set(marker_ids(tokenizer).values())
    return tokenizer.decode([i for i in generated if i not in markers]).strip()


def comfyui_target_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) ComfyUI resizes an image of ``height`` x ``width`` pixels to for Gemma 4's vision encoder:
    at most COMFYUI_SOFT_TOKENS soft tokens of COMFYUI_CELL pixels a side (its tokenizer's constants, whatever the
    encoder), the aspect ratio kept."""
    k, cell = COMFYUI_POOLING, COMFYUI_CELL
    max_patches = COMFYUI_SOFT_TOKENS * k * k
    factor = math.sqrt(max_patches * COMFYUI_PATCH ** 2 / (height * width))
    target_height = math.floor(factor * height / cell) * cell
    target_width = math.floor(factor * width / cell) * cell
    if target_height == 0 and target_width == 0:
        raise ValueError(f"an image of {height} x {width} pixels cannot be resized for Gemma 4's vision encoder")
    longest = (max_patches // k ** 2) * cell
    if target_height == 0:
        target_height, target_width = cell, min(math.floor(width / height) * cell, longest)
    elif target_width == 0:
        target_height, target_width = min(math.floor(height / width) * cell, longest), cell
    return target_height, target_width


def comfyui_gemma4_pixels(images: torch.Tensor) -> torch.Tensor:
    """The first image of ``images`` ([H, W, C] or [B, H, W, C], ComfyUI IMAGE in [0, 1]) -> pixels [1, 3, h, w]
    in [0, 1] on 8-bit levels, as ComfyUI's Gemma 4 tokenizer prepares it (see the module docstring)."""
    first = images if images.dim() == 3 else images[0]
    if first.dim() != 3 or first.shape[-1] < 3:
        raise ValueError(f"image of shape {list(images.shape)}: expected [H, W, 3] or [B, H, W, 3]")
    codes = (first[..., :3].clamp(0, 1) * 255).to(torch.uint8).movedim(-1, 0)[None]     # [1, 3, H, W], truncated
    size = comfyui_target_size(codes.shape[-2], codes.shape[-1])
    codes = codes.float()
    if tuple(codes.shape[-2:]) != size:    # torchvision's tensor resize: in float, clamped, rounded to 8 bits
        codes = F.interpolate(codes, size=size, mode="bicubic", align_corners=False, antialias=True)
        codes = codes.clamp(0, 255).round()
    return codes * (1.0 / 255.0)


def gemma4_image_chat(tokenizer: GemmaTokenizer, vision: Gemma4Vision | Gemma4Embedder, prompt: str,
                      images: torch.Tensor) -> tuple[torch.Tensor, ImageTokens]:
    """Token ids [1, T] of ComfyUI's Gemma 4 image chat (:func:`gemma4_chat`) with the placeholder expanded to the
    first image's soft tokens, and those tokens (causal like text, or bidirectional as the vision config says)."""
    cfg = vision.config
    chat = gemma4_chat_ids(tokenizer, gemma4_chat(prompt, image=True))
    with torch.inference_mode():
        features = vision(comfyui_gemma4_pixels(images))                           # [1, N, D]
    at, count = chat.index(tokenizer.piece_id(IMAGE_SLOT)), features.shape[1]
    ids = torch.tensor([chat[:at] + [cfg.image_token_id] * count + chat[at + 1:]])
    slots = torch.zeros_like(ids, dtype=torch.bool)
    slots[0, at:at + count] = True
    return ids, ImageTokens(slots, features, bidirectional=cfg.bidirectional_images)
