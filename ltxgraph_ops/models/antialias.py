"""Anti-aliased periodic activations of BigVGAN v2 (Lee et al. 2023, "BigVGAN: A Universal Neural Vocoder with
Large-Scale Training"), as the LTX-2.3 vocoder uses them, and the windowed-sinc resampler of its bandwidth
extension. All signals are [B, C, T] (T samples).

- SnakeBeta: x + sin^2(x * e^alpha) / (e^beta + 1e-9), alpha and beta per channel, stored in log scale.
- AntiAliasedActivation: upsample x2 (Kaiser-windowed sinc, 12 taps), activation, low-pass and decimate x2 (the
  same filter), so the harmonics the activation creates above the original Nyquist are removed. Both 12-tap
  filters are persistent buffers (``upsample.filter``, ``downsample.lowpass.filter``, [1, 1, 12]): the release
  checkpoint stores them.
- HannSincUpsampler: integer-ratio upsampling with a Hann-windowed sinc (6 zero crossings, roll-off 0.99: the
  filter of ``torchaudio.functional.resample``), computed here and not stored.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATION_RATIO = 2        # up/down factor around each activation
ACTIVATION_TAPS = 12
SNAKE_EPS = 1e-9
HANN_ZERO_CROSSINGS = 6
HANN_ROLLOFF = 0.99


def kaiser_sinc_filter(cutoff: float, half_width: float, taps: int) -> torch.Tensor:
    """Low-pass FIR [1, 1, taps] with cutoff ``cutoff`` (fraction of the sample rate, <= 0.5), a Kaiser window
    whose beta follows Kaiser's formula for the transition ``half_width``, normalised to unit DC gain."""
    attenuation = 2.285 * (taps // 2 - 1) * math.pi * 4 * half_width + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(taps, periodic=False, beta=beta)
    offsets = torch.arange(taps, dtype=torch.float32) - (taps - 1) / 2     # centred, half-integer when even
    response = 2 * cutoff * window * torch.sinc(2 * cutoff * offsets)
    return (response / response.sum()).view(1, 1, taps)


def depthwise(kernel: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A [1, 1, K] filter repeated for every channel of ``x`` [B, C, T], in ``x``'s dtype."""
    return kernel.to(x.dtype).expand(x.shape[1], 1, kernel.shape[-1])


class SnakeBeta(nn.Module):
    """x + sin^2(x * e^alpha) / (e^beta + eps); alpha, beta [C] in log scale."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frequency = self.alpha.exp().view(1, -1, 1)
        amplitude = self.beta.exp().view(1, -1, 1)
        return x + (1.0 / (amplitude + SNAKE_EPS)) * torch.sin(x * frequency).pow(2)


class KaiserUpsample(nn.Module):
    """x ``ratio`` by zero insertion and the Kaiser low-pass (gain ``ratio``), edges replicated:
    [B, C, T] -> [B, C, ratio * T]."""

    def __init__(self, ratio: int = ACTIVATION_RATIO, taps: int = ACTIVATION_TAPS) -> None:
        super().__init__()
        self.ratio = ratio
        self.edge = taps // ratio - 1                                   # input samples replicated per side
        self.trim_left = self.edge * ratio + (taps - ratio) // 2
        self.trim_right = self.edge * ratio + (taps - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, taps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (self.edge, self.edge), mode="replicate")
        up = F.conv_transpose1d(padded, depthwise(self.filter, x), stride=self.ratio, groups=x.shape[1])
        return self.ratio * up[..., self.trim_left:up.shape[-1] - self.trim_right]


class KaiserLowPass(nn.Module):
    """The Kaiser low-pass with stride ``stride``, edges replicated (taps/2 - 1 left, taps/2 right)."""

    def __init__(self, cutoff: float, half_width: float, stride: int, taps: int) -> None:
        super().__init__()
        self.stride = stride
        self.padding = (taps // 2 - (1 - taps % 2), taps // 2)
        self.register_buffer("filter", kaiser_sinc_filter(cutoff, half_width, taps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, self.padding, mode="replicate")
        return F.conv1d(padded, depthwise(self.filter, x), stride=self.stride, groups=x.shape[1])


class KaiserDownsample(nn.Module):
    """/ ``ratio``: low-pass at the new Nyquist and keep every ``ratio``-th sample. [B, C, T] -> [B, C, T / ratio]."""

    def __init__(self, ratio: int = ACTIVATION_RATIO, taps: int = ACTIVATION_TAPS) -> None:
        super().__init__()
        self.lowpass = KaiserLowPass(0.5 / ratio, 0.6 / ratio, ratio, taps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class AntiAliasedActivation(nn.Module):
    """downsample(act(upsample(x))): the activation evaluated at twice the rate. [B, C, T] -> [B, C, T]."""

    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        self.act = activation
        self.upsample = KaiserUpsample()
        self.downsample = KaiserDownsample()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def hann_sinc_filter(ratio: int) -> torch.Tensor:
    """The interpolation filter [1, 1, 2 * width * ratio + 1] of :class:`HannSincUpsampler`
    (width = ceil(6 / 0.99) input samples per side)."""
    width = math.ceil(HANN_ZERO_CROSSINGS / HANN_ROLLOFF)
    taps = 2 * width * ratio + 1
    time = (torch.arange(taps, dtype=torch.float32) / ratio - width) * HANN_ROLLOFF   # in input samples
    window = torch.cos(time.clamp(-HANN_ZERO_CROSSINGS, HANN_ZERO_CROSSINGS) * math.pi
                       / HANN_ZERO_CROSSINGS / 2) ** 2
    return (torch.sinc(time) * window * HANN_ROLLOFF / ratio).view(1, 1, taps)


class HannSincUpsampler(nn.Module):
    """x ``ratio`` band-limited interpolation, edges replicated: [B, C, T] -> [B, C, ratio * T]. The filter is
    computed (not a checkpoint tensor)."""

    def __init__(self, ratio: int) -> None:
        super().__init__()
        self.ratio = ratio
        self.edge = math.ceil(HANN_ZERO_CROSSINGS / HANN_ROLLOFF)
        taps = 2 * self.edge * ratio + 1
        self.trim_left, self.trim_right = 2 * self.edge * ratio, taps - ratio
        self.register_buffer("filter", hann_sinc_filter(ratio), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (self.edge, self.edge), mode="replicate")
        up = F.conv_transpose1d(padded, depthwise(self.filter, x), stride=self.ratio, groups=x.shape[1])
        return self.ratio * up[..., self.trim_left:up.shape[-1] - self.trim_right]
