"""Audio ops with ComfyUI's names: the audio VAE + vocoder of an LTX-2 checkpoint, empty audio latents, and
waveform <-> latent.

Timing: the audio VAE works on 16 kHz stereo log-mel frames (100 per second), its latent has 25 frames per
second; the vocoder turns mel frames into stereo at its rate (24 kHz for 2.0's HiFi-GAN, 48 kHz for 2.3's
BigVGAN v2 with bandwidth extension, chosen by the header's vocoder section). A latent remembers the seconds of
audio it stands for, so decoding gives back exactly that duration (the causal decoder's 3 missing mel frames are
padded with silence).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext, counter_of
from ltxgraph.errors import InputValueError
from ltxgraph.input_checks import input_check, refusal
from ltxgraph.values import Audio, AudioLatent, AVLatent
from ltxgraph_ops.handles import Lazy
from ltxgraph_ops.model_files import check_kind, component_layout, load_section_component
from ltxgraph_ops.models.audio_resample import to_vae_input
from ltxgraph_ops.models.audio_vae import (AudioVAE, AudioVAEConfig, audio_latent_frames_for_video,
                                           latent_frames_per_second)
from ltxgraph_ops.models.mel import log_mel_spectrogram
from ltxgraph_ops.models.vocoder import VocoderConfig
from ltxgraph_ops.models.vocoder_bwe import BandwidthExtensionConfig, build_vocoder
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile

AUDIO_VAE_PREFIX, VOCODER_PREFIX = "audio_vae.", "vocoder."
# Vocoders compute in float32 whatever the run's dtype. 2.3's bandwidth-extension vocoder as ltx-core 1.2.0 runs it
# (bf16 accumulation through its ~100 chained convolutions degrades the spectrum: 40-90 % on spectral metrics);
# 2.0's too, where ltx-core runs it in the model's dtype: on the CPU a bf16 conv1d over few channels goes to a
# oneDNN kernel whose cached primitive keeps a scratchpad of up to 9x its input for the life of the process (one
# per layer shape), so a bf16 vocoder held 0.44 GB after decoding 19 s of audio on the tiny models (0.13 GB for
# 5 s: growing with the clip), and float32 is the faster of the two below ~128 channels (BENCHMARKS.md,
# two-stage-memory).
VOCODER_DTYPE = torch.float32


@dataclass(frozen=True)
class AudioVAEHandle:
    """AUDIO_VAE: the audio VAE and vocoder of a checkpoint (configs known now, weights read on first use)."""

    source: str
    vae_config: AudioVAEConfig
    vocoder_config: VocoderConfig | BandwidthExtensionConfig
    vae: Lazy[AudioVAE]
    vocoder: Lazy[torch.nn.Module]
    vae_dtype: torch.dtype = torch.float32       # what each model computes in (its weights are held in it)
    vocoder_dtype: torch.dtype = torch.float32

    @property
    def latents_per_second(self) -> float:
        mel = self.vae_config.mel
        return latent_frames_per_second(mel.sample_rate, mel.hop_length)


def _vae(section: dict) -> AudioVAE:
    return AudioVAE(AudioVAEConfig.from_header(section))


@input_check("ckpt_name")
def audio_checkpoint(ckpt_name: str) -> str | None:
    """Refuses a checkpoint whose header describes no audio VAE or no vocoder."""
    return refusal(check_kind, ckpt_name, "audio_vae", "vocoder")


@op("LTXVAudioVAELoader", outputs={"Audio VAE": "AUDIO_VAE"}, category="loaders", checks=(audio_checkpoint,))
def ltxv_audio_vae_loader(ckpt_name: Annotated[str, Port("STRING", file="checkpoints")],
                          ctx: OpContext = None) -> AudioVAEHandle:
    """The audio VAE and vocoder of an LTX-2 checkpoint (checked now, read on first use)."""
    return audio_vae_handle(ckpt_name, ctx)


def audio_vae_handle(ckpt_name: str, ctx: OpContext | None) -> AudioVAEHandle:
    """AUDIO_VAE of the audio VAE and vocoder in a checkpoint or a split audio-VAE file: configs checked now,
    weights read on first use."""
    file = SafetensorsFile(ckpt_name)
    vae_layout = component_layout(file, _vae, "audio_vae", AUDIO_VAE_PREFIX)
    vocoder_layout = component_layout(file, build_vocoder, "vocoder", VOCODER_PREFIX)
    mel, vocoder = vae_layout.config.mel, vocoder_layout.config
    emitted = mel.sample_rate / mel.hop_length * vocoder.hop_samples
    if abs(emitted - vocoder.output_sampling_rate) > 1e-6:
        raise InputValueError(f"{file.path}: the vocoder makes {emitted:g} samples per second of audio "
                              f"({vocoder.hop_samples} per mel frame) but declares {vocoder.output_sampling_rate} Hz")
    device = ctx.settings.device if ctx else "cpu"
    dtype = ctx.settings.compute_dtype if ctx else torch.float32
    return AudioVAEHandle(
        file.name, vae_layout.config, vocoder_layout.config,
        Lazy(lambda: load_section_component(ckpt_name, _vae, "audio_vae", AUDIO_VAE_PREFIX, device, dtype),
             f"audio VAE of {file.name}"),
        Lazy(lambda: load_section_component(ckpt_name, build_vocoder, "vocoder", VOCODER_PREFIX, device,
                                            VOCODER_DTYPE),
             f"vocoder of {file.name}"), dtype, VOCODER_DTYPE)


@op("LTXVEmptyLatentAudio", outputs={"Latent": "AUDIO_LATENT"}, category="latent/audio")
def ltxv_empty_latent_audio(audio_vae: Annotated[AudioVAEHandle, Port("AUDIO_VAE")],
                            frames_number: Annotated[int, Port("INT", min=1, max=1000)] = 97,
                            frame_rate: Annotated[int, Port("INT", min=1, max=1000)] = 25,
                            batch_size: Annotated[int, Port("INT", min=1, max=4096)] = 1) -> AudioLatent:
    """Zeros [B, z, ceil(frames / fps * 25), mel_bins / 4] for audio as long as ``frames_number`` video frames
    at ``frame_rate``."""
    cfg = audio_vae.vae_config
    frames = audio_latent_frames_for_video(frames_number, frame_rate, cfg.mel.sample_rate, cfg.mel.hop_length)
    samples = torch.zeros(batch_size, cfg.z_channels, frames, cfg.latent_mel_bins)
    return AudioLatent(samples, audio_vae.latents_per_second, frames_number / frame_rate)


@op("LTXVAudioVAEEncode", outputs={"Audio Latent": "AUDIO_LATENT"}, category="latent/audio")
def ltxv_audio_vae_encode(audio: Annotated[Audio, Port("AUDIO")],
                          audio_vae: Annotated[AudioVAEHandle, Port("AUDIO_VAE")]) -> AudioLatent:
    """Waveform -> normalised audio latent: stereo at the VAE's rate (PyAV resampler), log-mel, encoder."""
    waveform = audio.waveform
    if waveform.ndim != 3 or waveform.shape[-1] == 0 or waveform.shape[1] == 0:
        raise InputValueError(f"audio must be [batch, channels, samples] with samples, got {tuple(waveform.shape)}")
    if not bool(torch.isfinite(waveform).all()):
        raise InputValueError("audio contains NaN or infinite samples")
    mel_config = audio_vae.vae_config.mel
    stereo = torch.stack([to_vae_input(item.float(), audio.sample_rate, mel_config.sample_rate)
                          for item in waveform])
    shortest = mel_config.n_fft // 2 + 1  # the centred STFT reflects half a window at each end
    if stereo.shape[-1] < shortest:
        raise InputValueError(f"audio of {audio.seconds * 1000:.1f} ms is too short to encode: at least "
                              f"{shortest / mel_config.sample_rate * 1000:.1f} ms ({shortest} samples at "
                              f"{mel_config.sample_rate} Hz) needed")
    with torch.inference_mode():
        mel = log_mel_spectrogram(stereo, mel_config)
        latent = audio_vae.vae.get().encode(mel.to(audio_vae.vae_dtype)).float()
    return AudioLatent(latent, audio_vae.latents_per_second, audio.seconds)


