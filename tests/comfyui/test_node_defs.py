"""Every op that mirrors a ComfyUI node keeps that node's widget order, inputs and outputs, so workflows map 1:1.
The reference is ComfyUI's own /object_info, saved in tests/data/reference/comfyui_node_defs.json."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltxgraph import Registry
from ltxgraph.comfyui import widget_slots

from ..conftest import REFERENCE

DEFS_PATH = REFERENCE / "comfyui_node_defs.json"
REGISTRY = Registry.discover()
DEFS = json.loads(DEFS_PATH.read_text())["nodes"]
MIRRORED = sorted(spec.name for spec in REGISTRY if "widgets_values_order" in DEFS.get(spec.name, {}))


def expected_slots(definition: dict) -> list[str | None]:
    """widgets_values_order with hidden slots as None (dynamic-combo groups flattened to their widgets)."""
    slots: list[str | None] = []
    for entry in definition["widgets_values_order"]:
        if isinstance(entry, dict):
            continue  # dynamic combo sub-widgets: only present for the chosen option
        slots.append(None if entry.endswith(".control_after_generate") or entry == "upload" else entry)
    return slots


def test_some_ops_mirror_comfyui_nodes() -> None:
    assert {"PrimitiveInt", "PrimitiveFloat", "ComfyMathExpression", "LTXFloatToInt"} <= set(MIRRORED)


@pytest.mark.parametrize("name", MIRRORED)
def test_widget_order_matches_comfyui(name: str) -> None:
    spec = REGISTRY.get(name)
    ours = [s for s in widget_slots(spec)]
    assert ours == expected_slots(DEFS[name])


@pytest.mark.parametrize("name", MIRRORED)
def test_inputs_and_outputs_match_comfyui(name: str) -> None:
    spec, definition = REGISTRY.get(name), DEFS[name]
    ours = {i.port.comfy_name or i.name for i in spec.inputs}
    theirs = {i["name"] for i in definition["inputs"] if i["type"] != "COMFY_AUTOGROW_V3"}
    assert theirs <= ours, f"missing inputs {theirs - ours}"
    assert [n for n, _ in spec.outputs] == [o["name"] for o in definition["outputs"]]


def test_cloud_api_nodes_are_told_apart_by_name() -> None:
    """ComfyUI's comfy_api_nodes (its paid partner nodes) and no other node of the reference match the rule,
    and no op of ours does."""
    from ltxgraph.comfyui.cloud import is_cloud_node

    cloud = {name for name, entry in DEFS.items() if str(entry.get("python_module")).startswith("comfy_api_nodes")}
    assert len(cloud) >= 4 and {name for name in DEFS if is_cloud_node(name)} == cloud
    assert not [spec.name for spec in REGISTRY if is_cloud_node(spec.name)]
    assert all(map(is_cloud_node, ("KlingTextToVideoNode", "LtxvApiTextToVideo", "WanTextToVideoApi", "VeoVideoGenerationNode")))
