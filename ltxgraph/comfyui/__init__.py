"""ComfyUI workflows in (UI and API formats) and out (API format). See :mod:`.workflow` and :mod:`.convert`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..graph import GraphFile, NodeRef, parse_input
from ..loader import SourceDoc, graph_from_doc
from ..registry import Registry
from .convert import Conversion, ConversionError, convert, widget_slots
from .workflow import WorkflowError, flatten_api, flatten_ui

__all__ = ["convert_document", "load_workflow", "export_api", "widget_slots", "ConversionError", "WorkflowError"]


def convert_document(doc: SourceDoc, kind: str, registry: Registry) -> Conversion:
    """Convert a parsed workflow (``kind`` 'comfyui-ui' or 'comfyui-api') into a graph dict."""
    if not isinstance(doc.data, dict):
        raise WorkflowError("a ComfyUI workflow must be a JSON object")
    flat = flatten_ui(doc.data) if kind == "comfyui-ui" else flatten_api(doc.data)
    name = Path(doc.path).stem if doc.path else None
    return convert(flat, registry, name)


def load_workflow(doc: SourceDoc, kind: str, registry: Registry):
    """Convert and load as a Graph; the converted graph is validated like any graph file."""
    from ..api import Graph

    conversion = convert_document(doc, kind, registry)
    converted = SourceDoc(conversion.graph, {}, doc.path, doc.text)
    try:
        graph = Graph(graph_from_doc(converted), converted)
    except ValidationError as exc:
        raise ValidationError(exc.problems, f"{doc.path} (converted)") from None
    graph.warnings = conversion.warnings
    return graph


def export_api(graph: GraphFile, registry: Registry, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A graph as a ComfyUI API-format prompt: parameters replaced by their values, references by [id, slot]."""
    values = {name: spec.default for name, spec in graph.params.items()} | (params or {})
    prompt: dict[str, Any] = {}
    for node_id, node in graph.nodes.items():
        spec = registry.get(node.op)
        comfy = {i.name: i.port.comfy_name or i.name for i in spec.inputs} if spec else {}
        inputs: dict[str, Any] = {}
        for name, raw in node.inputs.items():
            value = parse_input(raw)
            if isinstance(value, NodeRef):
                source = registry.get(graph.nodes[value.node].op)
                ports = [p for p, _ in source.outputs] if source else []
                value = [value.node, ports.index(value.port) if value.port in ports else 0]
            elif hasattr(value, "name") and not isinstance(value, str):  # ParamRef
                value = values[value.name]
            inputs[comfy.get(name, name)] = value
        prompt[node_id] = {"class_type": node.op, "inputs": inputs, "_meta": {"title": node.title or node.op}}
    return prompt
