"""Sampling nodes (ComfyUI names): SamplerEulerAncestral with its eta and s_noise, and KSampler, the one-node
sampler (seeded noise + named schedule + CFG + a named sampler) built from the same pieces as
SamplerCustomAdvanced."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Callable, ClassVar

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.registry import REQUIRED
from ltxgraph.types import LATENT
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.handles import ModelHandle
from ltxgraph_ops.sampling.noise import RandomNoise
from ltxgraph_ops.sampling.samplers import sample_euler_ancestral
from ltxgraph_ops.sampling.schedules import BASIC_SCHEDULERS
from ltxgraph_ops.sampling_ops import (MAX_SEED, SamplerChoice, basic_scheduler_op, cfg_guider_op,
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
