"""Resumable sampling: per-step sampler checkpoints in the disk cache, and a stop request that lets Ctrl-C or
SIGTERM end a run after the step in progress.

A sampler node writes its state after every step (the latent, its history such as the last clean estimate,
its random generators' states) to ``<cache>/resume/<node key>/call-<c>-step-<k>.ckpt``, atomically (a
temporary file renamed into place), keeping only the newest step of each call (a node may sample several
times, e.g. the looping sampler: call c counts them). The node's cache key names the folder, so a checkpoint
of another graph, parameter or model file is never found; the header repeats the key, call, step count and
shapes, and a SHA-256 covers the tensors, so a damaged file is discarded (with a warning) and the call starts
from step 0. The executor removes the folder once the node's result is stored.

File layout: 8 bytes little-endian header length, the JSON header, then a safetensors blob.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

FORMAT = 1
SUFFIX = ".ckpt"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set by SIGINT/SIGTERM while installed (:meth:`installed`). While a sampler is inside its loop
    (:meth:`deferred`) the first signal only sets the flag, and the sampler stops after the step in progress
    with its checkpoint written; otherwise (or on a second signal) the signal interrupts at once, as before."""

    def __init__(self) -> None:
        self.requested = False
        self._deferring = 0

    def _handle(self, signum: int, frame: Any) -> None:
        if self._deferring and not self.requested:
            self.requested = True
            return
        raise KeyboardInterrupt

    def installed(self) -> "_Installed":
        """A context manager installing the handler for SIGINT and SIGTERM (main thread only; elsewhere a
        no-op) and restoring the previous handlers on exit."""
        return _Installed(self)

    def deferred(self) -> "_Deferred":
        return _Deferred(self)

    def check(self) -> None:
        """Raise KeyboardInterrupt when a stop was requested (called after a step's checkpoint is written)."""
        if self.requested:
            raise KeyboardInterrupt


@dataclass
class _Installed:
    stop: StopRequest
    previous: dict[int, Any] = field(default_factory=dict)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self.previous[number] = signal.signal(number, self.stop._handle)
        return self.stop

    def __exit__(self, *exc: Any) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


@dataclass
class _Deferred:
    stop: StopRequest

    def __enter__(self) -> StopRequest:
        self.stop._deferring += 1
        return self.stop

    def __exit__(self, *exc: Any) -> None:
        self.stop._deferring -= 1


@dataclass
class SamplerState:
    """A sampler after ``step`` of ``total`` steps: its sample x ([B, N] packed), its history tensors by name
    (e.g. "denoised", the last clean estimate) and its generators' states by name."""

    step: int
    total: int
    x: torch.Tensor
    history: dict[str, torch.Tensor]
    generators: dict[str, torch.Tensor]


def encode_state(key: str, call: int, state: SamplerState) -> bytes:
    """The bytes of a checkpoint file (see the module docstring)."""
    tensors = {"x": state.x.contiguous()}
    tensors.update({f"history.{name}": t.contiguous() for name, t in state.history.items()})
    tensors.update({f"generator.{name}": t.contiguous() for name, t in state.generators.items()})
    blob = save_safetensors(tensors)
    header = {"format": FORMAT, "key": key, "call": call, "step": state.step, "total": state.total,
              "shape": list(state.x.shape), "dtype": str(state.x.dtype),
              "sha256": hashlib.sha256(blob).hexdigest()}
    head = json.dumps(header, sort_keys=True).encode()
    return len(head).to_bytes(8, "little") + head + blob


def decode_state(data: bytes, key: str, call: int, total: int, like: torch.Tensor) -> SamplerState:
    """A checkpoint file's state; ValueError when it is damaged or belongs to another node, call, step count
    or sample shape."""
    if len(data) < 8:
        raise ValueError("file too short")
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    blob = data[8 + size:]
    expected = {"format": FORMAT, "key": key, "call": call, "total": total, "shape": list(like.shape),
                "dtype": str(like.dtype)}
    for name, value in expected.items():
        if header.get(name) != value:
            raise ValueError(f"{name} {header.get(name)!r} is not {value!r}")
    if hashlib.sha256(blob).hexdigest() != header.get("sha256"):
        raise ValueError("checksum mismatch")
    tensors = load_safetensors(blob)
    step = header.get("step")
    if not isinstance(step, int) or not 0 < step <= total:
        raise ValueError(f"step {step!r} outside 1..{total}")
    history = {n.split(".", 1)[1]: t for n, t in tensors.items() if n.startswith("history.")}
    generators = {n.split(".", 1)[1]: t for n, t in tensors.items() if n.startswith("generator.")}
    return SamplerState(step, total, tensors["x"], history, generators)


