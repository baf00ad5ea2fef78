"""Text ops (ComfyUI names): the LTX-2 text encoder (Gemma 3 + the checkpoint's text projection and connectors),
prompt encoding to CONDITIONING, and prompt enhancement with the same Gemma weights.

Memory: when Gemma's weights and the text projection and connectors together exceed the run's memory budget,
Gemma's layers and the connectors' blocks are streamed from their files (read, used, released one by one; the
LTX-2.3 connectors alone are 4 GB in bf16) and Gemma's token table is left on disk (only looked-up rows are
read); the aggregate projections stay resident. Resident weights are
dropped when the encoder value is released after its last use (the encoded CONDITIONING stays cached), before
the sampler loads the transformer.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import torch
from torch import nn

from ltxgraph import Port, op
from ltxgraph.context import OpContext, counter_of
from ltxgraph.errors import InputValueError
from ltxgraph.input_checks import input_check, refusal
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.bundled_text_path import text_path_section
from ltxgraph_ops.gemma_generation import gemma_header
from ltxgraph_ops.gemma_image_prompt import (VisionModel, check_vision, image_chat_ids, image_tokens, load_vision,
                                             vision_layout)
from ltxgraph_ops.handles import Lazy
from ltxgraph_ops.model_files import TRANSFORMER_PREFIX
from ltxgraph_ops.models.gemma import GemmaTextModel, ImageTokens
from ltxgraph_ops.models.gemma_config import GemmaConfig
from ltxgraph_ops.models.progress import Counter
from ltxgraph_ops.models.gemma_vision import GemmaVision
from ltxgraph_ops.models.gemma_tokenizer import MAX_LENGTH, GemmaTokenizer
from ltxgraph_ops.models.next_token import TokenSampling
from ltxgraph_ops.models.text_connectors import TextProjector
from ltxgraph_ops.weights.comfy_quant import header_layers, layer_quant
from ltxgraph_ops.weights.loading import load_component, match_component, parameters_on_meta
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile, ShardedSafetensors
from ltxgraph_ops.weights.streaming import StreamedBlocks, release_stream_buffers, weight_bytes

GEMMA_PREFIXES = ("model.", "language_model.model.", "model.language_model.")
# beside Gemma's text model under its prefix: its vision parts (Gemma 4 12B's embedders under transformers' names
# in files that flattened only the language model to ``model.*``), and in an LTX-2.5 "with-proj" file the bundled
# connectors (``model.diffusion_model.*``)
OTHER_GEMMA_PARTS = ("vision_tower.", "multi_modal_projector.", "lm_head.", "diffusion_model.", "vision_embedder.",
                     "embed_vision.", "embed_audio.")
# token tables a streamed Gemma leaves on disk (rows read when looked up): the embeddings, and Gemma 4 E2B / E4B's
# per-layer input table
TOKEN_TABLES = ("embed_tokens", "embed_tokens_per_layer")
ENHANCER_SAMPLING = TokenSampling(temperature=0.7, top_k=64)
"""How LTXVGemmaEnhancePrompt draws tokens: temperature 0.7 over the 64 likeliest."""
# the text projection's weight that fixes the Gemma it fits: LTX-2.0 (V1) / LTX-2.3 (V2, one per stream)
PROJECTION_KEYS = ("text_embedding_projection.aggregate_embed.weight",
                   "text_embedding_projection.video_aggregate_embed.weight")
T2V_SYSTEM_PROMPT = ("You are a Creative Assistant. Given a user's raw input prompt describing a scene or concept, "
                     "expand it into a detailed video generation prompt with specific visuals and integrated audio "
                     "to guide a text-to-video model.")


def gemma_prefix(file) -> str:
    for prefix in GEMMA_PREFIXES:
        if {f"{prefix}embed_tokens.weight", f"{prefix}layers.0.self_attn.q_norm.weight"} <= file.entries.keys():
            return prefix
    raise CheckpointError(f"{file.path}: not a Gemma 3 text encoder (no 'model.embed_tokens.weight' or "
                          "'language_model.model.embed_tokens.weight' with Gemma 3 layers)")


def gemma_config(file, prefix: str) -> GemmaConfig:
    shapes = {key[len(prefix):]: entry.shape for key, entry in file.entries.items() if key.startswith(prefix)}
    return GemmaConfig.from_tensors(shapes, gemma_header(file))


def load_gemma(file, prefix: str, streamed: bool, compute_dtype: torch.dtype = torch.float32) -> GemmaTextModel:
    with parameters_on_meta():
        model = GemmaTextModel(gemma_config(file, prefix), compute_dtype)
    if not streamed:
        return load_component(model, file, prefix, compute_dtype, allow_extra=OTHER_GEMMA_PARTS)
    layers = model.layers
    tables = {name: getattr(model, name) for name in TOKEN_TABLES if getattr(model, name) is not None}
    model.layers = nn.ModuleList()
    for name in tables:
        setattr(model, name, nn.Module())
    load_component(model, file, prefix, compute_dtype,
                   allow_extra=OTHER_GEMMA_PARTS + ("layers.", *(f"{name}." for name in tables)))
    for name, embed in tables.items():
        table = f"{prefix}{name}."
        if f"{table}weight_scale" in file.entries:
            scale = file.read(f"{table}weight_scale").float()
            embed.weight_scale = scale.reshape(() if scale.numel() == 1 else (-1,))
        quant = layer_quant(file, table.rstrip("."), header_layers(file))
        embed.weight_rotation = quant.rotation if quant is not None and quant.is_int8 else 0
        embed.leave_on_disk(file, f"{table}weight")
        setattr(model, name, embed)
    model.layers = StreamedBlocks(layers, file, f"{prefix}layers.", compute_dtype=compute_dtype)
    return model


def tokenizer_for(file, path: Path) -> GemmaTokenizer:
    """The tokenizer inside the file (``spiece_model``), a ``tokenizer.model`` beside it, or the Hugging Face
    tokenizers JSON inside the file (``tokenizer_json``: Gemma 4's ComfyUI files, ltx-core 1.2.0's packed ones)."""
    if "spiece_model" in file.entries:
        return GemmaTokenizer(bytes(file.read("spiece_model").tolist()))
    beside = Path(path).with_name("tokenizer.model")
    if beside.is_file():
        return GemmaTokenizer(beside.read_bytes())
    if "tokenizer_json" in file.entries:
        try:
            return GemmaTokenizer.from_json(bytes(file.read("tokenizer_json").tolist()).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{file.path}: 'tokenizer_json' cannot be read ({exc}); put the model's "
                                  f"SentencePiece tokenizer.model beside it in {beside.parent}") from None
    raise CheckpointError(f"{file.path}: no tokenizer: the file has no 'spiece_model' tensor and there is no "
                          f"tokenizer.model beside it in {beside.parent}")


def projector_for(file: SafetensorsFile, states: int, text_width: int) -> TextProjector:
    """The text projection and connectors an LTX-2 checkpoint's header describes (V1 or V2), for ``states``
    Gemma hidden states of ``text_width`` channels, weights unset (build under a device or
    :func:`parameters_on_meta`)."""
    section = text_path_section(file)
    has_audio = any(k.startswith(f"{TRANSFORMER_PREFIX}audio_embeddings_connector.") for k in file.entries)
    try:
        return TextProjector(section, states, audio=has_audio, text_width=text_width)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{file.path}: text projection config: {exc}") from None


def load_projector(path: str, states: int, text_width: int, streamed: bool = False,
                   compute_dtype: torch.dtype = torch.float32) -> TextProjector:
    """The checkpoint's text projection and connectors, ready to run in ``compute_dtype``; ``streamed``: each
    connector's blocks are read from the file when a forward reaches them and released after."""
    file = SafetensorsFile(path)
    with parameters_on_meta():
        projector = projector_for(file, states, text_width)
    if not streamed:
        return load_component(projector, file, "", compute_dtype, allow_extra=_not_text_keys(file))
    connectors = dict(projector.model.diffusion_model.named_children())
    blocks = {name: connector.transformer_1d_blocks for name, connector in connectors.items()}
    block_prefixes = {name: f"{TRANSFORMER_PREFIX}{name}.transformer_1d_blocks." for name in connectors}
    for connector in connectors.values():
        connector.transformer_1d_blocks = nn.ModuleList()
    load_component(projector, file, "", compute_dtype,
                   allow_extra=_not_text_keys(file) + tuple(block_prefixes.values()))
    for name, connector in connectors.items():
        connector.transformer_1d_blocks = StreamedBlocks(blocks[name], file, block_prefixes[name],
                                                         compute_dtype=compute_dtype)
    return projector


