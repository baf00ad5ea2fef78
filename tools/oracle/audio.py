"""Parity of ltxgraph's audio path (log-mel, audio VAE, vocoder) with ltx-core 1.0.0 on identical tiny weights.

References are built by ltx-core's own configurators from the header-format dicts of ``ltxgraph_ops/tiny/audio_vae.py``
and ``ltxgraph_ops/tiny/vocoder.py``; ltxgraph's state dict is loaded into them (keys map 1:1 after the prefix split the
reference uses: the encoder and decoder each own a copy of ``per_channel_statistics``). float32, CPU.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from ltxgraph_ops import releases  # noqa: E402
from ltxgraph_ops.models.mel import MelConfig, log_mel_spectrogram  # noqa: E402
from ltxgraph_ops.tiny import audio_vae as tiny_vae  # noqa: E402
from ltxgraph_ops.tiny import vocoder as tiny_vocoder  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402

SEED = 4321
BATCH = 2
MEL_FRAMES = 37           # encoder input length (not a multiple of 4 on purpose)
LATENT_FRAMES = 6


def random_state(model: torch.nn.Module, seed: int = SEED) -> dict[str, torch.Tensor]:
    """Seeded weights keeping activations O(1): conv weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2),
    latent std ~ 1 + |N(0, 0.1^2)|, latent mean ~ N(0, 0.1^2)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, tensor in sorted(model.state_dict().items()):
        noise = torch.randn(tensor.shape, generator=generator)
        if key.endswith("std-of-means"):
            state[key] = 1 + 0.1 * noise.abs()
        elif key.endswith("mean-of-means") or key.endswith(".bias"):
            state[key] = 0.1 * noise
        else:
            fan_in = tensor[0].numel() if "ups." not in key else tensor.shape[0] * tensor.shape[2]
            state[key] = noise / math.sqrt(fan_in)
    return state


def _materialise(module: torch.nn.Module) -> torch.nn.Module:
    if any(t.is_meta for t in module.state_dict().values()):
        module = module.to_empty(device="cpu")
    return module.float().eval()


def variant_config(**ddconfig) -> dict:
    """The tiny header with ``ddconfig`` entries replaced (architecture variants the release does not use)."""
    config = tiny_vae.tiny_config()
    config["model"]["params"]["ddconfig"].update(ddconfig)
    return config


def _ours_vae(config: dict | None = None) -> torch.nn.Module:
    model = tiny_vae.build(config or tiny_vae.tiny_config()).eval()
    model.load_state_dict(random_state(model))
    return model


def _reference_half(ours: torch.nn.Module, half: str, config: dict | None = None) -> torch.nn.Module:
    from ltx_core.model.audio_vae.model_configurator import AudioDecoderConfigurator, AudioEncoderConfigurator
    configurator = AudioEncoderConfigurator if half == "encoder" else AudioDecoderConfigurator
    with torch.device("cpu"):
        reference = _materialise(configurator.from_config({"audio_vae": config or tiny_vae.tiny_config()}))
    state = {key[len(half) + 1:]: value for key, value in ours.state_dict().items() if key.startswith(half + ".")}
    state.update({key: value for key, value in ours.state_dict().items() if key.startswith("per_channel_statistics.")})
    reference.load_state_dict(state, strict=True)
    return reference


def check_mel() -> float:
    """Log-mel of a stereo noise + tone signal vs ltx-core's AudioProcessor (torchaudio MelSpectrogram)."""
    from ltx_core.model.audio_vae.ops import AudioProcessor
    from ltx_core.types import Audio
    config = MelConfig.from_header(tiny_vae.tiny_config())
    generator = torch.Generator().manual_seed(SEED)
    seconds = torch.arange(int(0.7 * config.sample_rate)) / config.sample_rate
    tone = torch.sin(2 * math.pi * 440.0 * seconds)
    waveform = 0.3 * torch.randn(BATCH, 2, seconds.numel(), generator=generator) + 0.5 * tone
    processor = AudioProcessor(config.sample_rate, config.n_mels, config.hop_length, config.n_fft)
    expected = processor.waveform_to_mel(Audio(waveform=waveform, sampling_rate=config.sample_rate))
    return compared("log-mel", log_mel_spectrogram(waveform, config), expected)


def check_encode(config: dict | None = None) -> float:
    ours = _ours_vae(config)
    reference = _reference_half(ours, "encoder", config)
    mel = torch.randn(BATCH, 2, MEL_FRAMES, 64, generator=torch.Generator().manual_seed(SEED + 1))
    with torch.no_grad():
        return compared("audio encode", ours.encode(mel), reference(mel))


