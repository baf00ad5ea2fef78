"""Fuzz the graph and ComfyUI workflow loaders: whatever the bytes, the result is a graph or one of ltxgraph's
own errors, never an unhandled exception. CI runs a few hundred examples; `pytest -m slow` runs thousands."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltxgraph import Registry, load
from ltxgraph.errors import LtxGraphError

from ..conftest import CORPUS

REGISTRY = Registry.from_modules("tests.engine.sample_ops", "ltxgraph_ops.primitives")
SEED_WORKFLOW = json.loads((CORPUS / "video_ltx2_t2v.json").read_text())

scalars = st.none() | st.booleans() | st.integers(-3, 200) | st.floats(allow_nan=True) | st.text(max_size=6)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=25)


def mutate(data, draw, depth=0):
    """Replace, delete or retype one random part of a JSON document."""
    if depth > 6 or not isinstance(data, (dict, list)) or not data or draw(st.integers(0, 4)) == 0:
        return draw(json_values)
    if isinstance(data, dict):
        key = draw(st.sampled_from(sorted(data, key=str)))
        copy = dict(data)
        if draw(st.integers(0, 5)) == 0:
            del copy[key]
        else:
            copy[key] = mutate(data[key], draw, depth + 1)
        return copy
    index = draw(st.integers(0, len(data) - 1))
    copy = list(data)
    copy[index] = mutate(data[index], draw, depth + 1)
    return copy


@st.composite
def damaged_workflows(draw):
    data = SEED_WORKFLOW
    for _ in range(draw(st.integers(1, 4))):
        data = mutate(data, draw)
    return json.dumps(data)


@st.composite
def damaged_api_prompts(draw):
    prompt = {"1": {"class_type": "MakeTensor", "inputs": {"seed": 3, "width": 16}},
              "2": {"class_type": "ScaleImage", "inputs": {"image": ["1", 0], "factor": 0.5}},
              "3": {"class_type": "PreviewTensor", "inputs": {"images": ["2", 0]}}}
    for _ in range(draw(st.integers(1, 3))):
        prompt = mutate(prompt, draw)
    return json.dumps(prompt)


def load_only_our_errors(tmp: Path, text: str) -> None:
    path = tmp / "wf.json"
    path.write_text(text)
    try:
        load(path, REGISTRY)
    except LtxGraphError as exc:
        assert str(exc)


FAST = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
LONG = settings(max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(text=damaged_workflows() | damaged_api_prompts() | st.text(max_size=300))
def test_workflow_loader_fuzz(tmp_path_factory, text: str) -> None:
    load_only_our_errors(tmp_path_factory.mktemp("fz"), text)


@pytest.mark.slow
@LONG
@given(text=damaged_workflows() | damaged_api_prompts() | st.text(max_size=300))
def test_workflow_loader_fuzz_long(tmp_path_factory, text: str) -> None:
    load_only_our_errors(tmp_path_factory.mktemp("fz"), text)
