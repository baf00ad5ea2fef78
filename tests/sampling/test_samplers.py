"""Samplers on an analytic denoiser: Gaussian data x0 ~ N(mu, s^2) has the exact posterior mean under the
flow-matching forward process x_t = (1-t) x0 + t eps:
    E[x0 | x_t] = mu + (1-t) s^2 / ((1-t)^2 s^2 + t^2) (x_t - (1-t) mu).
"""
from __future__ import annotations

import pytest
import torch

from ltxgraph_ops.sampling import samplers, schedules
from ltxgraph_ops.sampling.samplers import NonFiniteDenoisedError

MU, S = 0.7, 0.5
SAMPLES = 20000


def gaussian_x0(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    t = sigma.double()
    a = 1 - t
    return (MU + a * S ** 2 / (a * a * S ** 2 + t * t) * (x.double() - a * MU)).to(x.dtype)


def start_noise(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, SAMPLES // 2, generator=torch.Generator().manual_seed(seed))


def run(name: str, sigmas: torch.Tensor, x: torch.Tensor | None = None, seed: int = 2, **options) -> torch.Tensor:
    x = start_noise() if x is None else x
    return samplers.SAMPLERS[name](gaussian_x0, x, sigmas, generator=torch.Generator().manual_seed(seed), **options)


@pytest.mark.parametrize("name, steps, std_tol", [("euler", 100, 0.015), ("euler_ancestral", 100, 0.03),
                                                  ("gradient_estimation", 100, 0.015)])
def test_sampler_transports_noise_to_the_data_distribution(name, steps, std_tol):
    out = run(name, torch.linspace(1, 0, steps + 1))
    assert abs(float(out.mean()) - MU) < 0.01
    assert abs(float(out.std()) - S) < std_tol


def test_res_2s_transports_noise_to_the_data_mean_and_near_its_spread():
    # the reference algorithm (noise at half the next sigma) keeps a small variance deficit on this problem
    out = run("res_2s", schedules.ltxv_sigmas(40))
    assert abs(float(out.mean()) - MU) < 0.005
    assert abs(float(out.std()) - S) < 0.05


def test_lcm_lands_on_the_data_mean_with_at_most_its_spread():
    out = run("lcm", torch.linspace(1, 0, 21))
    assert abs(float(out.mean()) - MU) < 0.01
    assert 0.2 < float(out.std()) <= S


def test_euler_from_a_partial_sigma_keeps_the_distribution():
    # start at sigma 0.6 from correctly noised data (image-to-image style)
    generator = torch.Generator().manual_seed(5)
    x0 = MU + S * torch.randn(2, SAMPLES // 2, generator=generator)
    x = 0.6 * torch.randn(x0.shape, generator=generator) + 0.4 * x0
    out = run("euler", torch.linspace(0.6, 0, 61), x=x)
    assert abs(float(out.mean()) - MU) < 0.01 and abs(float(out.std()) - S) < 0.015


def test_euler_step_is_flow_matching_arithmetic():
    x, denoised = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.0])
    out = samplers.euler_step(x, denoised, torch.tensor(0.5), torch.tensor(0.25))
    assert torch.equal(out, x + (x - denoised) / 0.5 * (0.25 - 0.5))


@pytest.mark.parametrize("name", list(samplers.SAMPLERS))
def test_same_generator_seed_is_bit_identical(name):
    sigmas = schedules.ltxv_sigmas(6)
    assert torch.equal(run(name, sigmas, seed=9), run(name, sigmas, seed=9))


@pytest.mark.parametrize("name", ["euler_ancestral", "lcm", "res_2s"])
def test_stochastic_samplers_depend_on_the_generator(name):
    sigmas = schedules.ltxv_sigmas(6)
    assert not torch.equal(run(name, sigmas, seed=1), run(name, sigmas, seed=2))


@pytest.mark.parametrize("name", list(samplers.SAMPLERS))
def test_non_finite_denoised_raises_with_the_step(name):
    calls = []

    def broken(x, sigma):
        calls.append(sigma)
        out = gaussian_x0(x, sigma)
        return out * float("nan") if len(calls) == 3 else out

    with pytest.raises(NonFiniteDenoisedError) as caught:
        samplers.SAMPLERS[name](broken, start_noise(), schedules.ltxv_sigmas(8))
    assert caught.value.step == (1 if name == "res_2s" else 2)  # res_2s calls the model twice per step
    assert "step" in str(caught.value)


@pytest.mark.parametrize("name", list(samplers.SAMPLERS))
def test_callback_reports_every_step(name):
    seen = []
    sigmas = schedules.parse_manual_sigmas("1.0, 0.725, 0.421875, 0.0")
    samplers.SAMPLERS[name](gaussian_x0, start_noise(), sigmas, callback=seen.append)
    assert [p["i"] for p in seen] == list(range(len(seen)))
    assert set(seen[0]) == {"i", "sigma", "sigma_next", "x", "denoised"}
    assert len(seen) == len(sigmas) - 1 + (1 if name == "res_2s" else 0)
    assert float(seen[0]["sigma"]) == 1.0


def test_res_2s_coefficients_reduce_to_taylor_limits():
    a21, b1, b2 = samplers.res_2s_coefficients(0.0)
    assert (a21, b1, b2) == (0.5, 0.0, 1.0)


@pytest.mark.parametrize("name", ["euler_ancestral", "lcm"])
def test_default_generator_draws_fresh_noise_every_step(name):
    seen = []
    samplers.SAMPLERS[name](gaussian_x0, start_noise(), schedules.ltxv_sigmas(4), callback=seen.append)
    jumps = [p["x"] - p["denoised"] for p in seen[1:3]]
    assert not torch.allclose(jumps[0] / jumps[0].std(), jumps[1] / jumps[1].std())


def test_euler_ancestral_with_eta_zero_is_euler():
    sigmas = schedules.ltxv_sigmas(6)[:-1]  # (a final sigma 0 is a jump to denoised in both, up to rounding)
    assert torch.equal(run("euler_ancestral", sigmas, eta=0.0), run("euler", sigmas))


def test_res_2s_substep_noise_derives_from_the_step_seed():
    sigmas = schedules.ltxv_sigmas(4)
    explicit = samplers.sample_res_2s(gaussian_x0, start_noise(), sigmas, generator=torch.Generator().manual_seed(3),
                                      substep_generator=torch.Generator().manual_seed(10003))
    assert torch.equal(run("res_2s", sigmas, seed=3), explicit)


def test_gradient_estimation_extrapolates_the_velocity():
    """Two steps by hand: plain Euler first, then d_bar = 2 d_1 - d_0, and the last step lands on x0."""
    sigmas = torch.tensor([1.0, 0.5, 0.25, 0.0])
    x = torch.tensor([[2.0, -1.0]])
    seen = []
    out = samplers.sample_gradient_estimation(gaussian_x0, x, sigmas, callback=seen.append)
    d0 = (x - gaussian_x0(x, sigmas[0])) / 1.0
    x1 = x + d0 * -0.5
    d1 = (x1 - gaussian_x0(x1, sigmas[1])) / 0.5
    x2 = x1 + (2 * d1 - d0) * -0.25
    assert torch.allclose(seen[2]["x"], x2, atol=1e-6)
    assert torch.allclose(out, gaussian_x0(x2, sigmas[2]), atol=1e-6)