def projection_key(checkpoint: SafetensorsFile) -> str:
    """The checkpoint's text-projection weight (V1 or V2); a clear error when it has none."""
    for key in PROJECTION_KEYS:
        if key in checkpoint.entries:
            return key
    raise CheckpointError(f"{checkpoint.path}: no '{PROJECTION_KEYS[0]}' (LTX-2.0) or '{PROJECTION_KEYS[1]}' "
                          "(LTX-2.3): not an LTX-2 checkpoint with a text projection")


TEXT_PREFIXES = ("text_embedding_projection.", f"{TRANSFORMER_PREFIX}video_embeddings_connector.",
                 f"{TRANSFORMER_PREFIX}audio_embeddings_connector.")  # the text projection and its connectors


def _not_text_keys(file) -> tuple[str, ...]:
    """Prefixes of everything in an LTX-2 checkpoint that is not the text projection or its connectors."""
    others = set()
    for key in file.entries:
        if key.startswith(TEXT_PREFIXES):
            continue
        rest = key[len(TRANSFORMER_PREFIX):] if key.startswith(TRANSFORMER_PREFIX) else key
        head = key[: len(key) - len(rest)] + rest.split(".", 1)[0]
        if TRANSFORMER_PREFIX.startswith(head + ".") and rest.count(".") > 1:  # Gemma's "model.layers." beside
            head = ".".join(rest.split(".", 2)[:2])                           # connectors ("with-proj" file)
        others.add(head + "." if "." in rest else key)
    return tuple(sorted(others))


