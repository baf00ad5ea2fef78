"""Property tests of the engine over random DAGs of the sample ops."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import networkx as nx
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltxgraph import Runner, load
from ltxgraph.errors import LtxGraphError
from ltxgraph.paths import Folders

from .conftest import counting_registry

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def int_dags(draw):
    """A random graph file of Const/Add nodes (some Consts fed by parameters) and its expected values."""
    count = draw(st.integers(2, 14))
    params = {f"p{i}": {"type": "INT", "default": draw(st.integers(-50, 50))} for i in range(draw(st.integers(1, 3)))}
    nodes, expected, users = {}, {}, {}
    for i in range(count):
        name = f"n{i}"
        if i == 0 or draw(st.booleans()) and i < 3:
            if draw(st.booleans()):
                param = draw(st.sampled_from(sorted(params)))
                nodes[name] = {"op": "Const", "in": {"value": f"${param}"}}
                expected[name] = ("param", param)
                users.setdefault(param, set()).add(name)
            else:
                value = draw(st.integers(-100, 100))
                nodes[name] = {"op": "Const", "in": {"value": value}}
                expected[name] = ("lit", value)
            continue
        a = f"n{draw(st.integers(0, i - 1))}"
        if draw(st.booleans()):
            b_node = f"n{draw(st.integers(0, i - 1))}"
            b_in, b = f"@{b_node}.{_port(nodes[b_node]['op'])}", ("ref", b_node)
        else:
            value = draw(st.integers(-100, 100))
            b_in, b = value, ("lit", value)
        nodes[name] = {"op": "Add", "in": {"a": f"@{a}.{_port(nodes[a]['op'])}", "b": b_in}}
        expected[name] = ("add", a, b)
    sinks = draw(st.lists(st.sampled_from(sorted(nodes)), min_size=1, max_size=3, unique=True))
    graph = {"ltxgraph": 1, "params": params, "nodes": nodes,
             "outputs": {f"o_{s}": f"@{s}.{_port(nodes[s]['op'])}" for s in sinks}}
    return graph, expected, users


def _port(op: str) -> str:
    return "VALUE" if op == "Const" else "SUM"


def evaluate(expected: dict, params: dict, node: str) -> int:
    kind = expected[node]
    if kind[0] == "lit":
        return kind[1]
    if kind[0] == "param":
        return params[kind[1]]
    _, a, b = kind
    b_value = b[1] if b[0] == "lit" else evaluate(expected, params, b[1])
    return evaluate(expected, params, a) + b_value


def needed_nodes(graph: dict) -> set[str]:
    dag = nx.DiGraph()
    for name, node in graph["nodes"].items():
        dag.add_node(name)
        for value in node["in"].values():
            if isinstance(value, str) and value.startswith("@"):
                dag.add_edge(value[1:].split(".")[0], name)
    sinks = {ref[1:].split(".")[0] for ref in graph["outputs"].values()}
    return sinks.union(*(nx.ancestors(dag, s) for s in sinks)), dag


@PROPERTY_SETTINGS
@given(case=int_dags(), data=st.data())
def test_random_dags_run_once_cache_and_rerun_exactly_the_cone(tmp_path_factory, case, data) -> None:
    graph_dict, expected, users = case
    workdir = tmp_path_factory.mktemp("dag")
    path = workdir / "g.json"
    path.write_text(json.dumps(graph_dict))
    graph = load(path)
    calls: Counter = Counter()
    folders = Folders((), workdir, workdir / "out")
    runner = Runner(counting_registry(calls), cache_dir=workdir / "cache", folders=folders)
    params = {name: spec["default"] for name, spec in graph_dict["params"].items()}
    needed, dag = needed_nodes(graph_dict)

    keys = runner.plan(graph).keys
    first = runner.run(graph)
    assert sorted(n.id for n in first.report.nodes) == sorted(needed)  # pruned to what outputs need
    executed_keys = [keys[n] for n in first.report.executed()]
    # every distinct computation ran exactly once (identical nodes share one result)
    assert sorted(executed_keys) == sorted(set(keys.values())) and sum(calls.values()) == len(executed_keys)
    for name, ref in graph_dict["outputs"].items():
        assert first.outputs[name] == evaluate(expected, params, ref[1:].split(".")[0])

    calls.clear()
    assert runner.run(graph).report.executed() == [] and not calls      # same process: memory cache
    fresh = Runner(counting_registry(calls), cache_dir=workdir / "cache", folders=folders)
    assert fresh.run(graph).report.executed() == [] and not calls       # new runner: disk cache

    param = data.draw(st.sampled_from(sorted(params)))
    new_value = params[param] + data.draw(st.integers(1, 5))
    cone = set()
    for user in users.get(param, ()):
        cone |= {user} | nx.descendants(dag, user)
    new_keys = runner.plan(graph, {param: new_value}).keys
    rerun = runner.run(graph, {param: new_value})
    executed = set(rerun.report.executed())
    assert executed <= cone & needed                                    # nothing outside the cone runs
    assert {n for n in needed if new_keys[n] != keys[n]} == cone & needed  # the whole cone gets new keys
    fresh_keys = {new_keys[n] for n in cone & needed} - set(keys.values())
    assert sorted(new_keys[n] for n in executed) == sorted(fresh_keys)  # each new computation runs once
    params[param] = new_value
    for name, ref in graph_dict["outputs"].items():
        assert rerun.outputs[name] == evaluate(expected, params, ref[1:].split(".")[0])


def test_tensor_results_are_served_from_disk_in_a_new_runner(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"ltxgraph": 1, "nodes": {
        "img": {"op": "MakeTensor", "in": {"seed": 5}},
        "half": {"op": "ScaleImage", "in": {"image": "@img.IMAGE", "factor": 0.5}},
        "lat": {"op": "EmptyVideoLatent", "in": {"length": 17}}},
        "outputs": {"image": "@half.IMAGE", "latent": "@lat.LATENT"}}))
    calls: Counter = Counter()
    make = lambda: Runner(counting_registry(calls), cache_dir=tmp_path / "cache",  # noqa: E731
                          folders=Folders((), tmp_path, tmp_path / "out"))
    first = make().run(load(path))
    second = make().run(load(path))
    assert second.report.executed() == [] and sum(calls.values()) == 3
    assert (second.outputs["image"] == first.outputs["image"]).all()
    assert second.outputs["latent"].frames == 17 and second.outputs["latent"].fps == 25.0


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                           max_leaves=20)


@st.composite
def malformed_graphs(draw):
    """Graph-shaped documents with random damage: wrong types, unknown keys, broken refs, random text."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.text(max_size=200))
    doc = {"ltxgraph": draw(st.sampled_from([1, 2, "1", None])),
           "nodes": draw(st.dictionaries(st.text(max_size=6), st.fixed_dictionaries(
               {"op": st.sampled_from(["Const", "Add", "MakeTensor", "Nope", 3])},
               optional={"in": st.dictionaries(st.sampled_from(["a", "b", "value", "seed", "x"]),
                                               json_values | st.sampled_from(["@n.VALUE", "@a.SUM", "$p", "@", "$"]),
                                               max_size=3)}), max_size=4)),
           "outputs": draw(st.dictionaries(st.text(max_size=4), json_values | st.just("@a.SUM"), max_size=2))}
    if choice == 2:
        doc["params"] = draw(st.dictionaries(st.text(max_size=4), json_values, max_size=2))
    if choice == 3:
        doc[draw(st.text(max_size=5))] = draw(json_values)
    return json.dumps(doc) if draw(st.booleans()) else yaml.safe_dump(doc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=malformed_graphs())
def test_malformed_graph_files_give_only_ltxgraph_errors(tmp_path_factory, registry, text) -> None:
    path = tmp_path_factory.mktemp("bad") / "g.yaml"
    path.write_text(text)
    try:
        graph = load(path)
        Runner(registry, use_cache=False, folders=Folders((), path.parent, path.parent / "o")).run(graph)
    except LtxGraphError as exc:
        assert str(exc)
