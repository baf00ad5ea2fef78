"""Samplers for flow-matching (rectified-flow) models, k-diffusion style.

Every sampler is ``sample_x(denoise_fn, x, sigmas, callback=None, generator=None, **options) -> x`` where
``denoise_fn(x, sigma) -> denoised`` predicts the clean sample x0 at noise level ``sigma`` (a 0-d float32
tensor). The forward process is x_sigma = (1 - sigma) x0 + sigma eps. Samplers know nothing of CFG, masks or
modalities; a denoiser may offer ``restore_kept(x) -> x``, which stochastic samplers call after injecting
noise so that regions the caller keeps stay clean.

Resumable runs: every sampler takes an optional ``checkpoint`` (:class:`Checkpoint`); it restores the state of
the newest finished step before the loop (sample, history, generator states) and is handed the state after
each step, so a resumed run continues bit-identically.
"""
from __future__ import annotations

import math
from typing import Callable, Protocol

import torch

Callback = Callable[[dict], None]


class Denoiser(Protocol):
    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor: ...


class Checkpoint(Protocol):
    """Where a sampler keeps its state between steps (see :class:`ltxgraph.resume.StepCheckpoint`)."""

    history: dict[str, torch.Tensor]

    def restore(self, x: torch.Tensor, generators: dict[str, torch.Generator]) -> tuple[int, torch.Tensor]: ...

    def save(self, step: int, x: torch.Tensor, generators: dict[str, torch.Generator],
             history: dict[str, torch.Tensor] | None = None) -> None: ...


class NonFiniteDenoisedError(FloatingPointError):
    """The denoiser returned NaN or Inf; carries the step index and sigma where it happened."""

    def __init__(self, step: int, sigma: float):
        self.step = step
        self.sigma = sigma
        super().__init__(f"the model produced NaN/Inf at sampling step {step} (sigma {sigma:.6g}); "
                         "check the weights, the inputs and the dtype (try float32)")


# ------------------------------------------------------------------------------------------------ helpers


def denoise(denoise_fn: Denoiser, x: torch.Tensor, sigma: torch.Tensor, step: int) -> torch.Tensor:
    """denoise_fn(x, sigma), refused when it is not finite everywhere."""
    denoised = denoise_fn(x, sigma)
    if not bool(torch.isfinite(denoised).all()):
        raise NonFiniteDenoisedError(step, float(sigma))
    return denoised


