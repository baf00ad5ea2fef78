"""Map a flat ComfyUI workflow onto registered ops and write an ltxgraph graph.

The widget mapping is derived from each op's signature, not from a second table: every widget input takes one
slot in ``widgets_values`` (required inputs first, then optional, in declaration order), a seed-like INT
(``control_after_generate``) is followed by a hidden slot, an upload input by an "upload" slot; linked widget
inputs keep their slot; a null value (a display-only widget) leaves the default. Saves from other ComfyUI
versions may carry fewer values (defaults fill in) or more (ignored, with a warning).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from ..errors import InvalidInput
from ..graph import format_input
from ..registry import OpSpec, Registry
from .cloud import is_cloud_node
from .params import Setting, expose, is_user_facing
from .splice import splice
from .workflow import FlatNode, FlatWorkflow, Link, Literal

# ComfyUI nodes whose meaning is exactly one of our ops (low-VRAM loaders load the same files; plumbing nodes).
ALIASES = {
    "LowVRAMCheckpointLoader": "CheckpointLoaderSimple",
    "LowVRAMAudioVAELoader": "LTXVAudioVAELoader",
    "LowVRAMLatentUpscaleModelLoader": "LatentUpscaleModelLoader",
    "CM_FloatToInt": "LTXFloatToInt",
}

# ComfyUI nodes with one output type where ltxgraph has several: the op standing for the node when its output
# feeds an input of that type (ComfyUI's one VAE is ltxgraph's VAE or AUDIO_VAE); otherwise the node's own name
FEED_VARIANTS = {"VAELoader": {"AUDIO_VAE": "VAELoaderAudio"}}


class ConversionError(InvalidInput):
    """The workflow uses nodes ltxgraph does not implement; lists all of them and what feeds from them."""


@dataclass
class Conversion:
    graph: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def widget_slots(spec: OpSpec, chosen: dict[str, Any] | None = None) -> list[str | None]:
    """Input names in ``widgets_values`` order; None marks a hidden slot (control_after_generate, upload).
    Widgets of a dynamic combo are included only when ``chosen`` gives their controlling input a value that
    shows them."""
    ordered = [i for i in spec.inputs if i.required] + [i for i in spec.inputs if not i.required]
    slots: list[str | None] = []
    for input_spec in ordered:
        port = input_spec.port
        if not port.is_widget:
            continue
        if port.shown_when is not None:
            controller, values = port.shown_when
            if chosen is None or chosen.get(controller) not in values:
                continue
        slots.append(port.comfy_name or input_spec.name)
        if port.control_after_generate or port.upload:
            slots.append(None)
    return slots


def _dynamic_choice(node: FlatNode, spec: OpSpec) -> dict[str, Any] | None:
    """The values of the inputs that control dynamic widgets, read from a UI node's widgets_values."""
    controllers = {i.port.shown_when[0] for i in spec.inputs if i.port.shown_when is not None}
    if not controllers:
        return None
    base = widget_slots(spec)
    return {name: node.widgets[base.index(name)] for name in controllers
            if name in base and base.index(name) < len(node.widgets)}


def comfy_input_names(spec: OpSpec) -> dict[str, str]:
    """ComfyUI input name -> our input name (they differ only where ComfyUI's is not an identifier)."""
    return {(i.port.comfy_name or i.name): i.name for i in spec.inputs}


