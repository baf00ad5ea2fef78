"""Model values that travel between nodes: MODEL (the transformer with its LoRAs), and the patches a LoRA loader
adds. Values are immutable: a LoRA loader returns a new handle; the weights are shared, and LoRA deltas are
attached only while a sampler runs (``with model.applied() as transformer:``), so graph branches with and
without a LoRA never see each other's patches."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Protocol

from torch import nn


class Patch(Protocol):
    """Something that modifies a module for a while: ``attach(module)`` returns the function that undoes it."""

    def attach(self, module: nn.Module) -> Callable[[], None]: ...


@dataclass(frozen=True)
class ModelHandle:
    """MODEL: the LTX-2 transformer of a checkpoint plus the patches (LoRAs) to apply when it runs.

    source: the file it came from (for messages); metadata: what patches declared (e.g. an IC-LoRA's
    ``reference_downscale_factor``), later patches overriding earlier ones.
    """

    transformer: nn.Module
    source: str
    patches: tuple[Patch, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    def with_patch(self, patch: Patch, metadata: dict[str, Any] | None = None) -> "ModelHandle":
        return replace(self, patches=self.patches + (patch,), metadata={**self.metadata, **(metadata or {})})

    @contextmanager
    def applied(self) -> Iterator[nn.Module]:
        """The transformer with every patch attached; all are detached on exit, even after an error."""
        undo: list[Callable[[], None]] = []
        try:
            for patch in self.patches:
                undo.append(patch.attach(self.transformer))
            yield self.transformer
        finally:
            for detach in reversed(undo):
                detach()
