"""Embedded default models: when a run names no models folder, op packages may provide one.

A package declares a provider in the ``ltxgraph.default_models`` entry-point group: a function
``provide(folder: Path) -> str`` that fills ``folder`` (idempotently; it is called under a lock, so two processes
never write it at once) and returns a one-line description for the user. The engine knows nothing of what the
models are.
"""
from __future__ import annotations

import fcntl
import importlib.metadata
from pathlib import Path
from typing import Callable

from .errors import LtxGraphError

ENTRY_POINT_GROUP = "ltxgraph.default_models"


def providers() -> list[tuple[str, Callable[[Path], str]]]:
    """Every installed provider, by entry-point name."""
    found = []
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            found.append((entry.name, entry.load()))
        except (ImportError, AttributeError) as exc:
            raise LtxGraphError(f"default-models provider '{entry.name}' cannot be loaded: {exc}") from exc
    return found


def default_models(cache_dir: Path) -> tuple[list[Path], list[str]]:
    """Folders of the default models (one per provider, under ``cache_dir/default-models``) and their notes."""
    folders, notes = [], []
    for name, provide in providers():
        folder = cache_dir / "default-models" / name
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f".{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            notes.append(provide(folder))
        folders.append(folder)
    return folders, notes
