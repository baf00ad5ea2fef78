"""The float32 matrix-product library: fixed by LTXGRAPH_FLOAT32_MATMUL or chosen by the machine, and what it
means for a Linear layer."""
from __future__ import annotations

import platform
from pathlib import Path

import pytest
import torch

from ltxgraph_ops.models import float32_matmul as library
from ltxgraph_ops.models.layers import pack_linears
from ltxgraph_ops.weights.block_buffers import ComputeSlot
from tests.models.test_linear_fused import inputs, layer

needs_onednn = pytest.mark.skipif(not library.onednn_available(), reason="no oneDNN in this torch build")


@pytest.mark.parametrize("machine, vendor, mkl, onednn, chosen", [
    ("x86_64", "AuthenticAMD", True, True, "onednn"),        # machine B: MKL's slower path
    ("x86_64", "HygonGenuine", True, True, "onednn"),
    ("x86_64", "GenuineIntel", True, True, "blas"),          # machine A: MKL at the FMA peak
    ("x86_64", "", True, True, "blas"),                      # unknown vendor: torch's default
    ("x86_64", "AuthenticAMD", False, True, "blas"),         # another BLAS than MKL
    ("x86_64", "AuthenticAMD", True, False, "blas"),         # no oneDNN in the build
    ("aarch64", "", False, True, "blas"),
])
def test_onednn_multiplies_float32_only_where_mkl_is_not_at_home(machine: str, vendor: str, mkl: bool,
                                                                  onednn: bool, chosen: str) -> None:
    choice = library.library_for(machine, vendor, mkl, onednn)
    assert choice.library == chosen and choice.onednn == (chosen == "onednn") and choice.reason


def test_auto_follows_this_machine(monkeypatch) -> None:
    monkeypatch.delenv(library.SETTING, raising=False)
    want = library.library_for(platform.machine(), library.cpu_vendor(), torch.backends.mkl.is_available(),
                               library.onednn_available())
    assert library.float32_matmul() == want
    monkeypatch.setenv(library.SETTING, "auto")
    assert library.float32_matmul() == want


def test_the_vendor_is_read_from_the_kernel() -> None:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    vendors = {line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("vendor_id")}
    assert library.cpu_vendor() == (vendors.pop() if vendors else "")


@pytest.mark.parametrize("name", ["onednn", "blas"])
def test_the_setting_fixes_the_library(monkeypatch, name: str) -> None:
    monkeypatch.setenv(library.SETTING, name)
    expected = name if library.onednn_available() else "blas"
    assert library.float32_matmul().library == expected


def test_an_unknown_setting_is_refused_naming_it(monkeypatch) -> None:
    monkeypatch.setenv(library.SETTING, "openblas")
    with pytest.raises(ValueError, match="LTXGRAPH_FLOAT32_MATMUL='openblas'.*auto, onednn, blas"):
        library.float32_matmul()


@needs_onednn
@pytest.mark.parametrize("name", ["onednn", "blas"])
def test_a_packed_float32_layer_and_a_dequantising_one_give_the_same_bits(monkeypatch, name: str) -> None:
    """A float32 weight is packed where oneDNN multiplies float32 (plain where the BLAS does); a resident layer
    and one dequantising its fp8 weight into shared buffers (plain) give the same bits at every row count, through
    the library chosen (oneDNN: a single row multiplied as the first of two)."""
    monkeypatch.setenv(library.SETTING, name)
    resident, streamed = layer(64, 96, torch.float32), layer(64, 96, torch.float32)
    streamed.weight = torch.nn.Parameter(resident.weight.detach().to(torch.float8_e4m3fn), requires_grad=False)
    resident.weight.data = streamed.weight.detach().float()
    streamed.weight_buffers = ComputeSlot(torch.float32)
    plain_weight = resident.weight.detach().clone()
    assert pack_linears(torch.nn.ModuleList([resident]), torch.float32) == (name == "onednn")
    assert resident.packed == (name == "onednn")
    for rows in ((1, 64), (2, 40, 64)):
        x = inputs(rows, torch.float32)
        if name == "onednn":
            flat = x.reshape(-1, 64)
            padded = torch.cat([flat, flat.new_zeros(1, 64)]) if len(flat) == 1 else flat
            product = torch.ops.mkldnn._linear_pointwise(padded, plain_weight, resident.bias, "none", [], "")
            want = product[:len(flat)].reshape(*x.shape[:-1], 96)
        else:
            want = torch.nn.functional.linear(x, plain_weight, resident.bias)
        assert torch.equal(resident(x), want) and torch.equal(streamed(x), want)
