"""Which library multiplies float32 matrices on this CPU: oneDNN, or the BLAS behind ``F.linear``.

torch's x86 builds multiply float32 through MKL, whose fast kernels are chosen for Intel CPUs: on an Intel Xeon
(BENCHMARKS.md, machine A) its sgemm runs at the AVX-512 FMA peak and oneDNN gains nothing, while on an AMD EPYC
(machine B) it takes a slower path and oneDNN is 1.05-1.3x faster at the transformer's shapes, 2.2x on single rows
(``python tools/bench.py --only float32-matmul-libraries`` measures both on any machine). So oneDNN multiplies
float32 on x86 CPUs that are not Intel's when torch's BLAS is MKL, and the BLAS everywhere else.

The choice follows the hardware, not a timing, so that every process on a machine computes the same float32
bits (a timing near the line could pick differently in two processes of one batch). The two libraries differ
only in float32 rounding (the accumulation order). ``LTXGRAPH_FLOAT32_MATMUL=onednn|blas`` fixes the choice.
"""
from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

SETTING = "LTXGRAPH_FLOAT32_MATMUL"
CHOICES = ("auto", "onednn", "blas")
MKL_FAST_VENDOR = "GenuineIntel"


@dataclass(frozen=True)
class Float32Matmul:
    """The float32 choice and why. library: "onednn" | "blas"; reason: a few words for reports."""

    library: str
    reason: str

    @property
    def onednn(self) -> bool:
        return self.library == "onednn"


def onednn_available() -> bool:
    """Whether this torch build has oneDNN (mkldnn) for the CPU."""
    return torch.backends.mkldnn.is_available()


@functools.cache
def cpu_vendor() -> str:
    """The CPU's vendor id as the kernel reports it ("GenuineIntel", "AuthenticAMD", ...; "" when unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "vendor_id":
            return value.strip()
    return ""


def library_for(machine: str, vendor: str, blas_is_mkl: bool, onednn: bool) -> Float32Matmul:
    """The rule: oneDNN on an x86 CPU (``machine`` as ``platform.machine()`` names it) from another vendor than
    Intel when the BLAS is MKL and oneDNN is there; the BLAS otherwise."""
    if not onednn:
        return Float32Matmul("blas", "this torch build has no oneDNN")
    if machine.lower() not in ("x86_64", "amd64") or not blas_is_mkl:
        return Float32Matmul("blas", "torch's BLAS is not MKL on this machine")
    if vendor in (MKL_FAST_VENDOR, ""):
        return Float32Matmul("blas", f"MKL's own kernels on a {vendor or 'CPU of unknown vendor'}")
    return Float32Matmul("onednn", f"oneDNN: MKL takes its slower path on this {vendor} CPU")


def float32_matmul() -> Float32Matmul:
    """The float32 matrix-product library for CPU tensors: ``LTXGRAPH_FLOAT32_MATMUL`` when set to a library, else
    :func:`library_for` this machine. An unknown value is a ``ValueError`` naming it."""
    setting = os.environ.get(SETTING, "auto") or "auto"
    if setting not in CHOICES:
        raise ValueError(f"{SETTING}={setting!r} is not one of {', '.join(CHOICES)}")
    if setting != "auto" and onednn_available():
        return Float32Matmul(setting, f"{SETTING}={setting}")
    return _this_machine()


@functools.cache
def _this_machine() -> Float32Matmul:
    """:func:`library_for` this machine, worked out once (every Linear call asks)."""
    return library_for(platform.machine(), cpu_vendor(), torch.backends.mkl.is_available(), onednn_available())
