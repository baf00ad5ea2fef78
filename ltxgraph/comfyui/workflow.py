"""Read ComfyUI workflows into one flat form: real nodes with, per input, a link to another real node's output
slot or a literal. The UI format is flattened here: subgraphs (ids "outer:inner"), reroutes, PrimitiveNodes,
notes, muted (mode 2) and bypassed (mode 4) nodes are all resolved away. The API format is already flat."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput

VIRTUAL_NODES = {"Reroute", "PrimitiveNode", "Note", "MarkdownNote"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
SUBGRAPH_INPUT_NODE, SUBGRAPH_OUTPUT_NODE = -10, -20
MODE_MUTED, MODE_BYPASSED = 2, 4
MAX_SUBGRAPH_DEPTH = 16


class WorkflowError(InvalidInput):
    """A ComfyUI workflow is malformed (broken links, unknown subgraphs, ...)."""


@dataclass(frozen=True)
class Link:
    """The output ``slot`` of real node ``node`` (flat id)."""

    node: str
    slot: int


@dataclass(frozen=True)
class Literal:
    """A constant input. ``origin`` identifies where a user sets it when that is not the consuming node: a
    PrimitiveNode or a subgraph's promoted widget (consumers of one origin share one graph parameter);
    ``label`` is that place's title or input name."""

    value: Any
    origin: str | None = None
    label: str | None = None


@dataclass
class FlatNode:
    """A real node after flattening. ``inputs``: name -> Link or Literal for connected inputs (and subgraph
    widgets); ``widgets``: the UI-format positional widget values, or the API format's named constants."""

    id: str
    type: str
    inputs: dict[str, Link | Literal] = field(default_factory=dict)
    widgets: list[Any] | dict[str, Any] = field(default_factory=list)
    title: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class FlatWorkflow:
    nodes: dict[str, FlatNode]
    warnings: list[str] = field(default_factory=list)


def flatten_api(data: dict[str, Any]) -> FlatWorkflow:
    """API format {id: {class_type, inputs: {name: constant | [from_id, slot]}}} -> flat nodes."""
    nodes: dict[str, FlatNode] = {}
    for node_id, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("class_type"), str):
            raise WorkflowError(f"API-format node '{node_id}' has no class_type")
        raw_inputs = entry.get("inputs", {})
        if not isinstance(raw_inputs, dict):
            raise WorkflowError(f"API-format node '{node_id}': inputs must be a mapping")
        meta = entry.get("_meta") if isinstance(entry.get("_meta"), dict) else {}
        title = meta.get("title") if meta.get("title") != entry["class_type"] else None
        node = FlatNode(str(node_id), entry["class_type"], widgets={}, title=title)
        for name, value in raw_inputs.items():
            if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
                    and isinstance(value[1], int) and not isinstance(value[1], bool)):
                if str(value[0]) not in data:
                    raise WorkflowError(f"node '{node_id}' input '{name}' links to missing node '{value[0]}'")
                node.inputs[name] = Link(str(value[0]), value[1])
            else:
                node.widgets[name] = value  # type: ignore[index]
        nodes[node.id] = node
    return FlatWorkflow(nodes)


@dataclass
class _Scope:
    """One graph level of a UI workflow: the top level, or one instance of a subgraph."""

    nodes: dict[int, dict[str, Any]]
    links: dict[int, tuple[int, int, int, int]]  # id -> (origin_id, origin_slot, target_id, target_slot)
    prefix: str
    definition: dict[str, Any] | None = None
    instance: dict[str, Any] | None = None
    parent: "_Scope | None" = None
    depth: int = 0


