"""Sigma schedules for flow-matching sampling: pure functions returning descending float32 sigma lists.

Every schedule returns a 1-D float32 tensor ``[steps + 1]`` (beta may be shorter, see there) that starts near 1
(pure noise) and ends at 0 (clean), the format every sampler in :mod:`ltxgraph_ops.sampling.samplers` reads.

Sources of the formulas (re-derived, proven equal by ``tests/sampling`` and ``tools/oracle/sampling.py``):
- ``ltxv_sigmas``: LTX-2's token-count-shifted schedule (ltx-core ``LTX2Scheduler``, ComfyUI ``LTXVScheduler``).
- ``simple_sigmas``, ``beta_sigmas``, ``linear_quadratic_sigmas``: ComfyUI ``BasicScheduler``'s ``simple``,
  ``beta`` (Lee et al., "Beta sampling is all you need", arXiv:2407.12173) and ``linear_quadratic`` (Genmo
  Mochi) over LTX-V's model sampling table (flux time shift, shift 2.37, 10 000 timesteps).
"""
from __future__ import annotations

import math
import re
from typing import Sequence

import torch

BASE_SHIFT_TOKENS = 1024        # token count at which the shift equals base_shift
MAX_SHIFT_TOKENS = 4096         # token count at which the shift equals max_shift (and the default count)
LTXV_SAMPLING_SHIFT = 2.37      # ComfyUI's model_sampling shift for LTX-V / LTX-2 models
LTXV_SAMPLING_TIMESTEPS = 10000


class ScheduleError(ValueError):
    """A schedule cannot be built from the given values (the message says which value and why)."""


def token_count(latent_shape: Sequence[int] | None) -> int:
    """Tokens of a latent ``[B, C, *grid]``: the product of the grid dims; 4096 when no latent is given."""
    if latent_shape is None:
        return MAX_SHIFT_TOKENS
    return math.prod(int(d) for d in latent_shape[2:])


def ltxv_sigmas(steps: int, max_shift: float = 2.05, base_shift: float = 0.95, stretch: bool = True,
                terminal: float = 0.1, latent_shape: Sequence[int] | None = None) -> torch.Tensor:
    """LTX-2's schedule: t = linspace(1, 0, steps+1) mapped through the time shift
    sigma = e^mu / (e^mu + 1/t - 1), mu linear in the token count; optionally stretched so that the last
    non-zero sigma equals ``terminal``. Returns float32 ``[steps + 1]``."""
    if steps < 1:
        raise ScheduleError(f"steps {steps} must be >= 1")
    slope = (max_shift - base_shift) / (MAX_SHIFT_TOKENS - BASE_SHIFT_TOKENS)
    mu = token_count(latent_shape) * slope + (base_shift - BASE_SHIFT_TOKENS * slope)
    t = torch.linspace(1.0, 0.0, steps + 1)
    nonzero = t != 0
    sigmas = torch.zeros_like(t)
    sigmas[nonzero] = math.exp(mu) / (math.exp(mu) + (1 / t[nonzero] - 1))
    one_minus = 1.0 - sigmas[nonzero]
    if stretch and one_minus[-1] > 0:  # 1 step: nothing to stretch (the reference returns NaN there)
        sigmas[nonzero] = 1.0 - one_minus / (one_minus[-1] / (1.0 - terminal))
    return sigmas.to(torch.float32)


def flow_shift_table(shift: float = LTXV_SAMPLING_SHIFT, timesteps: int = LTXV_SAMPLING_TIMESTEPS) -> torch.Tensor:
    """The model's ascending sigma table: sigma(t) = e^shift / (e^shift + 1/t - 1) at t = k/timesteps,
    k = 1..timesteps (float32; the last entry rounds to 1 - 6e-8)."""
    t = torch.arange(1, timesteps + 1) / timesteps
    return math.exp(shift) / (math.exp(shift) + (1 / t - 1))


def percent_to_sigma(percent: float, shift: float = LTXV_SAMPLING_SHIFT) -> float:
    """ComfyUI's sampling-progress percent -> sigma on LTX-V's flow-shift curve (start_percent / end_percent of
    guidance windows): 0 -> 1, 1 -> 0, else e^shift / (e^shift + 1/(1 - percent) - 1)."""
    if percent <= 0.0:
        return 1.0
    if percent >= 1.0:
        return 0.0
    return math.exp(shift) / (math.exp(shift) + (1 / (1.0 - percent) - 1))


