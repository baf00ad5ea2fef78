"""Parity of the LTX-2.3 vocoder with bandwidth extension (BigVGAN v2 stage + BWE generator + causal log-mel
analysis) with diffusers 0.42.1 (``LTX2VocoderWithBWE``) and with ltx-core (``VocoderWithBWE``, built by its
own configurator from the same header section), at the tiny config of ``ltxgraph_ops/tiny/vocoder.py``: our
seeded weights and the file's fixed tensors (filters, STFT bases, mel filterbank) loaded into all three.
float32, CPU.

diffusers' state dict differs in names only (``conv_in``/``upsamplers``/``resnets``/``act_out``/``conv_out`` for
``conv_pre``/``ups``/``resblocks``/``act_post``/``conv_post``, ``downsample.filter`` for
``downsample.lowpass.filter``). Its stage-1 final activation is built as ltx-core's (clamp when
``use_tanh_at_final`` is false; diffusers' own converter leaves it out) and its STFT window as ``n_fft``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from ltxgraph_ops.tiny import vocoder as tiny  # noqa: E402
from ltxgraph_ops.weights.writing import random_state  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402

SEED = 2323
MEL_FRAMES = 23                  # 0.23 s: stage-1 makes 3680 samples, not a multiple of the 80-sample hop
DIFFUSERS_NAMES = (("conv_pre.", "conv_in."), ("ups.", "upsamplers."), ("resblocks.", "resnets."),
                   ("act_post.", "act_out."), ("conv_post.", "conv_out."), ("downsample.lowpass.", "downsample."))


def _ours() -> torch.nn.Module:
    config = tiny.tiny_config_23()
    model = tiny.build(config).eval()
    fixed = {key[len(tiny.PREFIX):]: value for key, value in tiny.fixed_tensors(config).items()}
    state = {**random_state(model, "", SEED), **fixed}
    model.load_state_dict(state)
    return model


def _diffusers_key(key: str) -> str:
    for ours, theirs in DIFFUSERS_NAMES:
        key = key.replace(ours, theirs)
    return key


def _stage_kwargs(stage: dict, prefix: str, final: str | None) -> dict:
    return {f"{prefix}in_channels": 128, f"{prefix}hidden_channels": stage["upsample_initial_channel"],
            f"{prefix}out_channels": 2, f"{prefix}upsample_kernel_sizes": stage["upsample_kernel_sizes"],
            f"{prefix}upsample_factors": stage["upsample_rates"],
            f"{prefix}resnet_kernel_sizes": stage["resblock_kernel_sizes"],
            f"{prefix}resnet_dilations": stage["resblock_dilation_sizes"], f"{prefix}act_fn": "snakebeta",
            f"{prefix}antialias": True, f"{prefix}final_act_fn": final,
            f"{prefix}final_bias": stage["use_bias_at_final"]}


def diffusers_vocoder(ours: torch.nn.Module) -> torch.nn.Module:
    from diffusers.pipelines.ltx2.vocoder import LTX2VocoderWithBWE
    header = tiny.tiny_config_23()
    stage, bwe = header["vocoder"], header["bwe"]
    reference = LTX2VocoderWithBWE(
        **_stage_kwargs(stage, "", "tanh" if stage["use_tanh_at_final"] else "clamp"),
        **_stage_kwargs(bwe, "bwe_", None), filter_length=bwe["n_fft"], hop_length=bwe["hop_length"],
        window_length=bwe["n_fft"], num_mel_channels=bwe["num_mels"],
        input_sampling_rate=bwe["input_sampling_rate"], output_sampling_rate=bwe["output_sampling_rate"])
    reference.load_state_dict({_diffusers_key(k): v for k, v in ours.state_dict().items()}, strict=True)
    return reference.float().eval()


def ltx_core_vocoder(ours: torch.nn.Module) -> torch.nn.Module:
    from ltx_core.model.audio_vae.model_configurator import VocoderConfigurator
    with torch.device("cpu"):
        reference = VocoderConfigurator.from_config({"vocoder": tiny.tiny_config_23()})
    reference.load_state_dict(ours.state_dict(), strict=True)
    return reference.float().eval()


def _mel() -> torch.Tensor:
    return torch.randn(2, 2, MEL_FRAMES, 64, generator=torch.Generator().manual_seed(SEED + 1))


def _compare(got: torch.Tensor, expected: torch.Tensor) -> float:
    return compared("vocoder", got, expected)


@torch.no_grad()
def check_bwe(reference: Callable[[torch.nn.Module], torch.nn.Module]) -> float:
    """The whole chain: mel [2, 2, 23, 64] -> 48 kHz waveform [2, 2, 23 * 480]."""
    ours = _ours()
    got = ours(_mel())
    assert got.shape[-1] == MEL_FRAMES * ours.config.hop_samples
    return _compare(got, reference(ours)(_mel()))


@torch.no_grad()
def check_stage(name: str) -> float:
    """One AMP1 stage alone (``vocoder``: mel -> 16 kHz, clamped; ``bwe_generator``: mel -> residual)."""
    ours = _ours()
    reference = diffusers_vocoder(ours)
    return _compare(getattr(ours, name)(_mel()), getattr(reference, name)(_mel()))


@torch.no_grad()
def check_analysis_mel() -> float:
    """The causal log-mel of a 16 kHz waveform [4, 3680] with the stored bases."""
    ours = _ours()
    waveform = 0.5 * torch.randn(4, 3680, generator=torch.Generator().manual_seed(SEED + 2))
    expected, *_ = diffusers_vocoder(ours).mel_stft(waveform)
    return _compare(ours.mel_stft(waveform), expected)


CHECKS: dict[str, Callable[[], float]] = {
    "ltx23_vocoder_bwe": lambda: check_bwe(diffusers_vocoder),
    "ltx23_vocoder_bwe_stage1": lambda: check_stage("vocoder"),
    "ltx23_vocoder_bwe_generator": lambda: check_stage("bwe_generator"),
    "ltx23_vocoder_bwe_mel": check_analysis_mel,
    "ltx23_vocoder_bwe_ltx_core": lambda: check_bwe(ltx_core_vocoder),
}

if __name__ == "__main__":
    for name, check in CHECKS.items():
        print(f"{name}: {check():.3g}")
