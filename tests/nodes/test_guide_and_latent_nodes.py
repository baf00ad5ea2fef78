"""LTX-2.3 conditioning and latent nodes with a stand-in VAE: where frames land, which masks they get, how
reference audio travels, and that the sampler honours what they set (reference voice, identity guidance)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ltxgraph.errors import InputValueError
from ltxgraph.values import AudioLatent, AVLatent, VideoLatent
from ltxgraph_ops.guides import add_guide
from ltxgraph_ops.nodes.guides import (IDENTITY_GUIDANCE, add_video_iclora_guide, add_video_iclora_guide_advanced,
                                       img_to_video_condition_only, set_audio_ref_tokens)
from ltxgraph_ops.nodes.latents import audio_only_empty_video_latent, set_latent_noise_mask
from ltxgraph_ops.nodes.loaders import audio_only_model
from ltxgraph_ops.sampling_ops import cfg_guider_op, ksampler_select, manual_sigmas, random_noise, \
    sampler_custom_advanced

from ..sampling.test_sampling_ops import DISTILLED, av_latent, conditioning, model  # noqa: F401 (fixture)
from ..test_guide_ops import empty, frames, vae  # noqa: F401 (fixture)


def test_condition_only_encodes_the_first_frame_on_a_fresh_mask(vae) -> None:  # noqa: F811
    latent = replace(empty(4), noise_mask=torch.zeros(1, 1, 4, 1, 1))
    out = img_to_video_condition_only(vae, frames(1), latent, 0.75)
    assert out.noise_mask.shape == (1, 1, 4, 1, 1)
    assert out.noise_mask.flatten().tolist() == [0.25, 1.0, 1.0, 1.0]          # the old mask is replaced
    assert torch.equal(out.samples[:, :, :1], vae.encode(frames(1)))
    assert float(out.samples[:, :, 1:].abs().sum()) == 0.0
    assert img_to_video_condition_only(vae, frames(1), latent, 0.75, bypass=True) is latent


def test_iclora_guide_with_centre_crop_equals_add_guide_with_the_factor(vae) -> None:  # noqa: F811
    positive, negative = conditioning(1), conditioning(2)
    clip = frames(9, 64, 96)
    ours = add_video_iclora_guide(positive, negative, vae, empty(4, 2, 4), clip, 0, 0.9, 2.0, "center")
    core = add_guide(positive, negative, vae, empty(4, 2, 4), clip, 0, 0.9, None,
                     {"reference_downscale_factor": 2})
    assert torch.equal(ours[2].samples, core[2].samples) and torch.equal(ours[2].noise_mask, core[2].noise_mask)
    assert torch.equal(ours[0].guides.positions, core[0].guides.positions)
    appended = ours[2].samples[:, :, 4:]
    assert appended.shape[2] == 2 and float(appended[:, :, :, 1::2].abs().sum()) == 0.0   # dilated by 2


def test_iclora_guide_stretches_without_crop(vae) -> None:  # noqa: F811
    clip = frames(1, 64, 64)
    _, _, out = add_video_iclora_guide(conditioning(1), conditioning(2), vae, empty(2, 2, 4), clip, 0, 1.0, 1.0,
                                       "disabled")
    assert vae.model.get().calls[-1] == (1, 3, 1, 64, 128)                     # whole picture, stretched
    assert out.noise_mask[:, :, 2:].max() == 0.0


def test_iclora_guide_refuses_a_factor_that_does_not_divide(vae) -> None:  # noqa: F811
    with pytest.raises(InputValueError, match="reference_downscale_factor 2"):
        add_video_iclora_guide(conditioning(1), conditioning(2), vae, empty(2, 3, 4), frames(1), 0, 1.0, 2.0)


def test_advanced_guide_sets_attention_weights(vae) -> None:  # noqa: F811
    positive, _, _ = add_video_iclora_guide_advanced(conditioning(1), conditioning(2), vae, empty(2, 2, 3),
                                                     frames(1), 0, 1.0, 1.0, "center", attention_strength=0.5)
    assert torch.allclose(positive.guides.token_weights, torch.full((6,), 0.5))
    mask = torch.zeros(64, 96)
    mask[:, :32] = 1.0
    positive, _, _ = add_video_iclora_guide_advanced(conditioning(1), conditioning(2), vae, empty(2, 2, 3),
                                                     frames(1), 0, 1.0, 1.0, "center", attention_strength=0.5,
                                                     attention_mask=mask)
    assert positive.guides.token_weights.tolist() == [0.5, 0.0, 0.0, 0.5, 0.0, 0.0]


def test_audio_ref_tokens_patchify_and_freeze() -> None:
    samples = torch.randn(1, 8, 5, 16)
    latent = AudioLatent(samples, 25.0, 0.2)
    positive, negative, frozen = set_audio_ref_tokens(conditioning(1), conditioning(2), latent)
    tokens = positive.reference_audio
    assert tokens.shape == (1, 5, 128) and negative.reference_audio is tokens
    assert torch.equal(tokens[0, 3, 2 * 16:3 * 16], samples[0, 2, 3])          # token t holds channel-major cells
    assert frozen.noise_mask.shape == (1, 1, 5, 1) and float(frozen.noise_mask.abs().sum()) == 0.0
    assert torch.equal(frozen.samples, samples)


def sample(model, positive, negative, latent, cfg: float = 1.0):  # noqa: F811
    out, _ = sampler_custom_advanced(random_noise(1), cfg_guider_op(model, positive, negative, cfg),
                                     ksampler_select("euler"), manual_sigmas(DISTILLED), latent)
    return out


def test_sampler_attends_to_reference_audio_and_keeps_a_frozen_track(model) -> None:  # noqa: F811
    voice = AudioLatent(torch.randn(1, 8, 5, 16, generator=torch.Generator().manual_seed(9)), 25.0, 0.2)
    positive, negative, _ = set_audio_ref_tokens(conditioning(1), conditioning(2), voice)
    plain = sample(model, conditioning(1), conditioning(2), av_latent())
    voiced = sample(model, positive, negative, av_latent())
    assert (voiced.audio.samples - plain.audio.samples).abs().max() > 1e-3
    assert (voiced.video.samples - plain.video.samples).abs().max() > 1e-3
    # the lipdub's stage 2: the audio frozen by its own reference tokens stays bit-identical
    latent = av_latent()
    _, _, frozen = set_audio_ref_tokens(positive, negative, latent.audio)
    out = sample(model, positive, negative, AVLatent(latent.video, frozen), cfg=2.0)
    assert torch.equal(out.audio.samples, latent.audio.samples)


def test_identity_guidance_runs_in_its_window_and_is_off_at_scale_zero(model) -> None:  # noqa: F811
    voice = AudioLatent(torch.randn(1, 8, 5, 16, generator=torch.Generator().manual_seed(9)), 25.0, 0.2)
    positive, negative, _ = set_audio_ref_tokens(conditioning(1), conditioning(2), voice)

    def guided(scale: float, start: float = 0.0, end: float = 1.0):
        return replace(model, metadata={**model.metadata, IDENTITY_GUIDANCE: (scale, start, end)})
    plain = sample(model, positive, negative, av_latent())
    assert torch.equal(sample(guided(0.0), positive, negative, av_latent()).audio.samples, plain.audio.samples)
    # percent 0.999..1 is sigma 0.011..0: below every sigma the distilled schedule calls the model at
    outside = sample(guided(3.0, 0.999, 1.0), positive, negative, av_latent())
    assert torch.equal(outside.audio.samples, plain.audio.samples)
    inside = sample(guided(3.0), positive, negative, av_latent())
    assert (inside.audio.samples - plain.audio.samples).abs().max() > 1e-3


def test_audio_only_model_samples_the_audio_alone(model) -> None:  # noqa: F811
    audio = av_latent().audio
    latent = AVLatent(audio_only_empty_video_latent(), audio)
    guider = cfg_guider_op(audio_only_model(model), conditioning(1), conditioning(2), 1.0)
    out, _ = sampler_custom_advanced(random_noise(5), guider, ksampler_select("euler"), manual_sigmas(DISTILLED),
                                     latent)
    alone, _ = sampler_custom_advanced(random_noise(5), cfg_guider_op(model, conditioning(1), conditioning(2), 1.0),
                                       ksampler_select("euler"), manual_sigmas(DISTILLED), audio)
    assert out.video is latent.video
    assert torch.equal(out.audio.samples, alone.samples)
    assert latent.video.samples.shape == (1, 128, 1, 2, 2)


def test_noise_mask_from_a_solid_mask_keeps_audio_and_scales_video() -> None:
    audio = AudioLatent(torch.zeros(1, 8, 5, 16), 25.0, 0.2)
    kept = set_latent_noise_mask(audio, torch.zeros(1, 1024, 1024))
    assert kept.noise_mask.shape == (1, 1, 5, 1) and float(kept.noise_mask.sum()) == 0.0
    video = VideoLatent(torch.zeros(1, 128, 3, 2, 4), 25.0, 17)
    mask = torch.zeros(1, 64, 128)
    mask[:, :, 64:] = 1.0
    masked = set_latent_noise_mask(video, mask)
    assert masked.noise_mask.shape == (1, 1, 3, 2, 4)
    assert masked.noise_mask[0, 0, 1, 0].tolist() == [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(InputValueError, match="mel axis"):
        set_latent_noise_mask(audio, torch.linspace(0, 1, 16).expand(1, 4, 16).clone())
    with pytest.raises(InputValueError, match="2 frames"):
        set_latent_noise_mask(video, torch.zeros(2, 8, 8))
