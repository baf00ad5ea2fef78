"""Model values that travel between nodes: MODEL (the transformer with its LoRAs), and the patches a LoRA loader
adds. Values are immutable: a LoRA loader returns a new handle; the weights are shared, and LoRA deltas are
attached only while a sampler runs (``with model.applied() as transformer:``), so graph branches with and
without a LoRA never see each other's patches."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generic, Iterator, Protocol, TypeVar

from torch import nn

T = TypeVar("T")


class Lazy(Generic[T]):
    """A value built on first use (e.g. a model read from its file) and shared by every handle holding it.
    Building happens once, under a lock; ``release()`` drops it so memory returns until the next use."""

    def __init__(self, build: Callable[[], T], description: str) -> None:
        self._build, self.description = build, description
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def release(self) -> None:
        with self._lock:
            self._value = None

    def __repr__(self) -> str:
        return f"Lazy({self.description}, loaded={self.loaded})"


def resolve(value: "T | Lazy[T]") -> T:
    """The value itself, building it if it is :class:`Lazy`."""
    return value.get() if isinstance(value, Lazy) else value


class Patch(Protocol):
    """Something that modifies a module for a while: ``attach(module)`` returns the function that undoes it."""

    def attach(self, module: nn.Module) -> Callable[[], None]: ...


@dataclass(frozen=True)
class ModelHandle:
    """MODEL: the LTX-2 transformer of a checkpoint plus the patches (LoRAs) to apply when it runs.

    source: the file it came from (for messages); metadata: what patches declared (e.g. an IC-LoRA's
    ``reference_downscale_factor``), later patches overriding earlier ones. layout: the same architecture on the
    meta device (no weights), for matching LoRA files without loading the model.
    """

    transformer: "nn.Module | Lazy[nn.Module]"
    source: str
    patches: tuple[Patch, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    layout: nn.Module | None = None

    def structure(self) -> nn.Module:
        """A module with the model's layer names and shapes (the layout if known, else the model itself)."""
        return self.layout if self.layout is not None else resolve(self.transformer)

    def with_patch(self, patch: Patch, metadata: dict[str, Any] | None = None) -> "ModelHandle":
        return replace(self, patches=self.patches + (patch,), metadata={**self.metadata, **(metadata or {})})

    @contextmanager
    def applied(self) -> Iterator[nn.Module]:
        """The transformer with every patch attached; all are detached on exit, even after an error."""
        undo: list[Callable[[], None]] = []
        module = resolve(self.transformer)
        try:
            for patch in self.patches:
                undo.append(patch.attach(module))
            yield module
        finally:
            for detach in reversed(undo):
                detach()
