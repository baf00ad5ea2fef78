"""The embedded default models (entry point ``ltxgraph.default_models``): the tiny set, written once per
version into the folder the engine gives us."""
from __future__ import annotations

from pathlib import Path

from ltxgraph_ops.tiny.files import VERSION, write_tiny_models

STAMP = ".ltxgraph-tiny-version"


def provide(folder: Path) -> str:
    """Fill ``folder`` with the tiny models unless this version is already there (the engine holds a lock)."""
    stamp = folder / STAMP
    if not (stamp.is_file() and stamp.read_text() == VERSION):
        write_tiny_models(folder, seed=0)
        stamp.write_text(VERSION)
    return (f"using the embedded tiny random LTX-2 models in {folder} (they prove the pipeline, not the "
            "picture; give a models folder to use real weights)")
