"""The converter on small workflows built from the sample ops: every UI-format rule, the API format, export."""
from __future__ import annotations

from pathlib import Path

import pytest

from ltxgraph import Registry, load
from ltxgraph.comfyui import ConversionError, WorkflowError, export_api, widget_slots
from ltxgraph.errors import ValidationError
from ltxgraph.validate import validate

from .builder import UIWorkflow, save, literal_inputs



def chain(wf: UIWorkflow, scale_mode: int = 0) -> tuple[dict, dict, dict]:
    make = wf.node(1, "MakeTensor", [5, "randomize", 24], outputs=[("IMAGE", "IMAGE")])
    scale = wf.node(2, "ScaleImage", [0.5], inputs=[("image", "IMAGE"), ("factor", "FLOAT")],
                    outputs=[("IMAGE", "IMAGE")], mode=scale_mode, widget_inputs=("factor",))
    preview = wf.node(3, "PreviewTensor", inputs=[("images", "IMAGE")])
    wf.link(make, 0, scale, "image", "IMAGE")
    wf.link(scale, 0, preview, "images", "IMAGE")
    return make, scale, preview


def test_widgets_map_by_signature_with_hidden_seed_slot(tmp_path: Path, registry: Registry) -> None:
    wf = UIWorkflow()
    chain(wf)
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert literal_inputs(graph, "1") == {"seed": 5, "width": 24}
    assert literal_inputs(graph, "2") == {"image": "@1.IMAGE", "factor": 0.5}
    assert literal_inputs(graph, "3") == {"images": "@2.IMAGE"}
    assert widget_slots(registry.get("MakeTensor")) == ["seed", None, "width"]


def test_reroutes_and_primitive_nodes_are_resolved_and_linked_widgets_keep_their_slot(tmp_path, registry) -> None:
    wf = UIWorkflow()
    make, scale, preview = chain(wf)
    wf.links.clear()
    for node in wf.nodes:
        for slot in node["inputs"]:
            slot["link"] = None
    reroute_a = wf.node(10, "Reroute", inputs=[("", "*")], outputs=[("", "IMAGE")])
    reroute_b = wf.node(11, "Reroute", inputs=[("", "*")], outputs=[("", "IMAGE")])
    primitive = wf.node(12, "PrimitiveNode", [0.25, "fixed"], outputs=[("FLOAT", "FLOAT")])
    wf.link(make, 0, reroute_a, "")
    wf.link(reroute_a, 0, reroute_b, "")
    wf.link(reroute_b, 0, scale, "image")
    wf.link(primitive, 0, scale, "factor")
    wf.link(scale, 0, preview, "images")
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert set(graph.file.nodes) == {"1", "2", "3"}
    assert literal_inputs(graph, "2") == {"image": "@1.IMAGE", "factor": 0.25}


def test_bypassed_node_passes_its_matching_input_through(tmp_path: Path, registry: Registry) -> None:
    wf = UIWorkflow()
    chain(wf, scale_mode=4)
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert set(graph.file.nodes) == {"1", "3"} and literal_inputs(graph, "3") == {"images": "@1.IMAGE"}


def test_muted_node_is_removed_and_its_consumer_reports_the_missing_input(tmp_path: Path, registry) -> None:
    wf = UIWorkflow()
    chain(wf, scale_mode=2)
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert set(graph.file.nodes) == {"3"} and literal_inputs(graph, "3") == {}  # MakeTensor feeds nothing now
    with pytest.raises(ValidationError, match="node '3': missing required input 'images'"):
        validate(graph.file, registry, graph.doc)


def test_nodes_that_feed_no_output_are_pruned(tmp_path: Path, registry: Registry) -> None:
    wf = UIWorkflow()
    chain(wf)
    wf.node(20, "Const", [4], outputs=[("VALUE", "INT")])
    wf.node(21, "Note", ["just a note"])
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert set(graph.file.nodes) == {"1", "2", "3"}
    assert any("20" in w for w in graph.warnings)


