"""TextGenerateLTX2Prompt (ComfyUI core): a prompt rewritten for LTX-2 by the text encoder's own Gemma 3, in
Gemma's chat format with the LTX-2 video-prompt system instruction, sampled or greedy."""
from __future__ import annotations

import re
from typing import Annotated

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.input_checks import input_check
from ltxgraph.values import Audio
from ltxgraph_ops.models.next_token import TokenSampling
from ltxgraph_ops.nodes.loaders import applied_gemma
from ltxgraph_ops.text_ops import T2V_SYSTEM_PROMPT, TextEncoderHandle

MAX_SEED = 2 ** 64 - 1
SAMPLING = ("sampling_mode", ("on",))


def ltx2_chat(prompt: str, system: str = T2V_SYSTEM_PROMPT) -> str:
    """Gemma 3's chat turns for LTX-2 prompt writing: system instruction, the user's raw prompt, model turn."""
    return (f"<start_of_turn>system\n{system.strip()}<end_of_turn>\n"
            f"<start_of_turn>user\n\nUser Raw Input Prompt: {prompt}.<end_of_turn>\n"
            "<start_of_turn>model\n")


def without_reasoning(text: str) -> str:
    """Generated text with <think>...</think> blocks (and anything before an unclosed one's end) removed."""
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.DOTALL)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[-1]
    return re.sub(r"</?think>", "", text).strip()


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
    """``prompt`` expanded by Gemma into a detailed LTX-2 video prompt (at most ``max_length`` new tokens,
    stopping at the end of its turn): sampling on = drawn from ``seed`` after ComfyUI's chain (repetition and
    presence penalties on the prompt's and the new tokens, temperature, top-k, min-p, top-p), off = greedy;
    <think> blocks are removed. use_default_template off sends ``prompt`` as it is. Gemma 3 writes no
    reasoning (``thinking`` changes nothing). With an image (or a video: its first frame) Gemma looks at it
    through its vision tower (a text-only Gemma file refuses it); audio Gemma 3 cannot hear."""
    ctx = ctx or OpContext("TextGenerateLTX2Prompt")
    picture = image if image is not None else (video[:1] if video is not None else None)   # a video: its first frame
    sampling = None
    if sampling_mode == "on":
        sampling = TokenSampling(temperature, top_k, top_p, min_p, repetition_penalty, presence_penalty)
    images = None
    if picture is None:
        text = ltx2_chat(prompt) if use_default_template else prompt
        ids = torch.tensor([clip.tokenizer.tokenize(text)])
    else:
        ids, images = clip.image_prompt(prompt, picture)
    with torch.inference_mode(), applied_gemma(clip) as gemma:
        generated = gemma.generate(ids, torch.ones_like(ids), max_new_tokens=max_length,
                                   sampling=sampling, seed=seed % 2 ** 63, images=images,
                                   on_token=ctx.counter("token"))
    return without_reasoning(clip.tokenizer.decode(generated[0].tolist()))
