"""Audio ops on the tiny checkpoint: latent geometry that keeps audio in sync with video, waveform round trip
durations, and clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.values import Audio, AVLatent, VideoLatent
from ltxgraph_ops.audio_ops import (ltxv_audio_vae_decode, ltxv_audio_vae_encode, ltxv_audio_vae_loader,
                                    ltxv_empty_latent_audio)
from ltxgraph_ops.tiny.files import write_checkpoint
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("audio") / "ltx.safetensors", "bf16", 0)


@pytest.mark.parametrize("frames, fps, latent_frames", [(121, 25, 121), (97, 25, 97), (121, 24, 127), (1, 25, 1)])
def test_empty_latent_covers_the_video(checkpoint: Path, frames: int, fps: int, latent_frames: int) -> None:
    vae = ltxv_audio_vae_loader(str(checkpoint))
    latent = ltxv_empty_latent_audio(vae, frames, fps, 2)
    assert latent.samples.shape == (2, 8, latent_frames, 16)
    assert latent.seconds == pytest.approx(frames / fps) and latent.latents_per_second == 25.0
    assert not vae.vae.loaded  # geometry needs no weights


def test_waveform_round_trip_is_comfyuis_length(checkpoint: Path) -> None:
    """ComfyUI rule: T latent frames decode to 4T - 3 mel frames (causal VAE), 240 samples each at 24 kHz; the
    waveform is not cut or padded to the input's duration."""
    vae = ltxv_audio_vae_loader(str(checkpoint))
    t = torch.arange(44100 * 3 // 2) / 44100
    audio = Audio((0.4 * torch.sin(2 * torch.pi * 330 * t)).reshape(1, 1, -1), 44100)   # mono 1.5 s
    latent = ltxv_audio_vae_encode(audio, vae)
    assert latent.samples.shape[2] == 38 and latent.seconds == pytest.approx(1.5)      # ceil(151 mel / 4)
    decoded = ltxv_audio_vae_decode(latent, vae)
    assert decoded.sample_rate == 24000 and decoded.waveform.shape == (1, 2, (4 * 38 - 3) * 240)   # 35760
    assert torch.isfinite(decoded.waveform).all() and decoded.waveform.abs().max() <= 1.0


def test_decode_takes_the_audio_of_an_av_latent(checkpoint: Path) -> None:
    vae = ltxv_audio_vae_loader(str(checkpoint))
    audio = ltxv_empty_latent_audio(vae, 25, 25, 1)
    av = AVLatent(VideoLatent(torch.zeros(1, 128, 4, 1, 1), 25.0, 25), audio)
    seen: list[tuple[str, int, int]] = []
    counting = OpContext("a", on_step=lambda node, step, total, info: seen.append((info["unit"], step, total)))
    assert ltxv_audio_vae_decode(av, vae, counting).waveform.shape == (1, 2, (4 * 25 - 3) * 240)   # 23280
    stages = len(vae.vocoder_config.upsample_rates)
    assert seen == [("stage", i, stages) for i in range(1, stages + 1)]      # the vocoder's upsampling stages


def test_bad_inputs_are_named(checkpoint: Path, tmp_path: Path) -> None:
    vae = ltxv_audio_vae_loader(str(checkpoint))
    latent = ltxv_empty_latent_audio(vae, 25, 25, 1)
    with pytest.raises(InputValueError, match="does not fit this audio VAE"):
        ltxv_audio_vae_decode(type(latent)(torch.zeros(1, 3, 5, 16), 25.0, 0.2), vae)
    with pytest.raises(InputValueError, match="NaN"):
        ltxv_audio_vae_encode(Audio(torch.full((1, 2, 100), float("nan")), 16000), vae)
    with pytest.raises(InputValueError, match="samples"):
        ltxv_audio_vae_encode(Audio(torch.zeros(1, 2, 0), 16000), vae)
    tensors = load_file(str(checkpoint))
    metadata = SafetensorsFile(checkpoint).metadata
    tensors.pop("vocoder.conv_post.weight")
    save_file(tensors, str(tmp_path / "broken.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match="missing tensor 'vocoder.conv_post.weight'"):
        ltxv_audio_vae_loader(str(tmp_path / "broken.safetensors"))
    config = json.loads(metadata["config"])
    config["vocoder"]["output_sampling_rate"] = 9600
    save_file(load_file(str(checkpoint)), str(tmp_path / "rate.safetensors"),
              metadata={"config": json.dumps(config)})
    with pytest.raises(InputValueError, match="declares 9600 Hz"):
        ltxv_audio_vae_loader(str(tmp_path / "rate.safetensors"))
