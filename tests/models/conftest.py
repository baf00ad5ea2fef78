"""Fixtures shared by the model tests."""
from __future__ import annotations

import pytest

from ltxgraph_ops.models.attention import Attention
from ltxgraph_ops.models.elementwise import ElementwiseKernels
from ltxgraph_ops.models.fused_norm import native_kernels
from ltxgraph_ops.models.transformer_block import AVBlock


@pytest.fixture
def native_kernels_everywhere(monkeypatch) -> ElementwiseKernels:
    """Every transformer block and attention built during the test runs its element-wise regions on the one-pass
    C kernels, as a loaded model does."""
    native = native_kernels()
    assert native is not None, "the kernels build wherever the test suite runs (a C compiler is part of the setup)"
    for layer in (AVBlock, Attention):
        monkeypatch.setattr(layer, "kernels", native)
    return native
