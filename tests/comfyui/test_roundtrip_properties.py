"""Random UI-format workflows built from our ops' signatures convert to graphs that validate, and
UI -> graph -> API -> graph is stable. Generic over the registry: every op with satisfiable inputs takes part."""
from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltxgraph import Registry, load
from ltxgraph.comfyui import export_api, widget_slots
from ltxgraph.registry import InputSpec, OpSpec
from ltxgraph.types import accepts, is_scalar
from ltxgraph.validate import validate

REGISTRY = Registry.from_modules("tests.engine.sample_ops", "ltxgraph_ops")
EXCLUDED = {"Fail", "BadOutput", "Sleep", "WriteText"}  # ops that fail or wait on purpose


def scalar_values(spec: InputSpec):
    port = spec.port
    if port.choices:
        return st.sampled_from(list(port.choices))
    kind = port.type.split("|")[0]
    if kind == "BOOLEAN":
        return st.booleans()
    if kind == "STRING":
        return st.sampled_from(["model.safetensors"]) if port.file else st.text(
            st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
    bound = float if kind == "FLOAT" else int   # a FLOAT minimum of 0.01 must not become 0
    low = bound(port.min) if port.min is not None else -1000
    high = bound(port.max) if port.max is not None else 1000
    low, high = max(low, -10**6), min(high, 10**6)
    if kind == "FLOAT":
        return st.floats(low, high, allow_nan=False).map(lambda v: round(v, 3)).filter(lambda v: low <= v <= high)
    values = st.integers(low, high)
    if port.multiple_of:
        values = values.map(lambda v: v // port.multiple_of * port.multiple_of).filter(lambda v: v >= low)
    if port.eight_n_plus_one:
        values = values.map(lambda v: (v - 1) // 8 * 8 + 1).filter(lambda v: v >= low)
    return values


def usable(spec: OpSpec, available: list[str]) -> bool:
    return spec.name not in EXCLUDED and all(
        not i.required or i.port.is_widget or any(accepts(i.port.type, t) for t in available) for i in spec.inputs)


@st.composite
def ui_workflows(draw):
    nodes, links, produced = [], [], []  # produced: (node_id, slot, type)
    specs = [s for s in REGISTRY]
    for node_id in range(1, draw(st.integers(2, 9)) + 1):
        choices = [s for s in specs if usable(s, [t for _, _, t in produced])]
        spec = draw(st.sampled_from(choices))
        node = {"id": node_id, "type": spec.name, "mode": 0, "inputs": [], "outputs": [], "properties": {}}
        widgets = []
        # inputs that show or hide other widgets (dynamic combos) are drawn first: the slots depend on them
        chosen = {i.port.shown_when[0]: None for i in spec.inputs if i.port.shown_when is not None}
        chosen = {name: draw(scalar_values(spec.input_by_name[name])) for name in chosen}
        by_slot = {i.port.comfy_name or i.name: i for i in spec.inputs}     # dynamic widgets: "resize_type.width"
        for slot_name in widget_slots(spec, chosen if chosen else None):
            if slot_name is None:
                widgets.append("fixed")
                continue
            widgets.append(chosen[slot_name] if slot_name in chosen else draw(scalar_values(by_slot[slot_name])))
        linked_types = {}
        # a lazy switch's two branches are linked to one source when linked at all: whichever branch the switch
        # takes, something of the same type flows on (a workflow whose switch takes an unlinked branch is broken,
        # in ComfyUI too, and is refused at validation)
        branches, branch_source = set(spec.lazy_switch[1:]) if spec.lazy_switch else set(), None
        for input_spec in spec.inputs:
            shown_when = input_spec.port.shown_when
            if shown_when is not None and chosen[shown_when[0]] not in shown_when[1]:
                continue     # a dynamic widget its combo hides is not on the node at all
            sources = [(n, s, t) for n, s, t in produced if accepts(input_spec.port.type, t)]
            wants_link = not input_spec.port.is_widget and (input_spec.required or draw(st.booleans()))
            if input_spec.port.is_widget and sources and is_scalar(input_spec.port.type) and draw(st.integers(0, 4)) == 0:
                wants_link = True  # a linked widget keeps its slot in widgets_values
            entry = {"name": input_spec.port.comfy_name or input_spec.name, "type": input_spec.port.type,
                     "link": None}
            if input_spec.name in branches:
                wants_link = True
            if wants_link and sources:
                if input_spec.name in branches:
                    branch_source = branch_source or draw(st.sampled_from(sources))
                src_node, src_slot, src_type = (branch_source if input_spec.name in branches
                                                else draw(st.sampled_from(sources)))
                linked_types[input_spec.name] = src_type
                link_id = len(links) + 1
                links.append([link_id, src_node, src_slot, node_id, len(node["inputs"]), input_spec.port.type])
                entry["link"] = link_id
            node["inputs"].append(entry)
        node["widgets_values"] = widgets
        for slot, (name, port_type) in enumerate(spec.outputs):
            if port_type.startswith("="):  # follows an input: the type of what was linked to it
                port_type = linked_types.get(port_type[1:])
            node["outputs"].append({"name": name, "type": port_type or "*", "links": []})
            if port_type:
                produced.append((node_id, slot, port_type))
        nodes.append(node)
    images = [(n, s) for n, s, t in produced if t == "IMAGE"]
    sink = {"id": 999, "type": "PreviewTensor", "mode": 0, "properties": {}, "outputs": [], "widgets_values": [],
            "inputs": [{"name": "images", "type": "IMAGE", "link": None}]}
    if images:
        src_node, src_slot = draw(st.sampled_from(images))
        links.append([len(links) + 1, src_node, src_slot, 999, 0, "IMAGE"])
        sink["inputs"][0]["link"] = len(links)
    else:
        make = {"id": 998, "type": "MakeTensor", "mode": 0, "properties": {}, "inputs": [],
                "widgets_values": [1, "fixed", 16], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": []}]}
        nodes.append(make)
        links.append([len(links) + 1, 998, 0, 999, 0, "IMAGE"])
        sink["inputs"][0]["link"] = len(links)
    nodes.append(sink)
    return {"nodes": nodes, "links": links, "definitions": {"subgraphs": []}}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(workflow=ui_workflows())
def test_random_workflows_convert_validate_and_round_trip(tmp_path_factory, workflow) -> None:
    tmp = tmp_path_factory.mktemp("rt")
    (tmp / "wf.json").write_text(json.dumps(workflow))
    graph = load(tmp / "wf.json", REGISTRY)
    validate(graph.file, REGISTRY, graph.doc)  # model files are not resolved here (no folders)
    prompt = export_api(graph.file, REGISTRY)
    (tmp / "prompt.json").write_text(json.dumps(prompt))
    again = load(tmp / "prompt.json", REGISTRY)
    assert again.file.nodes == graph.file.nodes
    assert export_api(again.file, REGISTRY) == prompt
