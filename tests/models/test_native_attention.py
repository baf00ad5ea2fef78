"""The native attention kernel, in bf16 and in float32: as close to exact attention as torch's own attention in
that dtype, whatever the shapes, strides, threads and query parts; the rule that picks it; the Attention module
through it."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from ltxgraph_ops.models import native_attention
from ltxgraph_ops.models.attention import Attention, attention_chunks

kernel = native_attention.load_native_attention()
needs_kernel = pytest.mark.skipif(kernel is None or torch.bfloat16 not in kernel.dtypes,
                                  reason="no AVX512-BF16 build of the attention kernel here")
needs_float32_kernel = pytest.mark.skipif(kernel is None, reason="no AVX-512 build of the attention kernel here")


def operands(batch: int, heads: int, queries: int, keys: int, size: int, seed: int = 0, spread: float = 2.0,
             strided: bool = False, dtype: torch.dtype = torch.bfloat16
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q [B, H, T, d] and k, v [B, S, H d] in ``dtype``; ``strided``: q a transposed view and k, v token slices
    of longer tensors (a prepared text's keys are such slices)."""
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=generator) * spread).to(dtype)

    if strided:
        q = randn(batch, queries, heads, size).transpose(1, 2)
        k, v = (randn(batch, keys + 5, heads * size)[:, 3:keys + 3] for _ in range(2))
    else:
        q, k, v = randn(batch, heads, queries, size), randn(batch, keys, heads * size), randn(batch, keys, heads * size)
    return q, k, v


def by_torch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dtype: torch.dtype,
             bias: torch.Tensor | None = None) -> torch.Tensor:
    """torch's attention of the same operands computed in ``dtype``, as [B, T, H d]."""
    batch, heads, queries, size = q.shape
    k, v = (t.unflatten(-1, (heads, size)).transpose(1, 2).to(dtype) for t in (k, v))
    out = F.scaled_dot_product_attention(q.to(dtype), k, v, attn_mask=None if bias is None else bias.to(dtype))
    return out.transpose(1, 2).reshape(batch, queries, heads * size)


def assert_as_close_as_torch_bf16(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                  bias: torch.Tensor | None = None) -> None:
    """The kernel's error against float64 attention is no larger than torch's bf16 attention's (both round the
    output to bf16: that rounding is most of either error)."""
    exact = by_torch(q, k, v, torch.float64, bias)
    ours = kernel.run(q, k, v, bias)
    assert ours.dtype == torch.bfloat16 and ours.shape == exact.shape
    ours_error, torch_error = ((t.double() - exact).abs() for t in (ours, by_torch(q, k, v, torch.bfloat16, bias)))
    ulp = 2.0 ** -8 * exact.abs().max().item()
    assert ours_error.max() <= max(1.25 * torch_error.max().item(), ulp)
    # the mean of n roundings wanders by about ulp / sqrt(n) from draw to draw: one query's 16 outputs may favour
    # torch's by a few tenths of an ulp
    assert ours_error.mean() <= 1.1 * torch_error.mean() + ulp / ours_error.numel() ** 0.5


def assert_as_close_as_torch_float32(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                     bias: torch.Tensor | None = None) -> None:
    """float32 operands: the kernel's error against float64 attention is of the order of torch's float32
    attention's (another summation order and exp polynomial: measured up to 3.1x its max, at a head of 256, and
    2x its mean; 1.2x its mean over 200 draws of a query against 151 keys), or within float32 rounding of the
    output's scale: 2^-18 of it at most, 2^-20 on average (few outputs, where one draw may favour torch's)."""
    exact = by_torch(q, k, v, torch.float64, bias)
    ours = kernel.run(q, k, v, bias)
    assert ours.dtype == torch.float32 and ours.shape == exact.shape
    ours_error, torch_error = ((t.double() - exact).abs() for t in (ours, by_torch(q, k, v, torch.float32, bias)))
    scale = exact.abs().max().item()
    assert ours_error.max() <= max(4 * torch_error.max().item(), 2.0 ** -18 * scale)
    assert ours_error.mean() <= 2.5 * torch_error.mean().item() + 2.0 ** -20 * scale


def assert_as_close_as_torch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             bias: torch.Tensor | None = None) -> None:
    (assert_as_close_as_torch_float32 if q.dtype == torch.float32 else assert_as_close_as_torch_bf16)(q, k, v, bias)


