"""Every model op computes in the run's compute dtype: with bfloat16, the loaders hold the text encoder, the
transformer, the video and audio VAEs and the upscaler in bf16 (the vocoders stay float32: 2.3's as ltx-core 1.2.0
runs it, 2.0's because oneDNN keeps a bf16 conv1d's scratchpad, see ``audio_ops.VOCODER_DTYPE``), and the values
between nodes stay float32, within bf16 rounding of a float32 run (tiny models)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ltxgraph.context import OpContext, RunSettings
from ltxgraph.frames import float_images
from ltxgraph.values import AudioLatent, VideoLatent
from ltxgraph_ops.audio_ops import ltxv_audio_vae_decode, ltxv_audio_vae_loader
from ltxgraph_ops.text_ops import clip_text_encode, ltxav_text_encoder_loader
from ltxgraph_ops.tiny.files import UPSCALER
from ltxgraph_ops.upscale_ops import latent_upscale_model_loader, ltxv_latent_upsampler
from ltxgraph_ops.vae_ops import checkpoint_loader_simple, vae_decode
from ltxgraph_ops.weights.loading import stored_as_is

CHECKPOINTS = {"2.0": "ltx-2-19b-dev.safetensors", "2.3": "ltx-2.3-22b-dev.safetensors"}
BOUND = 0.03   # relative L2 of a bf16 output against float32: a few times bf16's 0.4 % per-value rounding


def context(dtype: str) -> OpContext:
    return OpContext("node", settings=RunSettings(dtype=dtype))


def float_dtypes(*modules: nn.Module, with_stored: bool = True) -> set[torch.dtype]:
    """dtypes of the floating parameters and buffers (``with_stored``: also the Linear weights kept in the
    file's bf16 when computing in float32)."""
    return {t.dtype for m in modules for name, t in m.state_dict().items()
            if t.is_floating_point() and (with_stored or name not in stored_as_is(m))}


def relative_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def run_everything(models: Path, version: str, dtype: str) -> dict:
    """Each model of a checkpoint run once in ``dtype``: its output and the modules that produced it."""
    ctx = context(dtype)
    checkpoint = str(models / "checkpoints" / CHECKPOINTS[version])
    model, _, vae = checkpoint_loader_simple(checkpoint, ctx)
    generator = torch.Generator().manual_seed(3)
    latent = VideoLatent(torch.randn(1, 128, 2, 2, 3, generator=generator), 25.0, 9)
    clip = ltxav_text_encoder_loader(str(models / "text_encoders" / "gemma_3_12B_it.safetensors"), checkpoint,
                                     ctx=ctx)
    audio_vae = ltxv_audio_vae_loader(checkpoint, ctx)
    audio_latent = AudioLatent(torch.randn(1, 8, 6, 16, generator=generator), 25.0, 0.24)
    waveform = ltxv_audio_vae_decode(audio_latent, audio_vae, ctx).waveform
    with torch.inference_mode():   # the audio VAE's own output (the op hands it to the vocoder)
        mel = audio_vae.vae.get().decode(audio_latent.samples.to(audio_vae.vae_dtype)).float()
    out = {"text": (clip_text_encode("a fox in the snow", clip, ctx).video_context,
                    [clip.gemma.get(), clip.projector.get()]),
           "video VAE": (float_images(vae_decode(latent, vae)), [vae.model.get().model.decoder]),
           "audio VAE": (mel, [audio_vae.vae.get()]),
           "transformer": (None, [model.transformer.get()]),
           # the tiny 2.3 vocoder (random weights) clips 87 % of its samples at +-1 and turns a 0.4 % change of
           # its input into a 6.5 % change of the waveform even in float32: only its dtype is checked there
           "vocoder": (waveform if version == "2.0" else None, [audio_vae.vocoder.get()])}
    assert waveform.dtype == torch.float32 and bool(torch.isfinite(waveform).all())
    if version == "2.0":
        upscaler = latent_upscale_model_loader(str(models / "latent_upscale_models" / UPSCALER), ctx)
        out["upscaler"] = (ltxv_latent_upsampler(latent, upscaler, vae).samples, [upscaler.model.get()])
    return out


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_models_compute_in_bf16_and_hand_on_float32(tiny_models: Path, version: str) -> None:
    exact = run_everything(tiny_models, version, "float32")
    rounded = run_everything(tiny_models, version, "bfloat16")
    for name, (output, modules) in rounded.items():
        held = float_dtypes(*modules)
        if name == "vocoder":
            assert held == {torch.float32}, name        # float32 in every run (audio_ops.VOCODER_DTYPE)
        else:
            assert held == {torch.bfloat16}, f"{name} holds {held}"
        assert float_dtypes(*exact[name][1], with_stored=False) == {torch.float32}, name
        if output is not None:
            error = relative_l2(output, exact[name][0])
            print(f"LTX-{version} {name}: bf16 vs float32 relative L2 {error:.3%}")
            assert output.dtype == torch.float32 and 0 < error < BOUND, (name, error)
