"""The one-pass C kernels of the blocks' element-wise regions against the eager functions they replace."""
from __future__ import annotations

import platform
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ltxgraph_ops import native
from ltxgraph_ops.model_files import load_transformer
from ltxgraph_ops.models import elementwise, fused_norm
from ltxgraph_ops.models.elementwise import use_kernels
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.tiny.files import write_checkpoint
from tools.oracle.transformer import audio_input, video_input

HAS_COMPILER = any(shutil.which(name) for name in ("cc", "gcc"))
pytestmark = pytest.mark.skipif(not HAS_COMPILER, reason="the kernels are built with the system's C compiler")
DTYPES = (torch.float32, torch.bfloat16)
EPS = 1e-6


@pytest.fixture(scope="module")
def kernels() -> elementwise.ElementwiseKernels:
    built = fused_norm.native_kernels()
    assert built is not None, "a C compiler is on the machine, so the kernel must build"
    return built


@pytest.fixture(scope="module", params=["this CPU", "no AVX-512"])
def builds(request, kernels) -> elementwise.ElementwiseKernels:
    """The kernels as built for this machine, and built without AVX-512 (the scalar loops other CPUs run; off
    x86 they are what this machine builds anyway)."""
    if request.param == "this CPU" or platform.machine() not in ("x86_64", "AMD64"):
        return kernels
    library = native.load_library("norm-scalar", fused_norm.SOURCE, (*native.BASE_FLAGS, "-mno-avx512f"))
    assert library is not None
    return fused_norm.native_kernels(fused_norm.FusedNorm(library))


def _close_to_float32(got: torch.Tensor, want: torch.Tensor) -> None:
    """float32 output: equal within float32 rounding; bfloat16 output: the float32 result rounded once (at most
    one bfloat16 step apart, where the float32 results differ in their last bits)."""
    want = want.float()
    if got.dtype == torch.float32:
        torch.testing.assert_close(got, want, rtol=2e-5, atol=2e-5 * max(1.0, want.abs().max().item()))
        return
    step = torch.finfo(torch.bfloat16).eps * want.abs().clamp_min(torch.finfo(torch.float32).tiny)
    excess = (got.float() - want).abs() - step
    assert excess.max().item() <= 1e-6 * max(1.0, want.abs().max().item()), excess.max().item()


@st.composite
def region(draw):
    """Shapes and dtypes as the blocks call the regions: x [B, T, D]; modulation rows [B, 1 or T, D] (also
    strided views of a [B, T, k, D] table); split RoPE tables [B or 1, T, H, 1, D / 2H]."""
    batch, tokens = draw(st.integers(1, 3)), draw(st.integers(1, 40))
    heads, half = draw(st.integers(1, 4)), draw(st.integers(1, 12))
    width = 2 * heads * half
    dtype = draw(st.sampled_from(DTYPES))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))

    def tensor(*shape, kind=None):
        return (torch.randn(shape, generator=generator) * 3).to(kind or dtype)

    per_token = draw(st.booleans())
    rows = tensor(batch, tokens if per_token else 1, 3, width, kind=draw(st.sampled_from(DTYPES)))
    shift, scale = rows[:, :, 0], rows[:, :, 2]             # strided views, last dimension contiguous
    table = draw(st.sampled_from(DTYPES))
    cos, sin = (tensor(draw(st.sampled_from([1, batch])), tokens, heads, 1, half, kind=table) for _ in range(2))
    return tensor(batch, tokens, width), tensor(width), shift, scale, cos, sin


@settings(max_examples=60, deadline=None)
@given(region())
def test_each_region_is_the_float32_eager_result_rounded_once(builds, case) -> None:
    kernels = builds
    x, weight, shift, scale, cos, sin = case
    wide = [t.float() for t in case]
    _close_to_float32(kernels.modulated(x, EPS, shift, scale), elementwise.modulated(wide[0], EPS, *wide[2:4]))
    _close_to_float32(kernels.normalized(x, weight, EPS), elementwise.normalized(wide[0], wide[1], EPS))
    _close_to_float32(kernels.normalized(x, None, EPS), elementwise.normalized(wide[0], None, EPS))
    _close_to_float32(kernels.normalized_rotated(x, weight, EPS, cos, sin),
                      elementwise.normalized_rotated(wide[0], wide[1], EPS, wide[4], wide[5]))
    for native, eager in ((kernels.modulated(x, EPS, shift, scale), elementwise.modulated(x, EPS, shift, scale)),
                          (kernels.normalized_rotated(x, weight, EPS, cos, sin),
                           elementwise.normalized_rotated(x, weight, EPS, cos, sin))):
        assert native.dtype == eager.dtype                    # mixed dtypes promote as in eager


