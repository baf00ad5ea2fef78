"""LTX-2 audio path: log-mel, audio VAE, vocoder, resampling, timing helpers; layout vs the 19B manifest and
parity with ltx-core (tools/oracle/audio.py)."""
from __future__ import annotations

import json
import math

import pytest
import torch

from ltxgraph_ops.models.audio_resample import resample, to_stereo, to_vae_input
from ltxgraph_ops.models.audio_vae import (AudioVAEConfig, audio_latent_frames_for_video, latent_frames_to_seconds,
                                           mel_frames_for_latent, seconds_to_latent_frames)
from ltxgraph_ops.models.mel import MelConfig, log_mel_spectrogram, slaney_filterbank
from ltxgraph_ops.models.vocoder import VocoderConfig
from tests.conftest import REFERENCE
from tools import manifest_check
from tools.oracle import audio as oracle
from ltxgraph_ops.tiny import audio_vae as tiny_vae
from ltxgraph_ops.tiny import vocoder as tiny_vocoder

# ------------------------------------------------------------------------------------------- layout


@pytest.mark.parametrize("tiny", [tiny_vae, tiny_vocoder], ids=["audio_vae", "vocoder"])
def test_full_size_module_matches_manifest_keys_and_shapes(tiny) -> None:
    manifest = json.loads((REFERENCE / "ltx2_19b_manifest.json").read_text())
    differences = manifest_check.compare(manifest_check.meta_shapes(tiny), manifest[tiny.MANIFEST_COMPONENT])
    assert differences == {"missing": [], "unexpected": [], "misshapen": []}


def test_full_size_parameter_counts_match_manifest() -> None:
    manifest = json.loads((REFERENCE / "ltx2_19b_manifest.json").read_text())
    for tiny in (tiny_vae, tiny_vocoder):
        model = tiny.build(tiny.full_config(), device="meta")
        elements = sum(t.numel() for t in model.state_dict().values())
        assert elements == manifest["_counts"][tiny.MANIFEST_COMPONENT]["elements"]


def test_tiny_module_contracts() -> None:
    assert (tiny_vae.COMPONENT, tiny_vae.PREFIX, tiny_vae.SECTION, tiny_vae.MANIFEST_COMPONENT) == (
        "audio_vae", "audio_vae.", "audio_vae", "audio_vae")
    assert (tiny_vocoder.COMPONENT, tiny_vocoder.PREFIX, tiny_vocoder.SECTION, tiny_vocoder.MANIFEST_COMPONENT) == (
        "vocoder", "vocoder.", "vocoder", "vocoder")
    assert "per_channel_statistics.std-of-means" in tiny_vae.build(tiny_vae.tiny_config()).state_dict()
    assert "conv_post.weight" in tiny_vocoder.build(tiny_vocoder.tiny_config()).state_dict()


# ------------------------------------------------------------------------------------------- config


def test_audio_vae_config_reads_release_header() -> None:
    cfg = AudioVAEConfig.from_header(tiny_vae.full_config())
    assert (cfg.ch, cfg.ch_mult, cfg.z_channels, cfg.causality_axis) == (128, (1, 2, 4), 8, "height")
    assert not cfg.mid_block_add_attention and cfg.attn_resolutions == ()
    assert cfg.mel == MelConfig(sample_rate=16000, n_fft=1024, hop_length=160, n_mels=64)


def test_configs_reject_unsupported_variants() -> None:
    header = tiny_vae.full_config()
    header["model"]["params"]["ddconfig"]["norm_type"] = "group"
    with pytest.raises(ValueError, match="norm_type"):
        AudioVAEConfig.from_header(header)
    with pytest.raises(ValueError, match="z_channels"):
        AudioVAEConfig.from_header(oracle.variant_config(z_channels=3))
    with pytest.raises(ValueError, match="bwe"):
        VocoderConfig.from_header({"vocoder": {}, "bwe": {}})
    with pytest.raises(ValueError, match="resblock"):
        VocoderConfig.from_header({**tiny_vocoder.full_config(), "resblock": "2"})


