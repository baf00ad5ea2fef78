"""The latent upscaler ops (ComfyUI names): loading one from its own file (spatial x2, spatial x1.5, temporal x2:
the kind comes from the file's header config, its tensors are checked against it), and upscaling a video latent
in the VAE's un-normalised space."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.values import AVLatent
from ltxgraph_ops.handles import Lazy
from ltxgraph_ops.model_files import component_layout, load_section_component
from ltxgraph_ops.models.upscaler import LatentUpscaler, LatentUpscalerConfig, upscale_normalised
from ltxgraph_ops.vae_handle import VideoVAEHandle
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile


def _build(config: dict) -> torch.nn.Module:
    return LatentUpscaler(LatentUpscalerConfig.from_header(config))


@dataclass(frozen=True)
class UpscalerHandle:
    """LATENT_UPSCALE_MODEL: the upscaler of a file (checked now, read on first use)."""

    source: str
    config: LatentUpscalerConfig
    model: Lazy[torch.nn.Module]
    compute_dtype: torch.dtype = torch.float32   # what the model computes in (its weights are held in it)


@op("LatentUpscaleModelLoader", outputs={"LATENT_UPSCALE_MODEL": "LATENT_UPSCALE_MODEL"}, category="loaders")
def latent_upscale_model_loader(model_name: Annotated[str, Port("STRING", file="latent_upscale_models")],
                                ctx: OpContext = None) -> UpscalerHandle:
    """An LTX-2 latent upscaler file (its config is the file's header ``config``)."""
    file = SafetensorsFile(model_name)
    layout = component_layout(file, _build, "", "")
    device = ctx.settings.device if ctx else "cpu"
    dtype = ctx.settings.compute_dtype if ctx else torch.float32
    model = Lazy(lambda: load_section_component(model_name, _build, "", "", device, dtype),
                 f"latent upscaler {file.name}")
    return UpscalerHandle(file.name, layout.config, model, dtype)


@op("LTXVLatentUpsampler", outputs={"LATENT": "=samples"}, category="latent/video")
def ltxv_latent_upsampler(samples: Annotated[Any, Port("VIDEO_LATENT|AV_LATENT")],
                          upscale_model: Annotated[UpscalerHandle, Port("LATENT_UPSCALE_MODEL")],
                          vae: Annotated[VideoVAEHandle, Port("VAE")]) -> Any:
    """The latent un-normalised with the VAE's per-channel statistics, upscaled and normalised again. A spatial
    model scales width and height (x2, x1.5); a temporal x2 model turns F latent frames into 2F - 1, so N pixel
    frames become 2(N - 1) + 1 at twice the fps (same duration). Audio (of an AV latent) is kept; the noise mask
    is dropped (a fresh stage starts from the upscaled latent)."""
    video = samples.video if isinstance(samples, AVLatent) else samples
    if video.samples.ndim != 5 or video.samples.shape[1] != vae.latent_channels:
        raise InputValueError(f"a video latent with {vae.latent_channels} channels is needed, got shape "
                              f"{tuple(video.samples.shape)}")
    mean, std = vae.channel_statistics()
    with torch.inference_mode():
        upscaled = upscale_normalised(upscale_model.model.get(), video.samples.to(upscale_model.compute_dtype),
                                      mean, std).float()
    out = replace(video, samples=upscaled.to(video.samples.dtype), noise_mask=None)
    if upscale_model.config.temporal_upsample:
        out = replace(out, frames=2 * (video.frames - 1) + 1, fps=None if video.fps is None else 2 * video.fps)
    return AVLatent(out, samples.audio) if isinstance(samples, AVLatent) else out