def checkpoint_name(call: int, step: int) -> str:
    return f"call-{call:03d}-step-{step:06d}{SUFFIX}"


def _step_of(path: Path) -> int:
    return int(path.stem.rsplit("-", 1)[1])


class NodeCheckpoints:
    """The checkpoints of one node execution, in ``folder`` (named by the node's cache key). ``resume`` False
    (--no-resume) removes what it finds instead of using it. ``on_write(bytes_added)`` lets the cache count
    the bytes; ``on_resumed(step, total)`` and ``warn`` report to the run."""

    def __init__(self, folder: Path, key: str, resume: bool = True, stop: StopRequest | None = None,
                 on_write: Callable[[int], None] | None = None,
                 on_resumed: Callable[[int, int], None] | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.folder, self.key, self.resume = Path(folder), key, resume
        self.stop = stop or StopRequest()
        self.on_write = on_write or (lambda size: None)
        self.on_resumed = on_resumed or (lambda step, total: None)
        self.warn = warn or (lambda message: None)
        self._calls = 0
        if not resume:
            self.remove()

    def next_call(self, total: int) -> "StepCheckpoint":
        """The checkpoint of the node's next sampling call of ``total`` steps."""
        call = self._calls
        self._calls += 1
        return StepCheckpoint(self, call, total)

    def files(self, call: int) -> list[Path]:
        """This call's checkpoint files, newest step first."""
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.glob(f"call-{call:03d}-step-*{SUFFIX}")]
        return sorted(found, key=_step_of, reverse=True)

    def remove(self) -> None:
        remove_checkpoints(self.folder)


def remove_checkpoints(folder: Path) -> None:
    """Remove a node's checkpoint folder (missing is fine)."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        path.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass


@dataclass
class StepCheckpoint:
    """One sampling call's checkpoints: what a sampler loop reads once (:meth:`restore`) and writes after each
    step (:meth:`save`). ``history`` holds tensors the op wants kept along (e.g. the last clean estimate)."""

    node: NodeCheckpoints
    call: int
    total: int
    history: dict[str, torch.Tensor] = field(default_factory=dict)

    def restore(self, x: torch.Tensor, generators: dict[str, torch.Generator]) -> tuple[int, torch.Tensor]:
        """The step to start at and the sample there: (0, x) without a usable checkpoint, else the newest
        step's sample, with ``generators`` set to their states then and :attr:`history` filled."""
        for path in self.node.files(self.call):
            try:
                state = decode_state(path.read_bytes(), self.node.key, self.call, self.total, x)
                if set(state.generators) != set(generators):
                    raise ValueError(f"generators {sorted(state.generators)} are not {sorted(generators)}")
            except (OSError, ValueError, KeyError, RuntimeError, UnicodeDecodeError) as exc:
                self.node.warn(f"damaged sampler checkpoint {path.name} discarded ({exc}); recomputing")
                path.unlink(missing_ok=True)
                continue
            for name, generator in generators.items():
                generator.set_state(state.generators[name])
            self.history = dict(state.history)
            self.node.on_resumed(state.step, self.total)
            return state.step, state.x.to(x.device)
        return 0, x

    def save(self, step: int, x: torch.Tensor, generators: dict[str, torch.Generator],
             history: dict[str, torch.Tensor] | None = None) -> None:
        """Write the state after ``step`` steps atomically, drop older steps of this call, then stop the run
        if a stop was requested."""
        merged = {**self.history, **(history or {})}
        def own(t: torch.Tensor) -> torch.Tensor:   # a copy: x and a history tensor may share memory
            return t.detach().to("cpu", copy=True)

        state = SamplerState(step, self.total, own(x), {n: own(t) for n, t in merged.items()},
                             {n: g.get_state() for n, g in generators.items()})
        data = encode_state(self.node.key, self.call, state)
        folder = self.node.folder
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".tmp-{uuid.uuid4().hex}"
        staging.write_bytes(data)
        os.replace(staging, folder / checkpoint_name(self.call, step))
        older = [p for p in self.node.files(self.call) if _step_of(p) < step]
        freed = 0
        for path in older:
            try:
                freed += path.stat().st_size
                path.unlink()
            except OSError:
                pass
        self.node.on_write(len(data) - freed)
        self.node.stop.check()
