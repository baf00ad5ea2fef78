"""Auto duration (LTX-2.5): ComfyUI's ModelPatchLoader (for the duration head file in ``models/model_patches``)
and LTXVDurationPredictor, which proposes a frame count on the VAE's 8n+1 grid from the prompt's text, before any
sampling (wire ``num_frames`` into EmptyLTXVLatentVideo's ``length`` and LTXVEmptyLatentAudio's
``frames_number``). The same from the command line: ``ltxgraph duration --prompt ...``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.input_checks import input_check, refusal
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.handles import Lazy, ModelHandle
from ltxgraph_ops.model_files import component_layout, load_section_component
from ltxgraph_ops.models.duration_head import PREFIX, DurationHead, DurationHeadConfig, frames_for_seconds
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile


def build_head(config: dict) -> DurationHead:
    """The head for a file's whole header ``config``."""
    return DurationHead(DurationHeadConfig.from_header(config))


# where a file keeps the head: its own file or a single-file checkpoint (ltx-core), or ComfyUI's transformer prefix
HEAD_PREFIXES = (PREFIX, "model.diffusion_model." + PREFIX)


def head_prefix(path: str) -> str:
    """The key prefix of the duration head in a file; a :class:`CheckpointError` naming the file without one."""
    file = SafetensorsFile(path)
    for prefix in HEAD_PREFIXES:
        if f"{prefix}mlp_out.weight" in file.entries:
            return prefix
    raise CheckpointError(f"{file.path}: not an LTX duration head (no '{PREFIX}mlp_out.weight'); ltxgraph reads "
                          "only the LTX-2.5 duration head from model_patches")


def head_layout(path: str) -> DurationHead:
    """The head of a file on the meta device, its tensors checked against the header (names and shapes) without
    reading a weight."""
    return component_layout(SafetensorsFile(path), build_head, "", head_prefix(path))


@dataclass(frozen=True)
class DurationHeadHandle:
    """MODEL_PATCH: a duration head file (checked now, read on first use; a few MB, held in float32)."""

    source: str
    config: DurationHeadConfig
    model: Lazy[DurationHead]


@input_check("name")
def duration_head_file(name: str) -> str | None:
    """Refuses a model patch file that holds no LTX duration head."""
    return refusal(head_layout, name)


@op("ModelPatchLoader", outputs={"MODEL_PATCH": "MODEL_PATCH"}, category="advanced/loaders",
    checks=(duration_head_file,))
def model_patch_loader(name: Annotated[str, Port("STRING", file="model_patches")],
                       ctx: OpContext = None) -> DurationHeadHandle:
    """A model patch file; ltxgraph reads one kind, the LTX-2.5 duration head (``duration_head.*`` keys, also
    inside a single-file checkpoint, or under ``model.diffusion_model.``)."""
    layout = head_layout(name)
    device = ctx.settings.device if ctx else "cpu"
    prefix = head_prefix(name)
    model = Lazy(lambda: load_section_component(name, build_head, "", prefix, device, torch.float32),
                 f"duration head {SafetensorsFile(name).name}")
    return DurationHeadHandle(SafetensorsFile(name).name, layout.config, model)


def prompt_tokens(conditioning: Conditioning, stream: str) -> torch.Tensor | None:
    """The first prompt's connector output of ``stream`` [1, S, width], padding left out (the reference head
    sees no padding: its connectors put registers there)."""
    context = conditioning.video_context if stream == "video" else conditioning.audio_context
    if context is None:
        return None
    context = context[:1]
    if conditioning.context_mask is not None:
        context = context[:, conditioning.context_mask[0].bool().to(context.device)]
    return context


def predict_seconds(head: DurationHead, conditioning: Conditioning) -> float:
    """The head's duration for the first prompt of ``conditioning``, in seconds."""
    video, audio = prompt_tokens(conditioning, "video"), prompt_tokens(conditioning, "audio")
    for name, tokens, width in (("video", video, head.config.video_dim), ("audio", audio, head.config.audio_dim)):
        if tokens is not None and tokens.shape[-1] != width:
            raise InputValueError(f"the {name} text is {tokens.shape[-1]} wide, the duration head reads {width} "
                                  "(a head made for another model?)")
    with torch.no_grad():
        return float(head(video, audio)[0])


def check_head_fits(head: DurationHeadHandle, model: ModelHandle | None) -> None:
    """Refuses a duration head whose text widths are not the transformer's (a head of another model)."""
    if model is None:
        return
    config = model.structure().config
    heads = (head.config.video_dim, head.config.audio_dim)
    if heads != (config.video_dim, config.audio_dim):
        raise InputValueError(f"duration head {head.source} reads text {heads[0]} / {heads[1]} wide (video / audio), "
                              f"the transformer of {model.source} takes {config.video_dim} / {config.audio_dim}: "
                              "a head made for another model")


@input_check("max_seconds")
def seconds_in_order(min_seconds: float, max_seconds: float) -> str | None:
    """Refuses a duration window that ends before it starts."""
    return f"max_seconds {max_seconds} is below min_seconds {min_seconds}" if max_seconds < min_seconds else None


@op("LTXVDurationPredictor", outputs={"num_frames": "INT", "seconds": "FLOAT"}, category="model/conditioning/ltxv",
    checks=(seconds_in_order,))
def ltxv_duration_predictor(model: Annotated[ModelHandle, Port("MODEL")],
                            positive: Annotated[Conditioning, Port("CONDITIONING")],
                            duration_head: Annotated[DurationHeadHandle, Port("MODEL_PATCH")],
                            frame_rate: Annotated[float, Port("FLOAT", min=1.0, max=120.0)] = 24.0,
                            min_seconds: Annotated[float, Port("FLOAT", min=0.5, max=120.0)] = 1.0,
                            max_seconds: Annotated[float, Port("FLOAT", min=0.5, max=120.0)] = 20.0
                            ) -> tuple[int, float]:
    """The clip length the duration head proposes for the (first) positive prompt: ``num_frames`` on the 8n+1
    grid at ``frame_rate``, within [min_seconds, max_seconds] (see ``frames_for_seconds``), and the head's raw
    ``seconds``. ``model`` is the transformer the prompt was encoded for (ComfyUI runs its text connectors here;
    in ltxgraph the conditioning holds their output already)."""
    check_head_fits(duration_head, model)
    seconds = predict_seconds(duration_head.model.get(), positive)
    return frames_for_seconds(seconds, frame_rate, min_seconds, max_seconds), seconds
