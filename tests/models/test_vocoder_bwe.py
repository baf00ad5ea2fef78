"""The LTX-2.3 vocoder with bandwidth extension: selected from the header's nested section, release layout and
rates, anti-aliasing filters and resampler, refused configs, the audio ops at 48 kHz, parity with diffusers and
ltx-core."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from ltxgraph_ops.audio_ops import ltxv_audio_vae_decode, ltxv_audio_vae_loader, ltxv_empty_latent_audio
from ltxgraph_ops.models.antialias import (AntiAliasedActivation, HannSincUpsampler, KaiserUpsample, SnakeBeta,
                                           kaiser_sinc_filter)
from ltxgraph_ops.models.vocoder import Vocoder, VocoderConfig
from ltxgraph_ops.models.vocoder_bwe import BandwidthExtensionConfig, VocoderWithBWE, build_vocoder, vocoder_config
from ltxgraph_ops.tiny import audio_vae as tiny_vae
from ltxgraph_ops.tiny import vocoder as tiny
from ltxgraph_ops.tiny.files import write_checkpoint
from tools.oracle import vocoder23 as oracle


def test_header_section_decides_the_vocoder() -> None:
    assert isinstance(build_vocoder(tiny.tiny_config()), Vocoder)
    assert isinstance(build_vocoder(tiny.tiny_config_23()), VocoderWithBWE)
    assert isinstance(vocoder_config(tiny.full_config()), VocoderConfig)


def test_release_config_makes_48khz_from_100_mel_frames_per_second() -> None:
    cfg = BandwidthExtensionConfig.from_header(tiny.full_config_23())
    assert (cfg.vocoder.hop_samples, cfg.vocoder.output_sampling_rate, cfg.ratio) == (160, 16000, 3)
    assert (cfg.generator.hop_samples, cfg.hop_samples, cfg.output_sampling_rate) == (240, 480, 48000)
    assert cfg.vocoder.apply_final_activation and not cfg.generator.apply_final_activation
    assert not cfg.vocoder.use_tanh_at_final                 # stage 1 ends in clamp(-1, 1)


def test_release_layout() -> None:
    """Facts of the 22B manifest (ltx-core 1.2.0 at the release header): 1227 tensors under ``vocoder.``."""
    state = tiny.build(tiny.full_config_23(), device="meta").state_dict()
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    assert len(shapes) == 1227
    assert shapes["vocoder.conv_pre.weight"] == (1536, 128, 7) and "vocoder.conv_post.bias" not in shapes
    assert shapes["vocoder.act_post.act.beta"] == (24,) and shapes["bwe_generator.conv_post.weight"] == (2, 16, 7)
    assert shapes["vocoder.resblocks.0.acts1.0.downsample.lowpass.filter"] == (1, 1, 12)
    assert shapes["mel_stft.mel_basis"] == (64, 257) and shapes["mel_stft.stft_fn.inverse_basis"] == (514, 1, 512)
    assert not any(key.startswith("resampler.") for key in shapes)    # computed, not stored


@pytest.mark.parametrize("change, words", [
    (lambda h: h["bwe"].pop("n_fft"), "lacks n_fft"),
    (lambda h: h["vocoder"].update(resblock="1"), "'vocoder' resblock '1'"),
    (lambda h: h["bwe"].update(activation="snake"), "snakebeta"),
    (lambda h: h["bwe"].update(hop_length=100), "not hop_length 100"),
    (lambda h: h["bwe"].update(output_sampling_rate=44100), "not a multiple"),
])
def test_unsupported_headers_are_refused_by_name(change, words) -> None:
    header = tiny.full_config_23()
    change(header)
    with pytest.raises(ValueError, match=words):
        BandwidthExtensionConfig.from_header(header)


def test_kaiser_filter_has_unit_dc_gain_and_is_symmetric() -> None:
    taps = kaiser_sinc_filter(0.25, 0.3, 12).flatten()
    assert taps.sum().item() == pytest.approx(1.0, abs=1e-6) and torch.allclose(taps, taps.flip(0))


@torch.no_grad()
def test_upsamplers_keep_a_constant_and_interpolate_a_slow_sine() -> None:
    constant = torch.full((1, 3, 40), 0.25)
    assert torch.allclose(KaiserUpsample()(constant), torch.full((1, 3, 80), 0.25), atol=1e-6)
    assert torch.allclose(HannSincUpsampler(3)(constant), torch.full((1, 3, 120), 0.25), atol=1e-2)
    n = torch.arange(400, dtype=torch.float64)
    slow = torch.sin(2 * math.pi * n / 40).float().view(1, 1, -1)               # 1/40 of the input rate
    fine = torch.sin(2 * math.pi * torch.arange(1200, dtype=torch.float64) / 120).float()
    up = HannSincUpsampler(3)(slow).flatten()
    assert (up[60:-60] - fine[60:-60]).abs().max() < 1e-2                      # away from the replicated edges


@torch.no_grad()
def test_anti_aliased_snake_is_identity_plus_a_bounded_periodic_term() -> None:
    act = AntiAliasedActivation(SnakeBeta(2))
    x = torch.linspace(-3, 3, 64).repeat(1, 2, 1)
    y = act(x)
    assert y.shape == x.shape and (y - x)[..., 8:-8].min() > -0.1 and (y - x).max() < 1.1


def _bwe_checkpoint(path):
    vocoder_23 = SimpleNamespace(SECTION=tiny.SECTION, PREFIX=tiny.PREFIX, tiny_config=tiny.tiny_config_23,
                                 build=tiny.build, fixed_tensors=tiny.fixed_tensors)
    return write_checkpoint(path, "bf16", 0, [tiny_vae, vocoder_23])


def test_audio_ops_decode_at_48khz_at_comfyuis_length(tmp_path) -> None:
    """ComfyUI rule: 25 latent frames -> 4 * 25 - 3 = 97 mel frames -> 97 * 160 samples at 16 kHz -> x3 at 48 kHz."""
    handle = ltxv_audio_vae_loader(str(_bwe_checkpoint(tmp_path / "ltx-2.3.safetensors")))
    assert isinstance(handle.vocoder_config, BandwidthExtensionConfig)
    latent = ltxv_empty_latent_audio(handle, 25, 25, 1)                          # 1 s of video
    audio = ltxv_audio_vae_decode(latent, handle)
    assert audio.sample_rate == 48000 and audio.waveform.shape == (1, 2, 97 * 480)   # 46560
    assert bool(torch.isfinite(audio.waveform).all()) and float(audio.waveform.abs().max()) <= 1.0
    assert float(audio.waveform.std()) > 1e-3


@pytest.mark.oracle
@pytest.mark.parametrize("key", sorted(oracle.CHECKS))
def test_parity_with_diffusers_and_ltx_core(key) -> None:
    pytest.importorskip("diffusers")
    assert oracle.CHECKS[key]() <= 1e-5
