"""What an op may know of the run it is part of: its node, progress reporting, folders, run metadata."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .media_limits import MediaLimits
from .budget import MemoryBudget
from .paths import Folders
from .resume import NodeCheckpoints, StepCheckpoint

StepCallback = Callable[[str, int, int, dict[str, Any]], None]   # (node, step, total, info with "unit")
Counter = Callable[[int, int], None]                              # (done, total), called after each unit


def _no_steps(node: str, step: int, total: int, info: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class RunSettings:
    """How ops should use the machine. device: torch device for model compute ("cpu", "cuda", ...).
    memory_budget: bytes the run may use (None = no limit); loaders use it to choose between fully resident and
    streamed weights, samplers to bound the activations of the guidance passes they batch into one forward, tiled
    decodes to choose their tiles (:attr:`budget`). preview_dir: where samplers write a PNG preview of each step's
    clean estimate (None = no previews). dtype: what model ops compute in, "auto" | "float32" | "bfloat16"
    (default ``$LTXGRAPH_DTYPE`` or "auto"); a run resolves "auto" before any op runs
    (:mod:`ltxgraph.compute_dtype`), so ops see "float32" or "bfloat16". media_limits: the largest input media
    loaders decode. resume: samplers continue from their newest checkpoint in the disk cache (False:
    --no-resume, start afresh and remove the old checkpoints). compile_kernels: transformers run the element-wise
    regions of their blocks as kernels fused by ``torch.compile`` (``--compile``; needs a C++ compiler, compiles
    for minutes on first use; off by default: :mod:`ltxgraph_ops.models.elementwise`)."""

    device: str = "cpu"
    memory_budget: int | None = None
    preview_dir: Path | None = None
    dtype: str = field(default_factory=lambda: os.environ.get("LTXGRAPH_DTYPE") or "auto")
    media_limits: MediaLimits = MediaLimits()
    resume: bool = True
    compile_kernels: bool = False

    @property
    def compute_dtype(self) -> torch.dtype:
        """The torch dtype model ops compute in: bfloat16 when resolved to it, else float32 (also for an
        unresolved "auto", i.e. an op called outside a run)."""
        return torch.bfloat16 if self.dtype == "bfloat16" else torch.float32

    @property
    def budget(self) -> MemoryBudget:
        """The run's one memory budget, for planning functions (:mod:`ltxgraph.budget`)."""
        return MemoryBudget(self.memory_budget)


@dataclass
class OpContext:
    """Handed to an op that declares a parameter annotated ``OpContext``.

    node: the id of the node being executed. folders: where to read and write (ops write outputs only through
    ``folders.output_file``). metadata: the graph source and parameter values, for outputs to embed.
    cache_key: the node's cache key ("" outside a run). checkpoints: where its samplers keep per-step state
    (None without a disk cache); see :meth:`sampler_checkpoint`. resumed_at: (step, total) of the last
    sampling call that continued from a checkpoint, for the run report.
    """

    node: str
    folders: Folders = field(default_factory=Folders)
    metadata: dict[str, Any] = field(default_factory=dict)
    on_step: StepCallback = _no_steps
    settings: RunSettings = field(default_factory=RunSettings)
    warnings: list[str] = field(default_factory=list)
    cache_key: str = ""
    checkpoints: NodeCheckpoints | None = None
    resumed_at: tuple[int, int] | None = None

    def step(self, step: int, total: int, unit: str = "step", **info: Any) -> None:
        """Report progress of an inner loop: ``step`` of ``total`` ``unit``s done (counting from 1); the unit
        says what is counted ("step" for sampling steps, "tile", "block", "layer", "stage", "token", "frame")."""
        self.on_step(self.node, step, total, {"unit": unit, **info})

    def counter(self, unit: str) -> Counter:
        """A plain ``(done, total)`` callback for model code that loops over ``unit``s (tiles, blocks, layers,
        stages, tokens, frames): model code takes it as an optional argument and knows nothing of runs."""
        def count(done: int, total: int) -> None:
            self.step(done, total, unit)
        return count

    def sampler_checkpoint(self, total: int) -> StepCheckpoint | None:
        """The checkpoint of this node's next sampling call of ``total`` steps (None: not resumable)."""
        return None if self.checkpoints is None else self.checkpoints.next_call(total)

    def stop_after_step(self) -> contextlib.AbstractContextManager:
        """Within it, Ctrl-C / SIGTERM let a checkpointing sampler finish its step first (a no-op when the
        node has no checkpoints: the signal interrupts at once)."""
        if self.checkpoints is None:
            return contextlib.nullcontext()
        return self.checkpoints.stop.deferred()

    def resumed(self, step: int, total: int) -> None:
        """A sampling call continues after ``step`` of ``total`` steps: recorded and shown in progress."""
        self.resumed_at = (step, total)
        self.step(step, total, "step", resumed=f"resumed at step {step} of {total}")

    def warn(self, message: str) -> None:
        """A warning that ends up in the run report and on stderr."""
        self.warnings.append(message)


def counter_of(ctx: OpContext | None, unit: str) -> Counter | None:
    """``ctx.counter(unit)``, or None for an op called directly without a context."""
    return ctx.counter(unit) if ctx is not None else None
