"""Loader nodes of LTX-2.3 workflows (ComfyUI and ComfyUI-LTXVideo names): LoraLoader, which patches both the
transformer and the Gemma text encoder, and LTXVAudioOnlyModel (the transformer told to generate audio alone).

A LoRA never changes the shared weights: its deltas are attached while the model or the text encoder runs and
detached afterwards, so branches with and without it do not see each other's patches."""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Annotated, Iterator

from torch import nn

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph_ops.handles import ModelHandle
from ltxgraph_ops.loaders import lora_model
from ltxgraph_ops.models.gemma import GemmaTextModel
from ltxgraph_ops.text_ops import GEMMA_PREFIXES, TextEncoderHandle
from ltxgraph_ops.weights.lora import LoraPatch, read_lora
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile

AUDIO_ONLY = "audio_only"
"""ModelHandle metadata key: the sampler denoises only the audio of an audio-video latent, with no attention
between the modalities (the video part, a placeholder, is passed through)."""


class NamedGemma(nn.Module):
    """Gemma under the module path a LoRA file names it by (e.g. ``language_model.model.``)."""

    def __init__(self, gemma: GemmaTextModel, prefix: str) -> None:
        super().__init__()
        self.path = prefix.rstrip(".").split(".") if prefix else []
        holder: nn.Module = self
        for part in self.path[:-1]:
            child = nn.Module()
            holder.add_module(part, child)
            holder = child
        holder.add_module(self.path[-1] if self.path else "gemma", gemma)


def gemma_patch(path: str, strength: float, gemma: GemmaTextModel) -> tuple[NamedGemma, LoraPatch]:
    """The LoRA in ``path`` matched to Gemma under the prefix (``model.``, ``language_model.model.`` or none)
    that fits most of its layers."""
    best: tuple[int, NamedGemma, LoraPatch] | None = None
    for prefix in ("",) + GEMMA_PREFIXES:
        named = NamedGemma(gemma, prefix) if prefix else gemma
        try:
            weights = read_lora(path, named)
        except CheckpointError:
            continue
        if best is None or len(weights.layers) > best[0]:
            best = (len(weights.layers), named, LoraPatch(weights, strength))
    if best is None:
        raise CheckpointError(f"{path}: no tensor of this LoRA fits a layer of the Gemma text encoder")
    return best[1], best[2]


@dataclass(frozen=True)
class LoraTextEncoder(TextEncoderHandle):
    """CLIP with LoRAs (file, strength) attached to Gemma while it encodes or generates."""

    loras: tuple[tuple[str, float], ...] = ()

    @contextmanager
    def applied_gemma(self) -> Iterator[GemmaTextModel]:
        gemma = self.gemma.get()
        undo = []
        try:
            for path, strength in self.loras:
                named, patch = gemma_patch(path, strength, gemma)
                undo.append(patch.attach(named))
            yield gemma
        finally:
            for detach in reversed(undo):
                detach()

    def encode(self, prompts, ctx=None):
        with self.applied_gemma():
            return super().encode(prompts, ctx)


@contextmanager
def applied_gemma(clip: TextEncoderHandle) -> Iterator[GemmaTextModel]:
    """The text encoder's Gemma with the CLIP's LoRAs attached for the duration."""
    if isinstance(clip, LoraTextEncoder):
        with clip.applied_gemma() as gemma:
            yield gemma
    else:
        yield clip.gemma.get()


GEMMA_LAYER = re.compile(r"layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.")
"""Tensor names of a LoRA for Gemma's attention and MLP projections (under any prefix)."""


def fits_gemma(path: str) -> bool:
    """Whether the LoRA file holds Gemma layers (read from its header, no tensors)."""
    return any(GEMMA_LAYER.search(key) for key in SafetensorsFile(path).entries)


@op("LoraLoader", outputs={"MODEL": "MODEL", "CLIP": "CLIP"}, category="loaders")
def lora_loader(model: Annotated[ModelHandle, Port("MODEL")],
                clip: Annotated[TextEncoderHandle, Port("CLIP")],
                lora_name: Annotated[str, Port("STRING", file="loras")],
                strength_model: Annotated[float, Port("FLOAT", min=-100.0, max=100.0)] = 1.0,
                strength_clip: Annotated[float, Port("FLOAT", min=-100.0, max=100.0)] = 1.0,
                ctx: OpContext = None) -> tuple[ModelHandle, TextEncoderHandle]:
    """A LoRA on the transformer (at strength_model) and on the Gemma text encoder (at strength_clip): each
    part gets the layers of the file that fit it (a Gemma-only LoRA leaves MODEL unchanged); a file fitting
    neither is refused. Strength 0 leaves that part unchanged."""
    ctx = ctx or OpContext("LoraLoader")
    fits_clip = fits_gemma(lora_name)
    if strength_model != 0:
        try:
            model = lora_model(model, lora_name, strength_model, ctx)[0]
        except CheckpointError:
            if not fits_clip:
                raise InputValueError(f"LoRA {lora_name}: its tensors fit neither the LTX-2 transformer nor "
                                      "Gemma") from None
    elif not fits_clip:
        read_lora(lora_name, model.structure())          # a file that fits nothing is refused either way
    for_clip = fits_clip and strength_clip != 0
    if for_clip:
        loras = clip.loras if isinstance(clip, LoraTextEncoder) else ()
        fields = {name: getattr(clip, name) for name in TextEncoderHandle.__dataclass_fields__}
        clip = LoraTextEncoder(**fields, loras=loras + ((lora_name, strength_clip),))
    return model, clip


@op("LTXVAudioOnlyModel", outputs={"model": "MODEL"}, category="Lightricks/audio")
def audio_only_model(model: Annotated[ModelHandle, Port("MODEL")]) -> ModelHandle:
    """The model in audio-only (text-to-audio) mode: samplers denoise just the audio of an audio-video latent,
    with no audio<->video cross-attention, so the result does not depend on the (placeholder) video."""
    return replace(model, metadata={**model.metadata, AUDIO_ONLY: True})
