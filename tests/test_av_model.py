"""The LTX-2 transformer behind the guiders: layouts, per-token timesteps, guides, kept regions."""
from __future__ import annotations

import pytest
import torch

from ltxgraph_ops.av_model import LTXAVModel
from ltxgraph_ops.conditioning import Conditioning, Guides
from ltxgraph_ops.models.transformer import ReferenceTokens, StreamInput, denoised
from ltxgraph_ops.models.transformer_tokens import (audio_positions, audio_tokens, reference_audio_positions,
                                                    video_positions, video_tokens)
from ltxgraph_ops.sampling.denoiser import sample_latents
from ltxgraph_ops.sampling.guiders import GuidanceParams, ModelPass, MultimodalGuider
from ltxgraph_ops.sampling.samplers import sample_euler
from ltxgraph_ops.tiny.transformer import build, tiny_config


@pytest.fixture(scope="module")
def transformer():
    model = build(tiny_config())
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return model


def conditioning(seed: int = 1, **extra) -> Conditioning:
    generator = torch.Generator().manual_seed(seed)
    return Conditioning(torch.randn(1, 6, 24, generator=generator), torch.randn(1, 6, 24, generator=generator),
                        frame_rate=24.0, **extra)


def latents(seed: int = 2, frames: int = 2):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(1, 128, frames, 2, 3, generator=generator), torch.randn(1, 8, 5, 16, generator=generator))


def test_matches_a_direct_transformer_call(transformer) -> None:
    video, audio = latents()
    sigma = torch.tensor(0.7)
    model = LTXAVModel(transformer, ("video", "audio"), conditioning(), cache_text=False)
    mask_v = torch.ones(1, 1, 2, 2, 3)
    mask_v[:, :, 0] = 0.0
    x0_video, x0_audio = model((video, audio), (mask_v * sigma, torch.ones(1, 1, 1, 1) * sigma), sigma)
    cond = conditioning()
    v_in = StreamInput(video_tokens(video), sigma.reshape(1), video_positions(2, 2, 3, 24.0), cond.video_context,
                       noise_mask=video_tokens(mask_v)[..., 0])
    a_in = StreamInput(audio_tokens(audio), sigma.reshape(1), audio_positions(5), cond.audio_context)
    velocity = transformer(v_in, a_in)
    assert torch.allclose(video_tokens(x0_video), denoised(v_in, velocity.video), atol=1e-6)
    assert torch.allclose(audio_tokens(x0_audio), denoised(a_in, velocity.audio), atol=1e-6)
    assert torch.equal(x0_video[:, :, 0], video[:, :, 0])  # timestep 0 there: x0 = x


def test_a_frozen_stream_announces_sigma_zero_to_the_other(transformer) -> None:
    """ltx-core 1.2.0 (a frozen modality has sigma 0) and ComfyUI (the stream's largest per-token timestep):
    audio kept whole (audio-to-video) modulates the video's audio->video attention as at sigma 0."""
    video, audio = latents()
    sigma = torch.tensor(0.7)
    model = LTXAVModel(transformer, ("video", "audio"), conditioning(), cache_text=False)
    frozen = torch.zeros(1, 1, 1, 1)
    x0_video, x0_audio = model((video, audio), (torch.ones(1, 1, 1, 1, 1) * sigma, frozen * sigma), sigma)
    cond = conditioning()
    v_in = StreamInput(video_tokens(video), sigma.reshape(1), video_positions(2, 2, 3, 24.0), cond.video_context)
    a_in = StreamInput(audio_tokens(audio), torch.zeros(1), audio_positions(5), cond.audio_context,
                       noise_mask=torch.zeros(1, 5))
    assert torch.allclose(video_tokens(x0_video), denoised(v_in, transformer(v_in, a_in).video), atol=1e-6)
    step_sigma = StreamInput(a_in.latent, sigma.reshape(1), a_in.positions, a_in.context, noise_mask=a_in.noise_mask)
    assert not torch.allclose(video_tokens(x0_video), denoised(v_in, transformer(v_in, step_sigma).video), atol=1e-4)
    assert torch.equal(x0_audio, audio)                       # kept: x0 = x


def test_kept_regions_stay_bit_identical_through_sampling(transformer) -> None:
    video, audio = latents()
    mask_v = torch.ones(1, 1, 2, 1, 1)
    mask_v[:, :, 0] = 0.0                        # keep the first latent frame (image-to-video)
    mask_a = torch.zeros(1, 1, 5, 1)             # keep all audio (audio-to-video)
    guider = MultimodalGuider(LTXAVModel(transformer, ("video", "audio"), conditioning()),
                              [GuidanceParams(), GuidanceParams()])
    noise = latents(seed=9)
    out_video, out_audio = sample_latents(sample_euler, guider, (video, audio), (mask_v, mask_a), noise,
                                          torch.tensor([1.0, 0.6, 0.2, 0.0]))
    assert torch.equal(out_video[:, :, 0], video[:, :, 0]) and torch.equal(out_audio, audio)
    assert not torch.allclose(out_video[:, :, 1], video[:, :, 1])