@settings(max_examples=40, deadline=None)
@given(region())
def test_heads_first_results_are_the_same_bits_written_head_by_head(builds, case) -> None:
    """Queries for attention: [B, H, T, d] contiguous, each value the bits of the row-major result, for head
    widths that 16 lanes do and do not divide."""
    kernels = builds
    x, weight, shift, scale, cos, sin = case
    heads = cos.shape[-3]
    for rows, heads_first in ((kernels.normalized_rotated(x, weight, EPS, cos, sin),
                               kernels.normalized_rotated(x, weight, EPS, cos, sin, heads=heads)),
                              (kernels.normalized(x, weight, EPS), kernels.normalized(x, weight, EPS, heads=heads))):
        assert heads_first.shape == (x.shape[0], heads, x.shape[1], x.shape[2] // heads)
        assert heads_first.is_contiguous()
        assert torch.equal(heads_first, elementwise.split_heads(rows, heads))


def test_heads_first_the_kernel_cannot_write_is_a_view_of_the_eager_result(kernels) -> None:
    """A head count that differs from the RoPE table's (or does not divide the width) takes the eager function,
    as the same [B, H, T, d] values."""
    generator = torch.Generator().manual_seed(3)
    x, weight = torch.randn(1, 6, 48, generator=generator), torch.randn(48, generator=generator)
    cos, sin = torch.rand(1, 6, 2, 1, 12, generator=generator), torch.rand(1, 6, 2, 1, 12, generator=generator)
    eager = elementwise.normalized_rotated(x, weight, EPS, cos, sin)
    got = kernels.normalized_rotated(x, weight, EPS, cos, sin, heads=4)
    torch.testing.assert_close(got, elementwise.split_heads(eager, 4))
    assert fused_norm.load_fused_norm().run(x, EPS, weight=weight, cos=cos, sin=sin, heads_first=4) is None
    assert fused_norm.load_fused_norm().run(x, EPS, weight=weight, heads_first=5) is None


def test_rows_split_over_threads_give_the_same_bits(kernels, monkeypatch) -> None:
    generator = torch.Generator().manual_seed(1)
    x, shift, scale = (torch.randn(2, 301, 256, generator=generator) for _ in range(3))
    weight, cos, sin = torch.randn(256), torch.rand(2, 301, 4, 1, 32), torch.rand(2, 301, 4, 1, 32)
    threads = torch.get_num_threads()
    try:
        monkeypatch.setattr(fused_norm, "PARALLEL_ELEMENTS", 1)
        torch.set_num_threads(3)
        split = (kernels.modulated(x, EPS, shift, scale), kernels.normalized_rotated(x, weight, EPS, cos, sin))
        torch.set_num_threads(1)
        whole = (kernels.modulated(x, EPS, shift, scale), kernels.normalized_rotated(x, weight, EPS, cos, sin))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(split, whole))


def test_a_non_finite_value_spoils_its_row_only(kernels) -> None:
    x = torch.randn(1, 3, 64)
    x[0, 1, 5] = float("nan")
    out = kernels.normalized(x, torch.ones(64), EPS)
    assert out[0, 1].isnan().all() and out[0, [0, 2]].isfinite().all()


def test_operands_the_kernel_cannot_read_take_the_eager_function(kernels) -> None:
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(2, 64, 5, generator=generator).transpose(1, 2)          # [2, 5, 64], last dimension strided
    shift, scale = torch.randn(2, 1, 64, generator=generator), torch.randn(2, 1, 64, generator=generator)
    torch.testing.assert_close(kernels.modulated(x, EPS, shift, scale), elementwise.modulated(x, EPS, shift, scale))
    half = x.to(torch.float16)                                              # a dtype the kernel does not read
    assert torch.equal(kernels.normalized(half, torch.ones(64, dtype=torch.float16), EPS),
                       elementwise.normalized(half, torch.ones(64, dtype=torch.float16), EPS))
    assert fused_norm.load_fused_norm().run(torch.randn(4, 64), EPS) is None    # not [B, T, D]


def test_native_kernels_are_what_a_loaded_transformer_runs_and_equal_eager(tmp_path: Path) -> None:
    model = load_transformer(write_checkpoint(tmp_path / "tiny.safetensors", "float32", 0, [tiny]))
    assert {m.kernels.name for m in model.modules() if hasattr(m, "kernels")} == {"native"}
    generator, config = torch.Generator().manual_seed(0), tiny.tiny_config()
    video, audio = video_input(config, generator), audio_input(config, generator)
    with torch.no_grad():
        native = model(video, audio)
        use_kernels(model, elementwise.EAGER)
        eager = model(video, audio)
    for want, got in ((eager.video, native.video), (eager.audio, native.audio)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def test_streamed_blocks_run_the_native_kernels(tmp_path: Path, monkeypatch) -> None:
    calls = []
    kernel = fused_norm.load_fused_norm()
    original = kernel.run
    monkeypatch.setattr(kernel, "run", lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    model = load_transformer(write_checkpoint(tmp_path / "tiny.safetensors", "fp8", 0, [tiny]), streamed=True)
    generator, config = torch.Generator().manual_seed(0), tiny.tiny_config()
    with torch.no_grad():
        model(video_input(config, generator), audio_input(config, generator))
    assert len(calls) >= config["num_layers"] * 4


def test_the_switch_keeps_the_eager_regions(monkeypatch) -> None:
    monkeypatch.setenv("LTXGRAPH_NATIVE_KERNELS", "0")
    fused_norm.load_fused_norm.cache_clear()
    try:
        assert fused_norm.native_kernels() is None
    finally:
        fused_norm.load_fused_norm.cache_clear()
