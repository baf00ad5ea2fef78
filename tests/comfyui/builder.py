"""Build small UI-format ComfyUI workflows in tests, the way the ComfyUI frontend saves them."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class UIWorkflow:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    links: list[list[Any]] = field(default_factory=list)
    subgraphs: list[dict[str, Any]] = field(default_factory=list)
    next_link: int = 1

    def node(self, node_id: int, kind: str, widgets: list | None = None, inputs: list[tuple[str, str]] = (),
             outputs: list[tuple[str, str]] = (), mode: int = 0, widget_inputs: tuple[str, ...] = ()) -> dict:
        node = {"id": node_id, "type": kind, "mode": mode, "widgets_values": widgets or [],
                "inputs": [{"name": n, "type": t, "link": None, **({"widget": {"name": n}} if n in widget_inputs else {})}
                           for n, t in inputs],
                "outputs": [{"name": n, "type": t, "links": []} for n, t in outputs], "properties": {}}
        self.nodes.append(node)
        return node

    def link(self, src: dict, src_slot: int, dst: dict, dst_name: str, kind: str = "*") -> int:
        link_id = self.next_link
        self.next_link += 1
        slot = next(i for i, s in enumerate(dst["inputs"]) if s["name"] == dst_name)
        dst["inputs"][slot]["link"] = link_id
        src["outputs"][src_slot]["links"].append(link_id)
        self.links.append([link_id, src["id"], src_slot, dst["id"], slot, kind])
        return link_id

    def to_json(self) -> dict:
        return {"last_node_id": max([n["id"] for n in self.nodes] or [0]), "nodes": self.nodes, "links": self.links,
                "groups": [], "definitions": {"subgraphs": self.subgraphs}, "version": 0.4}


def literal_inputs(graph: Any, node_id: str) -> dict[str, Any]:
    """A converted node's inputs with every ``$param`` replaced by the parameter's default."""
    params = graph.file.params
    return {name: params[value[1:]].default if isinstance(value, str) and value[:1] == "$" and value[1:2] != "$"
            else value for name, value in graph.file.nodes[node_id].inputs.items()}


def save(tmp_path: Path, data: dict, name: str = "wf.json") -> Path:
    """Write a workflow (or prompt) as JSON under ``tmp_path``."""
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path
