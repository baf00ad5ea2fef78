"""Sampling nodes (ComfyUI names): SamplerEulerAncestral with its eta and s_noise, KSampler, the one-node
sampler (seeded noise + named schedule + CFG + a named sampler) built from the same pieces as
SamplerCustomAdvanced, and LTXVDualCFGGuider (LTX-2.5 templates: one CFG scale for video, one for audio)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Annotated, Any, Callable, ClassVar

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.registry import REQUIRED
from ltxgraph.types import LATENT
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.av_model import LTXAVModel
from ltxgraph_ops.handles import ModelHandle
from ltxgraph_ops.sampling.guiders import GuidanceParams, MultimodalGuider
from ltxgraph_ops.sampling.noise import RandomNoise
from ltxgraph_ops.sampling.samplers import sample_euler_ancestral
from ltxgraph_ops.sampling.schedules import BASIC_SCHEDULERS
from ltxgraph_ops.sampling_ops import (MAX_SEED, Guider, SamplerChoice, basic_scheduler_op, cfg_guider_op,
                                       sampler_custom_advanced)

KSAMPLER_SAMPLERS = ("euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "gradient_estimation",
                     "lcm")
"""KSampler's sampler names that LTX-2 workflows use and ltxgraph runs (rectified-flow forms); ComfyUI's other
names (dpmpp_*, heun, uni_pc, ...) are refused at validation, by name."""


@dataclass(frozen=True)
class AncestralSampler:
    """SAMPLER: Euler ancestral with its settings (eta: share of each step re-noised; s_noise: noise scale)."""

    eta: float
    s_noise: float
    name: ClassVar[str] = "euler_ancestral"     # its per-step noise follows that sampler's seed rule

    @property
    def run(self) -> Callable[..., torch.Tensor]:
        return partial(sample_euler_ancestral, eta=self.eta, s_noise=self.s_noise)


@op("SamplerEulerAncestral", outputs={"SAMPLER": "SAMPLER"}, category="sampling/custom_sampling/samplers")
def sampler_euler_ancestral(eta: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 1.0,
                            s_noise: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 1.0) -> AncestralSampler:
    """Euler ancestral in rectified-flow form: each step goes by Euler to sigma_down = sigma_next (1 + (sigma_next
    / sigma - 1) eta), scales by (1 - sigma_next) / (1 - sigma_down) and adds s_noise * sigma_up fresh noise,
    sigma_up^2 = sigma_next^2 - sigma_down^2 ((1 - sigma_next) / (1 - sigma_down))^2; eta 0 is plain Euler;
    the last step (to sigma 0) lands on the clean estimate."""
    return AncestralSampler(eta, s_noise)


@op("KSampler", outputs={"LATENT": "=latent_image"}, category="sampling")
def ksampler(model: Annotated[ModelHandle, Port("MODEL")],
             seed: Annotated[int, Port("INT", min=0, max=MAX_SEED, control_after_generate=True)] = 0,
             steps: Annotated[int, Port("INT", min=1, max=10000)] = 20,
             cfg: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 8.0,
             sampler_name: Annotated[str, Port("STRING", choices=KSAMPLER_SAMPLERS)] = "euler",
             scheduler: Annotated[str, Port("STRING", choices=BASIC_SCHEDULERS)] = "simple",
             positive: Annotated[Conditioning, Port("CONDITIONING")] = REQUIRED,
             negative: Annotated[Conditioning, Port("CONDITIONING")] = REQUIRED,
             latent_image: Annotated[Any, Port(LATENT)] = REQUIRED,
             denoise: Annotated[float, Port("FLOAT", min=0.0, max=1.0)] = 1.0,
             ctx: OpContext = None) -> Any:
    """Denoise ``latent_image`` in ``steps`` steps of ``scheduler``'s schedule (denoise < 1: its last steps of
    int(steps / denoise)) with noise from ``seed``, CFG at ``cfg`` and ``sampler_name``; exactly
    RandomNoise + BasicScheduler + CFGGuider + KSamplerSelect + SamplerCustomAdvanced."""
    sigmas = basic_scheduler_op(model, scheduler, steps, denoise)
    guider = cfg_guider_op(model, positive, negative, cfg)
    sampled, _ = sampler_custom_advanced(RandomNoise(seed), guider, SamplerChoice(sampler_name), sigmas,
                                         latent_image, ctx=ctx or OpContext("KSampler"))
    return sampled


@dataclass(frozen=True)
class DualCFGGuider(Guider):
    """GUIDER of LTXVDualCFGGuider: CFG at the video scale (``default``) and at the audio scale for the audio of an
    audio-video latent; a latent of one modality takes the video scale whatever it holds (as ComfyUI, which tells
    the modalities apart only in a packed audio-video latent)."""

    def build(self, adapter: LTXAVModel, modalities: tuple[str, ...]) -> MultimodalGuider:
        if len(modalities) == 1:
            return Guider.build(replace(self, per_modality={}), adapter, modalities)
        return super().build(adapter, modalities)


@op("LTXVDualCFGGuider", outputs={"GUIDER": "GUIDER"}, category="model/sampling/guiders")
def ltxv_dual_cfg_guider(model: Annotated[ModelHandle, Port("MODEL")],
                         positive: Annotated[Conditioning, Port("CONDITIONING")],
                         negative: Annotated[Conditioning, Port("CONDITIONING")],
                         video_cfg: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 3.0,
                         audio_cfg: Annotated[float, Port("FLOAT", min=0.0, max=100.0)] = 7.0) -> Guider:
    """Classifier-free guidance with one scale per modality of an audio-video latent: pred = u + cfg (c - u), cfg
    = ``video_cfg`` for the video tokens and ``audio_cfg`` for the audio ones (a video-only or audio-only latent:
    ``video_cfg``). Both at 1: the positive prompt alone (the same prediction; ComfyUI still runs the negative)."""
    return DualCFGGuider(model, positive, negative, GuidanceParams(cfg=video_cfg),
                         {"video": GuidanceParams(cfg=video_cfg), "audio": GuidanceParams(cfg=audio_cfg)})
