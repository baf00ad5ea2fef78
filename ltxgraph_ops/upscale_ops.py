"""The x2 spatial latent upscaler ops (ComfyUI names): loading it from its own file, and upscaling a video
latent in the VAE's un-normalised space."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.values import AVLatent, VideoLatent
from ltxgraph_ops.handles import Lazy
from ltxgraph_ops.model_files import component_layout, load_section_component
from ltxgraph_ops.vae_handle import VideoVAEHandle
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile


def _build(config: dict) -> torch.nn.Module:
    from ltxgraph_ops.models.upscaler import LatentUpscaler, LatentUpscalerConfig
    return LatentUpscaler(LatentUpscalerConfig.from_header(config))


@dataclass(frozen=True)
class UpscalerHandle:
    """LATENT_UPSCALE_MODEL: the upscaler of a file (checked now, read on first use)."""

    source: str
    model: Lazy[torch.nn.Module]


@op("LatentUpscaleModelLoader", outputs={"LATENT_UPSCALE_MODEL": "LATENT_UPSCALE_MODEL"}, category="loaders")
def latent_upscale_model_loader(model_name: Annotated[str, Port("STRING", file="latent_upscale_models")],
                                ctx: OpContext = None) -> UpscalerHandle:
    """An LTX-2 latent upscaler file (its config is the file's header ``config``)."""
    file = SafetensorsFile(model_name)
    component_layout(file, _build, "", "")
    device = ctx.settings.device if ctx else "cpu"
    return UpscalerHandle(file.name, Lazy(lambda: load_section_component(model_name, _build, "", "", device),
                                          f"latent upscaler {file.name}"))


@op("LTXVLatentUpsampler", outputs={"LATENT": "=samples"}, category="latent/video")
def ltxv_latent_upsampler(samples: Annotated[Any, Port("VIDEO_LATENT|AV_LATENT")],
                          upscale_model: Annotated[UpscalerHandle, Port("LATENT_UPSCALE_MODEL")],
                          vae: Annotated[VideoVAEHandle, Port("VAE")]) -> Any:
    """Twice the width and height: the latent is un-normalised with the VAE's per-channel statistics, upscaled
    and normalised again. Frames, fps and audio (of an AV latent) are kept; the noise mask is dropped (a fresh
    stage starts from the upscaled latent)."""
    from ltxgraph_ops.models.upscaler import upscale_normalised
    video = samples.video if isinstance(samples, AVLatent) else samples
    if video.samples.ndim != 5 or video.samples.shape[1] != vae.latent_channels:
        raise InputValueError(f"a video latent with {vae.latent_channels} channels is needed, got shape "
                              f"{tuple(video.samples.shape)}")
    mean, std = vae.channel_statistics()
    with torch.inference_mode():
        upscaled = upscale_normalised(upscale_model.model.get(), video.samples.float(), mean, std)
    out = replace(video, samples=upscaled.to(video.samples.dtype), noise_mask=None)
    return AVLatent(out, samples.audio) if isinstance(samples, AVLatent) else out