def convert(workflow: FlatWorkflow, registry: Registry, name: str | None = None) -> Conversion:
    """Build an ltxgraph graph dict from ``workflow``: plumbing spliced out, nodes that feed no output pruned,
    user-facing literals exposed as parameters; raise ConversionError listing the nodes that block it."""
    warnings = list(workflow.warnings)
    nodes = splice(workflow, registry, warnings)
    specs = {node_id: spec for node_id, node in nodes.items()
             if (spec := registry.get(_op_name(node, nodes, registry))) is not None}
    cloud = [node for node in nodes.values() if is_cloud_node(node.type)]
    keep = _reachable_from_outputs(nodes, specs, warnings)
    unsupported = [nodes[node_id] for node_id in keep if node_id not in specs]
    if unsupported or cloud:
        raise ConversionError(_unsupported_report(unsupported, cloud, nodes))

    graph_nodes: dict[str, Any] = {}
    settings: list[Setting] = []
    for node_id in sorted(keep, key=_natural):
        node, spec = nodes[node_id], specs[node_id]
        widgets = _widget_values(node, spec, warnings)
        inputs = {ours: format_input(value) for ours, value in widgets.items()}
        settings += [Setting(node_id, ours, value, spec.input_by_name[ours].port.type, node.title, node.type)
                     for ours, value in widgets.items() if is_user_facing(spec, spec.input_by_name[ours])]
        names = comfy_input_names(spec)
        for comfy_name, source in node.inputs.items():
            ours = names.get(comfy_name)
            if ours is None:
                warnings.append(f"node {node_id} ({node.type}): input '{comfy_name}' is not an input of "
                                f"{spec.name}; ignored")
                continue
            if isinstance(source, Literal):
                inputs[ours] = format_input(source.value)
                if source.origin is not None or is_user_facing(spec, spec.input_by_name[ours]):
                    settings.append(Setting(node_id, ours, source.value, spec.input_by_name[ours].port.type,
                                            node.title, node.type, source.origin, source.label))
            elif source.node in keep:
                source_spec = specs[source.node]
                if source.slot >= len(source_spec.outputs):
                    raise ConversionError(f"node {node_id} ({node.type}) input '{comfy_name}' reads output slot "
                                          f"{source.slot} of node {source.node} ({source_spec.name}), which has "
                                          f"{len(source_spec.outputs)} outputs")
                inputs[ours] = f"@{source.node}.{source_spec.outputs[source.slot][0]}"
        entry: dict[str, Any] = {"op": spec.name, "in": inputs}
        if node.title:
            entry["title"] = str(node.title)
        graph_nodes[node_id] = entry
    params = expose(graph_nodes, settings)
    graph = {"ltxgraph": 1, "name": name, "params": params, "nodes": graph_nodes, "outputs": {}}
    return Conversion(graph, warnings)


def _op_name(node: FlatNode, nodes: dict[str, FlatNode], registry: Registry) -> str:
    """The op a ComfyUI node maps to: its alias, or its variant by the type of the inputs it feeds."""
    variants = FEED_VARIANTS.get(node.type)
    if variants:
        for consumer in nodes.values():
            spec = registry.get(ALIASES.get(consumer.type, consumer.type))
            names = comfy_input_names(spec) if spec else {}
            for comfy_name, source in consumer.inputs.items():
                if isinstance(source, Link) and source.node == node.id and comfy_name in names:
                    fed = spec.input_by_name[names[comfy_name]].port.type
                    if fed in variants:
                        return variants[fed]
    return ALIASES.get(node.type, node.type)


def _widget_values(node: FlatNode, spec: OpSpec, warnings: list[str]) -> dict[str, Any]:
    names = comfy_input_names(spec)
    if isinstance(node.widgets, dict):  # API format: named constants
        values = {}
        for comfy_name, value in node.widgets.items():
            if comfy_name in names:
                values[names[comfy_name]] = value
            elif comfy_name != "upload" and not comfy_name.endswith("control_after_generate"):
                warnings.append(f"node {node.id} ({node.type}): unknown input '{comfy_name}' ignored")
        return values
    slots = widget_slots(spec, _dynamic_choice(node, spec))
    values = {}
    for slot, value in zip(slots, node.widgets):
        # null is what ComfyUI saves for a widget that only shows something (LoadAudio's player): default kept
        if slot is not None and slot not in node.inputs and value is not None:
            values[names[slot]] = value
    if len(node.widgets) > len(slots):
        warnings.append(f"node {node.id} ({node.type}): {len(node.widgets) - len(slots)} extra widget value(s) "
                        f"{node.widgets[len(slots):]!r:.80} ignored (saved by another ComfyUI version?)")
    missing = [s for s in slots[len(node.widgets):] if s and s not in node.inputs]
    if missing:
        warnings.append(f"node {node.id} ({node.type}): no saved value for {', '.join(missing)}; defaults used")
    return values