def test_vocoder_release_upsamples_240x_to_24khz() -> None:
    cfg = VocoderConfig.from_header(tiny_vocoder.full_config())
    assert cfg.hop_samples == 240 and cfg.output_sampling_rate == 24000


# ------------------------------------------------------------------------------------------- mel


def test_slaney_filters_have_unit_area_in_hz() -> None:
    filters = slaney_filterbank(513, 64, 16000)
    bin_hz = 8000 / 512
    areas = filters.sum(dim=0) * bin_hz
    assert torch.allclose(areas[8:], torch.ones(56), atol=0.05)        # narrow low filters are under-sampled


def test_log_mel_shape_and_peak_at_tone() -> None:
    seconds = torch.arange(16000) / 16000
    waveform = torch.sin(2 * math.pi * 1000 * seconds).expand(1, 2, -1)
    mel = log_mel_spectrogram(waveform)
    assert mel.shape == (1, 2, 101, 64)
    centres = slaney_filterbank(513, 64, 16000).argmax(dim=0) * 8000 / 512
    peak = mel[0, 0, 50].argmax()
    assert abs(centres[peak] - 1000) < 120
    assert mel.min() >= math.log(1e-5) - 1e-6


# ------------------------------------------------------------------------------------------- VAE


def test_vae_shapes_latent_quarter_and_decoder_4t_minus_3() -> None:
    model = oracle._ours_vae()
    with torch.no_grad():
        latent = model.encode(torch.randn(1, 2, 41, 64))
        assert latent.shape == (1, 8, 11, 16)
        assert model.decode(latent).shape == (1, 2, 41, 64)
        assert model.decode(latent[:, :, :1]).shape == (1, 2, 1, 64)


def test_encoder_is_causal_in_time() -> None:
    model = oracle._ours_vae()
    mel = torch.randn(1, 2, 40, 64)
    changed = mel.clone()
    changed[:, :, 24:] += 1.0                                   # mel frames >= 24 feed latent frames >= 6
    with torch.no_grad():
        before, after = model.encode(mel), model.encode(changed)
    assert torch.equal(before[:, :, :6], after[:, :, :6])
    assert not torch.equal(before[:, :, 6:], after[:, :, 6:])


# ------------------------------------------------------------------------------------------- timing


def test_audio_latent_length_for_video() -> None:
    assert audio_latent_frames_for_video(121, 25.0) == 121
    assert audio_latent_frames_for_video(97, 24.0) == math.ceil(97 / 24 * 25)
    assert audio_latent_frames_for_video(1, 30.0) == 1
    assert seconds_to_latent_frames(2.0) == 50 and latent_frames_to_seconds(50) == 2.0
    assert mel_frames_for_latent(121) == 481 and mel_frames_for_latent(121, causal=False) == 484


# ------------------------------------------------------------------------------------------- resampling


def test_resample_44k_mono_sine_to_16k_stereo_keeps_frequency_and_duration() -> None:
    rate, seconds, tone_hz = 44100, 1.5, 440.0
    time = torch.arange(int(rate * seconds)) / rate
    waveform = 0.5 * torch.sin(2 * math.pi * tone_hz * time)[None]
    out = to_vae_input(waveform, rate)
    assert out.shape[0] == 2 and torch.equal(out[0], out[1])
    assert abs(out.shape[1] - 16000 * seconds) <= 2
    spectrum = torch.fft.rfft(out[0]).abs()
    assert abs(spectrum.argmax().item() * 16000 / out.shape[1] - tone_hz) <= 1.0
    middle = out[0, 4000:20000]
    assert abs(middle.abs().max().item() - 0.5) < 0.01


def test_stereo_passthrough_and_channel_rules() -> None:
    stereo = torch.randn(2, 100)
    assert to_stereo(stereo) is stereo
    assert torch.equal(to_stereo(stereo[:1]), stereo[:1].expand(2, -1))
    assert resample(stereo, 16000, 16000) is stereo
    with pytest.raises(ValueError, match="channels"):
        resample(torch.randn(3, 100), 44100, 16000)


# ------------------------------------------------------------------------------------------- parity


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_parity_with_ltx_core(name: str) -> None:
    assert oracle.CHECKS[name]() <= 1e-5
