"""Parity of ltxgraph's sampling math with ltx-core 1.0.0 / ltx-pipelines 1.0.0 on identical tensors.

Schedules, the Euler step, the masked noiser, the multimodal guider's combination, the res_2s step pieces, and
whole masked loops (Euler and res_2s) driven by the same analytic denoiser. Each check returns a max abs error.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from ltxgraph_ops.sampling import guiders, noise, samplers, schedules  # noqa: E402
from ltxgraph_ops.sampling.denoiser import sample_latents  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402

SEED = 4321
VIDEO_TOKENS, AUDIO_TOKENS, CHANNELS = 12, 5, 8


def _max_error(pairs) -> float:
    """Over (ours, reference) pairs; an empty pair (a modality with no tokens) compares equal."""
    return max(compared("sampling", a, b) if a.numel() or b.numel() else 0.0 for a, b in pairs)


def _random(*shape: int, seed: int = SEED) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def check_ltxv_schedule() -> float:
    from ltx_core.components.schedulers import LTX2Scheduler
    pairs = []
    for shape in [None, (1, 128, 16, 17, 30), (1, 128, 3, 2, 3), (2, 128, 31, 34, 60)]:
        latent = None if shape is None else torch.empty(shape)
        for steps in (2, 8, 20, 40):
            for stretch in (True, False):
                ours = schedules.ltxv_sigmas(steps, stretch=stretch, latent_shape=shape)
                theirs = LTX2Scheduler().execute(steps, latent=latent, stretch=stretch)
                if not torch.isfinite(theirs).all():
                    # at 63k tokens every non-zero sigma rounds to 1 in float32 and the reference's stretch
                    # divides 0 by 0; ours leaves that schedule unstretched (finite)
                    if not torch.isfinite(ours).all():
                        return float("inf")
                    continue
                pairs.append((ours, theirs))
    return _max_error(pairs)


def check_basic_schedules() -> float:
    from ltx_core.components.schedulers import BetaScheduler, LinearQuadraticScheduler
    pairs = []
    for steps in (1, 2, 5, 8, 20, 30):
        pairs.append((schedules.linear_quadratic_sigmas(steps), LinearQuadraticScheduler().execute(steps)))
        ours, theirs = schedules.beta_sigmas(steps), BetaScheduler().execute(steps)
        if ours.shape != theirs.shape:
            return float("inf")
        pairs.append((ours, theirs))
    return _max_error(pairs)


def check_euler_step() -> float:
    from ltx_core.components.diffusion_steps import EulerDiffusionStep
    sigmas = torch.tensor([1.0, 0.99375, 0.725, 0.421875, 0.0])
    x, denoised = _random(2, VIDEO_TOKENS, CHANNELS), _random(2, VIDEO_TOKENS, CHANNELS, seed=SEED + 1)
    pairs = [(samplers.euler_step(x, denoised, sigmas[i], sigmas[i + 1]),
              EulerDiffusionStep().step(x, denoised, sigmas, i)) for i in range(len(sigmas) - 1)]
    return _max_error(pairs)


def _latent_state(latent: torch.Tensor, mask: torch.Tensor, clean: torch.Tensor | None = None):
    from ltx_core.types import LatentState
    positions = torch.zeros(latent.shape[0], 1, latent.shape[1], 2)
    return LatentState(latent=latent, denoise_mask=mask, positions=positions,
                       clean_latent=latent.clone() if clean is None else clean)


def _video_mask() -> torch.Tensor:
    """[1, T, 1]: kept, partial and generated tokens."""
    mask = torch.ones(1, VIDEO_TOKENS, 1)
    mask[:, :3] = 0.0
    mask[:, 3:5] = 0.35
    return mask


def check_noiser() -> float:
    from ltx_core.components.noisers import GaussianNoiser
    clean, mask = _random(1, VIDEO_TOKENS, CHANNELS), _video_mask()
    pairs = []
    for sigma in (1.0, 0.909375, 0.421875):
        theirs = GaussianNoiser(torch.Generator().manual_seed(SEED))(_latent_state(clean, mask), sigma).latent
        (fresh,) = noise.gaussian_noise([clean.shape], SEED)
        pairs.append((noise.add_noise(clean, fresh, sigma, mask), theirs))
    return _max_error(pairs)


def check_multimodal_guider() -> float:
    from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams
    cond, neg, ptb, iso = (_random(1, VIDEO_TOKENS, CHANNELS, seed=SEED + k) for k in range(4))
    pairs = []
    for cfg, stg, mod, rescale in [(3.0, 1.0, 3.0, 0.7), (7.0, 1.0, 3.0, 0.7), (1.0, 0.0, 1.0, 0.0),
                                   (3.0, 0.0, 1.0, 0.0), (1.0, 1.0, 1.0, 0.45), (2.5, 0.0, 3.0, 1.0)]:
        theirs = MultiModalGuider(MultiModalGuiderParams(cfg_scale=cfg, stg_scale=stg, modality_scale=mod,
                                                         rescale_scale=rescale))
        params = guiders.GuidanceParams(cfg=cfg, stg=stg, modality=mod, rescale=rescale)
        ours = guiders.combine(params, cond, neg if params.needs_negative else None,
                               ptb if params.needs_perturbed else None, iso if params.needs_isolated else None)
        pairs.append((ours, theirs.calculate(cond, neg if params.needs_negative else 0.0,
                                             ptb if params.needs_perturbed else 0.0,
                                             iso if params.needs_isolated else 0.0)))
    return _max_error(pairs)


def check_multimodal_guider_batch2() -> float:
    """Batch 2 with items of different spread: the rescale's std is the whole batch's in the reference."""
    from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams
    cond, neg, ptb, iso = (_random(2, VIDEO_TOKENS, CHANNELS, seed=SEED + 10 + k) for k in range(4))
    cond = cond * torch.tensor([1.0, 3.0]).view(2, 1, 1)
    pairs = []
    for cfg, stg, mod, rescale in [(3.0, 1.0, 3.0, 0.7), (1.0, 1.0, 1.0, 0.45), (2.5, 0.0, 3.0, 1.0)]:
        theirs = MultiModalGuider(MultiModalGuiderParams(cfg_scale=cfg, stg_scale=stg, modality_scale=mod,
                                                         rescale_scale=rescale))
        params = guiders.GuidanceParams(cfg=cfg, stg=stg, modality=mod, rescale=rescale)
        pairs.append((guiders.combine(params, cond, neg, ptb, iso), theirs.calculate(cond, neg, ptb, iso)))
    return _max_error(pairs)


def check_res2s_step() -> float:
    from ltx_core.components.diffusion_steps import Res2sDiffusionStep
    from ltx_pipelines.utils.res2s import get_res2s_coefficients
    errors = []
    for h in (1e-12, 0.05, 0.3, 1.2):
        errors.append(max(abs(a - b) for a, b in zip(samplers.res_2s_coefficients(h), get_res2s_coefficients(h, {}))))
    x, x_to, fresh = (_random(1, VIDEO_TOKENS, CHANNELS, seed=SEED + k).double() for k in range(3))
    sigmas = torch.tensor([0.9, 0.6], dtype=torch.float64)
    theirs = Res2sDiffusionStep().step(x, x_to, sigmas, 0, noise=fresh)
    ours = samplers.sde_renoise(x, x_to, sigmas[0], sigmas[1], fresh)
    return max(max(errors), _max_error([(ours, theirs)]))


# ------------------------------------------------------------------------------------------ whole loops


def _analytic_x0(latent: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """A smooth, token-timestep-dependent stand-in for the transformer's x0 prediction."""
    return torch.tanh(latent) * (1 - timesteps) + 0.3 * timesteps * latent.mean(dim=-1, keepdim=True)


