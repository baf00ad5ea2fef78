"""Shared test settings: where the test data carried by the repository lives (ComfyUI workflows, node
definitions, checkpoint manifests). Tests read nothing outside the repository.

Runs started by tests compute in float32 unless a test asks for another dtype (``RunSettings(dtype=...)``,
``--dtype``): results then do not depend on whether the test machine has fast bfloat16."""
from __future__ import annotations

import os
from pathlib import Path

os.environ["LTXGRAPH_DTYPE"] = "float32"

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
REFERENCE = DATA / "reference"
CORPUS = DATA / "comfyui"
