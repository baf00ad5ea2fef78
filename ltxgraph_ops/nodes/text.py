"""TextGenerateLTX2Prompt (ComfyUI core): a prompt rewritten for LTX-2 by the text encoder's own Gemma, in
Gemma's chat format with the LTX-2 video-prompt system instruction, sampled or greedy, as ComfyUI's node does it
(comfy_extras/nodes_textgen.py, its Gemma 3 tokenizer and generation loop; facts listed in generate_ltx2_prompt).
With Gemma 4 (LTX-2.5's prompt enhancer) the node writes Gemma 4's chat instead
(:mod:`ltxgraph_ops.gemma4_image_prompt`)."""
from __future__ import annotations

import re
from typing import Annotated

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.input_checks import input_check
from ltxgraph.values import Audio
from ltxgraph_ops.gemma4_image_prompt import (gemma4_chat, gemma4_chat_ids, gemma4_image_chat, reply_text, stop_ids,
                                              suppressed_ids)
from ltxgraph_ops.gemma_image_prompt import comfyui_image_pixels
from ltxgraph_ops.models.gemma import ImageTokens
from ltxgraph_ops.models.gemma_tokenizer import BOS_ID, MAX_LENGTH, PAD_ID, GemmaTokenizer
from ltxgraph_ops.models.next_token import TokenSampling
from ltxgraph_ops.nodes.loaders import applied_gemma
from ltxgraph_ops.text_ops import TextEncoderHandle
from ltxgraph_ops.textgen_prompts import I2V_INSTRUCTIONS, T2V_INSTRUCTIONS

MAX_SEED = 2 ** 64 - 1
SAMPLING = ("sampling_mode", ("on",))


END_OF_TURN = "<end_of_turn>"
IMAGE_SOFT_TOKEN = "<image_soft_token>"


def ltx2_chat(prompt: str, system: str = T2V_INSTRUCTIONS, image: bool = False) -> str:
    """ComfyUI's chat text for LTX-2 prompt writing: system instruction, the user's turn (with an image: a blank
    line, the image's one placeholder token, a blank line, then) the raw prompt as it is with a full stop after
    it, the model's turn."""
    picture = f"\n{IMAGE_SOFT_TOKEN}\n\n" if image else ""
    return (f"<start_of_turn>system\n{system.strip()}{END_OF_TURN}\n"
            f"<start_of_turn>user\n{picture}User Raw Input Prompt: {prompt}.{END_OF_TURN}\n"
            "<start_of_turn>model\n")


def comfyui_chat_ids(tokenizer: GemmaTokenizer, text: str, image_token_id: int | None = None) -> list[int]:
    """Token ids of a chat ``text`` as ComfyUI's Gemma 3 tokenizer gives them: the text as it is (whitespace
    kept), cut at each <end_of_turn> and (given its id) <image_soft_token>, each of them one token, each other
    piece SentencePiece's. Such a text gets no BOS of its own, so ComfyUI's "drop the tokenizer's BOS" step drops
    the text's first token (a chat's opening <start_of_turn>) instead, and BOS goes first. ComfyUI's LTX-2 Gemma
    tokenizer then pads on the left with PAD to MAX_LENGTH (1024) tokens, an image placeholder counting as one
    (TextGenerate's min_length 1 does not reach it), and its generation attends to the pads."""
    special = {END_OF_TURN: tokenizer.piece_id(END_OF_TURN)}
    if image_token_id is not None:
        special[IMAGE_SOFT_TOKEN] = image_token_id
    ids: list[int] = []
    for part in re.split("(" + "|".join(map(re.escape, special)) + ")", text):
        if part in special:
            ids.append(special[part])
        elif part:
            ids.extend(tokenizer.processor.encode(part))
    ids = [BOS_ID, *ids[1:]]
    return [PAD_ID] * (MAX_LENGTH - len(ids)) + ids


def comfyui_image_chat(clip: TextEncoderHandle, prompt: str, images: torch.Tensor
                       ) -> tuple[torch.Tensor, ImageTokens]:
    """Token ids [1, T] and image tokens of ComfyUI's image-to-video chat (:func:`ltx2_chat` with the image, the
    image-to-video instructions) for ``images`` [B, H, W, 3]: the placeholder's one slot in :func:`comfyui_chat_ids`
    holds the vision tower's features of every image of the batch (B x mm_tokens_per_image tokens, pixels as
    :func:`comfyui_image_pixels` makes them), attended causally like text. A Gemma file without a vision tower is
    refused, naming the file."""
    vision = clip.vision_tower()
    cfg = vision.config
    chat = comfyui_chat_ids(clip.tokenizer, ltx2_chat(prompt, I2V_INSTRUCTIONS, image=True), cfg.image_token_id)
    with torch.inference_mode():
        features = vision(comfyui_image_pixels(images if images.dim() == 4 else images[None], cfg.image_size))
    at, count = chat.index(cfg.image_token_id), features.shape[0] * features.shape[1]
    ids = torch.tensor([chat[:at] + [cfg.image_token_id] * count + chat[at + 1:]])
    slots = torch.zeros_like(ids, dtype=torch.bool)
    slots[0, at:at + count] = True
    return ids, ImageTokens(slots, features, bidirectional=False)


@input_check("audio", presence=("audio",))
def no_audio(audio: Audio | None) -> str | None:
    """Refuses audio, which Gemma 3 cannot hear."""
    return "audio: Gemma 3 takes no audio input; disconnect it" if audio is not None else None


