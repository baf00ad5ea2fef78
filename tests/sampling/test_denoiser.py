"""The masked AV wrapper: packing, per-token timesteps, kept regions bit-identical through every sampler."""
from __future__ import annotations

import pytest
import torch

from ltxgraph_ops.sampling import samplers, schedules
from ltxgraph_ops.sampling.denoiser import MaskedDenoiser, sample_latents
from ltxgraph_ops.sampling.guiders import ModelPass, MultimodalGuider, GuidanceParams
from ltxgraph_ops.sampling.noise import gaussian_noise

VIDEO, AUDIO = (2, 4, 3, 2, 2), (2, 8, 5, 4)


def clean():
    gen = torch.Generator().manual_seed(11)
    return torch.randn(VIDEO, generator=gen), torch.randn(AUDIO, generator=gen)


def masks():
    video = torch.ones(VIDEO[0], 1, *VIDEO[2:])
    video[:, :, 0] = 0.0                      # first latent frame kept (image-to-video)
    audio = torch.zeros(AUDIO[0], 1, AUDIO[2], 1)
    audio[:, :, 2:] = 1.0                     # first two audio latent frames kept
    return video, audio


class ShrinkModel:
    """x0 = 0.5 * x * (1 - t) per token; records timesteps."""

    def __init__(self):
        self.timesteps = []

    def __call__(self, latents, timesteps, sigma):
        self.timesteps.append(timesteps)
        return tuple(0.5 * latent * (1 - t) for latent, t in zip(latents, timesteps))


def test_pack_unpack_round_trip():
    denoiser = MaskedDenoiser(ShrinkModel(), clean(), masks())
    x = denoiser.pack(clean())
    assert x.shape == (2, 4 * 3 * 2 * 2 + 8 * 5 * 4)
    assert all(torch.equal(a, b) for a, b in zip(denoiser.unpack(x), clean()))


def test_timesteps_are_mask_times_sigma():
    model = ShrinkModel()
    denoiser = MaskedDenoiser(model, clean(), masks())
    denoiser(denoiser.pack(clean()), torch.tensor(0.8))
    video_t, audio_t = model.timesteps[0]
    assert torch.equal(video_t, masks()[0] * 0.8) and torch.equal(audio_t, masks()[1] * 0.8)
    unmasked = MaskedDenoiser(model, clean())
    unmasked(unmasked.pack(clean()), torch.tensor(0.3))
    assert model.timesteps[-1][1].shape == (2, 1, 1, 1)


def test_mask_that_does_not_broadcast_is_refused():
    with pytest.raises(ValueError, match="does not broadcast"):
        MaskedDenoiser(ShrinkModel(), clean(), [torch.ones(2, 1, 9, 9, 9), None])


@pytest.mark.parametrize("name", list(samplers.SAMPLERS))
@pytest.mark.parametrize("sigmas", ["1.0, 0.99375, 0.909375, 0.725, 0.421875, 0.0", "0.909375, 0.725, 0.421875"])
def test_kept_regions_stay_bit_identical(name, sigmas):
    noise = gaussian_noise([VIDEO, AUDIO], 5)
    out = sample_latents(samplers.SAMPLERS[name], ShrinkModel(), clean(), masks(), noise,
                         schedules.parse_manual_sigmas(sigmas), generator=torch.Generator().manual_seed(1))
    video, audio = clean()
    assert torch.equal(out[0][:, :, 0], video[:, :, 0])
    assert torch.equal(out[1][:, :, :2], audio[:, :, :2])
    assert not torch.equal(out[0][:, :, 1:], video[:, :, 1:])


def test_empty_schedule_returns_the_input():
    out = sample_latents(samplers.sample_euler, ShrinkModel(), clean(), masks(),
                         gaussian_noise([VIDEO, AUDIO], 5), torch.zeros(0))
    assert all(torch.equal(a, b) for a, b in zip(out, clean()))


def test_guider_inside_the_wrapper_sees_modalities_and_passes():
    seen = []

    def model(latents, timesteps, sigma, model_pass):
        seen.append(model_pass)
        return tuple(0.9 * latent for latent in latents)

    guider = MultimodalGuider(model, [GuidanceParams(cfg=3.0), GuidanceParams(cfg=7.0)])
    sigmas = schedules.parse_manual_sigmas("1.0, 0.5, 0.0")
    out = sample_latents(samplers.sample_euler, guider, clean(), masks(), gaussian_noise([VIDEO, AUDIO], 5), sigmas)
    assert [p.conditioning for p in seen] == ["positive", "negative"] * 2
    assert out[0].shape == VIDEO and out[1].shape == AUDIO and seen[0] == ModelPass()


def test_same_seed_same_result_per_batch_size():
    sigmas = schedules.ltxv_sigmas(4)
    def go(batch):
        v, a = clean()
        v, a = v[:batch], a[:batch]
        mv, ma = masks()
        return sample_latents(samplers.sample_euler, ShrinkModel(), [v, a], [mv[:batch], ma[:batch]],
                              gaussian_noise([v.shape, a.shape], 9), sigmas)
    two, again, one = go(2), go(2), go(1)
    assert torch.equal(two[0], again[0]) and torch.equal(two[1], again[1])
    assert torch.equal(one[0], go(1)[0]) and one[0].shape[0] == 1


def test_euler_ancestral_eta_zero_keeps_regions_too():
    noise = gaussian_noise([VIDEO, AUDIO], 5)
    sampler = lambda fn, x, s, callback=None, generator=None: samplers.sample_euler_ancestral(fn, x, s, eta=0.0)
    out = sample_latents(sampler, ShrinkModel(), clean(), masks(), noise, schedules.ltxv_sigmas(5)[:-1])
    assert torch.equal(out[0][:, :, 0], clean()[0][:, :, 0])