def test_guide_frames_take_their_positions_and_counts_must_match(transformer) -> None:
    video, audio = latents(frames=3)                     # 2 generated frames + 1 guide frame appended
    positions = video_positions(1, 2, 3, fps=1.0, first_frame=9)  # a guide at pixel frame 9
    guides = Guides(positions, token_counts=(6,), strengths=(1.0,), latent_frames=(1,))
    model = LTXAVModel(transformer, ("video", "audio"), conditioning(guides=guides))
    sigma = torch.tensor(0.5)
    steps = (torch.full((1, 1, 1, 1, 1), 0.5), torch.full((1, 1, 1, 1), 0.5))
    with_guide = model((video, audio), steps, sigma)[0]
    moved = Guides(video_positions(1, 2, 3, fps=1.0, first_frame=17), (6,), (1.0,), (1,))
    elsewhere = LTXAVModel(transformer, ("video", "audio"), conditioning(guides=moved))((video, audio), steps, sigma)[0]
    assert not torch.allclose(with_guide, elsewhere)        # where the guide sits matters
    weak = Guides(positions, (6,), (0.3,), (1,))
    weaker = LTXAVModel(transformer, ("video", "audio"), conditioning(guides=weak))((video, audio), steps, sigma)[0]
    assert not torch.allclose(with_guide, weaker)           # strength < 1 weakens its attention
    bad = Guides(positions, (5,), (1.0,), (1,))
    with pytest.raises(ValueError, match="guide cells do not match"):
        LTXAVModel(transformer, ("video", "audio"), conditioning(guides=bad))((video, audio), steps, sigma)


def test_guidance_passes_reach_the_transformer(transformer) -> None:
    video, audio = latents()
    model = LTXAVModel(transformer, ("video", "audio"), conditioning(), negative=conditioning(seed=5))
    sigma = torch.tensor(0.8)
    steps = (torch.full((1, 1, 1, 1, 1), 0.8), torch.full((1, 1, 1, 1), 0.8))
    positive = model((video, audio), steps, sigma)
    for model_pass in (ModelPass("negative"), ModelPass(skip_self_attention=((0,), (1,))),
                       ModelPass(isolate_modalities=True)):
        other = model((video, audio), steps, sigma, model_pass)
        assert not torch.allclose(positive[0], other[0])
    with pytest.raises(ValueError, match="no negative conditioning"):
        LTXAVModel(transformer, ("video", "audio"), conditioning())((video, audio), steps, sigma, ModelPass("negative"))


def test_video_only_and_audio_only_layouts(transformer) -> None:
    video, audio = latents()
    sigma = torch.tensor(0.5)
    (x0_video,) = LTXAVModel(transformer, ("video",), conditioning())((video,), (torch.full((1, 1, 1, 1, 1), 0.5),), sigma)
    (x0_audio,) = LTXAVModel(transformer, ("audio",), conditioning())((audio,), (torch.full((1, 1, 1, 1), 0.5),), sigma)
    assert x0_video.shape == video.shape and x0_audio.shape == audio.shape


def test_cached_text_gives_the_same_prediction(transformer) -> None:
    video, audio = latents()
    sigma = torch.tensor(0.6)
    steps = (torch.full((1, 1, 1, 1, 1), 0.6), torch.full((1, 1, 1, 1), 0.6))
    cached = LTXAVModel(transformer, ("video", "audio"), conditioning())
    plain = LTXAVModel(transformer, ("video", "audio"), conditioning(), cache_text=False)
    for _ in range(2):  # second call served from the cache
        for a, b in zip(cached((video, audio), steps, sigma), plain((video, audio), steps, sigma)):
            assert torch.allclose(a, b, atol=1e-5)


def test_reference_voice_goes_before_the_audio_unless_the_pass_leaves_it_out(transformer) -> None:
    video, audio = latents()
    voice = torch.randn(1, 4, 128, generator=torch.Generator().manual_seed(5))
    sigma = torch.tensor(0.6)
    steps = (torch.ones(1, 1, 1, 1, 1) * sigma, torch.ones(1, 1, 1, 1) * sigma)
    voiced = LTXAVModel(transformer, ("video", "audio"), conditioning(reference_audio=voice), cache_text=False)
    plain = LTXAVModel(transformer, ("video", "audio"), conditioning(), cache_text=False)
    with_voice = voiced((video, audio), steps, sigma)
    without = voiced((video, audio), steps, sigma, ModelPass(reference=False))
    assert with_voice[1].shape == audio.shape
    assert all(torch.equal(a, b) for a, b in zip(without, plain((video, audio), steps, sigma)))
    assert (with_voice[1] - without[1]).abs().max() > 1e-4
    cond = conditioning()
    a_in = StreamInput(audio_tokens(audio), sigma.reshape(1), audio_positions(5), cond.audio_context,
                       reference=ReferenceTokens(voice, reference_audio_positions(4)))
    v_in = StreamInput(video_tokens(video), sigma.reshape(1), video_positions(2, 2, 3, 24.0), cond.video_context)
    assert torch.allclose(audio_tokens(with_voice[1]), denoised(a_in, transformer(v_in, a_in).audio), atol=1e-6)
    with pytest.raises(ValueError, match="reference audio tokens"):
        LTXAVModel(transformer, ("video", "audio"), conditioning(reference_audio=voice[..., :64]))(
            (video, audio), steps, sigma)
