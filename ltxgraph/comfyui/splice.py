"""Nodes that decide only where values flow are spliced out of a flat workflow before conversion: nodes that
order execution pass their first inputs through, display-only nodes are dropped, and a lazy switch whose switch
is a literal (or a primitive node's value) is replaced by the branch it takes, leaving the other branch to be
pruned with the nodes that feed no output."""
from __future__ import annotations

from typing import Any, Callable

from ..registry import Registry
from .workflow import FlatNode, FlatWorkflow, Link, Literal

# Nodes that only order execution: output k is input k.
PASS_THROUGH = {"ImpactExecutionOrderController"}
# Nodes that only display a value: dropped when ltxgraph has no op of that name.
DISPLAY_ONLY = {"PreviewAny", "Display Any (rgthree)"}
# Lazy switches: (switch input, input taken when false, input taken when true); output 0 is the chosen input.
LAZY_SWITCHES = {
    "ComfySwitchNode": ("switch", "on_false", "on_true"),
    "InversionDemoLazySwitch": ("switch", "on_false", "on_true"),
}
# Primitive nodes whose value is a constant widget (output 0).
PRIMITIVES = {"PrimitiveBoolean", "PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "PrimitiveStringMultiline"}
MAX_CHAIN = 64

Source = Link | Literal
Route = Callable[[int], Source | None]  # output slot -> where its value really comes from


def splice(workflow: FlatWorkflow, registry: Registry, warnings: list[str]) -> dict[str, FlatNode]:
    """The workflow's nodes without plumbing; every link into a spliced node is redirected to its source."""
    nodes = {k: v for k, v in workflow.nodes.items() if not (v.type in DISPLAY_ONLY and registry.get(v.type) is None)}
    routes: dict[str, Route] = {}
    for node in nodes.values():
        if node.type in PASS_THROUGH:
            routes[node.id] = _pass_through(node)
            warnings.append(f"node {node.id} ({node.type}) only orders execution; removed")
        elif node.type in LAZY_SWITCHES:
            found, value = switch_value(node, nodes)
            if found:
                routes[node.id] = _switch(node, bool(value))
                taken = LAZY_SWITCHES[node.type][2 if value else 1]
                title = f" '{node.title}'" if node.title else ""
                warnings.append(f"node {node.id} ({node.type}{title}): switch is {bool(value)}, resolved at "
                                f"conversion to its '{taken}' input; the other branch was left out")
    if not routes:
        return nodes

    def source_of(link: Source, depth: int = 0) -> Source | None:
        if isinstance(link, Link) and link.node in routes and depth < MAX_CHAIN:
            routed = routes[link.node](link.slot)
            return None if routed is None else source_of(routed, depth + 1)
        return link

    kept = {k: v for k, v in nodes.items() if k not in routes}
    for node in kept.values():
        node.inputs = {name: src for name, link in node.inputs.items() if (src := source_of(link)) is not None}
    return kept


def switch_value(node: FlatNode, nodes: dict[str, FlatNode]) -> tuple[bool, Any]:
    """(True, value) when the switch of a lazy switch node is known before running, else (False, None)."""
    name = LAZY_SWITCHES[node.type][0]
    source = node.inputs.get(name)
    if source is None:
        return _widget(node, name, 0)
    if isinstance(source, Literal):
        return True, source.value
    origin = nodes.get(source.node)
    if origin is not None and origin.type in PRIMITIVES and not origin.inputs and source.slot == 0:
        return _widget(origin, "value", 0)
    return False, None


def _widget(node: FlatNode, name: str, slot: int) -> tuple[bool, Any]:
    if isinstance(node.widgets, dict):
        return (name in node.widgets), node.widgets.get(name)
    return (slot < len(node.widgets)), (node.widgets[slot] if slot < len(node.widgets) else None)


def _pass_through(node: FlatNode) -> Route:
    sources = list(node.inputs.values())
    return lambda slot: sources[slot] if slot < len(sources) else None


def _switch(node: FlatNode, value: bool) -> Route:
    chosen = node.inputs.get(LAZY_SWITCHES[node.type][2 if value else 1])
    return lambda slot: chosen if slot == 0 else None
