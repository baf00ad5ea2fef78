"""The analytic matmul count of the real-scale benchmarks equals torch's FLOP counter on the tiny model (its
Linear layers; the counter does not see the CPU attention kernel, whose two products are added by formula).

The float32 products are counted through the BLAS (``LTXGRAPH_FLOAT32_MATMUL=blas``): through oneDNN a single
float32 row is multiplied as two (``layers.linear``), and the counter would count the zero row too."""
from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from ltxgraph_ops.models.transformer import StreamInput, TransformerConfig
from ltxgraph_ops.models.transformer_tokens import audio_positions, video_positions
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.models.float32_matmul import SETTING as FLOAT32_SETTING
from tools.benchmarks.step_flops import Tokens, block_flops, dominant_gemms, forward_flops


def onednn_linear_flops(x_shape, weight_shape, *args, **kwargs) -> int:
    """oneDNN's fused linear (bf16, and float32 where oneDNN multiplies it): 2 x rows x in x out, as torch counts
    ``addmm``."""
    rows = math.prod(x_shape[:-1])
    return 2 * rows * x_shape[-1] * weight_shape[0]


def counter() -> FlopCounterMode:
    """torch's FLOP counter, told what oneDNN's linear op costs (it knows only aten's matmuls)."""
    return FlopCounterMode(display=False, custom_mapping={torch.ops.mkldnn._linear_pointwise:
                                                          onednn_linear_flops})


def test_linear_flops_equal_torchs_count(monkeypatch) -> None:
    monkeypatch.setenv(FLOAT32_SETTING, "blas")
    model = tiny.build(tiny.tiny_config(), device="cpu").eval()
    for parameter in model.parameters():
        parameter.data.normal_(0, 0.02)
    c = model.config
    frames, height, width, audio, text = 2, 3, 4, 5, 7
    video = StreamInput(torch.randn(1, frames * height * width, c.in_channels), torch.tensor([0.7]),
                        video_positions(frames, height, width, 25.0), torch.randn(1, text, c.caption_channels))
    sound = StreamInput(torch.randn(1, audio, c.audio_in_channels), torch.tensor([0.4]), audio_positions(audio),
                        torch.randn(1, text, c.caption_channels))
    with counter() as counted, torch.no_grad():
        model(video, sound)
    assert forward_flops(c, Tokens(frames * height * width, audio, text))["linear_total"] == counted.get_total_flops()


def test_release_figures() -> None:
    """19B, stage 2 of the distilled graph at 768x512, 121 frames: 6144 video tokens, 121 audio, 1024 text."""
    flops = forward_flops(TransformerConfig(), Tokens(6144, 121, 1024))
    assert 4.0e12 < flops["per_block"] < 4.3e12 and 190e12 < flops["total"] < 205e12


def test_dominant_gemms_carry_most_of_a_release_block() -> None:
    """Stage 2: the video stream's D x D, D x 4D and 4D x D GEMMs are 82 % of the block's Linear FLOPs, the
    attention products 18 % of all its matmul FLOPs (what the GEMM peak and the attention peak weigh)."""
    config, tokens = TransformerConfig(), Tokens(6144, 121, 1024)
    shapes = dominant_gemms(config, tokens)
    assert [shape for shape, _ in shapes] == [(6144, 4096, 4096), (6144, 4096, 16384), (6144, 16384, 4096)]
    assert all(flops == 2 * m * k * n * (6 if k == n else 1) for (m, k, n), flops in shapes)
    linear = block_flops(config, tokens, products=False)
    assert 0.80 < sum(flops for _, flops in shapes) / linear < 0.85
    assert 0.17 < 1 - linear / block_flops(config, tokens) < 0.18


def test_kept_text_flops_equal_torchs_count_of_a_forward_reading_a_text_store(monkeypatch) -> None:
    """A forward whose text keys/values come from a complete store (a streamed model's later steps) runs no text
    key/value projection and no caption projection: the count with ``text_kept`` is what torch counts."""
    monkeypatch.setenv(FLOAT32_SETTING, "blas")
    from dataclasses import replace
    from ltxgraph_ops.models.transformer_inputs import TextKeysValuesStore
    model = tiny.build(tiny.tiny_config(), device="cpu").eval()
    for parameter in model.parameters():
        parameter.data.normal_(0, 0.02)
    c = model.config
    frames, height, width, audio, text = 2, 3, 4, 5, 7
    blocks = len(model.transformer_blocks)
    video = StreamInput(torch.randn(1, frames * height * width, c.in_channels), torch.tensor([0.7]),
                        video_positions(frames, height, width, 25.0), torch.randn(1, text, c.caption_channels),
                        text_store=TextKeysValuesStore("video", blocks))
    sound = StreamInput(torch.randn(1, audio, c.audio_in_channels), torch.tensor([0.4]), audio_positions(audio),
                        torch.randn(1, text, c.caption_channels), text_store=TextKeysValuesStore("audio", blocks))
    with torch.no_grad():
        model(video, sound)                                       # fills the stores
        with counter() as counted:
            model(video, sound)
    tokens = Tokens(frames * height * width, audio, text)
    kept = forward_flops(c, replace(tokens, text_kept=True))["linear_total"]
    assert kept == counted.get_total_flops() < forward_flops(c, tokens)["linear_total"]
