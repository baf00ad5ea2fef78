"""Progress on the console (stderr), readable by a person at a terminal and by a log file.

:class:`ConsoleProgress` is a progress callback (see :mod:`ltxgraph.events`) with three modes:

- ``live`` (stderr is a terminal): one line per node, redrawn in place while it runs with a bar for its
  outermost loop and counters for the loops within (``step 3/8 [#####     ] block 12/48 41.0s``), then replaced
  by the node's status and time.
- ``lines`` (stderr is a file or a pipe): plain lines only — one when a node starts, at most one every
  ``interval`` seconds while it runs (its counters and time so far), one when it finishes.
- ``quiet``: nothing (errors are the caller's to print).
"""
from __future__ import annotations

import shutil
import sys
import time
from typing import Callable, TextIO

from .events import ProgressEvent

MODES = ("live", "lines", "quiet")
OUTER_UNITS = ("tile", "step")   # shown first, in this order (tiles of sampling, steps of blocks); others follow
BAR_WIDTH = 20
REDRAW_SECONDS = 0.1


class ConsoleProgress:
    """Writes ``stream`` (stderr by default); the mode follows the stream unless given."""

    def __init__(self, stream: TextIO | None = None, mode: str | None = None, interval: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        is_terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.mode = mode or ("live" if is_terminal else "lines")
        if self.mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        self.interval, self.clock = interval, clock
        self._prefix = ""
        self._counters: dict[str, tuple[int, int]] = {}
        self._started = self._shown = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        if self.mode == "quiet":
            return
        clear = "\r\x1b[K" if self.mode == "live" else ""
        if event.kind == "note":
            self._write(f"{clear}note: {event.message}\n")
        elif event.kind == "node_started":
            self._prefix = f"[{event.step}/{event.total}] {event.node} ({event.op})"
            self._counters = {}
            self._started = self._shown = self.clock()
            self._write(f"{self._prefix} started\n" if self.mode == "lines" else f"{clear}{self._prefix}")
        elif event.kind == "step":
            self._counters[event.unit or "step"] = (event.step, event.total)
            if "resumed" in event.info:   # always shown: "resumed at step k of n"
                self._write(f"{clear}{self._prefix} {event.info['resumed']}\n")
            self._step()
        elif event.kind == "node_finished" and event.report is not None:
            report = event.report
            lines = [f"{clear}{self._prefix} {report.status} {report.seconds:.2f}s\n"]
            lines += [f"    warning: {warning}\n" for warning in report.warnings]
            self._write("".join(lines))

    def _step(self) -> None:
        now = self.clock()
        wait = REDRAW_SECONDS if self.mode == "live" else self.interval
        if now - self._shown < wait:
            return
        self._shown = now
        if self.mode == "live":
            width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
            self._write(f"\r\x1b[K{self._status(now, bar=True)[:width]}")
        else:
            self._write(f"{self._status(now, bar=False)}\n")

    def _status(self, now: float, bar: bool) -> str:
        parts = [self._prefix]
        units = sorted(self._counters, key=lambda u: OUTER_UNITS.index(u) if u in OUTER_UNITS else len(OUTER_UNITS))
        for position, unit in enumerate(units):
            step, total = self._counters[unit]
            parts.append(f"{unit} {step}/{total}")
            if bar and position == 0:
                filled = BAR_WIDTH * step // max(total, 1)
                parts.append(f"[{'#' * filled:<{BAR_WIDTH}}]")
        parts.append(f"{now - self._started:.1f}s")
        return " ".join(parts)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