EMPTY_CLIP = ("the CLIP input is empty: LTX-2 checkpoints carry no text encoder; connect an "
              "LTXAVTextEncoderLoader")


def no_vision_tower(source: str) -> str:
    """The refusal of image-conditioned generation by the text-only Gemma file ``source`` (its name)."""
    return (f"{source}: this Gemma file has no vision tower ltxgraph reads ('vision_model.*' or "
            "'vision_tower.vision_model.*' with 'multi_modal_projector.*'): image-conditioned generation needs a "
            "Gemma 3 file, a Gemma 4 E2B / E4B / 31B file that carries its vision encoder, or a Gemma 4 12B file "
            "that carries its encoder-free embedder ('vision_model.patch_dense.*')")


def gemma3_image_layout_only(source: str) -> str:
    """The refusal of LTXVGemmaEnhancePrompt's image by the Gemma 4 file ``source`` (its name)."""
    return (f"{source}: LTXVGemmaEnhancePrompt lays out an image prompt for Gemma 3, and this is Gemma 4: connect "
            "the image to TextGenerateLTX2Prompt instead")


@dataclass(frozen=True)
class TextEncoderHandle:
    """CLIP: the LTX-2 text encoder (checked now, read on first use)."""

    source: str
    tokenizer: GemmaTokenizer
    gemma: Lazy[GemmaTextModel]
    projector: Lazy[TextProjector] | None
    max_length: int = MAX_LENGTH
    vision: Lazy[VisionModel] | None = None   # the vision tower (or embedder) and projector, when the file has them
    generation: int = 3                       # Gemma 3 or Gemma 4 (the text model's layers tell)

    def encode(self, prompts: list[str], ctx: OpContext | None = None) -> Conditioning:
        if self.projector is None:
            raise InputValueError(f"the text encoder {self.source} has no LTX-2 checkpoint for its projection")
        ids, mask, lost = self.tokenizer.encode(prompts, self.max_length)
        if ctx is not None and any(lost):
            ctx.warn(f"prompt longer than {self.max_length} tokens: the last {max(lost)} tokens were dropped")
        # Columns that are padding in every prompt change nothing (masked as keys, their features what the
        # projection gives padding): Gemma runs on the rest only, at their original positions; a short prompt
        # costs its own length, not 1024.
        start = int(mask.any(dim=0).int().argmax())
        # Gemma, then the text path: neither holds the other's streaming buffers, and Gemma's hidden states
        # (49 x [B, T, 3840] float32 at release size) are dropped once projected
        with torch.inference_mode():
            gemma = self.gemma.get()
            states = gemma(ids[:, start:], mask[:, start:], position_offset=start, on_layer=counter_of(ctx, "layer"))
            release_stream_buffers(gemma)
            projector = self.projector.get()
            features = projector.project(states, mask[:, start:])
            del states
            video, audio, context_mask = projector.connect(features, mask[:, start:], length=mask.shape[1])
            release_stream_buffers(projector)
        return Conditioning(video.float(), None if audio is None else audio.float(), context_mask)

    def vision_tower(self) -> VisionModel:
        """Gemma's vision tower (or Gemma 4 12B's embedder) and projector; a Gemma file without them is refused,
        naming the file."""
        if self.vision is None:
            raise InputValueError(no_vision_tower(self.source))
        return self.vision.get()

    def image_prompt(self, prompt: str, image: torch.Tensor, system_prompt: str = T2V_SYSTEM_PROMPT
                     ) -> tuple[torch.Tensor, ImageTokens]:
        """Token ids [1, T] of a one-image chat turn and the image's soft tokens for them; a Gemma file without a
        vision tower is refused, naming the file."""
        vision = self.vision_tower()
        if not isinstance(vision, GemmaVision):
            raise InputValueError(gemma3_image_layout_only(self.source))
        ids = torch.tensor([image_chat_ids(self.tokenizer, vision.config, system_prompt, prompt)])
        return ids, image_tokens(vision, ids, image)

    def generate_text(self, prompt: str, image: torch.Tensor | None = None, system_prompt: str = T2V_SYSTEM_PROMPT,
                      max_tokens: int = 512, sampling: TokenSampling | None = ENHANCER_SAMPLING, seed: int = 42,
                      on_token: Counter | None = None) -> str:
        """Gemma's reply (special tokens dropped, stripped) to ``prompt`` under ``system_prompt``, looking at
        ``image`` ([H, W, 3] or [B, H, W, 3] float in [0, 1]; the first of a batch) when one is given: at most
        ``max_tokens`` tokens, greedy when ``sampling`` is None, else drawn as it says, seeded;
        ``on_token(done, max_tokens)`` after each new token."""
        images = None
        if image is None:
            ids = torch.tensor([self.tokenizer.tokenize(chat_prompt(system_prompt, prompt))])
        else:
            ids, images = self.image_prompt(prompt, image, system_prompt)
        generated = self.gemma.get().generate(ids, torch.ones_like(ids), max_new_tokens=max_tokens,
                                              sampling=sampling, seed=seed, images=images,
                                              on_token=on_token)
        return self.tokenizer.decode(generated[0].tolist()).strip()