def test_version_drift_in_widget_values(tmp_path: Path, registry: Registry) -> None:
    wf = UIWorkflow()
    make, scale, _ = chain(wf)
    make["widgets_values"] = [7, "fixed"]            # older save: width missing -> default
    scale["widgets_values"] = [0.5, "extra", 3]      # newer save: extra values ignored
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert literal_inputs(graph, "1") == {"seed": 7}
    assert literal_inputs(graph, "2")["factor"] == 0.5
    assert any("no saved value for width" in w for w in graph.warnings)
    assert any("2 extra widget value(s)" in w for w in graph.warnings)


def subgraph_workflow(inner_mode: int = 0) -> dict:
    """Outer: MakeTensor -> [subgraph: ScaleImage(factor promoted) -> ScaleImage] -> PreviewTensor."""
    wf = UIWorkflow()
    make = wf.node(1, "MakeTensor", [3, "fixed", 16], outputs=[("IMAGE", "IMAGE")])
    instance = wf.node(5, "sub-1", [0.25], inputs=[("image", "IMAGE")], outputs=[("IMAGE", "IMAGE")])
    preview = wf.node(3, "PreviewTensor", inputs=[("images", "IMAGE")])
    wf.link(make, 0, instance, "image", "IMAGE")
    wf.link(instance, 0, preview, "images", "IMAGE")
    inner = UIWorkflow()
    first = inner.node(7, "ScaleImage", [1.0], inputs=[("image", "IMAGE"), ("factor", "FLOAT")],
                       outputs=[("IMAGE", "IMAGE")], widget_inputs=("factor",), mode=inner_mode)
    second = inner.node(8, "ScaleImage", [2.0], inputs=[("image", "IMAGE")], outputs=[("IMAGE", "IMAGE")])
    inner.link(first, 0, second, "image", "IMAGE")
    sub_links = [{"id": l[0], "origin_id": l[1], "origin_slot": l[2], "target_id": l[3], "target_slot": l[4],
                  "type": l[5]} for l in inner.links]
    sub_links += [{"id": 90, "origin_id": -10, "origin_slot": 0, "target_id": 7, "target_slot": 0, "type": "IMAGE"},
                  {"id": 91, "origin_id": -10, "origin_slot": 1, "target_id": 7, "target_slot": 1, "type": "FLOAT"},
                  {"id": 92, "origin_id": 8, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "IMAGE"}]
    first["inputs"][0]["link"], first["inputs"][1]["link"] = 90, 91
    wf.subgraphs.append({"id": "sub-1", "name": "Scale twice", "nodes": inner.nodes, "links": sub_links,
                         "inputs": [{"name": "image", "type": "IMAGE", "linkIds": [90]},
                                    {"name": "factor", "type": "FLOAT", "linkIds": [91]}],
                         "outputs": [{"name": "IMAGE", "type": "IMAGE", "linkIds": [92]}],
                         "inputNode": {"id": -10}, "outputNode": {"id": -20}, "widgets": []})
    return wf.to_json()


def test_subgraphs_flatten_with_promoted_widgets(tmp_path: Path, registry: Registry) -> None:
    graph = load(save(tmp_path, subgraph_workflow()), registry)
    assert set(graph.file.nodes) == {"1", "3", "5:7", "5:8"}
    assert literal_inputs(graph, "5:7") == {"image": "@1.IMAGE", "factor": 0.25}
    assert literal_inputs(graph, "5:8") == {"image": "@5:7.IMAGE", "factor": 2.0}
    assert literal_inputs(graph, "3") == {"images": "@5:8.IMAGE"}
    result = graph.run(runner=__import__("ltxgraph").Runner(registry, use_cache=False))
    assert result.report.status == "ok"