def check_decode(config: dict | None = None) -> float:
    ours = _ours_vae(config)
    reference = _reference_half(ours, "decoder", config)
    z = ours.config.z_channels
    latent = torch.randn(BATCH, z, LATENT_FRAMES, 16, generator=torch.Generator().manual_seed(SEED + 2))
    with torch.no_grad():
        got, expected = ours.decode(latent), reference(latent)
    return compared("audio decode", got, expected)


def check_waveform_to_latent() -> float:
    """16 kHz stereo waveform -> log-mel -> latent, vs ltx-core's encode_audio (its own AudioProcessor)."""
    from ltx_core.model.audio_vae.audio_vae import encode_audio
    from ltx_core.types import Audio
    ours = _ours_vae()
    reference = _reference_half(ours, "encoder")
    waveform = 0.3 * torch.randn(1, 2, 8000, generator=torch.Generator().manual_seed(SEED + 4))
    with torch.no_grad():
        got = ours.encode(log_mel_spectrogram(waveform, ours.config.mel))
        expected = encode_audio(Audio(waveform=waveform, sampling_rate=16000), reference)
    return compared("waveform to latent", got, expected)


def check_latent_to_waveform() -> float:
    """latent -> log-mel -> 24 kHz-style stereo waveform, vs ltx-core's decode_audio (batch of one)."""
    from ltx_core.model.audio_vae.audio_vae import decode_audio
    from ltx_core.model.audio_vae.model_configurator import VocoderConfigurator
    vae = _ours_vae()
    decoder = _reference_half(vae, "decoder")
    vocoder = _ours_vocoder()
    with torch.device("cpu"):
        reference_vocoder = _materialise(VocoderConfigurator.from_config({"vocoder": tiny_vocoder.tiny_config()}))
    reference_vocoder.load_state_dict(vocoder.state_dict(), strict=True)
    latent = torch.randn(1, vae.config.z_channels, LATENT_FRAMES, 16,
                         generator=torch.Generator().manual_seed(SEED + 5))
    with torch.no_grad():
        got = vocoder(vae.decode(latent))[0]
        expected = decode_audio(latent, decoder, reference_vocoder).waveform
    return compared("latent to waveform", got, expected)


def _ours_vocoder() -> torch.nn.Module:
    model = tiny_vocoder.build(tiny_vocoder.tiny_config()).eval()
    model.load_state_dict(random_state(model))
    return model


def check_vocoder() -> float:
    from ltx_core.model.audio_vae.model_configurator import VocoderConfigurator
    ours = _ours_vocoder()
    with torch.device("cpu"):
        reference = _materialise(VocoderConfigurator.from_config({"vocoder": tiny_vocoder.tiny_config()}))
    reference.load_state_dict(ours.state_dict(), strict=True)
    mel = torch.randn(BATCH, 2, 11, 64, generator=torch.Generator().manual_seed(SEED + 3))
    with torch.no_grad():
        got, expected = ours(mel), reference(mel)
    return compared("vocoder", got, expected)


# attention in the mid blocks and at the second level (resolution 256 -> 128), and a non-causal VAE
ATTENTION = variant_config(mid_block_add_attention=True, attn_resolutions=[128])
NON_CAUSAL = variant_config(causality_axis=None)
# the release's own section: ch_mult [1, 2, 4] (128 -> 256 -> 512 channels) and two resnet blocks per level
RELEASE = releases.audio_vae_section()

CHECKS: dict[str, Callable[[], float]] = {
    "audio_mel": check_mel,
    "audio_vae_encode": check_encode,
    "audio_vae_decode": check_decode,
    "vocoder": check_vocoder,
    "audio_waveform_to_latent": check_waveform_to_latent,
    "audio_latent_to_waveform": check_latent_to_waveform,
    "audio_vae_encode_attention": lambda: check_encode(ATTENTION),
    "audio_vae_decode_attention": lambda: check_decode(ATTENTION),
    "audio_vae_encode_noncausal": lambda: check_encode(NON_CAUSAL),
    "audio_vae_decode_noncausal": lambda: check_decode(NON_CAUSAL),
    "audio_vae_encode_release_ch_mult": lambda: check_encode(RELEASE),
    "audio_vae_decode_release_ch_mult": lambda: check_decode(RELEASE),
}

if __name__ == "__main__":
    for name, check in CHECKS.items():
        print(f"{name}: {check():.3g}")