@op("TextGenerateLTX2Prompt", outputs={"generated_text": "STRING"}, category="text", checks=(no_audio,))
def generate_ltx2_prompt(
        clip: Annotated[TextEncoderHandle, Port("CLIP")],
        prompt: Annotated[str, Port("STRING", multiline=True)] = "",
        max_length: Annotated[int, Port("INT", min=1, max=32768)] = 512,
        sampling_mode: Annotated[str, Port("STRING", choices=("on", "off"))] = "on",
        temperature: Annotated[float, Port("FLOAT", min=0.01, max=2.0, comfy_name="sampling_mode.temperature",
                                           shown_when=SAMPLING)] = 0.7,
        top_k: Annotated[int, Port("INT", min=0, max=1000, comfy_name="sampling_mode.top_k",
                                   shown_when=SAMPLING)] = 64,
        top_p: Annotated[float, Port("FLOAT", min=0.0, max=1.0, comfy_name="sampling_mode.top_p",
                                     shown_when=SAMPLING)] = 0.95,
        min_p: Annotated[float, Port("FLOAT", min=0.0, max=1.0, comfy_name="sampling_mode.min_p",
                                     shown_when=SAMPLING)] = 0.05,
        repetition_penalty: Annotated[float, Port("FLOAT", min=0.0, max=5.0,
                                                  comfy_name="sampling_mode.repetition_penalty",
                                                  shown_when=SAMPLING)] = 1.05,
        seed: Annotated[int, Port("INT", min=0, max=MAX_SEED, comfy_name="sampling_mode.seed",
                                  shown_when=SAMPLING)] = 0,
        presence_penalty: Annotated[float, Port("FLOAT", min=0.0, max=5.0,
                                                comfy_name="sampling_mode.presence_penalty",
                                                shown_when=SAMPLING)] = 0.0,
        image: Annotated[torch.Tensor | None, Port("IMAGE", optional=True)] = None,
        video: Annotated[torch.Tensor | None, Port("IMAGE", optional=True)] = None,
        audio: Annotated[Audio | None, Port("AUDIO", optional=True)] = None,
        thinking: Annotated[bool, Port("BOOLEAN", optional=True)] = False,
        use_default_template: Annotated[bool, Port("BOOLEAN", optional=True)] = True,
        ctx: OpContext = None) -> str:
    """``prompt`` expanded by Gemma into a detailed LTX-2 video prompt, as ComfyUI's node does it: the chat of
    :func:`ltx2_chat` tokenized as :func:`comfyui_chat_ids` says; at most ``max_length`` new tokens, stopping
    after <end_of_turn> only; sampling on = drawn with a CPU generator seeded with ``seed`` after ComfyUI's chain
    (repetition and presence penalties on the new tokens only, temperature, top-k, min-p, top-p), off = greedy;
    the reply decoded as it is (<end_of_turn> dropped, whitespace kept). ``use_default_template`` and
    ``thinking`` change nothing (ComfyUI's node sends its own chat, which skips the default template; Gemma 3
    writes no reasoning). With an image, ComfyUI's image chat (:func:`comfyui_image_chat`: Gemma looks at every
    image of the batch through its vision tower; a text-only Gemma file refuses it); a video changes nothing
    (ComfyUI's Gemma 3 tokenizer ignores it); audio Gemma 3 cannot hear. With Gemma 4, ComfyUI's Gemma 4 chat
    (the LTX "2.4" instructions, the first image's soft tokens in place of <|image|>), stopping at EOS or <turn|>,
    the reply stripped of markers and whitespace, the prompt itself if the reply is empty; Gemma 4 12B never writes
    <image|> or <audio|> (ComfyUI's suppressed tokens for it)."""
    ctx = ctx or OpContext("TextGenerateLTX2Prompt")
    sampling = None
    if sampling_mode == "on":
        sampling = TokenSampling(temperature, top_k, top_p, min_p, repetition_penalty, presence_penalty)
    if clip.generation == 4:
        ids, images = gemma4_prompt(clip, prompt, image)
        stops = stop_ids(clip.tokenizer)
    else:
        ids, images = gemma3_prompt(clip, prompt, image)
        stops = (clip.tokenizer.piece_id(END_OF_TURN),)
    with torch.inference_mode(), applied_gemma(clip) as gemma:
        suppressed = suppressed_ids(clip.tokenizer, gemma.config) if clip.generation == 4 else ()
        generated = gemma.generate(ids, torch.ones_like(ids), max_new_tokens=max_length, stop_tokens=stops,
                                   sampling=sampling, seed=seed, images=images, on_token=ctx.counter("token"),
                                   suppressed_tokens=suppressed)
    if clip.generation == 4:
        return reply_text(clip.tokenizer, generated[0].tolist()) or prompt
    return clip.tokenizer.decode([i for i in generated[0].tolist() if i not in stops])


def gemma3_prompt(clip: TextEncoderHandle, prompt: str, image: torch.Tensor | None
                  ) -> tuple[torch.Tensor, ImageTokens | None]:
    """Ids [1, T] (and image tokens) of ComfyUI's Gemma 3 chat: :func:`ltx2_chat`, or with an image
    :func:`comfyui_image_chat`."""
    if image is None:
        return torch.tensor([comfyui_chat_ids(clip.tokenizer, ltx2_chat(prompt))]), None
    return comfyui_image_chat(clip, prompt, image)


def gemma4_prompt(clip: TextEncoderHandle, prompt: str, image: torch.Tensor | None
                  ) -> tuple[torch.Tensor, ImageTokens | None]:
    """Ids [1, T] (and image tokens) of ComfyUI's Gemma 4 chat (:mod:`ltxgraph_ops.gemma4_image_prompt`); an image
    needs the file's vision encoder (a file without one is refused, naming it)."""
    if image is None:
        return torch.tensor([gemma4_chat_ids(clip.tokenizer, gemma4_chat(prompt, image=False))]), None
    return gemma4_image_chat(clip.tokenizer, clip.vision_tower(), prompt, image)