def text_encoder_handle(gemma_path: str, ckpt_path: str | None, ctx: OpContext | None,
                        max_length: int = MAX_LENGTH) -> TextEncoderHandle:
    file = ShardedSafetensors.for_shard(gemma_path)
    prefix = gemma_prefix(file)
    config = gemma_config(file, prefix)
    with torch.device("meta"):
        layout = GemmaTextModel(config)
    match_component(layout, file, prefix, allow_extra=OTHER_GEMMA_PARTS)
    tokenizer = tokenizer_for(file, Path(gemma_path))
    projector = None
    projector_bytes = 0
    if ckpt_path is not None:
        checkpoint = SafetensorsFile(ckpt_path)
        key = projection_key(checkpoint)
        states = config.num_hidden_layers + 1
        found = list(checkpoint.entries[key].shape)
        if found[1:] != [config.hidden_size * states]:
            raise CheckpointError(f"{checkpoint.path}: text projection {key} {found} does not fit this Gemma "
                                  f"({states} hidden states of {config.hidden_size})")
        with torch.device("meta"):   # header and key layout checked now, the weights read on first use
            match_component(projector_for(checkpoint, states, config.hidden_size), checkpoint, "",
                            allow_extra=_not_text_keys(checkpoint))
        projector_bytes = sum(weight_bytes(checkpoint, text_prefix) for text_prefix in TEXT_PREFIXES)
    # Gemma and the connector blocks stream when Gemma and the text path together would exceed the budget
    budget = ctx.settings.memory_budget if ctx else None
    dtype = ctx.settings.compute_dtype if ctx else torch.float32
    streamed = budget is not None and weight_bytes(file, prefix) + projector_bytes > budget
    if ckpt_path is not None:
        projector = Lazy(lambda: load_projector(ckpt_path, states, config.hidden_size, streamed, dtype),
                         f"text connectors of {checkpoint.name}")
    gemma = Lazy(lambda: load_gemma(ShardedSafetensors.for_shard(gemma_path), prefix, streamed, dtype),
                 f"Gemma text model of {file.name}")
    vision = None
    if (layout := vision_layout(file)) is not None:
        vision_cfg = check_vision(file, layout, config.hidden_size)
        vision = Lazy(lambda: load_vision(ShardedSafetensors.for_shard(gemma_path), layout, vision_cfg),
                      f"Gemma vision tower of {file.name}")
    return TextEncoderHandle(file.name, tokenizer, gemma, projector, max_length, vision,
                             4 if config.layer_scalar else 3)


def text_encoder_headers(gemma: str, checkpoint: str) -> None:
    """Refuses (CheckpointError) a ``gemma`` file that is not Gemma 3 or holds half a vision tower, a
    ``checkpoint`` without an LTX-2 text projection, and a Gemma of the wrong generation for the checkpoint's
    version (LTX-2.5 needs Gemma 4, earlier ones Gemma 3), from the headers."""
    from ltxgraph_ops.gemma_generation import check_gemma_fits
    file = ShardedSafetensors.for_shard(gemma)
    gemma_prefix(file)
    vision_layout(file)
    ltx = SafetensorsFile(checkpoint)
    projection_key(ltx)
    check_gemma_fits(file, ltx)