DTYPES = [pytest.param(torch.bfloat16, marks=needs_kernel, id="bf16"),
          pytest.param(torch.float32, marks=needs_float32_kernel, id="float32")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch, heads, queries, keys, size", [
    (1, 16, 2304, 2304, 64),     # the transformer-vs-reference model's video self-attention
    (2, 4, 100, 77, 64),         # batched guidance passes; no block is full
    (1, 2, 1, 1, 16),            # one query, one key
    (1, 3, 65, 300, 32),         # one query past a block of 64; keys past a block of 256
    (2, 2, 130, 257, 128),
    (1, 1, 64, 64, 256),         # the largest head
    (1, 2, 33, 17, 48),          # a head of three 16-channel groups
    (1, 2, 70, 90, 80),
    (3, 32, 7, 1024, 128),       # few queries, many keys (text attention of audio tokens)
])
@pytest.mark.parametrize("strided", [False, True])
def test_kernel_is_as_close_to_exact_attention_as_torchs(batch, heads, queries, keys, size, strided, dtype) -> None:
    assert_as_close_as_torch(*operands(batch, heads, queries, keys, size, strided=strided, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_peaked_scores_and_a_maximum_that_grows_from_block_to_block(dtype: torch.dtype) -> None:
    """Scores that rise along the keys move the running maximum in every key block (each block rescales the
    output so far); a large spread makes the softmax nearly one-hot."""
    q, k, v = operands(1, 4, 80, 700, 64, spread=1.0, dtype=dtype)
    ramp = torch.linspace(-4, 4, 700).view(1, 700, 1)
    k = (k.float() + ramp * q.float().mean(dim=(1, 2)).repeat(1, 4).unsqueeze(1).sign()).to(dtype)
    assert_as_close_as_torch(q, k, v)
    assert_as_close_as_torch(*operands(1, 4, 80, 700, 64, spread=6.0, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 2), heads=st.integers(1, 3), queries=st.integers(1, 150), keys=st.integers(1, 300),
       size=st.sampled_from([16, 32, 64, 96, 128]), seed=st.integers(0, 2**16))
def test_any_shape_is_as_close_as_torch(batch, heads, queries, keys, size, seed, dtype) -> None:
    assert_as_close_as_torch(*operands(batch, heads, queries, keys, size, seed=seed, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_bits_on_any_thread_count_and_in_query_parts(dtype: torch.dtype) -> None:
    """Each query's row comes from its own block in one order: threads and query parts do not change a bit
    (the Attention module runs its queries in parts under a memory budget)."""
    q, k, v = operands(2, 8, 300, 500, 64, dtype=dtype)
    whole = kernel.run(q, k, v)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert torch.equal(kernel.run(q, k, v), whole)
    finally:
        torch.set_num_threads(threads)
    parts = torch.cat([kernel.run(q[:, :, rows], k, v) for rows in (slice(0, 77), slice(77, 300))], dim=1)
    assert torch.equal(parts, whole)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", ["q", "k", "v"])
def test_a_nan_reaches_the_output_as_in_torch(where: str, dtype: torch.dtype) -> None:
    """A NaN in a query spoils its row, in a key or a value every row: never hidden by the kernel's clamps."""
    q, k, v = (t.clone() for t in operands(1, 2, 70, 300, 64, dtype=dtype))
    {"q": q[0, 1, 5], "k": k[0, 280], "v": v[0, 7]}[where][3] = float("nan")
    ours, torchs = kernel.run(q, k, v), by_torch(q, k, v, dtype)
    assert torchs.isnan().any()
    assert torch.equal(ours.isnan(), torchs.isnan())


@needs_kernel
def test_buffers_that_cannot_be_allocated_are_a_memory_error() -> None:
    """2^38 keys (broadcast: no memory behind them) need 32 TiB of packed keys: refused, not a crash."""
    q = torch.randn(1, 1, 1, 64).bfloat16()
    k = torch.randn(1, 1, 64).bfloat16().expand(1, 2**38, 64)
    with pytest.raises(MemoryError, match="1 queries x 274877906944 keys"):
        kernel.run(q, k, k)


@needs_kernel
@pytest.mark.parametrize("change", ["float16", "head size 8", "head size 72", "no keys", "other k shape",
                                    "k of another dtype", "float32 q"])
def test_kernel_declines_what_it_does_not_take(change: str) -> None:
    q, k, v = operands(1, 2, 10, 12, 64)
    if change == "float16":
        q, k, v = q.half(), k.half(), v.half()
    elif change == "float32 q":
        q = q.float()
    elif change.startswith("head size"):
        size = int(change.split()[-1])
        q, k, v = operands(1, 2, 10, 12, size)
    elif change == "no keys":
        k, v = k[:, :0], v[:, :0]
    elif change == "other k shape":
        k = k[..., :64]
    else:
        k = k.half()
    assert kernel.run(q, k, v) is None


def padding_bias(batch: int, keys: int, valid: list[int], dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """[B, 1, 1, S]: 0 on each sample's first ``valid[b]`` keys, the dtype's most negative number after them (as
    the transformer builds a text mask's bias)."""
    kept = torch.arange(keys) < torch.tensor(valid)[:, None]
    return ((kept.to(dtype) - 1) * torch.finfo(dtype).max).reshape(batch, 1, 1, keys)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch, queries, keys, valid", [
    (2, 100, 300, [300, 37]),      # batched guidance: two prompts of different lengths
    (3, 70, 1024, [1024, 500, 1]),
    (1, 65, 257, [200]),
])
def test_a_bias_masks_as_in_torch(batch: int, queries: int, keys: int, valid: list[int], dtype: torch.dtype) -> None:
    """Padding masks per key, self-attention masks per query and key (log weights, -max where a key is out),
    broadcast or whole, float32 or bf16, as views of a larger tensor."""
    q, k, v = operands(batch, 4, queries, keys, 64, dtype=dtype)
    assert_as_close_as_torch(q, k, v, padding_bias(batch, keys, valid, dtype))
    generator = torch.Generator().manual_seed(1)
    assert_as_close_as_torch(q, k, v, torch.randn(1, keys, generator=generator).bfloat16())   # broadcast
    assert_as_close_as_torch(q, k, v, torch.randn(batch, 1, 1, keys, generator=generator))    # float32
    weights = torch.rand(batch, 1, queries + 3, keys, generator=generator)
    weights[..., ::3] = 0
    log_weights = torch.where(weights > 0, weights.log(), torch.finfo(torch.bfloat16).min).bfloat16()
    assert_as_close_as_torch(q, k, v, log_weights[:, :, 2:queries + 2])                      # a row slice
    assert_as_close_as_torch(q, k, v, torch.randn(queries, keys, generator=generator).half())  # float16


@needs_kernel
def test_attend_leaves_masks_per_head_and_gradients_to_torch(monkeypatch) -> None:
    monkeypatch.setenv(native_attention.SETTING, "native")
    q, k, v = operands(2, 2, 10, 12, 64)
    key_bias = padding_bias(2, 12, [12, 5])
    assert torch.equal(native_attention.attend(q, k, v, None), kernel.run(q, k, v))
    assert torch.equal(native_attention.attend(q, k, v, key_bias), kernel.run(q, k, v, key_bias))
    query_bias = torch.randn(2, 1, 10, 12)
    assert torch.equal(native_attention.attend(q, k, v, query_bias), kernel.run(q, k, v, query_bias))
    for other in (torch.zeros(2, 2, 1, 12).bfloat16(),        # per head
                  torch.ones(2, 1, 1, 12, dtype=torch.bool),   # boolean: True attends
                  torch.zeros(3, 1, 1, 12).bfloat16()):       # another batch
        assert native_attention.attend(q, k, v, other) is None
    assert native_attention.attend(q.requires_grad_(), k, v, None) is None
    with torch.no_grad():
        assert native_attention.attend(q, k, v, None) is not None
    q, k, v = (t.detach().float() for t in (q, k, v))                  # float32 takes it as well
    assert torch.equal(native_attention.attend(q, k, v, key_bias), kernel.run(q, k, v, key_bias))
    assert native_attention.attend(q.half(), k.half(), v.half(), None) is None
    monkeypatch.setenv(native_attention.SETTING, "sdpa")
    assert native_attention.attend(q, k, v, None) is None


@pytest.mark.parametrize("setting, built, flags, chosen", [
    ("auto", True, {"avx512_bf16"}, "native"),                 # machine B: AMD EPYC, no AMX
    ("auto", True, {"avx512_bf16", "amx_bf16"}, "sdpa"),       # AMX: torch's flash attention (not measured here)
    ("auto", False, {"avx512_bf16"}, "sdpa"),                  # no kernel built (no compiler, no AVX512-BF16)
    ("native", True, {"avx512_bf16", "amx_bf16"}, "native"),
    ("native", False, set(), "sdpa"),
    ("sdpa", True, {"avx512_bf16"}, "sdpa"),
])
def test_rule(setting: str, built: bool, flags: set[str], chosen: str) -> None:
    choice = native_attention.kernel_for(setting, built, frozenset(flags))
    assert choice.kernel == chosen and choice.native == (chosen == "native") and choice.reason


@pytest.mark.parametrize("setting, built, onednn, chosen", [
    ("auto", True, True, "native"),      # machine B: MKL on an AMD CPU, float32 products through oneDNN
    ("auto", True, False, "sdpa"),       # machine A (Intel): MKL at its peak inside torch's flash attention
    ("auto", False, True, "sdpa"),       # no AVX-512 build
    ("native", True, False, "native"),
    ("sdpa", True, True, "sdpa"),
])
def test_float32_rule(setting: str, built: bool, onednn: bool, chosen: str) -> None:
    choice = native_attention.kernel_for(setting, built, frozenset({"avx512_bf16", "amx_bf16"}), torch.float32, onednn)
    assert choice.kernel == chosen and choice.reason


def test_setting_is_read_per_call_and_checked(monkeypatch) -> None:
    monkeypatch.setenv(native_attention.SETTING, "sdpa")
    assert native_attention.attention_choice().kernel == "sdpa"
    monkeypatch.setenv(native_attention.SETTING, "fast")
    with pytest.raises(ValueError, match="LTXGRAPH_ATTENTION='fast'"):
        native_attention.attention_choice()
    monkeypatch.setenv(native_attention.SETTING, "native")
    monkeypatch.setenv("LTXGRAPH_NATIVE_KERNELS", "0")
    assert native_attention.attention_choice() == native_attention.AttentionChoice("sdpa", "LTXGRAPH_NATIVE_KERNELS=0")


@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_module_through_either_kernel(monkeypatch, dtype: torch.dtype) -> None:
    """A gated self-attention (with and without a mask) and a text cross-attention (with and without a padding
    mask) in bf16 or float32, its queries whole and in parts: the native kernel and torch's agree within the
    dtype's rounding."""
    torch.manual_seed(0)
    modules = []
    for context_dim in (256, 128):
        module = Attention(256, context_dim, heads=4, head_dim=64, eps=1e-6, gated=context_dim == 256)
        for parameter in module.parameters():
            parameter.data.normal_(0, 0.05)
        modules.append(module.to(dtype))
    self_attention, text_attention = modules
    x, context = torch.randn(2, 150, 256).to(dtype), torch.randn(2, 40, 128).to(dtype)
    text_bias = padding_bias(2, 40, [40, 13], dtype)
    self_bias = torch.randn(2, 1, 150, 150).to(dtype)
    results = {}
    for setting in ("native", "sdpa"):
        monkeypatch.setenv(native_attention.SETTING, setting)
        with torch.no_grad():
            results[setting] = [self_attention(x), text_attention(x, context),
                                text_attention(x, context, bias=text_bias), self_attention(x, bias=self_bias)]
    tolerance = 2 ** -6 if dtype == torch.bfloat16 else 2 ** -19
    for native, torchs in zip(results["native"], results["sdpa"]):
        scale = torchs.float().abs().max()
        assert (native.float() - torchs.float()).abs().max() <= tolerance * scale
    assert not any(torch.equal(native, torchs) for native, torchs in zip(results["native"], results["sdpa"]))
    monkeypatch.setenv(native_attention.SETTING, "native")
    with torch.no_grad(), attention_chunks(self_attention, 64):      # queries (and the mask's rows) in parts
        assert torch.equal(self_attention(x, bias=self_bias), results["native"][3])


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_key_passes_its_value_through_unchanged(dtype: torch.dtype) -> None:
    """A softmax over one key is exactly 1: the output is the value, bit for bit, as torch's."""
    q, k, v = operands(2, 3, 5, 1, 32, dtype=dtype)
    assert torch.equal(kernel.run(q, k, v), v.expand(2, 5, 96))