def test_nested_subgraphs_get_nested_ids(tmp_path: Path, registry: Registry) -> None:
    data = subgraph_workflow()
    outer_sub = {**data["definitions"]["subgraphs"][0], "id": "sub-outer", "name": "wrapper",
                 "nodes": [{"id": 4, "type": "sub-1", "mode": 0, "widgets_values": [0.125],
                            "inputs": [{"name": "image", "type": "IMAGE", "link": 95}],
                            "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [96]}], "properties": {}}],
                 "links": [{"id": 95, "origin_id": -10, "origin_slot": 0, "target_id": 4, "target_slot": 0},
                           {"id": 96, "origin_id": 4, "origin_slot": 0, "target_id": -20, "target_slot": 0}],
                 "inputs": [{"name": "image", "type": "IMAGE", "linkIds": [95]}],
                 "outputs": [{"name": "IMAGE", "type": "IMAGE", "linkIds": [96]}]}
    data["definitions"]["subgraphs"].append(outer_sub)
    data["nodes"][1]["type"] = "sub-outer"
    graph = load(save(tmp_path, data), registry)
    assert set(graph.file.nodes) == {"1", "3", "5:4:7", "5:4:8"}
    assert literal_inputs(graph, "5:4:7")["factor"] == 0.125


def test_unsupported_nodes_are_all_reported_with_what_they_feed(tmp_path: Path, registry: Registry) -> None:
    wf = UIWorkflow()
    make, scale, preview = chain(wf)
    scale["type"] = "ImageSharpen+"
    scale["properties"] = {"cnr_id": "comfyui_essentials"}
    make["type"] = "SomethingElse"
    with pytest.raises(ConversionError) as info:
        load(save(tmp_path, wf.to_json()), registry)
    text = str(info.value)
    assert "2 node(s)" in text and "node 1: SomethingElse; feeds 2 (ImageSharpen+).image" in text
    assert "node 2: ImageSharpen+ from comfyui_essentials; feeds 3 (PreviewTensor).images" in text


@pytest.mark.parametrize("damage, words", [
    (lambda d: d["links"].pop(), "link 2 is used"),
    (lambda d: d["nodes"][1].pop("type"), "lacks its id or type"),
    (lambda d: d.update(links=[["x"]]), "malformed link"),
])
def test_broken_workflows_give_workflow_errors(tmp_path: Path, registry: Registry, damage, words) -> None:
    wf = UIWorkflow()
    chain(wf)
    data = wf.to_json()
    damage(data)
    with pytest.raises(WorkflowError, match=words):
        load(save(tmp_path, data), registry)


def test_api_format_and_export_round_trip(tmp_path: Path, registry: Registry) -> None:
    ui_graph = load(save(tmp_path, subgraph_workflow()), registry)
    prompt = export_api(ui_graph.file, registry)
    assert prompt["5:8"] == {"class_type": "ScaleImage", "inputs": {"image": ["5:7", 0], "factor": 2.0},
                             "_meta": {"title": "ScaleImage"}}
    api_graph = load(save(tmp_path, prompt, "prompt.json"), registry)
    assert all(literal_inputs(api_graph, n) == literal_inputs(ui_graph, n) for n in ui_graph.file.nodes)
    assert set(api_graph.file.nodes) == set(ui_graph.file.nodes)
    assert export_api(api_graph.file, registry) == prompt


def switch_workflow(wf: UIWorkflow, switch_widgets: list) -> dict:
    """MakeTensor seed 1 -> on_false, seed 2 -> on_true, a lazy switch -> PreviewTensor."""
    off = wf.node(1, "MakeTensor", [1, "fixed", 16], outputs=[("IMAGE", "IMAGE")])
    on = wf.node(2, "MakeTensor", [2, "fixed", 16], outputs=[("IMAGE", "IMAGE")])
    switch = wf.node(3, "ComfySwitchNode", switch_widgets, inputs=[("switch", "BOOLEAN"), ("on_false", "*"),
                                                                   ("on_true", "*")],
                     outputs=[("output", "*")], widget_inputs=("switch",))
    preview = wf.node(4, "PreviewTensor", inputs=[("images", "IMAGE")])
    wf.link(off, 0, switch, "on_false")
    wf.link(on, 0, switch, "on_true")
    wf.link(switch, 0, preview, "images")
    return switch


@pytest.mark.parametrize("value, kept", [(True, "2"), (False, "1")])
def test_lazy_switch_with_a_literal_switch_keeps_only_the_branch_it_takes(tmp_path, registry, value, kept) -> None:
    wf = UIWorkflow()
    switch_workflow(wf, [value])
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert set(graph.file.nodes) == {kept, "4"} and graph.file.nodes["4"].inputs == {"images": f"@{kept}.IMAGE"}
    assert any(f"node 3 (ComfySwitchNode): switch is {value}" in w for w in graph.warnings)


def test_lazy_switch_set_by_a_primitive_node_is_resolved_too(tmp_path: Path, registry: Registry) -> None:
    wf = UIWorkflow()
    switch = switch_workflow(wf, [False])
    flag = wf.node(9, "PrimitiveBoolean", [True], outputs=[("BOOLEAN", "BOOLEAN")])
    wf.link(flag, 0, switch, "switch", "BOOLEAN")
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert set(graph.file.nodes) == {"2", "4"}


def test_lazy_switch_on_a_computed_value_stays_a_node(tmp_path: Path, registry: Registry) -> None:
    wf = UIWorkflow()
    switch = switch_workflow(wf, [False])
    computed = wf.node(9, "Const", [1], outputs=[("VALUE", "INT")])
    wf.link(computed, 0, switch, "switch", "INT")
    with pytest.raises(ConversionError, match="node 3: ComfySwitchNode"):   # no such op in the sample ops
        load(save(tmp_path, wf.to_json()), registry)


def test_unknown_nodes_that_feed_no_output_are_pruned_with_a_warning_naming_them(tmp_path, registry) -> None:
    wf = UIWorkflow()
    make, _, _ = chain(wf)
    side = wf.node(30, "DWPreprocessor", [], inputs=[("image", "IMAGE")], outputs=[("IMAGE", "IMAGE")])
    wf.link(make, 0, side, "image", "IMAGE")
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert set(graph.file.nodes) == {"1", "2", "3"}
    assert any("do" in w and "30 (DWPreprocessor)" in w and "pruned" in w for w in graph.warnings)


@pytest.mark.parametrize("mode", [2, 4])
def test_bypassed_or_muted_unknown_nodes_never_block(tmp_path: Path, registry: Registry, mode: int) -> None:
    wf = UIWorkflow()
    make, scale, preview = chain(wf)
    sharpen = wf.node(40, "ImageSharpen+", [1, 0.5], inputs=[("image", "IMAGE")], outputs=[("IMAGE", "IMAGE")],
                      mode=mode)
    wf.links.pop()                       # scale -> preview now goes through the bypassed/muted node
    preview["inputs"][0]["link"] = None
    wf.link(scale, 0, sharpen, "image", "IMAGE")
    wf.link(sharpen, 0, preview, "images", "IMAGE")
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert "40" not in graph.file.nodes
    assert graph.file.nodes["3"].inputs == ({"images": "@2.IMAGE"} if mode == 4 else {})


def test_active_paid_cloud_api_nodes_are_refused_by_name(tmp_path: Path, registry: Registry) -> None:
    wf = UIWorkflow()
    make, scale, preview = chain(wf)
    wf.node(50, "KlingTextToVideoNode", ["a cat", "", 0.8], outputs=[("VIDEO", "VIDEO")])
    wf.node(51, "LtxvApiImageToVideo", [], inputs=[("image", "IMAGE")], outputs=[("VIDEO", "VIDEO")], mode=4)
    with pytest.raises(ConversionError) as info:
        load(save(tmp_path, wf.to_json()), registry)
    text = str(info.value)
    assert "1 node(s) call a paid cloud API" in text and "node 50: KlingTextToVideoNode" in text
    assert "LtxvApiImageToVideo" not in text     # bypassed: never blocks
    assert "not available" not in text


def test_promoted_widgets_follow_the_instances_proxy_widget_order(tmp_path: Path, registry: Registry) -> None:
    """Newer frontends save an instance's widgets_values in properties.proxyWidgets order, [node, widget] pairs
    with node "-1" for the subgraph's inputs (ComfyUI-LTXVideo's IC-LoRA example lists strength before seed)."""
    data = subgraph_workflow()
    definition = data["definitions"]["subgraphs"][0]
    definition["inputs"].append({"name": "seed", "type": "INT", "linkIds": []})
    instance = data["nodes"][1]
    instance["properties"] = {"proxyWidgets": [["7", "factor"], ["-1", "seed"], ["-1", "factor"]]}
    instance["widgets_values"] = [None, 11, 0.75]
    graph = load(save(tmp_path, data), registry)
    assert literal_inputs(graph, "5:7")["factor"] == 0.75
