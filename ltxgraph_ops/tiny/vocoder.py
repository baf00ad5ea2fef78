"""Tiny configs of the LTX-2 vocoders (checkpoint prefix ``vocoder.``) and the release sections they shrink, from
:mod:`ltxgraph_ops.releases` under the names the tiny modules share: ``full_config`` 2.0's flat section,
``full_config_23`` / ``full_config_25`` the nested ``{"vocoder", "bwe"}`` one (BigVGAN v2 stage at 16 kHz,
bandwidth extension to 48 kHz). Its stored non-learned tensors (anti-aliasing filters, STFT bases, mel
filterbank) are written with real values by :func:`fixed_tensors`, not random ones.
"""
from __future__ import annotations

import torch

from ltxgraph_ops import releases
from ltxgraph_ops.models.mel import slaney_filterbank
from ltxgraph_ops.models.vocoder_bwe import VocoderWithBWE, build_vocoder
from ltxgraph_ops.weights.loading import parameters_on_meta

COMPONENT = "vocoder"
PREFIX = "vocoder."
SECTION = "vocoder"
MANIFEST_COMPONENT = "vocoder"

full_config = releases.VOCODER_SECTIONS["2.0"]
full_config_23 = releases.VOCODER_SECTIONS["2.3"]
full_config_25 = releases.VOCODER_SECTIONS["2.5"]
RELEASE_CONFIGS = releases.VOCODER_SECTIONS   # full-size section per release


def tiny_config() -> dict:
    """Same keys; 32 channels, two stages x3, x2 (x6 samples per mel frame), two resblocks per stage.

    The input stays 2 x 64 mel channels: the reference's conv_pre is fixed at 128 inputs."""
    return {
        **full_config(),
        "resblock_kernel_sizes": [3, 5],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 2, 3]],
        "upsample_rates": [8, 6, 5],
        "upsample_kernel_sizes": [16, 12, 11],
        "upsample_initial_channel": 32,
    }


def tiny_config_23() -> dict:
    """Same keys and rates (100 mel frames/s -> 16 kHz -> 48 kHz); stage 1 x8,5,4 from 32 channels, generator
    x8,6,5 from 16 channels, two residual blocks per stage, a 128-point analysis STFT."""
    full = full_config_23()
    blocks = {"resblock_kernel_sizes": [3, 5], "resblock_dilation_sizes": [[1, 3, 5], [1, 2, 3]]}
    return {
        "vocoder": {**full["vocoder"], **blocks, "upsample_initial_channel": 32, "upsample_rates": [8, 5, 4],
                    "upsample_kernel_sizes": [16, 11, 8]},
        "bwe": {**full["bwe"], **blocks, "upsample_initial_channel": 16, "upsample_rates": [8, 6, 5],
                "upsample_kernel_sizes": [16, 12, 11], "n_fft": 128, "win_size": 128},
    }


def tiny_config_25() -> dict:
    return tiny_config_23()


def analysis_bases(n_fft: int, num_mels: int, sample_rate: int) -> dict[str, torch.Tensor]:
    """Stand-ins for the stored analysis tensors: Hann-windowed DFT rows (cos, then -sin) [2 (n/2+1), 1, n] for
    both STFT bases, and Slaney mel filters [M, n/2+1]."""
    bins = n_fft // 2 + 1
    phase = 2 * torch.pi * torch.outer(torch.arange(bins, dtype=torch.float64), torch.arange(n_fft)) / n_fft
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    basis = (torch.cat([phase.cos(), -phase.sin()]) * window).unsqueeze(1).float()
    return {"mel_stft.stft_fn.forward_basis": basis, "mel_stft.stft_fn.inverse_basis": basis.clone(),
            "mel_stft.mel_basis": slaney_filterbank(bins, num_mels, sample_rate).T.contiguous()}


def fixed_tensors(config: dict) -> dict[str, torch.Tensor]:
    """The non-learned tensors a real file of this config stores, under their checkpoint keys (float32)."""
    with parameters_on_meta():
        model = build_vocoder(config)
    fixed = {key: value for key, value in model.state_dict().items() if key.endswith(".filter")}
    if isinstance(model, VocoderWithBWE):
        cfg = model.config
        fixed.update(analysis_bases(cfg.n_fft, cfg.num_mels, cfg.input_sampling_rate))
    return {PREFIX + key: value for key, value in fixed.items()}


def build(config: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return build_vocoder(config)