def _reference_denoise_fn(video_state, audio_state, sigmas, step_index):
    sigma = sigmas[step_index]
    return (_analytic_x0(video_state.latent, video_state.denoise_mask * sigma),
            _analytic_x0(audio_state.latent, audio_state.denoise_mask * sigma))


def _our_model(latents, timesteps, sigma):
    return tuple(_analytic_x0(latent, t) for latent, t in zip(latents, timesteps))


def _av_sample():
    """(clean video, clean audio, video mask, audio mask, video noise, audio noise) at [1, T, C] token layout."""
    video, audio = _random(1, VIDEO_TOKENS, CHANNELS), _random(1, AUDIO_TOKENS, CHANNELS, seed=SEED + 7)
    audio_mask = torch.ones(1, AUDIO_TOKENS, 1)
    audio_mask[:, -1] = 0.0
    video_noise, audio_noise = noise.gaussian_noise([video.shape, audio.shape], SEED)
    return video, audio, _video_mask(), audio_mask, video_noise, audio_noise


def check_euler_loop_masked_av() -> float:
    from ltx_core.components.diffusion_steps import EulerDiffusionStep
    from ltx_pipelines.utils.samplers import euler_denoising_loop
    video, audio, video_mask, audio_mask, video_noise, audio_noise = _av_sample()
    sigmas = torch.tensor([0.909375, 0.725, 0.421875, 0.0])
    start = [noise.add_noise(c, n, sigmas[0], m) for c, n, m in
             ((video, video_noise, video_mask), (audio, audio_noise, audio_mask))]
    ref_video, ref_audio = euler_denoising_loop(
        sigmas, _latent_state(start[0], video_mask, video), _latent_state(start[1], audio_mask, audio),
        EulerDiffusionStep(), _reference_denoise_fn)
    ours = sample_latents(samplers.sample_euler, _our_model, [video, audio], [video_mask, audio_mask],
                          [video_noise, audio_noise], sigmas)
    return _max_error([(ours[0], ref_video.latent), (ours[1], ref_audio.latent)])


