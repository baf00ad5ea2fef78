"""The bit-level NaN / infinity check agrees with decoding every value, in every format a weight file holds."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ltxgraph_ops.weights.finite import NON_FINITE_BITS, has_non_finite

FORMATS = list(NON_FINITE_BITS)


def decoded_non_finite(tensor: torch.Tensor) -> bool:
    """The definition: some value, decoded, is not finite (every format here decodes exactly to float64)."""
    return not bool(torch.isfinite(tensor.double()).all())


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from(FORMATS), count=st.integers(1, 300), chunk=st.integers(1, 64), seed=st.integers(0, 2**31),
       planted=st.lists(st.integers(0, 299), max_size=3))
def test_agrees_with_decoding_on_any_bits(dtype, count, chunk, seed, planted) -> None:
    """Random bit patterns (every sign, exponent and mantissa, so NaN and infinity turn up on their own), some
    positions made all-ones in the exponent, checked in chunks of any size."""
    integer, mask = NON_FINITE_BITS[dtype]
    random_bytes = torch.randint(0, 256, (count * dtype.itemsize,), dtype=torch.uint8,
                                 generator=torch.Generator().manual_seed(seed))
    tensor = random_bytes.view(dtype)
    finite = tensor.clone()
    finite.view(integer).bitwise_and_(~mask if integer != torch.uint8 else 0xFF ^ mask)   # exponent cleared
    assert not has_non_finite(finite, chunk) and not decoded_non_finite(finite)
    for index in planted:
        if index < count:
            finite.view(integer)[index] |= mask
    assert has_non_finite(finite, chunk) == decoded_non_finite(finite) == any(i < count for i in planted)
    assert has_non_finite(tensor, chunk) == decoded_non_finite(tensor)


@pytest.mark.parametrize("dtype", FORMATS)
@pytest.mark.parametrize("special", ["nan", "inf", "-inf"])
def test_finds_one_special_value_among_many(dtype, special) -> None:
    """One NaN or infinity in the last chunk of a 2-D weight; fp8 e4m3fn has no infinity (it saturates)."""
    weight = torch.randn(64, 100).to(dtype)
    assert not has_non_finite(weight, chunk=1000)
    value = float(special)
    weight[63, 99] = torch.tensor(value).to(dtype)
    expected = special == "nan" or dtype != torch.float8_e4m3fn
    assert decoded_non_finite(weight) == expected
    assert has_non_finite(weight, chunk=1000) == expected


def test_formats_without_bits_are_decoded() -> None:
    weight = torch.zeros(10, dtype=torch.float8_e4m3fnuz)
    assert not has_non_finite(weight)
    assert has_non_finite(torch.tensor([0.0, float("nan")]).to(torch.float8_e4m3fnuz))
    assert not has_non_finite(torch.empty(0, dtype=torch.bfloat16))
