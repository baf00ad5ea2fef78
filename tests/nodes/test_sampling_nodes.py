"""SamplerEulerAncestral's step arithmetic and KSampler as the composition of the custom-sampling nodes."""
from __future__ import annotations

import pytest
import torch

from ltxgraph import Registry
from ltxgraph.registry import check_value
from ltxgraph_ops.nodes.sampling import ksampler, sampler_euler_ancestral
from ltxgraph_ops.sampling.samplers import sample_euler
from ltxgraph_ops.sampling_ops import (basic_scheduler_op, cfg_guider_op, ksampler_select, random_noise,
                                       sampler_custom_advanced)

from ..sampling.test_sampling_ops import av_latent, conditioning, model  # noqa: F401 (fixture)


def constant_denoiser(value: float):
    return lambda x, sigma: torch.full_like(x, value)


def test_euler_ancestral_without_noise_follows_its_formula() -> None:
    x = torch.full((1, 4), 2.0)
    sigmas = torch.tensor([1.0, 0.5, 0.0])
    out = sampler_euler_ancestral(eta=1.0, s_noise=0.0).run(constant_denoiser(0.0), x, sigmas)
    # step 1: sigma_down = 0.5 * (1 + (0.5 - 1)) = 0.25; x -> 0.25 * 2 = 0.5; scaled by (1-0.5)/(1-0.25) = 2/3
    # step 2 lands on the clean estimate 0
    assert torch.allclose(out, torch.zeros(1, 4))
    one_step = sampler_euler_ancestral(eta=1.0, s_noise=0.0).run(constant_denoiser(0.0), x, sigmas[:2])
    assert torch.allclose(one_step, torch.full((1, 4), 0.5 * 2 / 3))


def test_euler_ancestral_adds_s_noise_times_sigma_up() -> None:
    x = torch.zeros(1, 20000)
    sigmas = torch.tensor([1.0, 0.5])
    out = sampler_euler_ancestral(eta=1.0, s_noise=2.0).run(constant_denoiser(0.0), x, sigmas,
                                                           generator=torch.Generator().manual_seed(0))
    sigma_up = (0.5 ** 2 - 0.25 ** 2 * (0.5 / 0.75) ** 2) ** 0.5
    assert float(out.std()) == pytest.approx(2.0 * sigma_up, rel=0.02)


def test_euler_ancestral_with_eta_zero_is_euler() -> None:
    x = torch.randn(1, 8, generator=torch.Generator().manual_seed(1))
    sigmas = torch.tensor([1.0, 0.7, 0.3, 0.0])
    denoiser = lambda x, sigma: 0.5 * x                                           # noqa: E731
    assert torch.allclose(sampler_euler_ancestral(eta=0.0).run(denoiser, x, sigmas),
                          sample_euler(denoiser, x, sigmas))


def test_ksampler_is_noise_schedule_cfg_and_sampler(model) -> None:  # noqa: F811
    latent = av_latent()
    positive, negative = conditioning(1), conditioning(2)
    ours = ksampler(model, 11, 3, 2.5, "euler", "simple", positive, negative, latent, 0.6)
    sigmas = basic_scheduler_op(model, "simple", 3, 0.6)
    expected, _ = sampler_custom_advanced(random_noise(11), cfg_guider_op(model, positive, negative, 2.5),
                                          ksampler_select("euler"), sigmas, latent)
    assert torch.equal(ours.video.samples, expected.video.samples)
    assert torch.equal(ours.audio.samples, expected.audio.samples)
    assert torch.equal(ours.video.samples[:, :, 0], latent.video.samples[:, :, 0])   # mask 0 frame kept


def test_sampler_euler_ancestral_node_draws_its_step_noise_as_ksampler_select_does(model) -> None:  # noqa: F811
    """Both are ComfyUI's euler_ancestral: per-step noise from seed + 1 (CPU), whichever node chose it."""
    latent, sigmas = av_latent(), torch.tensor([1.0, 0.6, 0.3, 0.0])
    guider = cfg_guider_op(model, conditioning(1), conditioning(2), 1.0)
    node, _ = sampler_custom_advanced(random_noise(4), guider, sampler_euler_ancestral(1.0, 1.0), sigmas, latent)
    select, _ = sampler_custom_advanced(random_noise(4), guider, ksampler_select("euler_ancestral"), sigmas, latent)
    assert torch.equal(node.video.samples, select.video.samples)
    assert torch.equal(node.audio.samples, select.audio.samples)


def test_ksampler_refuses_samplers_it_does_not_run_by_name() -> None:
    spec = Registry.discover().get("KSampler")
    message = check_value(spec.input_by_name["sampler_name"], "dpmpp_2m_sde")
    assert message is not None and "dpmpp_2m_sde" in message and "euler_ancestral" in message
    assert check_value(spec.input_by_name["scheduler"], "karras") is not None


class TwoPredictions:
    """A guided denoiser stand-in: the guided estimate ``guided * x`` and the negative one ``negative * x``."""

    def __init__(self, guided: float, negative: float) -> None:
        self.guided, self.negative, self.kept = guided, negative, False
        self.x = None

    def __call__(self, x, sigma):
        self.x = x
        return self.guided * x

    def keep_unconditional(self) -> bool:
        self.kept = True
        return True

    def last_unconditional(self):
        return self.negative * self.x