@input_check("text_encoder")
def text_encoder_files(text_encoder: str, ckpt_name: str) -> str | None:
    """Refuses a text-encoder file that is not Gemma 3, or a checkpoint without the text projection."""
    return refusal(text_encoder_headers, text_encoder, ckpt_name)


@input_check("gemma_path")
def gemma_clip_files(gemma_path: str, ltxv_path: str) -> str | None:
    """Refuses a Gemma path that is not Gemma 3, or a checkpoint without the text projection."""
    return refusal(text_encoder_headers, gemma_path, ltxv_path)


@op("LTXAVTextEncoderLoader", outputs={"CLIP": "CLIP"}, category="loaders", checks=(text_encoder_files,))
def ltxav_text_encoder_loader(text_encoder: Annotated[str, Port("STRING", file="text_encoders")],
                              ckpt_name: Annotated[str, Port("STRING", file="checkpoints")],
                              device: Annotated[str, Port("STRING", choices=("default", "cpu"))] = "default",
                              ctx: OpContext = None) -> TextEncoderHandle:
    """Gemma 3 (ComfyUI text-encoder file, tokenizer inside) with the text projection and connectors of an LTX-2
    checkpoint. Runs on the run's device (``device`` is accepted for compatibility)."""
    return text_encoder_handle(text_encoder, ckpt_name, ctx)


@op("LTXVGemmaCLIPModelLoader", outputs={"clip": "CLIP"}, category="lightricks/LTXV", checks=(gemma_clip_files,))
def ltxv_gemma_clip_loader(gemma_path: Annotated[str, Port("STRING", file="text_encoders")],
                           ltxv_path: Annotated[str, Port("STRING", file="checkpoints")],
                           max_length: Annotated[int, Port("INT", min=16, max=131072)] = 1024,
                           ctx: OpContext = None) -> TextEncoderHandle:
    """The same text encoder from a Hugging Face Gemma 3 folder (one shard named, the others found beside it,
    ``tokenizer.model`` in the folder) or a single file."""
    return text_encoder_handle(gemma_path, ltxv_path, ctx, max_length)


@op("CLIPTextEncode", outputs={"CONDITIONING": "CONDITIONING"}, category="conditioning")
def clip_text_encode(text: Annotated[str, Port("STRING", multiline=True)],
                     clip: Annotated[TextEncoderHandle | None, Port("CLIP")],
                     ctx: OpContext = None) -> Conditioning:
    """A prompt's video and audio text contexts (1024 tokens, BOS first, left padded)."""
    if clip is None:
        raise InputValueError(EMPTY_CLIP)
    return clip.encode([text], ctx)


def chat_prompt(system: str, prompt: str) -> str:
    """Gemma's chat format (a system prompt goes at the start of the user turn)."""
    return (f"<start_of_turn>user\n{system.strip()}\n\nuser prompt: {prompt.strip()}<end_of_turn>\n"
            "<start_of_turn>model\n")


@op("LTXVGemmaEnhancePrompt", outputs={"enhanced_prompt": "STRING"}, category="lightricks/LTXV")
def ltxv_gemma_enhance_prompt(clip: Annotated[TextEncoderHandle, Port("CLIP")],
                              prompt: Annotated[str, Port("STRING", multiline=True)] = "",
                              system_prompt: Annotated[str, Port("STRING", multiline=True)] = T2V_SYSTEM_PROMPT,
                              max_tokens: Annotated[int, Port("INT", min=32, max=1024)] = 512,
                              bypass_i2v: Annotated[bool, Port("BOOLEAN")] = False,
                              image: Annotated[torch.Tensor | None, Port("IMAGE", optional=True)] = None,
                              seed: Annotated[int, Port("INT", min=0, max=4294967295,
                                                        control_after_generate=True)] = 42,
                              ctx: OpContext = None) -> str:
    """The prompt rewritten by Gemma (sampling at temperature 0.7 from the 64 likeliest tokens, seeded, at most
    ``max_tokens`` tokens, stopping at end of turn; progress counts tokens), looking at ``image`` unless
    ``bypass_i2v``. An image needs a Gemma file with its vision tower: a text-only file refuses it, naming it."""
    text = clip.generate_text(prompt, None if bypass_i2v else image, system_prompt, max_tokens, ENHANCER_SAMPLING,
                              seed, counter_of(ctx, "token"))
    return text or prompt