class _UIFlattener:
    def __init__(self, data: dict[str, Any]) -> None:
        self.subgraphs = {sg["id"]: sg for sg in (data.get("definitions") or {}).get("subgraphs") or []
                          if isinstance(sg, dict) and "id" in sg}
        self.warnings: list[str] = []
        self.result: dict[str, FlatNode] = {}
        self._children: dict[tuple[int, int], _Scope] = {}

    def run(self, data: dict[str, Any]) -> FlatWorkflow:
        self.add_scope(_Scope(_index_nodes(data.get("nodes")), _index_links(data.get("links")), ""))
        return FlatWorkflow(self.result, self.warnings)

    def add_scope(self, scope: _Scope) -> None:
        for node_id, node in scope.nodes.items():
            kind, mode = node.get("type"), node.get("mode", 0)
            if kind in VIRTUAL_NODES or mode in (MODE_MUTED, MODE_BYPASSED):
                continue
            if kind in self.subgraphs:
                self.add_scope(self.child(scope, node))
                continue
            flat = FlatNode(f"{scope.prefix}{node_id}", str(kind), widgets=list(node.get("widgets_values") or [])
                            if isinstance(node.get("widgets_values"), list) else node.get("widgets_values") or [],
                            title=node.get("title"), properties=node.get("properties") or {})
            for slot in node.get("inputs") or []:
                if slot.get("link") is not None:
                    source = self.resolve_link(scope, slot["link"])
                    if source is not None:
                        flat.inputs[slot["name"]] = source
            self.result[flat.id] = flat

    def child(self, scope: _Scope, instance: dict[str, Any]) -> _Scope:
        key = (id(scope), id(instance))  # a definition reused at several places gets one scope per place
        if key not in self._children:
            if scope.depth >= MAX_SUBGRAPH_DEPTH:
                raise WorkflowError(f"subgraphs nested deeper than {MAX_SUBGRAPH_DEPTH} (recursive definition?)")
            definition = self.subgraphs[instance["type"]]
            self._children[key] = _Scope(_index_nodes(definition.get("nodes")), _index_links(definition.get("links")),
                                         f"{scope.prefix}{instance['id']}:", definition, instance, scope, scope.depth + 1)
        return self._children[key]

    def resolve_link(self, scope: _Scope, link_id: int) -> Link | Literal | None:
        link = scope.links.get(link_id)
        if link is None:
            raise WorkflowError(f"link {link_id} is used by a node but not listed{_where(scope)}")
        return self.resolve_output(scope, link[0], link[1])

    def resolve_output(self, scope: _Scope, node_id: int, slot: int, seen: frozenset = frozenset()) -> Link | Literal | None:
        if (id(scope), node_id, slot) in seen:
            raise WorkflowError(f"reroutes or bypassed nodes form a loop at node {node_id}{_where(scope)}")
        seen = seen | {(id(scope), node_id, slot)}
        if node_id == SUBGRAPH_INPUT_NODE:
            return self.resolve_subgraph_input(scope, slot)
        node = scope.nodes.get(node_id)
        if node is None:
            raise WorkflowError(f"a link comes from missing node {node_id}{_where(scope)}")
        kind, mode = node.get("type"), node.get("mode", 0)
        if mode == MODE_MUTED:
            return None
        if kind == "PrimitiveNode":
            values = node.get("widgets_values") or []
            return Literal(values[0], f"{scope.prefix}{node_id}", node.get("title")) if values else None
        if kind == "Reroute":
            inputs = node.get("inputs") or []
            link = inputs[0].get("link") if inputs else None
            return None if link is None else self._follow(scope, link, seen)
        if mode == MODE_BYPASSED:
            return self.bypass(scope, node, slot, seen)
        if kind in self.subgraphs:
            child = self.child(scope, node)
            outputs = child.definition.get("outputs") or []
            if slot >= len(outputs):
                return None
            link_ids = [i for i in outputs[slot].get("linkIds") or [] if i in child.links]
            if link_ids:
                return self._follow(child, link_ids[0], seen)
            return self.repair_subgraph_output(child, outputs[slot])
        return Link(f"{scope.prefix}{node_id}", slot)

    def repair_subgraph_output(self, scope: _Scope, output: dict[str, Any]) -> Link | None:
        """A subgraph output whose link is missing (saved by a frontend that dropped it): use the one inner
        output of the same type that feeds nothing, as the ComfyUI frontend's link repair does; else fail."""
        if not output.get("linkIds"):
            return None
        wanted = output.get("type")
        candidates = [(node_id, slot) for node_id, node in scope.nodes.items()
                      if node.get("mode", 0) == 0 and node.get("type") not in VIRTUAL_NODES
                      for slot, out in enumerate(node.get("outputs") or [])
                      if out.get("type") == wanted and not out.get("links")]
        if len(candidates) != 1:
            raise WorkflowError(f"subgraph output '{output.get('name')}' uses missing link(s) "
                                f"{output.get('linkIds')}{_where(scope)} and cannot be repaired")
        node_id, slot = candidates[0]
        self.warnings.append(f"subgraph output '{output.get('name')}'{_where(scope)} had a missing link; "
                             f"connected to node {scope.prefix}{node_id} output {slot}, the only unused "
                             f"{wanted} output")
        return Link(f"{scope.prefix}{node_id}", slot)

    def _follow(self, scope: _Scope, link_id: int, seen: frozenset) -> Link | Literal | None:
        link = scope.links.get(link_id)
        if link is None:
            raise WorkflowError(f"link {link_id} is used but not listed{_where(scope)}")
        return self.resolve_output(scope, link[0], link[1], seen)

    def bypass(self, scope: _Scope, node: dict[str, Any], slot: int, seen: frozenset) -> Link | Literal | None:
        """ComfyUI's bypass rule: output k -> input k if the types match, else the first input of the exact
        type, else the first compatible one; nothing when no input fits."""
        outputs, inputs = node.get("outputs") or [], node.get("inputs") or []
        if slot >= len(outputs):
            return None
        wanted = str(outputs[slot].get("type"))
        linked = [(i, s) for i, s in enumerate(inputs) if s.get("link") is not None]
        candidates = [s for i, s in linked if i == slot and s.get("type") == wanted]
        candidates += [s for _, s in linked if s.get("type") == wanted]
        candidates += [s for _, s in linked if wanted in str(s.get("type")).split(",") or s.get("type") == "*"]
        if not candidates:
            return None
        return self._follow(scope, candidates[0]["link"], seen)

    def resolve_subgraph_input(self, scope: _Scope, index: int) -> Link | Literal | None:
        """A subgraph input: the instance's link when connected, else its promoted widget value."""
        if scope.definition is None or scope.instance is None or scope.parent is None:
            raise WorkflowError("a link comes from a subgraph input node outside a subgraph")
        definitions = scope.definition.get("inputs") or []
        if index >= len(definitions):
            raise WorkflowError(f"subgraph input slot {index} does not exist{_where(scope)}")
        name = definitions[index].get("name")
        for slot in scope.instance.get("inputs") or []:
            if slot.get("name") == name and slot.get("link") is not None:
                return self.resolve_link(scope.parent, slot["link"])
        order = _promoted_widget_order(scope.instance, definitions)
        values = scope.instance.get("widgets_values") or []
        if name in order and order.index(name) < len(values):
            label = definitions[index].get("label") or name
            return Literal(values[order.index(name)], f"{scope.prefix}{name}", label)
        return None


