"""Initial noise for sampling and the flow-matching forward process.

Noise is reproducible everywhere: batch item b draws from its own CPU ``torch.Generator`` seeded with
``seed + b`` (mod 2^64), one modality after the other in the order given, so an item's noise depends on
neither the device, the batch size nor its neighbours. For a batch of one this is the same stream as
ComfyUI's ``RandomNoise`` (one CPU generator seeded with ``seed``; for an AV latent video then audio).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

_SEED_MODULUS = 2 ** 64


def item_generator(seed: int, index: int) -> torch.Generator:
    """The CPU generator of batch item ``index``: seeded with (seed + index) mod 2^64."""
    return torch.Generator(device="cpu").manual_seed((int(seed) + int(index)) % _SEED_MODULUS)


#: Samplers whose per-step noise ComfyUI draws with k-diffusion's default noise sampler: a generator on the
#: sample's device seeded with the noise seed, plus one on the CPU (so that it is not the initial noise again).
K_DIFFUSION_STEP_NOISE = frozenset({"euler_ancestral", "euler_ancestral_cfg_pp", "lcm"})


def step_noise_generator(seed: int, sampler_name: str) -> torch.Generator:
    """The CPU generator a sampler draws its per-step noise from: seeded with seed + 1 (mod 2^64) for the
    samplers of :data:`K_DIFFUSION_STEP_NOISE` (ComfyUI's rule on the CPU; its CUDA generator would give other
    numbers), with ``seed`` for the others (res_2s derives its sub-step seed from it)."""
    offset = 1 if sampler_name in K_DIFFUSION_STEP_NOISE else 0
    return torch.Generator(device="cpu").manual_seed((int(seed) + offset) % _SEED_MODULUS)


def gaussian_noise(shapes: Sequence[Sequence[int]], seed: int) -> tuple[torch.Tensor, ...]:
    """Standard normal float32 noise for latents of the given shapes ``[B, ...]`` (all with the same B),
    on the CPU; batch item b of every shape comes from :func:`item_generator` (seed, b)."""
    batches = {int(shape[0]) for shape in shapes}
    if len(batches) != 1:
        raise ValueError(f"latents of one sample share a batch size; got shapes {[tuple(s) for s in shapes]}")
    per_item: list[list[torch.Tensor]] = []
    for index in range(batches.pop()):
        generator = item_generator(seed, index)
        per_item.append([torch.randn((1, *shape[1:]), generator=generator) for shape in shapes])
    return tuple(torch.cat([item[k] for item in per_item]) for k in range(len(shapes)))


@dataclass(frozen=True)
class RandomNoise:
    """ComfyUI ``RandomNoise``: seeded Gaussian noise shaped like the latents it is asked for."""

    seed: int

    def generate(self, latents: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        noise = gaussian_noise([latent.shape for latent in latents], self.seed)
        return tuple(n.to(device=latent.device, dtype=latent.dtype) for n, latent in zip(noise, latents))


@dataclass(frozen=True)
class DisableNoise:
    """ComfyUI ``DisableNoise``: zeros, so sampling starts from the latent itself."""

    seed: int = 0

    def generate(self, latents: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(torch.zeros_like(latent) for latent in latents)


def add_noise(clean: torch.Tensor, noise: torch.Tensor, sigma: float | torch.Tensor,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """Flow-matching forward process at noise level ``sigma``: s*noise + (1-s)*clean with s = mask*sigma
    per token (mask 1 = generate, 0 = keep clean; a partial mask gives a partial noise level)."""
    level = sigma if mask is None else mask * sigma
    return (noise * level + clean * (1 - level)).to(clean.dtype)
