"""Shared test settings: where the test data carried by the repository lives (ComfyUI workflows, node
definitions, checkpoint manifests). Tests read nothing outside the repository."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
REFERENCE = DATA / "reference"
CORPUS = DATA / "comfyui"