def simple_sigmas(steps: int, table: torch.Tensor | None = None) -> torch.Tensor:
    """ComfyUI ``simple``: ``steps`` evenly strided entries from the top of the sigma table, then 0."""
    table = flow_shift_table() if table is None else table
    stride = len(table) / steps
    picked = [float(table[-(1 + int(k * stride))]) for k in range(steps)]
    return torch.tensor(picked + [0.0], dtype=torch.float32)


def linear_quadratic_sigmas(steps: int, threshold_noise: float = 0.025, linear_steps: int | None = None,
                            sigma_max: float = 1.0) -> torch.Tensor:
    """ComfyUI ``linear_quadratic`` (Mochi): noise level 1-sigma rises linearly to ``threshold_noise`` over
    ``linear_steps`` (default steps//2) steps, then quadratically to 1; scaled by ``sigma_max``."""
    if steps == 1:
        return torch.tensor([sigma_max, 0.0], dtype=torch.float32)
    n_lin = steps // 2 if linear_steps is None else linear_steps
    n_quad = steps - n_lin
    gap = n_lin - threshold_noise * steps
    a = gap / (n_lin * n_quad ** 2)
    b = threshold_noise / n_lin - 2 * gap / n_quad ** 2
    c = a * n_lin ** 2
    levels = [k * threshold_noise / n_lin for k in range(n_lin)]
    levels += [a * k * k + b * k + c for k in range(n_lin, steps)]
    levels.append(1.0)
    return torch.tensor([1.0 - v for v in levels], dtype=torch.float32) * sigma_max


def beta_sigmas(steps: int, alpha: float = 0.6, beta: float = 0.6, table: torch.Tensor | None = None) -> torch.Tensor:
    """ComfyUI ``beta``: timesteps at the Beta(alpha, beta) quantiles of 1 - k/steps (k = 0..steps-1),
    rounded onto the sigma table, repeats dropped, then 0. May hold fewer than ``steps + 1`` values."""
    from scipy.stats import beta as beta_distribution  # ComfyUI's own quantile function

    table = flow_shift_table() if table is None else table
    last = len(table) - 1
    quantiles = [1.0 - k / steps for k in range(steps)]
    indices = [int(round(float(q) * last)) for q in beta_distribution.ppf(quantiles, alpha, beta)]
    indices = list(dict.fromkeys(indices))
    return torch.tensor([float(table[k]) for k in indices] + [0.0], dtype=torch.float32)


BASIC_SCHEDULERS = ("simple", "beta", "linear_quadratic")


def basic_scheduler(scheduler: str, steps: int, denoise: float = 1.0,
                    table: torch.Tensor | None = None) -> torch.Tensor:
    """ComfyUI ``BasicScheduler``: a named schedule; with ``denoise`` < 1 the last ``steps + 1`` sigmas of a
    ``int(steps / denoise)``-step schedule; denoise 0 gives an empty list."""
    if scheduler not in BASIC_SCHEDULERS:
        raise ScheduleError(f"scheduler {scheduler!r} is not supported: use one of {', '.join(BASIC_SCHEDULERS)}")
    if denoise <= 0.0:
        return torch.zeros(0, dtype=torch.float32)
    total = steps if denoise >= 1.0 else int(steps / denoise)
    table = flow_shift_table() if table is None else table
    if scheduler == "simple":
        sigmas = simple_sigmas(total, table)
    elif scheduler == "beta":
        sigmas = beta_sigmas(total, table=table)
    else:
        sigmas = linear_quadratic_sigmas(total, sigma_max=float(table[-1]))
    return sigmas[-(steps + 1):]


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def parse_manual_sigmas(text: str) -> torch.Tensor:
    """ComfyUI ``ManualSigmas``: a comma-separated list of floats -> float32 tensor (each value rounded once,
    to nearest, from its decimal text)."""
    items = [item.strip() for item in text.replace("\n", ",").split(",")]
    items = [item for item in items if item]
    if not items:
        raise ScheduleError(f"sigmas {text!r} holds no numbers: write e.g. '1.0, 0.725, 0.421875, 0.0'")
    for item in items:
        if not _NUMBER.match(item):
            raise ScheduleError(f"sigma {item!r} in {text!r} is not a number")
    return torch.tensor([float(item) for item in items], dtype=torch.float32)


def set_first_sigma(sigmas: torch.Tensor, sigma: float) -> torch.Tensor:
    """ComfyUI ``SetFirstSigma``: a copy of ``sigmas`` with its first value replaced."""
    if sigmas.numel() == 0:
        raise ScheduleError("cannot set the first sigma of an empty schedule")
    out = sigmas.clone()
    out[0] = sigma
    return out