def to_velocity(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Flow velocity dx/dsigma = (x - x0) / sigma, in float32."""
    return (x.float() - denoised.float()) / sigma.float()


def euler_step(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """One Euler step of the flow ODE from sigma to sigma_next, in float32, returned in x's dtype."""
    return (x.float() + to_velocity(x, denoised, sigma) * (sigma_next - sigma).float()).to(x.dtype)


def restore_kept(denoise_fn: Denoiser, x: torch.Tensor) -> torch.Tensor:
    """Let the denoiser re-impose what it keeps (identity for plain functions)."""
    restore = getattr(denoise_fn, "restore_kept", None)
    return x if restore is None else restore(x)


def seeded(generator: torch.Generator | None, seed: int = 0) -> torch.Generator:
    """The caller's generator, or a fresh CPU generator with ``seed`` (samplers stay deterministic)."""
    return torch.Generator().manual_seed(seed) if generator is None else generator


def standard_noise(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """N(0, 1) shaped like x, drawn from ``generator`` on its device, returned on x's device and dtype."""
    return torch.randn(x.shape, generator=generator, device=generator.device).to(device=x.device, dtype=x.dtype)


def resume_point(checkpoint: Checkpoint | None, x: torch.Tensor,
                 generators: dict[str, torch.Generator]) -> tuple[int, torch.Tensor, dict[str, torch.Tensor]]:
    """(first step, sample, history) to continue from: (0, x, {}) without a checkpoint or a saved step."""
    if checkpoint is None:
        return 0, x, {}
    first, x = checkpoint.restore(x, generators)
    return first, x, dict(checkpoint.history)


def step_done(checkpoint: Checkpoint | None, step: int, x: torch.Tensor, generators: dict[str, torch.Generator],
              **history: torch.Tensor) -> None:
    """Hand the state after ``step`` finished steps to the checkpoint (nothing without one)."""
    if checkpoint is not None:
        checkpoint.save(step, x, generators, history)


def report(callback: Callback | None, i: int, sigmas: torch.Tensor, x: torch.Tensor, denoised: torch.Tensor) -> None:
    if callback is not None:
        callback({"i": i, "sigma": sigmas[i], "sigma_next": sigmas[i + 1], "x": x, "denoised": denoised})


# ----------------------------------------------------------------------------------------------- samplers


def sample_euler(denoise_fn: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback | None = None,
                 generator: torch.Generator | None = None, checkpoint: Checkpoint | None = None) -> torch.Tensor:
    """Euler method on the probability-flow ODE (Karras et al. 2022, Algorithm 1 without churn)."""
    first, x, _ = resume_point(checkpoint, x, {})
    for i in range(first, len(sigmas) - 1):
        denoised = denoise(denoise_fn, x, sigmas[i], i)
        report(callback, i, sigmas, x, denoised)
        x = euler_step(x, denoised, sigmas[i], sigmas[i + 1])
        step_done(checkpoint, i + 1, x, {})
    return x


def ancestral_rf_step(sigma: torch.Tensor, sigma_next: torch.Tensor,
                      eta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rectified-flow ancestral split of sigma -> sigma_next: (sigma_down, alpha_ratio, sigma_up) such that
    an ODE step to sigma_down, scaled by alpha_ratio, plus sigma_up fresh noise lands at sigma_next."""
    sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * eta)
    alpha_ratio = (1 - sigma_next) / (1 - sigma_down)
    sigma_up = (sigma_next ** 2 - sigma_down ** 2 * alpha_ratio ** 2) ** 0.5
    return sigma_down, alpha_ratio, sigma_up


def sample_euler_ancestral(denoise_fn: Denoiser, x: torch.Tensor, sigmas: torch.Tensor,
                           callback: Callback | None = None, generator: torch.Generator | None = None,
                           eta: float = 1.0, s_noise: float = 1.0,
                           checkpoint: Checkpoint | None = None) -> torch.Tensor:
    """Ancestral sampling with Euler steps, rectified-flow form (ComfyUI ``euler_ancestral`` for CONST models)."""
    generators = {"noise": seeded(generator)}
    first, x, _ = resume_point(checkpoint, x, generators)
    for i in range(first, len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(denoise_fn, x, sigma, i)
        report(callback, i, sigmas, x, denoised)
        if sigma_next == 0:
            x = denoised
        elif eta == 0:
            x = euler_step(x, denoised, sigma, sigma_next)
        else:
            sigma_down, alpha_ratio, sigma_up = ancestral_rf_step(sigma, sigma_next, eta)
            # Euler method to sigma_down (exact for the linear path through denoised)
            ratio = sigma_down / sigma
            x = ratio * x + (1 - ratio) * denoised
            x = alpha_ratio * x + standard_noise(x, generators["noise"]) * (s_noise * sigma_up)
            x = restore_kept(denoise_fn, x)
        step_done(checkpoint, i + 1, x, generators)
    return x


def ve_ancestral_split(sigma_to: float, ratio: float, eta: float) -> tuple[float, float]:
    """k-diffusion's ancestral split of a variance-exploding step to ``sigma_to`` (ratio = sigma_to /
    sigma_from): sigma_up = min(sigma_to, eta sigma_to sqrt(1 - ratio^2)), sigma_down = sqrt(sigma_to^2 -
    sigma_up^2)."""
    sigma_up = min(sigma_to, eta * sigma_to * max(0.0, 1.0 - ratio * ratio) ** 0.5)
    return (sigma_to * sigma_to - sigma_up * sigma_up) ** 0.5, sigma_up


def sample_euler_ancestral_cfg_pp(denoise_fn: Denoiser, x: torch.Tensor, sigmas: torch.Tensor,
                                  callback: Callback | None = None, generator: torch.Generator | None = None,
                                  eta: float = 1.0, s_noise: float = 1.0,
                                  checkpoint: Checkpoint | None = None) -> torch.Tensor:
    """Euler ancestral with CFG++ (Chung et al. 2024, manifold-constrained CFG): the step lands on the guided
    estimate but moves along the negative prompt's noise direction, eps_u = (x - alpha u) / sigma, with
    alpha = 1 - sigma (rectified flow); the ancestral split is taken in the variance-exploding coordinates
    sigma / alpha (ComfyUI ``euler_ancestral_cfg_pp``). The negative pass runs even at cfg 1; a model without
    one (a plain denoiser) steps along its own estimate."""
    keep = getattr(denoise_fn, "keep_unconditional", None)
    has_negative = bool(keep()) if keep is not None else False
    generators = {"noise": seeded(generator)}
    first, x, _ = resume_point(checkpoint, x, generators)
    for i in range(first, len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = denoise(denoise_fn, x, sigmas[i], i)
        report(callback, i, sigmas, x, denoised)
        if sigma_next == 0:
            x = denoised
            step_done(checkpoint, i + 1, x, generators)
            continue
        alpha, alpha_next = 1.0 - sigma, 1.0 - sigma_next
        negative = denoise_fn.last_unconditional() if has_negative else denoised
        noise_direction = (x.float() - alpha * negative.float()) / sigma
        down, up = ve_ancestral_split(sigma_next / alpha_next, sigma_next * alpha / (alpha_next * sigma), eta)
        x_next = alpha_next * denoised.float() + alpha_next * down * noise_direction
        if eta > 0 and s_noise > 0:
            x_next = x_next + alpha_next * s_noise * up * standard_noise(x_next, generators["noise"])
        x = restore_kept(denoise_fn, x_next.to(x.dtype))
        step_done(checkpoint, i + 1, x, generators)
    return x


def sample_euler_cfg_pp(denoise_fn: Denoiser, x: torch.Tensor, sigmas: torch.Tensor,
                        callback: Callback | None = None, generator: torch.Generator | None = None,
                        checkpoint: Checkpoint | None = None) -> torch.Tensor:
    """Euler with CFG++: ``sample_euler_ancestral_cfg_pp`` without noise (ComfyUI ``euler_cfg_pp``)."""
    return sample_euler_ancestral_cfg_pp(denoise_fn, x, sigmas, callback, generator, eta=0.0, s_noise=0.0,
                                         checkpoint=checkpoint)


def sample_lcm(denoise_fn: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback | None = None,
               generator: torch.Generator | None = None, checkpoint: Checkpoint | None = None) -> torch.Tensor:
    """Latent Consistency Model sampling (Luo et al. 2023): jump to x0, re-noise to the next level."""
    generators = {"noise": seeded(generator)}
    first, x, _ = resume_point(checkpoint, x, generators)
    for i in range(first, len(sigmas) - 1):
        denoised = denoise(denoise_fn, x, sigmas[i], i)
        report(callback, i, sigmas, x, denoised)
        x = denoised
        if sigmas[i + 1] > 0:
            sigma_next = sigmas[i + 1]
            x = sigma_next * standard_noise(x, generators["noise"]) + (1 - sigma_next) * x
            x = restore_kept(denoise_fn, x)
        step_done(checkpoint, i + 1, x, generators)
    return x


# ------------------------------------------------------------------------------------------------- res_2s


def phi(j: int, z: float) -> float:
    """phi_j(z) = (e^z - sum_{k<j} z^k/k!) / z^j, the exponential-integrator weights (1/j! at z = 0)."""
    if abs(z) < 1e-10:
        return 1.0 / math.factorial(j)
    return (math.exp(z) - sum(z ** k / math.factorial(k) for k in range(j))) / z ** j


def res_2s_coefficients(h: float, c2: float = 0.5) -> tuple[float, float, float]:
    """Butcher weights of the 2-stage exponential Runge-Kutta (RES) step of log-size h:
    a21 = c2 phi1(-c2 h), b2 = phi2(-h) / c2, b1 = phi1(-h) - b2."""
    a21 = c2 * phi(1, -h * c2)
    b2 = phi(2, -h) / c2
    return a21, phi(1, -h) - b2, b2


def sde_renoise(x_from: torch.Tensor, x_to: torch.Tensor, sigma_from: torch.Tensor, sigma_to: torch.Tensor,
                noise: torch.Tensor, up_fraction: float = 0.5) -> torch.Tensor:
    """Variance-preserving noise injection at the end of a step: read the line through (sigma_from, x_from)
    and (sigma_to, x_to), walk it back to sigma_down, rescale and add ``sigma_up = up_fraction*sigma_to``
    of fresh noise so that the result sits at noise level sigma_to. Returns x_to unchanged at sigma_to 0."""
    sigma_up = torch.clamp(sigma_to * up_fraction, max=sigma_to * 0.9999)
    if bool(sigma_up == 0) or bool(sigma_to == 0):
        return x_to
    residual = (sigma_to ** 2 - sigma_up ** 2).clamp(min=0) ** 0.5
    alpha_ratio = (1 - sigma_to) + residual
    sigma_down = residual / alpha_ratio
    slope = (x_from - x_to) / (sigma_from - sigma_to)
    x0 = x_from - sigma_from * slope
    return alpha_ratio * (x0 + sigma_down * slope) + sigma_up * noise


def normalized_noise(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """float64 N(0, 1) noise standardised to mean 0, std 1 over the whole tensor and then per batch item."""
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float64, device=generator.device)
    noise = (noise - noise.mean()) / noise.std()
    dims = tuple(range(1, noise.ndim))
    noise = (noise - noise.mean(dim=dims, keepdim=True)) / noise.std(dim=dims, keepdim=True)
    return noise.to(x.device)


RES_2S_FINAL_SIGMA = 0.0011


def sample_res_2s(denoise_fn: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback | None = None,
                  generator: torch.Generator | None = None, substep_generator: torch.Generator | None = None,
                  bongmath: bool = True, bongmath_iterations: int = 100,
                  checkpoint: Checkpoint | None = None) -> torch.Tensor:
    """res_2s: two-stage exponential Runge-Kutta (RES, Zhang & Chen 2023 exponential integrators) with SDE
    noise injection at the midpoint and at the step end, as in LTX-2's high-quality pipeline. A final sigma 0
    is approached through sigma 0.0011 and finished with one denoise. Math in float64, state in x's dtype.
    ``generator`` draws the step noise (default seed 0), ``substep_generator`` the midpoint noise (default:
    a generator seeded with the step generator's initial seed + 10000, as the reference derives it).
    """
    generator = seeded(generator)
    substep_generator = seeded(substep_generator, (generator.initial_seed() + 10000) % 2 ** 64)
    generators = {"noise": generator, "substep": substep_generator}
    steps = len(sigmas) - 1
    finish = bool(sigmas[-1] == 0)
    if finish:
        sigmas = torch.cat([sigmas[:-1], sigmas.new_tensor([RES_2S_FINAL_SIGMA, 0.0])])
    first, x, _ = resume_point(checkpoint, x, generators)
    for i in range(first, steps):
        sigma, sigma_next = sigmas[i].double(), sigmas[i + 1].double()
        h = float(-torch.log(sigma_next / sigma))
        a21, b1, b2 = res_2s_coefficients(h)
        anchor = x.double()
        # stage 1 at the current point
        denoised_1 = denoise(denoise_fn, x, sigmas[i], i).double()
        report(callback, i, sigmas, x, denoised_1.to(x.dtype))
        eps_1 = denoised_1 - anchor
        sub_sigma = torch.sqrt(sigma * sigma_next)
        x_mid = anchor + h * a21 * eps_1
        x_mid = sde_renoise(anchor, x_mid, sigma, sub_sigma, normalized_noise(x, substep_generator))
        x_mid = restore_kept(denoise_fn, x_mid)
        if bongmath and h < 0.5 and sigma > 0.03:
            # fixed point: move the anchor so that the noised midpoint lies on its RK line
            for _ in range(bongmath_iterations):
                anchor = x_mid - h * a21 * eps_1
                eps_1 = denoised_1 - anchor
        # stage 2 at the midpoint
        denoised_2 = denoise(denoise_fn, x_mid.to(x.dtype), sub_sigma.float(), i).double()
        eps_2 = denoised_2 - anchor
        x_next = anchor + h * (b1 * eps_1 + b2 * eps_2)
        x_next = sde_renoise(anchor, x_next, sigma, sigma_next, normalized_noise(x, generator))
        x = restore_kept(denoise_fn, x_next).to(x.dtype)
        step_done(checkpoint, i + 1, x, generators)
    if finish:
        denoised = denoise(denoise_fn, x, sigmas[steps], steps)
        report(callback, steps, sigmas, x, denoised)
        x = denoised.to(x.dtype)
    return x


def sample_gradient_estimation(denoise_fn: Denoiser, x: torch.Tensor, sigmas: torch.Tensor,
                               callback: Callback | None = None, generator: torch.Generator | None = None,
                               gamma: float = 2.0, checkpoint: Checkpoint | None = None) -> torch.Tensor:
    """Gradient estimation (Permenter & Yuan 2024): Euler with the velocity extrapolated from the previous
    step, d_bar = gamma d_i + (1 - gamma) d_{i-1}; the first step is plain Euler and the last lands on x0."""
    first, x, history = resume_point(checkpoint, x, {})
    previous = history.get("previous_velocity")
    for i in range(first, len(sigmas) - 1):
        denoised = denoise(denoise_fn, x, sigmas[i], i)
        report(callback, i, sigmas, x, denoised)
        velocity = to_velocity(x, denoised, sigmas[i])
        if float(sigmas[i + 1]) == 0.0:
            x = denoised.to(x.dtype)
        else:
            estimate = velocity if previous is None else gamma * velocity + (1 - gamma) * previous
            x = (x.float() + estimate * (sigmas[i + 1] - sigmas[i]).float()).to(x.dtype)
        previous = velocity
        step_done(checkpoint, i + 1, x, {}, previous_velocity=previous)
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "euler": sample_euler,
    "gradient_estimation": sample_gradient_estimation,
    "euler_ancestral": sample_euler_ancestral,
    "euler_cfg_pp": sample_euler_cfg_pp,
    "euler_ancestral_cfg_pp": sample_euler_ancestral_cfg_pp,
    "lcm": sample_lcm,
    "res_2s": sample_res_2s,
}
