"""Resident fp8 models dequantise every Linear weight into one set of reused buffers, bit-exact."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from ltxgraph_ops.model_files import load_transformer
from ltxgraph_ops.models import layers
from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.weights.block_buffers import ComputeSlot
from tools.oracle.transformer import audio_input, video_input

BITS = {torch.float32: torch.int32, torch.bfloat16: torch.int16}


def fp8_layer(scale: str, rows: int = 37, columns: int = 48) -> Linear:
    g = torch.Generator().manual_seed(1)
    layer = Linear(columns, rows)
    codes = torch.randint(0, 256, (rows, columns), dtype=torch.uint8, generator=g)
    codes[(codes & 0x7F) == 0x7F] = 0                                  # no NaN codes (the loaders refuse them)
    codes[0, :] = torch.arange(256, dtype=torch.uint8)[torch.arange(256) & 0x7F != 0x7F][:columns]
    layer.weight.data = codes.view(torch.float8_e4m3fn)
    layer.bias.data = torch.randn(rows, generator=g)
    layer.weight_scale = {"scalar": torch.tensor(0.0123), "per_row": torch.rand(rows, generator=g) + 0.5,
                          "none": None}[scale]
    return layer


def torch_dequantised(layer: Linear, dtype: torch.dtype) -> torch.Tensor:
    """torch's own conversion, rounded once to ``dtype``: ``(w.float() * scale).to(dtype)``."""
    weight = layer.weight.float()
    if layer.weight_scale is not None:
        scale = layer.weight_scale
        weight = weight * (scale if scale.ndim == 0 else scale.reshape(-1, 1))
    return weight.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("scale", ["scalar", "per_row", "none"])
def test_shared_buffer_holds_the_weight_bit_for_bit(dtype: torch.dtype, scale: str) -> None:
    layer = fp8_layer(scale)
    layer.weight_buffers = buffers = ComputeSlot(dtype)
    x = torch.randn(2, 5, 48).to(dtype)
    y = layer(x)
    (held,) = buffers._tensors.values()
    want = torch_dequantised(layer, dtype)
    assert torch.equal(held.view(BITS[dtype]), want.view(BITS[dtype]))
    assert torch.equal(layer.dequantized_weight(dtype).view(BITS[dtype]), want.view(BITS[dtype]))
    assert torch.equal(y, layers.linear(x, want, layer.bias.to(dtype)))


@pytest.mark.parametrize("scale", ["scalar", "per_row"])
def test_row_slices_of_a_large_layer_use_one_reused_slice_buffer(monkeypatch, scale: str) -> None:
    layer = fp8_layer(scale)
    layer.weight_buffers = buffers = ComputeSlot(torch.float32)
    x = torch.randn(2, 5, 48)
    monkeypatch.setattr(layers, "DEQUANT_CHUNK_ELEMENTS", 48 * 8)    # 8 rows per slice: 5 slices, the last short
    sliced = layer(x)
    layer.weight_buffers = None
    unshared = layer(x)
    assert torch.equal(sliced, unshared)
    assert [tuple(t.shape) for t in buffers._tensors.values()] == [(8, 48)]
    expected = F.linear(x, torch_dequantised(layer, torch.float32), layer.bias)
    torch.testing.assert_close(sliced, expected, rtol=1e-6, atol=1e-6 * expected.abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_resident_fp8_model_shares_one_buffer_per_weight_shape_and_matches_the_streamed_one(
        checkpoints, dtype: torch.dtype) -> None:
    resident = load_transformer(checkpoints["fp8"], compute_dtype=dtype)
    linears = [m for m in resident.modules() if isinstance(m, Linear)]
    pools = {id(m.weight_buffers) for m in linears}
    assert len(pools) == 1 and linears[0].weight_buffers.compute_dtype == dtype
    buffers = linears[0].weight_buffers
    generator, config = torch.Generator().manual_seed(0), tiny.tiny_config()
    video, audio = (replace(s, latent=s.latent.to(dtype), context=s.context.to(dtype))
                    for s in (video_input(config, generator), audio_input(config, generator)))
    with torch.no_grad():
        first = resident(video, audio)
        held = {key: t.data_ptr() for key, t in buffers._tensors.items()}
        again = resident(video, audio)
    assert {key: t.data_ptr() for key, t in buffers._tensors.items()} == held      # nothing allocated again
    fp8_shapes = {tuple(m.weight.shape) for m in linears if m.weight.dtype == torch.float8_e4m3fn}
    assert {key[1] for key in held} == fp8_shapes
    assert torch.equal(first.video, again.video)
    streamed = load_transformer(checkpoints["fp8"], streamed=True, compute_dtype=dtype)
    with torch.no_grad():
        from_stream = streamed(video, audio)
    # the streamed model dequantises the same way (once per block): the same velocities, bit for bit
    assert torch.equal(first.video, from_stream.video) and torch.equal(first.audio, from_stream.audio)