def test_euler_cfg_pp_steps_along_the_negative_direction() -> None:
    from ltxgraph_ops.sampling.samplers import SAMPLERS
    x = torch.full((1, 3), 2.0)
    sigmas = torch.tensor([0.8, 0.5])
    model = TwoPredictions(0.25, 0.5)
    out = SAMPLERS["euler_cfg_pp"](model, x, sigmas)
    # x' = (1 - 0.5) * D + 0.5 * (x - (1 - 0.8) * U) / 0.8, D = 0.5, U = 1.0
    assert model.kept and torch.allclose(out, torch.full((1, 3), 0.5 * 0.5 + 0.5 * (2.0 - 0.2 * 1.0) / 0.8))


def test_cfg_pp_with_equal_predictions_is_euler_and_ancestral_adds_noise() -> None:
    from ltxgraph_ops.sampling.samplers import SAMPLERS
    x = torch.randn(1, 4000, generator=torch.Generator().manual_seed(2))
    sigmas = torch.tensor([1.0, 0.6, 0.2, 0.0])
    same = TwoPredictions(0.3, 0.3)
    assert torch.allclose(SAMPLERS["euler_cfg_pp"](same, x, sigmas), sample_euler(lambda x, s: 0.3 * x, x, sigmas),
                          atol=1e-6)
    one_step = SAMPLERS["euler_ancestral_cfg_pp"](TwoPredictions(0.0, 0.0), torch.zeros(1, 4000), sigmas[1:3],
                                                  generator=torch.Generator().manual_seed(0))
    # D = U = 0: only noise, alpha_t * sigma_up with sigma_up = min(s', s' sqrt(1 - r^2)) in VE coordinates
    s_to, ratio = 0.2 / 0.8, (0.2 * 0.4) / (0.8 * 0.6)
    assert float(one_step.std()) == pytest.approx(0.8 * s_to * (1 - ratio ** 2) ** 0.5, rel=0.03)


def test_cfg_pp_sampler_runs_the_negative_pass_at_cfg_one(model) -> None:  # noqa: F811
    latent = av_latent()
    positive, negative = conditioning(1), conditioning(2)
    sigmas = basic_scheduler_op(model, "simple", 3, 1.0)
    guider = cfg_guider_op(model, positive, negative, 1.0)
    plain, _ = sampler_custom_advanced(random_noise(3), guider, ksampler_select("euler"), sigmas, latent)
    cfg_pp, _ = sampler_custom_advanced(random_noise(3), guider, ksampler_select("euler_cfg_pp"), sigmas, latent)
    assert not torch.allclose(plain.video.samples, cfg_pp.video.samples)
    assert torch.equal(cfg_pp.video.samples[:, :, 0], latent.video.samples[:, :, 0])
    same, _ = sampler_custom_advanced(random_noise(3), cfg_guider_op(model, positive, positive, 1.0),
                                      ksampler_select("euler_cfg_pp"), sigmas, latent)
    assert torch.allclose(same.video.samples, plain.video.samples, atol=1e-4)


def after_one_step(guider, latent):
    """``latent`` after one Euler step (sigma 1 -> 0.6) with ``guider``."""
    from ltxgraph_ops.sampling_ops import manual_sigmas
    return sampler_custom_advanced(random_noise(5), guider, ksampler_select("euler"), manual_sigmas("1.0, 0.6"),
                                   latent)[0]


def test_dual_cfg_guides_video_and_audio_with_their_own_scales(model) -> None:  # noqa: F811
    from ltxgraph_ops.nodes.sampling import ltxv_dual_cfg_guider
    latent = av_latent()
    positive, negative = conditioning(1), conditioning(2)
    dual = after_one_step(ltxv_dual_cfg_guider(model, positive, negative, 2.0, 5.0), latent)
    video_scale = after_one_step(cfg_guider_op(model, positive, negative, 2.0), latent)
    audio_scale = after_one_step(cfg_guider_op(model, positive, negative, 5.0), latent)
    # one step: both guiders see the same model passes, each stream combined at its own scale
    assert torch.equal(dual.video.samples, video_scale.video.samples)
    assert torch.equal(dual.audio.samples, audio_scale.audio.samples)
    assert not torch.allclose(video_scale.audio.samples, audio_scale.audio.samples)
    same = after_one_step(ltxv_dual_cfg_guider(model, positive, negative, 3.0, 3.0), latent)
    single = after_one_step(cfg_guider_op(model, positive, negative, 3.0), latent)
    assert torch.equal(same.video.samples, single.video.samples)
    assert torch.equal(same.audio.samples, single.audio.samples)


def test_dual_cfg_on_a_video_only_latent_uses_the_video_scale(model) -> None:  # noqa: F811
    from ltxgraph_ops.nodes.sampling import ltxv_dual_cfg_guider
    video = av_latent().video
    positive, negative = conditioning(1), conditioning(2)
    dual = after_one_step(ltxv_dual_cfg_guider(model, positive, negative, 2.0, 5.0), video)
    expected = after_one_step(cfg_guider_op(model, positive, negative, 2.0), video)
    assert torch.equal(dual.samples, expected.samples)


def test_dual_cfg_guider_keeps_comfyui_widgets() -> None:
    spec = Registry.discover().get("LTXVDualCFGGuider")
    assert [i.name for i in spec.inputs] == ["model", "positive", "negative", "video_cfg", "audio_cfg"]
    assert (spec.input_by_name["video_cfg"].default, spec.input_by_name["audio_cfg"].default) == (3.0, 7.0)
    assert check_value(spec.input_by_name["audio_cfg"], 101.0) is not None
