"""The compute dtype policy: which floating-point type model ops compute in (``--dtype auto|float32|bfloat16``).

``auto`` picks bfloat16 where it is native and fast and float32 elsewhere: on CUDA, bfloat16 when the device
supports it; on a CPU, bfloat16 when a short matrix-product measurement (a few milliseconds, once per machine)
finds it clearly faster than float32. The measurement is cached in the cache folder under a key of the CPU
model, its bf16-related flags and the torch version, so a new CPU or torch measures again. A CPU without native
bf16 (no AVX512-BF16 / AMX) emulates it hundreds of times slower than float32; one with it runs 4-15x faster.

An explicit ``bfloat16`` on a device that cannot compute in it is refused before anything runs
(:class:`~ltxgraph.errors.InvalidInput`, exit code 2), with the reason.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .errors import InvalidInput
from .wording import API_NAMES, OptionNames

CHOICES = ("auto", "float32", "bfloat16")
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "avx_ne_convert")
MIN_SPEEDUP = 1.25          # bf16 must beat float32 by this factor to be chosen on a CPU (noise margin)
PROBE_SHAPE = (256, 512, 512)   # [M, K] x [K, N]: 134 MFLOP, ~1 ms native bf16, ~0.4 s where bf16 is emulated


@dataclass(frozen=True)
class DtypeDecision:
    """What a run computes in. dtype: "float32" | "bfloat16"; requested: what was asked ("auto" or a dtype);
    reason: why, in a few words (reported in the run summary)."""

    dtype: str
    requested: str
    reason: str

    @property
    def torch_dtype(self) -> torch.dtype:
        return TORCH_DTYPES[self.dtype]

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class MatmulTiming:
    """Best-of-n seconds of one [M, K] x [K, N] product per dtype on this machine's CPU."""

    float32: float
    bfloat16: float

    @property
    def speedup(self) -> float:
        """How many times faster bfloat16 is than float32."""
        return self.float32 / self.bfloat16


class MachineProbe:
    """What the machine can do: whether a device computes in bfloat16 and how fast a CPU does. The run asks
    through this object, so a test can stand in another machine."""

    def bf16_unsupported(self, device: str) -> str | None:
        """None when ``device`` computes in bfloat16, else the reason it does not."""
        kind = torch.device(device).type
        if kind == "cuda":
            if not torch.cuda.is_available():
                return None  # the device itself is refused elsewhere; nothing to say about its dtype
            if not torch.cuda.is_bf16_supported(including_emulation=False):
                return f"CUDA device {torch.cuda.get_device_name(torch.device(device))} has no native bfloat16"
            return None
        if kind != "cpu":
            return None
        try:
            torch.ones(2, 2, dtype=torch.bfloat16) @ torch.ones(2, 2, dtype=torch.bfloat16)
        except RuntimeError as exc:  # pragma: no cover - every CPU build of torch has bf16 kernels today
            return f"this torch build has no CPU bfloat16 matrix product ({exc})"
        return None

    def cpu_identity(self) -> dict[str, str]:
        """CPU model, its bf16-related flags and the torch version: what a cached measurement depends on."""
        model, flags = platform.processor() or platform.machine(), set()
        try:
            text = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            text = ""
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name" and value.strip():
                model = value.strip()
            elif name.strip() == "flags":
                flags = set(value.split())
        return {"cpu": model, "bf16_flags": " ".join(f for f in BF16_CPU_FLAGS if f in flags) or "none",
                "torch": torch.__version__, "threads": str(torch.get_num_threads())}

    def time_matmul(self, repeats: int = 3) -> MatmulTiming:
        """Best of ``repeats`` timings of a :data:`PROBE_SHAPE` product in float32 and in bfloat16."""
        m, k, n = PROBE_SHAPE
        best = {}
        for dtype in (torch.float32, torch.bfloat16):
            a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
            a @ b  # warm-up (kernel selection, page faults)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                a @ b
                times.append(time.perf_counter() - start)
            best[dtype] = min(times)
        return MatmulTiming(best[torch.float32], best[torch.bfloat16])


def _cpu_decision(probe: MachineProbe, cache_dir: Path | None) -> tuple[bool, str]:
    """(bf16 faster?, reason) for this CPU: the cached measurement, or a new one written to the cache."""
    identity = probe.cpu_identity()
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir / "machine" / f"matmul-{digest}.json" if cache_dir is not None else None
    timing, source = None, "measured"
    if path is not None and path.is_file():
        try:
            saved = json.loads(path.read_text())
            timing, source = MatmulTiming(float(saved["float32"]), float(saved["bfloat16"])), "cached measurement"
        except (OSError, ValueError, KeyError, TypeError):
            timing = None   # a damaged entry is measured again
    if timing is None:
        timing = probe.time_matmul()
        if path is not None:
            _write_json(path, {**identity, "float32": timing.float32, "bfloat16": timing.bfloat16})
    faster = timing.speedup >= MIN_SPEEDUP
    flags = identity["bf16_flags"]
    return faster, (f"bf16 matmul {timing.speedup:.2f}x float32 on this CPU ({source}; bf16 flags: {flags})")


def _write_json(path: Path, data: dict) -> None:
    """Write atomically; a cache folder that cannot be written only costs a new measurement next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        staging.write_text(json.dumps(data, indent=1))
        staging.replace(path)
    except OSError:
        pass


def decide_dtype(requested: str, device: str, cache_dir: Path | None = None, probe: MachineProbe | None = None,
                 names: OptionNames = API_NAMES) -> DtypeDecision:
    """Resolve ``requested`` ("auto", "float32", "bfloat16") for ``device``. An unknown name, or bfloat16 on a
    device without it, is an :class:`InvalidInput` naming the reason (and the option, as ``names`` calls it)."""
    probe = probe or MachineProbe()
    if requested not in CHOICES:
        raise InvalidInput(f"{names.dtype}: dtype {requested!r} is not one of {', '.join(CHOICES)}")
    if requested == "float32":
        return DtypeDecision("float32", requested, "asked for")
    unsupported = probe.bf16_unsupported(device)
    if requested == "bfloat16":
        if unsupported:
            raise InvalidInput(f"{names.dtype}: bfloat16 cannot run on device '{device}': {unsupported}; "
                               "use float32 or auto")
        return DtypeDecision("bfloat16", requested, "asked for")
    if unsupported:
        return DtypeDecision("float32", requested, f"auto: {unsupported}")
    if torch.device(device).type != "cpu":
        return DtypeDecision("bfloat16", requested, f"auto: {torch.device(device).type} device with bfloat16")
    faster, reason = _cpu_decision(probe, cache_dir)
    return DtypeDecision("bfloat16" if faster else "float32", requested, f"auto: {reason}")