def _reachable_from_outputs(nodes: dict[str, FlatNode], specs: dict[str, OpSpec], warnings: list[str]) -> set[str]:
    """The nodes an output node (of a known op) depends on; the others are left out with a warning naming
    them (unknown ones included: a node that feeds no output never blocks conversion)."""
    dag = nx.DiGraph()
    dag.add_nodes_from(nodes)
    for node in nodes.values():
        for source in node.inputs.values():
            if isinstance(source, Link):
                if source.node not in nodes:
                    raise ConversionError(f"node {node.id} ({node.type}) reads from node {source.node}, "
                                          "which is not in the workflow")
                dag.add_edge(source.node, node.id)
    outputs = [n for n in nodes if n in specs and specs[n].output_node]
    if not outputs:
        raise ConversionError("the workflow has no output node ltxgraph runs (SaveVideo, SaveImage, PreviewImage, "
                              "...)" + (f"; its nodes of unknown types: {_names(nodes, set(nodes) - set(specs))}"
                                        if set(nodes) - set(specs) else ""))
    keep = set()
    for node_id in outputs:
        keep |= {node_id} | nx.ancestors(dag, node_id)
    dropped = set(nodes) - keep
    unknown = {n for n in dropped if n not in specs}
    if unknown:
        warnings.append(f"{len(unknown)} node(s) that ltxgraph does not implement feed no output and were "
                        f"pruned: {_names(nodes, unknown)}")
    if dropped - unknown:
        ids = sorted(dropped - unknown, key=_natural)
        warnings.append(f"{len(ids)} node(s) feed no output and were left out: {', '.join(ids[:20])}"
                        + (" ..." if len(ids) > 20 else ""))
    return keep


def _names(nodes: dict[str, FlatNode], ids: set[str]) -> str:
    """``"12 (DWPreprocessor), 40 (VHS_VideoCombine)"`` in node order."""
    return ", ".join(f"{n} ({nodes[n].type})" for n in sorted(ids, key=_natural))


def _unsupported_report(unsupported: list[FlatNode], cloud: list[FlatNode], nodes: dict[str, FlatNode]) -> str:
    lines = []
    if cloud:
        lines.append(f"{len(cloud)} node(s) call a paid cloud API (ComfyUI partner nodes); ltxgraph computes "
                     "everything locally and never calls them: bypass or remove them in ComfyUI:")
        lines += [f"  node {node.id}: {node.type}" for node in sorted(cloud, key=lambda n: _natural(n.id))]
    unsupported = [node for node in unsupported if node not in cloud]
    if unsupported:
        lines.append(f"{len(unsupported)} node(s) in this workflow are not available in ltxgraph:")
    for node in sorted(unsupported, key=lambda n: _natural(n.id)):
        pack = node.properties.get("cnr_id") or node.properties.get("aux_id")
        pack_text = f" from {pack}" if pack and pack != "comfy-core" else ""
        consumers = [f"{other.id} ({other.type}).{name}" for other in nodes.values()
                     for name, src in other.inputs.items() if isinstance(src, Link) and src.node == node.id]
        feeds = f"; feeds {', '.join(consumers[:6])}" if consumers else ""
        lines.append(f"  node {node.id}: {node.type}{pack_text}{feeds}")
    return "\n".join(lines)


def _natural(node_id: str) -> tuple:
    """Sort key: "9" < "10" < "10:2"; non-numeric parts after numeric ones."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in node_id.split(":"))
