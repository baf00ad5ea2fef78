"""The sampling ops on the tiny transformer: joint AV sampling, masks, determinism, progress, NaN reporting,
and the guider / scheduler ops' contracts."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ltxgraph.context import OpContext, RunSettings
from ltxgraph.errors import InputValueError, LtxGraphError
from ltxgraph.values import AudioLatent, AVLatent, VideoLatent
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.handles import ModelHandle
from ltxgraph_ops.sampling_ops import (cfg_guider_op, disable_noise, guider_parameters, ksampler_select,
                                       ltxv_scheduler, manual_sigmas, multimodal_guider, random_noise,
                                       sampler_custom_advanced)
from ltxgraph_ops.tiny import transformer as tiny
from tools.oracle.transformer import random_state

DISTILLED = "1., 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0"


@pytest.fixture(scope="module")
def model() -> ModelHandle:
    transformer = tiny.build(tiny.tiny_config())
    transformer.load_state_dict(random_state(transformer))
    return ModelHandle(transformer.eval(), "tiny")


def conditioning(seed: int) -> Conditioning:
    g = torch.Generator().manual_seed(seed)
    channels = tiny.tiny_config()["caption_channels"]
    return Conditioning(torch.randn(1, 5, channels, generator=g), torch.randn(1, 5, channels, generator=g),
                        torch.ones(1, 5, dtype=torch.int64), frame_rate=25.0)


def av_latent() -> AVLatent:
    g = torch.Generator().manual_seed(3)
    mask = torch.ones(1, 1, 2, 2, 2)
    mask[:, :, 0] = 0.0
    video = VideoLatent(torch.randn(1, 128, 2, 2, 2, generator=g), 25.0, 9, mask)
    audio = AudioLatent(torch.randn(1, 8, 9, 16, generator=g), 25.0, 0.36, None)
    return AVLatent(video, audio)


def sample(model, latent, sigmas=DISTILLED, cfg=3.0, seed=7, sampler="euler", ctx=None):
    guider = cfg_guider_op(model, conditioning(1), conditioning(2), cfg)
    return sampler_custom_advanced(random_noise(seed), guider, ksampler_select(sampler), manual_sigmas(sigmas),
                                   latent, ctx)


def test_av_sampling_keeps_masked_frames_bit_identical_and_is_deterministic(model) -> None:
    latent = av_latent()
    first, denoised = sample(model, latent)
    second, _ = sample(model, latent)
    assert isinstance(first, AVLatent) and isinstance(denoised, AVLatent)
    assert torch.equal(first.video.samples, second.video.samples)
    assert torch.equal(first.audio.samples, second.audio.samples)
    assert torch.equal(first.video.samples[:, :, 0], latent.video.samples[:, :, 0])
    assert not torch.equal(first.video.samples[:, :, 1], latent.video.samples[:, :, 1])
    assert first.video.noise_mask is latent.video.noise_mask and first.audio.seconds == 0.36
    other, _ = sample(model, latent, seed=8)
    assert not torch.equal(other.video.samples, first.video.samples)


@pytest.mark.parametrize("part", ["video", "audio"])
def test_single_modality_latents_come_back_as_their_own_kind(model, part: str) -> None:
    latent = getattr(av_latent(), part)
    out, denoised = sample(model, latent, sampler="euler_ancestral")
    assert type(out) is type(latent) and out.samples.shape == latent.samples.shape
    assert type(denoised) is type(latent)


def test_progress_is_reported_per_step_and_per_transformer_block(model) -> None:
    seen = []
    ctx = OpContext("s", on_step=lambda node, step, total, info: seen.append((node, info["unit"], step, total)))
    sample(model, av_latent(), sigmas="0.909375, 0.725, 0.421875, 0.0", cfg=1.0, ctx=ctx)
    assert [s for s in seen if s[1] == "step"] == [("s", "step", 1, 3), ("s", "step", 2, 3), ("s", "step", 3, 3)]
    layers = model.structure().config.num_layers
    blocks = [(step, total) for _, unit, step, total in seen if unit == "block"]
    assert blocks == [(i, layers) for i in range(1, layers + 1)] * 3       # one model pass per step (CFG 1)


@pytest.mark.parametrize("budget, forwards_per_step", [(None, 1), (1, 4)])
def test_guidance_passes_share_one_forward_per_step_within_the_memory_budget(model, budget, forwards_per_step
                                                                              ) -> None:
    params = guider_parameters("VIDEO", cfg=3.0, stg=1.0, rescale=0.7, modality_scale=3.0)
    guider = multimodal_guider(model, conditioning(1), conditioning(2), params, "1")   # 4 passes per step
    seen = []
    ctx = OpContext("s", on_step=lambda node, step, total, info: seen.append((info["unit"], step, total)),
                    settings=RunSettings(memory_budget=budget))
    sampler_custom_advanced(random_noise(1), guider, ksampler_select("euler"), manual_sigmas("0.725, 0.4, 0.0"),
                            av_latent(), ctx)
    layers = model.structure().config.num_layers
    blocks = [(step, total) for unit, step, total in seen if unit == "block"]
    assert blocks == [(i, layers) for i in range(1, layers + 1)] * forwards_per_step * 2


def test_refine_from_a_sigma_below_one_without_noise_is_deterministic_and_moves(model) -> None:
    latent = av_latent()
    guider = cfg_guider_op(model, conditioning(1), conditioning(2), 1.0)
    out, _ = sampler_custom_advanced(disable_noise(), guider, ksampler_select("gradient_estimation"),
                                     manual_sigmas("0.909375, 0.725, 0.421875, 0.0"), latent)
    assert torch.isfinite(out.video.samples).all()
    assert not torch.equal(out.audio.samples, latent.audio.samples)


def test_a_model_returning_nan_is_reported_with_its_step(model) -> None:
    broken = tiny.build(tiny.tiny_config())
    broken.load_state_dict(random_state(broken))
    broken.proj_out.bias.data[0] = float("nan")
    with pytest.raises(LtxGraphError, match="NaN/Inf at sampling step 0"):
        sample(ModelHandle(broken, "broken"), av_latent())


def test_ltxv_scheduler_uses_the_video_grid() -> None:
    latent = av_latent()
    assert torch.equal(ltxv_scheduler(8, latent=latent), ltxv_scheduler(8, latent=latent.video))
    assert not torch.equal(ltxv_scheduler(8, latent=latent), ltxv_scheduler(8))
    expected = [1.0, 0.965712, 0.921875, 0.863856, 0.783445, 0.664579, 0.471003, 0.1, 0.0]
    assert torch.allclose(ltxv_scheduler(8), torch.tensor(expected), atol=1e-6)
    with pytest.raises(InputValueError, match="not a number"):
        manual_sigmas("1, x, 0")


def test_multimodal_guider_op(model) -> None:
    params = guider_parameters("VIDEO", cfg=3.0, stg=1.0, rescale=0.7, modality_scale=3.0)
    params = guider_parameters("AUDIO", cfg=7.0, stg=1.0, rescale=0.7, modality_scale=3.0, parameters=params)
    with pytest.raises(InputValueError, match="already set"):
        guider_parameters("AUDIO", parameters=params)
    guider = multimodal_guider(model, conditioning(1), conditioning(2), params, "1")
    assert guider.per_modality["audio"].cfg == 7.0 and guider.per_modality["video"].stg_blocks == (1,)
    out, _ = sampler_custom_advanced(random_noise(1), guider, ksampler_select("euler"),
                                     manual_sigmas("0.725, 0.421875, 0.0"), av_latent())
    assert torch.isfinite(out.audio.samples).all()
    with pytest.raises(InputValueError, match="outside the model's blocks 0..1"):
        multimodal_guider(model, conditioning(1), conditioning(2), params, "29")
    with pytest.raises(InputValueError, match="block numbers"):
        multimodal_guider(model, conditioning(1), conditioning(2), params, "a, b")


def test_bad_sigmas_are_refused(model) -> None:
    guider = cfg_guider_op(model, conditioning(1), conditioning(2), 1.0)
    with pytest.raises(InputValueError, match="finite and non-negative"):
        sampler_custom_advanced(random_noise(1), guider, ksampler_select("euler"), torch.tensor([1.0, -0.5]),
                                av_latent())


def test_previews_are_pngs_of_each_step(model, tmp_path) -> None:
    infos = []
    ctx = OpContext("stage1", settings=RunSettings(preview_dir=tmp_path / "prev"),
                    on_step=lambda node, step, total, info: infos.append(info) if info["unit"] == "step" else None)
    sample(model, av_latent(), sigmas="0.725, 0.421875, 0.0", cfg=1.0, ctx=ctx)
    files = sorted(p.name for p in (tmp_path / "prev").iterdir())
    assert files == ["stage1-step001.png", "stage1-step002.png"]
    assert [Path(i["preview"]).name for i in infos] == files
    data = (tmp_path / "prev" / files[0]).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    import av
    with av.open(str(tmp_path / "prev" / files[0])) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (2 * 2 * 4, 2 * 4)  # 2 latent frames side by side, 4x cells
