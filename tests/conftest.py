"""Shared test settings: where the project's reference material (../shared) lives."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LTXGRAPH_SHARED_DIR", REPO.parent / "shared"))
REFERENCE = SHARED / "reference"
CORPUS = SHARED / "corpus" / "comfyui"
