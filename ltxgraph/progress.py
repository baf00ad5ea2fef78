"""Progress on a terminal: one line per node, a live step counter for inner loops (sampling steps)."""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from .executor import NodeReport


class ConsoleProgress:
    """Writes to ``stream`` (stderr by default); live step counters only when it is a terminal."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._prefix = ""
        self._step_started = 0.0

    def node_started(self, index: int, total: int, node: str, op: str) -> None:
        self._prefix = f"[{index + 1}/{total}] {node} ({op})"
        self._step_started = time.perf_counter()

    def node_finished(self, report: NodeReport) -> None:
        if self.quiet:
            return
        clear = "\r\x1b[K" if self.live else ""
        self.stream.write(f"{clear}{self._prefix} {report.status} {report.seconds:.2f}s\n")
        for warning in report.warnings:
            self.stream.write(f"    warning: {warning}\n")
        self.stream.flush()

    def step(self, node: str, step: int, total: int, info: dict[str, Any]) -> None:
        if self.quiet or not self.live:
            return
        elapsed = time.perf_counter() - self._step_started
        bar = "#" * int(20 * step / max(total, 1))
        self.stream.write(f"\r\x1b[K{self._prefix} [{bar:<20}] {step}/{total} {elapsed:.1f}s")
        self.stream.flush()
