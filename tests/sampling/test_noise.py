"""Seeded noise: reproducible, ComfyUI's stream (initial and per-step); the masked forward process."""
from __future__ import annotations

import torch

from ltxgraph_ops.sampling.noise import (DisableNoise, RandomNoise, add_noise, gaussian_noise,
                                         step_noise_generator)

VIDEO, AUDIO = (3, 4, 2, 3, 5), (3, 8, 7, 4)


def test_same_seed_is_bit_identical():
    a = gaussian_noise([VIDEO, AUDIO], 42)
    b = gaussian_noise([VIDEO, AUDIO], 42)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], gaussian_noise([VIDEO, AUDIO], 43)[0])


def test_batch_is_comfyuis_stream_whole_video_batch_then_whole_audio_batch():
    """ComfyUI rule (prepare_noise over a nested AV latent): one generator seeded with the seed draws the video
    noise [B, ...] and then the audio noise [B, ...]."""
    generator = torch.Generator().manual_seed(7)
    video = torch.randn(VIDEO, generator=generator)
    audio = torch.randn(AUDIO, generator=generator)
    ours = gaussian_noise([VIDEO, AUDIO], 7)
    assert torch.equal(ours[0], video) and torch.equal(ours[1], audio)


def test_a_larger_batch_draws_a_different_stream_for_its_first_item():
    # torch draws large tensors in vectorised blocks: as in ComfyUI, item 0 of a batch of 3 is not the noise
    # of a batch of one; the seed alone fixes the noise only for a given batch size
    assert not torch.equal(gaussian_noise([VIDEO], 100)[0][:1], gaussian_noise([(1, *VIDEO[1:])], 100)[0])


def test_batch_of_one_is_comfyui_stream_video_then_audio():
    generator = torch.Generator().manual_seed(2 ** 63 + 5)
    video = torch.randn((1, *VIDEO[1:]), generator=generator)
    audio = torch.randn((1, *AUDIO[1:]), generator=generator)
    ours = gaussian_noise([(1, *VIDEO[1:]), (1, *AUDIO[1:])], 2 ** 63 + 5)
    assert torch.equal(ours[0], video) and torch.equal(ours[1], audio)


def test_seed_wraps_at_two_to_the_64():
    assert torch.equal(gaussian_noise([(2, 3)], 2 ** 64 + 5)[0], gaussian_noise([(2, 3)], 5)[0])
    assert gaussian_noise([(2, 3)], 2 ** 64 - 1)[0].shape == (2, 3)


def test_random_noise_follows_latent_dtype_and_disable_noise_is_zero():
    latents = [torch.zeros(VIDEO, dtype=torch.bfloat16), torch.zeros(AUDIO)]
    noise = RandomNoise(3).generate(latents)
    assert noise[0].dtype == torch.bfloat16 and noise[1].shape == AUDIO
    assert all(torch.count_nonzero(z) == 0 for z in DisableNoise().generate(latents))


def test_add_noise_uses_mask_times_sigma_per_token():
    clean, noise = torch.full((1, 4, 1), 2.0), torch.full((1, 4, 1), -1.0)
    mask = torch.tensor([1.0, 0.0, 0.5, 1.0]).view(1, 4, 1)
    out = add_noise(clean, noise, 0.8, mask)
    level = mask * 0.8
    assert torch.equal(out, noise * level + clean * (1 - level))
    assert out[0, 1, 0] == 2.0  # kept token exact
    assert torch.equal(add_noise(clean, noise, 1.0), noise)


def test_ancestral_step_noise_is_comfyuis_cpu_stream_seed_plus_one():
    """ComfyUI rule (k-diffusion's default noise sampler on the CPU): euler_ancestral, euler_ancestral_cfg_pp and
    lcm draw their per-step noise from a generator seeded with noise_seed + 1, shaped like the packed sample."""
    packed = (1, 1 * 4 * 2 * 3 * 5 + 8 * 7 * 4)            # video then audio, flattened per batch item
    for name in ("euler_ancestral", "euler_ancestral_cfg_pp", "lcm"):
        drawn = torch.randn(packed, generator=step_noise_generator(41, name))
        assert torch.equal(drawn, torch.randn(packed, generator=torch.Generator().manual_seed(42)))
    initial = torch.cat([n.reshape(1, -1) for n in gaussian_noise([(1, 4, 2, 3, 5), (1, 8, 7, 4)], 41)], dim=1)
    assert not torch.equal(torch.randn(packed, generator=step_noise_generator(41, "euler_ancestral")), initial)
    assert step_noise_generator(41, "res_2s").initial_seed() == 41
    assert step_noise_generator(2 ** 64 - 1, "lcm").initial_seed() == 0
