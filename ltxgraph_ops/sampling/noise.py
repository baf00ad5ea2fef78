"""Initial noise for sampling and the flow-matching forward process.

Noise is ComfyUI's ``RandomNoise`` stream (``prepare_noise`` over the nested AV latent), reproducible on any
device: one CPU ``torch.Generator`` seeded with ``seed`` (mod 2^64) draws float32 N(0, 1) for each modality
in the order given (video, then audio), each for its whole batch [B, ...] at once. An item's noise therefore
depends on the batch size (torch draws large tensors in vectorised blocks, so not even item 0 of a batch of B
is the noise of a batch of one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

_SEED_MODULUS = 2 ** 64


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
    """Standard normal float32 noise for latents of the given shapes ``[B, ...]`` (all with the same B), on
    the CPU: one generator seeded with ``seed`` draws each shape whole, in order (ComfyUI's rule)."""
    batches = {int(shape[0]) for shape in shapes}
    if len(batches) != 1:
        raise ValueError(f"latents of one sample share a batch size; got shapes {[tuple(s) for s in shapes]}")
    generator = torch.Generator(device="cpu").manual_seed(int(seed) % _SEED_MODULUS)
    return tuple(torch.randn(tuple(shape), generator=generator) for shape in shapes)


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
