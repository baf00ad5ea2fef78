"""Progress events: what a run tells whoever watches it, as one plain callback.

A watcher is any callable taking a :class:`ProgressEvent`. Four kinds arrive, in this order per node:

- ``node_started``: ``node`` and ``op``; ``step`` is the node's position in the plan (from 1), ``total`` the
  number of nodes in the plan.
- ``step``: an inner loop of the running node advanced: ``step`` of ``total`` (from 1) ``unit``s done, where
  the unit says what is counted ("step" for sampling steps, "tile", "block", "layer", "stage", "token",
  "frame"); ``info`` holds
  extras such as ``sigma``. Loops nest (blocks within a sampling step): each unit counts on its own.
- ``node_finished``: ``report`` is the node's :class:`~ltxgraph.executor.NodeReport` (status, seconds,
  warnings).
- ``note``: a message for the user that belongs to no node (e.g. which default models are used).

Objects with the older three-method :class:`Progress` protocol are accepted too (see :func:`as_callback`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from .executor import NodeReport


@dataclass(frozen=True)
class ProgressEvent:
    kind: str                      # node_started | step | node_finished | note
    node: str | None = None
    op: str | None = None
    step: int = 0
    total: int = 0
    unit: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    report: "NodeReport | None" = None
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


class Progress(Protocol):
    """The three-method form of a watcher (``note`` events are not delivered to it)."""

    def node_started(self, index: int, total: int, node: str, op: str) -> None: ...
    def node_finished(self, report: "NodeReport") -> None: ...
    def step(self, node: str, step: int, total: int, info: dict[str, Any]) -> None: ...


def ignore(event: ProgressEvent) -> None:
    """The watcher that watches nothing."""
    return None


def as_callback(progress: "Progress | ProgressCallback | None") -> ProgressCallback:
    """A plain callback for ``progress``: None -> :func:`ignore`; a :class:`Progress` object -> an adapter
    calling its methods (a step's ``info`` then carries the ``unit``); a callable -> itself."""
    if progress is None:
        return ignore
    if all(hasattr(progress, name) for name in ("node_started", "node_finished", "step")):
        return _ProtocolAdapter(progress)  # type: ignore[arg-type]
    if not callable(progress):
        raise TypeError(f"progress must be a callable taking a ProgressEvent or a Progress object, "
                        f"not {type(progress).__name__}")
    return progress


@dataclass(frozen=True)
class _ProtocolAdapter:
    target: Progress

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "node_started":
            self.target.node_started(event.step - 1, event.total, event.node or "", event.op or "")
        elif event.kind == "node_finished" and event.report is not None:
            self.target.node_finished(event.report)
        elif event.kind == "step":
            self.target.step(event.node or "", event.step, event.total, {"unit": event.unit, **event.info})