def check_res2s_loop_masked_video() -> float:
    """One modality (the reference loop's audio state is empty, so both draw the same noise streams)."""
    from ltx_core.components.diffusion_steps import Res2sDiffusionStep
    from ltx_pipelines.utils.samplers import res2s_audio_video_denoising_loop
    video, _, video_mask, _, video_noise, _ = _av_sample()
    empty = torch.zeros(1, 0, CHANNELS)
    sigmas = schedules.ltxv_sigmas(6, latent_shape=(1, CHANNELS, VIDEO_TOKENS, 1, 1))
    seed = 77
    start = noise.add_noise(video, video_noise, sigmas[0], video_mask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference normalises the empty audio noise (std of nothing)
        ref_video, _ = res2s_audio_video_denoising_loop(
            sigmas, _latent_state(start, video_mask, video), _latent_state(empty, torch.ones(1, 0, 1), empty),
            Res2sDiffusionStep(), _reference_denoise_fn, noise_seed=seed, model_dtype=torch.float32)
    ours = sample_latents(
        lambda fn, x, s, callback=None, generator=None: samplers.sample_res_2s(
            fn, x, s, callback, torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 10000)),
        lambda latents, timesteps, sigma: (_analytic_x0(latents[0], timesteps[0]),),
        [video], [video_mask], [video_noise], sigmas)
    return _max_error([(ours[0], ref_video.latent)])


CHECKS: dict[str, Callable[[], float]] = {
    "sampling.ltxv_schedule": check_ltxv_schedule,
    "sampling.basic_schedules": check_basic_schedules,
    "sampling.euler_step": check_euler_step,
    "sampling.noiser_masked": check_noiser,
    "sampling.multimodal_guider": check_multimodal_guider,
    "sampling.multimodal_guider_batch2": check_multimodal_guider_batch2,
    "sampling.res2s_step": check_res2s_step,
    "sampling.euler_loop_masked_av": check_euler_loop_masked_av,
    "sampling.res2s_loop_masked_video": check_res2s_loop_masked_video,
}
