"""A Linear's bias and GELU fused into its matmul: float32 through the BLAS unchanged bit for bit, float32 through
oneDNN and bfloat16 within their rounding."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ltxgraph_ops.models.float32_matmul import SETTING as FLOAT32_MATMUL
from ltxgraph_ops.models.layers import Linear, LowRankDelta, linear


def layer(in_features: int, out_features: int, dtype: torch.dtype, seed: int = 0) -> Linear:
    generator = torch.Generator().manual_seed(seed)
    module = Linear(in_features, out_features, dtype=dtype)
    module.weight.copy_(torch.randn(out_features, in_features, generator=generator) * in_features ** -0.5)
    module.bias.copy_(torch.randn(out_features, generator=generator))
    return module


def inputs(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


@pytest.mark.parametrize("shape", [(1, 300, 64), (7, 64), (1, 64)])
def test_float32_through_the_blas_is_linear_then_gelu_bit_for_bit(shape: tuple[int, ...], monkeypatch) -> None:
    monkeypatch.setenv(FLOAT32_MATMUL, "blas")
    module, x = layer(64, 96, torch.float32), inputs(shape, torch.float32)
    want = F.gelu(F.linear(x, module.weight, module.bias), approximate="tanh")
    assert torch.equal(module(x, activation="gelu_tanh"), want)
    assert torch.equal(module(x), F.linear(x, module.weight, module.bias))
    assert "mkldnn::_linear_pointwise" not in kernels_run(lambda: module(x))


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN in this torch build")
@pytest.mark.parametrize("shape", [(1, 300, 64), (2, 33, 64), (7, 64), (1, 64)])
def test_float32_through_onednn_is_linear_then_gelu_within_float32_rounding(shape: tuple[int, ...],
                                                                           monkeypatch) -> None:
    """oneDNN adds the bias and applies GELU in its epilogue; its accumulation order differs from the BLAS's, so
    the product agrees to float32 rounding, not to the bit."""
    monkeypatch.setenv(FLOAT32_MATMUL, "onednn")
    module, x = layer(256, 96, torch.float32), inputs(shape[:-1] + (256,), torch.float32)
    exact = F.linear(x.double(), module.weight.double(), module.bias.double())
    for activation in (None, "gelu_tanh"):
        want = exact if activation is None else F.gelu(exact, approximate="tanh")
        got = module(x, activation=activation)
        assert got.dtype == torch.float32 and got.shape == want.shape
        assert torch.allclose(got.double(), want, rtol=1e-5, atol=1e-5), float((got - want).abs().max())
    assert kernels_run(lambda: module(x, activation="gelu_tanh")) >= {"mkldnn::_linear_pointwise"}


def kernels_run(run) -> set[str]:
    """The names of the operators ``run()`` calls, from torch's profiler."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        run()
    return {event.name for event in profile.events()}


@pytest.mark.parametrize("shape", [(1, 300, 64), (2, 33, 64), (1, 64)])
def test_bfloat16_fused_within_its_rounding(shape: tuple[int, ...]) -> None:
    """Against the float32 computation of the same bf16 numbers, the fused layer is no less accurate than
    ``F.linear`` then ``F.gelu`` (each bf16 result one rounding of it, give or take one unit)."""
    module, x = layer(64, 96, torch.bfloat16), inputs(shape, torch.bfloat16)
    exact = F.linear(x.float(), module.weight.float(), module.bias.float())
    for activation in (None, "gelu_tanh"):
        want = exact if activation is None else F.gelu(exact, approximate="tanh")
        fused = module(x, activation=activation).float()
        two_step = F.linear(x, module.weight, module.bias)
        two_step = (two_step if activation is None else F.gelu(two_step, approximate="tanh")).float()
        unit = want.abs().clamp(min=2.0 ** -10) * 2.0 ** -7                # one bf16 unit at each value
        assert bool(((fused - want).abs() <= unit).all())
        assert float((fused - want).abs().mean()) <= float((two_step - want).abs().mean()) * 1.05
    assert torch.allclose(linear(x, module.weight, module.bias).float(), exact, rtol=2 ** -7, atol=2 ** -10)


def test_bfloat16_non_contiguous_input_and_no_bias() -> None:
    module, x = layer(64, 96, torch.bfloat16), inputs((300, 2, 64), torch.bfloat16).transpose(0, 1)
    assert torch.equal(module(x), module(x.contiguous()))                             # fused on a contiguous copy
    fused = linear(x.contiguous(), module.weight, None).float()
    assert torch.allclose(fused, F.linear(x.float(), module.weight.float()), rtol=2 ** -7, atol=2 ** -10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gelu_follows_the_lora_delta(dtype: torch.dtype) -> None:
    """With a LoRA delta the activation applies to the sum (never to the base product alone)."""
    module, x = layer(64, 96, dtype), inputs((1, 50, 64), dtype)
    generator = torch.Generator().manual_seed(3)
    module.deltas.append(LowRankDelta(torch.randn(4, 64, generator=generator),
                                      torch.randn(96, 4, generator=generator), 0.5))
    summed = module(x)
    assert torch.equal(module(x, activation="gelu_tanh"), F.gelu(summed, approximate="tanh"))