def _promoted_widget_order(instance: dict[str, Any], definitions: list[dict[str, Any]]) -> list[str | None]:
    """The subgraph input each of an instance's ``widgets_values`` belongs to. Newer frontends list the shown
    widgets in ``properties.proxyWidgets`` as [node, widget] pairs, node "-1" for the subgraph's own inputs
    (others show an inner node's widget, whose value that node keeps); older ones save the widget-typed inputs
    in definition order."""
    proxies = (instance.get("properties") or {}).get("proxyWidgets")
    if isinstance(proxies, list) and proxies:
        return [p[1] if isinstance(p, list) and len(p) == 2 and str(p[0]) == "-1" else None for p in proxies]
    return [d.get("name") for d in definitions if str(d.get("type")) in WIDGET_TYPES]


def _where(scope: _Scope) -> str:
    return f" (in subgraph '{scope.definition.get('name', '?')}', node {scope.prefix[:-1]})" if scope.definition else ""


def _index_nodes(nodes: Any) -> dict[int, dict[str, Any]]:
    if not isinstance(nodes, list):
        raise WorkflowError("'nodes' must be a list")
    index = {}
    for node in nodes:
        if not isinstance(node, dict) or "id" not in node or "type" not in node:
            raise WorkflowError(f"a node lacks its id or type: {str(node)[:80]}")
        index[node["id"]] = node
    return index


def _index_links(links: Any) -> dict[int, tuple[int, int, int, int]]:
    index = {}
    for link in links or []:
        if isinstance(link, list) and len(link) >= 5:
            index[link[0]] = (link[1], link[2], link[3], link[4])
        elif isinstance(link, dict) and {"id", "origin_id", "origin_slot", "target_id", "target_slot"} <= set(link):
            index[link["id"]] = (link["origin_id"], link["origin_slot"], link["target_id"], link["target_slot"])
        else:
            raise WorkflowError(f"malformed link: {str(link)[:80]}")
    return index


def flatten_ui(data: dict[str, Any]) -> FlatWorkflow:
    """UI format -> flat nodes (see module docstring)."""
    try:
        return _UIFlattener(data).run(data)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise WorkflowError(f"malformed UI-format workflow ({type(exc).__name__}: {exc})") from None
