"""The fast fp8 conversion equals torch's own, bit for bit: all 256 codes of both fp8 formats (NaN, subnormals,
signed zeros included), with and without a per-tensor or per-row scale, into float32 and bfloat16, across chunk
boundaries and into a reused workspace; the compiled CPU kernel and the eager path alike."""
from __future__ import annotations

import shutil

import pytest
import torch

from ltxgraph_ops.weights.fp8 import DequantWorkspace, dequantize, dequantize_into
from ltxgraph_ops.weights.fp8_kernel import PARALLEL_ELEMENTS, load_kernel

FP8 = [torch.float8_e4m3fn, torch.float8_e5m2]
OUT = [torch.float32, torch.bfloat16]


def bits(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.view(torch.int32 if tensor.dtype == torch.float32 else torch.int16)


def reference(weight: torch.Tensor, dtype: torch.dtype, scale: torch.Tensor | None) -> torch.Tensor:
    """torch's own path: upcast to float32, multiply by the float32 scale, round to ``dtype``."""
    wide = weight.to(torch.float32)
    if scale is not None:
        wide = wide * (scale if scale.numel() == 1 else scale.reshape(-1, *[1] * (weight.ndim - 1)))
    return wide.to(dtype)


def all_codes(fp8: torch.dtype) -> torch.Tensor:
    return torch.arange(256, dtype=torch.uint8).view(fp8)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("fp8", FP8)
@pytest.mark.parametrize("dtype", OUT)
@pytest.mark.parametrize("scale", [None, 0.0123, 3.0e-5, 7.0])
def test_every_code_converts_bit_exactly(fp8: torch.dtype, dtype: torch.dtype, scale: float | None,
                                         compiled: bool) -> None:
    weight = all_codes(fp8)
    scale_t = None if scale is None else torch.tensor(scale, dtype=torch.float32)
    got = dequantize_into(weight, torch.empty(256, dtype=dtype), scale_t, compiled=compiled)
    want = reference(weight, dtype, scale_t)
    assert torch.equal(bits(got), bits(want))
    if fp8 == torch.float8_e4m3fn:
        assert int(got.isnan().sum()) == 2          # 0x7F and 0xFF
    if scale is None:                               # no scale: torch's .to(float32) itself, NaN bits included
        assert torch.equal(bits(dequantize(weight)), bits(weight.to(torch.float32)))


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("fp8", FP8)
@pytest.mark.parametrize("dtype", OUT)
def test_per_row_scale_and_chunk_boundaries(fp8: torch.dtype, dtype: torch.dtype, compiled: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randint(0, 256, (37, 300), dtype=torch.uint8, generator=generator).view(fp8)
    scales = torch.rand(37, generator=generator) * 0.1
    workspace = DequantWorkspace(chunk_elements=1000)           # 3 rows per chunk, a partial last chunk
    out = torch.full(weight.shape, 5.0, dtype=dtype)
    for scale in (scales, scales[3], None):
        dequantize_into(weight, out, scale, workspace, compiled=compiled)
        assert torch.equal(bits(out), bits(reference(weight, dtype, scale)))


def test_the_compiled_kernel_is_built_where_a_compiler_exists() -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine: the eager path is the one in use")
    assert load_kernel() is not None


@pytest.mark.parametrize("dtype", OUT)
def test_kernel_split_over_threads_equals_one_thread(dtype: torch.dtype) -> None:
    """Rows split between two threads (above the parallel size) give the one-thread result, which is torch's."""
    kernel = load_kernel()
    if kernel is None:
        pytest.skip("no compiled kernel on this machine")
    rows = PARALLEL_ELEMENTS // 500 + 7
    generator = torch.Generator().manual_seed(2)
    weight = torch.randint(0, 256, (rows, 1000), dtype=torch.uint8, generator=generator).view(torch.float8_e4m3fn)
    scales = torch.rand(rows, generator=generator)
    one, two = torch.empty(weight.shape, dtype=dtype), torch.empty(weight.shape, dtype=dtype)
    kernel.convert(weight, one, scales, threads=1)
    kernel.convert(weight, two, scales, threads=2)
    assert torch.equal(bits(one), bits(two))
    assert torch.equal(bits(one), bits(reference(weight, dtype, scales)))


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("dtype", OUT)
def test_per_tensor_scale_table_lookup_of_large_weights(dtype: torch.dtype, aligned: bool) -> None:
    """One scale for the whole weight: the kernel converts the 256 codes once and looks every element up (byte
    permutes, non-temporal stores above a million elements, an unaligned output too); torch's values, NaN bits
    included, on one thread and split over two."""
    kernel = load_kernel()
    if kernel is None:
        pytest.skip("no compiled kernel on this machine")
    generator = torch.Generator().manual_seed(3)
    weight = torch.randint(0, 256, (2100, 1001), dtype=torch.uint8, generator=generator).view(torch.float8_e4m3fn)
    scale = torch.tensor([0.0371])
    want = reference(weight, dtype, scale)
    for threads in (1, 2):
        storage = torch.zeros(weight.numel() + 1, dtype=dtype)
        out = (storage[:-1] if aligned else storage[1:]).view(weight.shape)
        kernel.convert(weight, out, scale, threads=threads)
        assert torch.equal(bits(out), bits(want))
        assert out.isnan().sum() == (weight.view(torch.uint8) & 0x7F).eq(0x7F).sum()


def test_rows_longer_than_a_chunk_and_nan_free_skip() -> None:
    weight = torch.randint(0, 256, (3, 5000), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    weight[(weight & 0x7F) == 0x7F] = 0
    fp8 = weight.view(torch.float8_e4m3fn)
    out = torch.empty(fp8.shape)
    dequantize_into(fp8, out, torch.tensor(0.5), DequantWorkspace(chunk_elements=1024), nan_free=True)
    assert torch.equal(bits(out), bits(reference(fp8, torch.float32, torch.tensor(0.5))))


def test_workspace_is_reused_not_reallocated() -> None:
    workspace = DequantWorkspace(chunk_elements=4096)
    before = (workspace.bits.data_ptr(), workspace.values.data_ptr())
    out = torch.empty(64, 256)
    for seed in range(3):
        weight = torch.randint(0, 256, (64, 256), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(seed)).view(torch.float8_e4m3fn)
        dequantize_into(weight, out, None, workspace)
        assert torch.equal(bits(out), bits(weight.float()))
    assert (workspace.bits.data_ptr(), workspace.values.data_ptr()) == before


def test_bad_arguments_are_named() -> None:
    weight = all_codes(torch.float8_e4m3fn).reshape(16, 16)
    with pytest.raises(TypeError, match="not an fp8 dtype"):
        dequantize_into(weight.float(), torch.empty(16, 16))
    with pytest.raises(ValueError, match="shape \\[16, 16\\]"):
        dequantize_into(weight, torch.empty(16, 15))
    with pytest.raises(ValueError, match="float32/bfloat16"):
        dequantize_into(weight, torch.empty(16, 16, dtype=torch.float16))
    with pytest.raises(ValueError, match="5 scales"):
        dequantize_into(weight, torch.empty(16, 16), torch.ones(5))


def test_a_forked_child_converts_with_threads_of_its_own() -> None:
    """After a fork (a server's or a pool's worker) the split conversion still runs: the child starts its own
    threads instead of waiting on its parent's, which it does not have."""
    import multiprocessing

    kernel = load_kernel()
    if kernel is None:
        pytest.skip("no compiled kernel on this machine")
    rows = PARALLEL_ELEMENTS // 500 + 7
    weight = torch.randint(0, 256, (rows, 1000), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(4)).view(torch.float8_e4m3fn)
    scales = torch.full((1,), 0.25)
    kernel.convert(weight, torch.empty(weight.shape), scales, threads=2)          # the parent's pool exists
    out = torch.zeros(weight.shape, dtype=torch.bfloat16).share_memory_()   # the child writes here
    child = multiprocessing.get_context("fork").Process(target=_convert_in_child, args=(weight, out))
    child.start()
    child.join(timeout=60)
    if child.exitcode is None:                 # still waiting on threads it does not have
        child.kill()
        child.join()
    assert child.exitcode == 0
    assert torch.equal(bits(out), bits(reference(weight, torch.bfloat16, torch.tensor(0.25))))


def _convert_in_child(weight: torch.Tensor, out: torch.Tensor) -> None:
    # only the kernel runs here: torch's own parallel ops can hang in a child forked after the parent used them
    load_kernel().convert(weight, out, torch.full((1,), 0.25), threads=2)
