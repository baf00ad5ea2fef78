"""Shared test settings: where the test data carried by the repository lives (ComfyUI workflows, node
definitions, checkpoint manifests). Tests read nothing outside the repository.

Runs started by tests compute in float32 unless a test asks for another dtype (``RunSettings(dtype=...)``,
``--dtype``): results then do not depend on whether the test machine has fast bfloat16."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["LTXGRAPH_DTYPE"] = "float32"

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
REFERENCE = DATA / "reference"
CORPUS = DATA / "comfyui"


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """Every tiny model file (LTX-2.0 and 2.3 sets) in ComfyUI's folder layout, written once per session."""
    from ltxgraph_ops.tiny.files import write_tiny_models
    folder = tmp_path_factory.mktemp("tiny-models")
    write_tiny_models(folder)
    return folder
