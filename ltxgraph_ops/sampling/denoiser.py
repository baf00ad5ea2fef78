"""The one wrapper between samplers and the model: noise masks and audio-video packing.

A sample is a tuple of modalities (e.g. (video [B, 128, F, H, W], audio [B, 8, T, 16])), each with its clean
latent and a noise mask m broadcastable to it (1 = generate, 0 = keep, fractions = partial strength; per token,
e.g. [B, 1, F, H, W] for video, [B, 1, T, 1] for audio). The sampler sees one packed tensor [B, N] (all
modalities flattened and concatenated); the model sees the modalities and per-token timesteps m * sigma.

Semantics (ltx-core's): the start is s*noise + (1-s)*clean with s = m*sigma_0; every denoised prediction is
blended m*x0 + (1-m)*clean before the sampler uses it; ``restore_kept`` (called by stochastic samplers after
injecting noise) blends x the same way. With a binary mask, kept tokens stay bit-identical to the input.
"""
from __future__ import annotations

import math
from typing import Callable, Protocol, Sequence

import torch

from ltxgraph_ops.sampling.noise import add_noise
from ltxgraph_ops.sampling.samplers import Checkpoint


class GuidedModel(Protocol):
    """A model already turned into one prediction per modality (see :mod:`ltxgraph_ops.sampling.guiders`)."""

    def __call__(self, latents: tuple[torch.Tensor, ...], timesteps: tuple[torch.Tensor, ...],
                 sigma: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


def _broadcasts_to(shape: Sequence[int], target: Sequence[int]) -> bool:
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(target)))


class MaskedDenoiser:
    """``denoise_fn(x, sigma)`` over the packed sample, for any sampler of
    :mod:`ltxgraph_ops.sampling.samplers`."""

    def __init__(self, model: GuidedModel, clean: Sequence[torch.Tensor],
                 masks: Sequence[torch.Tensor | None] | None = None):
        self.model = model
        self.clean = tuple(clean)
        masks = [None] * len(self.clean) if masks is None else list(masks)
        if len(masks) != len(self.clean):
            raise ValueError(f"{len(self.clean)} latents but {len(masks)} noise masks")
        for k, (latent, mask) in enumerate(zip(self.clean, masks)):
            if mask is not None and not _broadcasts_to(mask.shape, latent.shape):
                raise ValueError(f"noise mask {tuple(mask.shape)} of modality {k} does not broadcast to its "
                                 f"latent {tuple(latent.shape)}")
        self.masks = tuple(masks)
        self.sizes = [math.prod(latent.shape[1:]) for latent in self.clean]

    # ------------------------------------------------------------------------------------------- packing

    def pack(self, latents: Sequence[torch.Tensor]) -> torch.Tensor:
        """Modalities -> [B, N] (each flattened after the batch dim, concatenated in order)."""
        return torch.cat([latent.reshape(latent.shape[0], -1) for latent in latents], dim=1)

    def unpack(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """[B, N] -> the modalities in their own shapes."""
        parts = torch.split(x, self.sizes, dim=1)
        return tuple(part.reshape(latent.shape) for part, latent in zip(parts, self.clean))

    # ------------------------------------------------------------------------------------------- masking

    def keep_clean(self, latents: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """m*latent + (1-m)*clean per modality (unchanged where there is no mask)."""
        return tuple(latent if mask is None else (latent * mask + clean.float() * (1 - mask)).to(latent.dtype)
                     for latent, clean, mask in zip(latents, self.clean, self.masks))

    def timesteps(self, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-token timesteps m*sigma (shape of the mask; [B, 1, 1, ...] filled with sigma without one)."""
        out = []
        for latent, mask in zip(self.clean, self.masks):
            if mask is None:
                mask = torch.ones((latent.shape[0],) + (1,) * (latent.ndim - 1), device=latent.device)
            out.append(mask * sigma)
        return tuple(out)

    def start(self, noise: Sequence[torch.Tensor], sigma: float | torch.Tensor) -> torch.Tensor:
        """The packed starting point: every modality noised to level m*sigma."""
        return self.pack([add_noise(clean, n, sigma, mask) for clean, n, mask in zip(self.clean, noise, self.masks)])

    def restore_kept(self, x: torch.Tensor) -> torch.Tensor:
        return self.pack(self.keep_clean(self.unpack(x)))

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        denoised = self.model(self.unpack(x), self.timesteps(sigma), sigma)
        return self.pack(self.keep_clean(denoised))

    def keep_unconditional(self) -> bool:
        """Ask the guider to run and keep its negative-prompt prediction on every call (CFG++ samplers);
        False when the model is not a guider that has one."""
        if not hasattr(self.model, "keep_unconditional"):
            return False
        self.model.keep_unconditional = True
        return True

    def last_unconditional(self) -> torch.Tensor:
        """The negative-prompt prediction of the last call, packed and masked like the guided one."""
        return self.pack(self.keep_clean(self.model.last_unconditional))


Sampler = Callable[..., torch.Tensor]


def sample_latents(sampler: Sampler, model: GuidedModel, latents: Sequence[torch.Tensor],
                   masks: Sequence[torch.Tensor | None] | None, noise: Sequence[torch.Tensor], sigmas: torch.Tensor,
                   callback: Callable[[dict], None] | None = None,
                   generator: torch.Generator | None = None,
                   checkpoint: Checkpoint | None = None) -> tuple[torch.Tensor, ...]:
    """Noise ``latents`` to sigmas[0] (under their masks) and run ``sampler`` down ``sigmas``; returns the
    sampled modalities (the inputs unchanged for an empty schedule). Callback payloads hold packed tensors;
    ``checkpoint`` (optional) keeps the packed sample after each step and resumes from the newest one."""
    if sigmas.numel() < 2:
        return tuple(latents)
    denoiser = MaskedDenoiser(model, [latent.float() for latent in latents], masks)
    x = denoiser.start([n.float() for n in noise], sigmas[0])
    resumable = {} if checkpoint is None else {"checkpoint": checkpoint}
    x = sampler(denoiser, x, sigmas, callback=callback, generator=generator, **resumable)
    return tuple(out.to(latent.dtype) for out, latent in zip(denoiser.unpack(x), latents))
