"""The committed JSON Schema (schemas/graph.schema.json) and the pydantic model accept exactly the same files."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ltxgraph.graph import GraphFile

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "graph.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

names = st.sampled_from(["a", "node_1", "seed", "5", "x:y", "a-b", "", "a.b", "1x", "_", "@a", "a b"])
scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from([0.5, 2.0]) | st.text(max_size=3) \
    | st.sampled_from(["@a.IMAGE", "$seed", "@@x", "@bad", "LATENT"])
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(names, inner, max_size=2),
                      max_leaves=4)
param_types = st.sampled_from(["INT", "FLOAT", "STRING", "BOOLEAN", "LATENT"])


@st.composite
def params(draw):
    param = {"type": draw(param_types), "default": draw(scalars)}
    for key, strategy in [("description", st.none() | st.text(max_size=4)), ("min", st.none() | st.integers(0, 3)),
                          ("max", st.none() | st.floats(0, 3) | st.booleans()),
                          ("choices", st.none() | st.lists(scalars, max_size=3)), ("extra", scalars),
                          ("multiple_of", st.none() | st.integers(-1, 64) | st.sampled_from([2.0, 0.5, True])),
                          ("eight_n_plus_one", st.booleans() | st.none() | st.integers(0, 1))]:
        if draw(st.integers(0, 4)) == 0:
            param[key] = draw(strategy)
    return param


@st.composite
def nodes(draw):
    node = {"op": draw(st.sampled_from(["Const", "LTXVAddGuide", "Ops.v2", "", "bad/op", 3]))}
    if draw(st.booleans()):
        node["in"] = draw(st.dictionaries(names, values, max_size=3) | values)
    if draw(st.integers(0, 5)) == 0:
        node[draw(st.sampled_from(["title", "inputs", "meta"]))] = draw(scalars | st.dictionaries(names, scalars, max_size=1))
    return node


@st.composite
def documents(draw):
    doc = {"ltxgraph": draw(st.sampled_from([1, 1, 1, 2, True, 1.0, "1"])),
           "nodes": draw(st.dictionaries(names, nodes(), max_size=3))}
    for key, strategy in [("name", st.none() | st.text(max_size=4) | st.integers()),
                          ("description", st.none() | st.text(max_size=4)),
                          ("params", st.dictionaries(names, params(), max_size=2)),
                          ("outputs", st.dictionaries(names, scalars, max_size=2)),
                          ("extra", scalars)]:
        if draw(st.integers(0, 3 if key != "extra" else 8)) == 0:
            doc[key] = draw(strategy)
    if draw(st.integers(0, 10)) == 0:
        del doc["nodes"]
    return doc


def pydantic_accepts(doc) -> bool:
    try:
        GraphFile.model_validate(doc)
        return True
    except ValidationError:
        return False


@settings(max_examples=1500, deadline=None)
@given(doc=documents())
def test_schema_and_model_agree(doc) -> None:
    assert VALIDATOR.is_valid(doc) == pydantic_accepts(doc), doc


def test_agreement_covers_both_verdicts() -> None:
    good = {"ltxgraph": 1, "params": {"seed": {"type": "INT", "default": 3, "min": 0}},
            "nodes": {"a": {"op": "Const", "in": {"value": "$seed"}}}, "outputs": {"v": "@a.VALUE"}}
    assert VALIDATOR.is_valid(good) and pydantic_accepts(good)
    bad = {**good, "outputs": {"v": "a.VALUE"}}
    assert not VALIDATOR.is_valid(bad) and not pydantic_accepts(bad)
    for multiple_of, valid in [(2.0, True), (3, True), (True, False), (0, False), (2.5, False), (None, True)]:
        doc = {**good, "params": {"w": {"type": "INT", "default": 64, "multiple_of": multiple_of}}}
        assert VALIDATOR.is_valid(doc) == pydantic_accepts(doc) == valid, multiple_of