def _audio_part(samples: AudioLatent | AVLatent) -> AudioLatent:
    return samples.audio if isinstance(samples, AVLatent) else samples


@op("LTXVAudioVAEDecode", outputs={"Audio": "AUDIO"}, category="latent/audio")
def ltxv_audio_vae_decode(samples: Annotated[Any, Port("AUDIO_LATENT|AV_LATENT")],
                          audio_vae: Annotated[AudioVAEHandle, Port("AUDIO_VAE")], ctx: OpContext = None) -> Audio:
    """Audio latent (or the audio of an AV latent) -> stereo waveform at the vocoder's rate (24 kHz for 2.0,
    48 kHz for 2.3's bandwidth extension). As ComfyUI, the whole vocoder output: T latent frames decode to
    4T - 3 mel frames (causal VAE), each 240 samples at 24 kHz (480 at 48 kHz), whatever the video's duration
    (T = 10 -> 8880 samples; a 0.375 s video would be 9000). Progress: the vocoder's upsampling stages."""
    latent = _audio_part(samples)
    cfg = audio_vae.vae_config
    if latent.samples.ndim != 4 or latent.samples.shape[1] != cfg.z_channels \
            or latent.samples.shape[3] != cfg.latent_mel_bins:
        raise InputValueError(f"audio latent of shape {tuple(latent.samples.shape)} does not fit this audio VAE "
                              f"([batch, {cfg.z_channels}, frames, {cfg.latent_mel_bins}])")
    with torch.inference_mode():
        mel = audio_vae.vae.get().decode(latent.samples.to(audio_vae.vae_dtype))
        waveform = audio_vae.vocoder.get()(mel.to(audio_vae.vocoder_dtype), on_stage=counter_of(ctx, "stage"))
        waveform = waveform.float()
    return Audio(waveform.contiguous(), audio_vae.vocoder_config.output_sampling_rate)
