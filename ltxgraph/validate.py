"""Check a whole graph against the registry before any op runs; collect every problem, then refuse or
return the resolved graph (parameters substituted, files resolved, every reference known to fit)."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from .errors import InvalidInput, Problem, ValidationError
from .graph import BadRef, GraphFile, NodeRef, ParamRef, parse_input, value_has_type
from .input_checks import CONNECTED
from .loader import SourceDoc
from .paths import Folders
from .registry import InputSpec, OpSpec, Port, Registry, check_value
from .types import accepts, is_scalar, literal_matches


@dataclass(frozen=True)
class ResolvedNode:
    """A node ready to plan: its op and, per input, a NodeRef or a literal value (defaults filled in)."""

    id: str
    spec: OpSpec
    inputs: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    def upstream(self) -> set[str]:
        return {v.node for v in self.inputs.values() if isinstance(v, NodeRef)}


@dataclass(frozen=True)
class ResolvedGraph:
    nodes: dict[str, ResolvedNode]
    outputs: dict[str, NodeRef]
    params: dict[str, Any]


def resolve_params(graph: GraphFile, overrides: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Parameter values: defaults, then overrides; problems for unknown names and bad values."""
    problems, values = [], {name: spec.default for name, spec in graph.params.items()}
    for name, value in overrides.items():
        spec = graph.params.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(graph.params), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (parameters: {', '.join(graph.params) or 'none'})"
            problems.append(Problem(f"unknown parameter '{name}'{hint}"))
        elif not value_has_type(value, spec.type):
            problems.append(Problem(f"parameter '{name}' must be a {spec.type}, got {value!r}"))
        else:
            values[name] = float(value) if spec.type == "FLOAT" else value
    for name, spec in graph.params.items():
        port = Port(spec.type, spec.min, spec.max, spec.multiple_of, spec.eight_n_plus_one,
                    None if spec.choices is None else tuple(spec.choices))
        message = check_value(InputSpec(name, port), values[name], f"parameter '{name}' = {values[name]!r}")
        if message:
            why = f" ({spec.description})" if spec.description else ""
            problems.append(Problem(message + why))
    return values, problems


def validate(graph: GraphFile, registry: Registry, doc: SourceDoc | None = None,
             overrides: dict[str, Any] | None = None, folders: Folders | None = None) -> ResolvedGraph:
    """Resolve ``graph`` or raise :class:`ValidationError` listing every problem found."""
    doc = doc or SourceDoc(None)
    params, problems = resolve_params(graph, overrides or {})
    problems = [Problem(p.message, line=doc.line_of("params")) for p in problems]
    nodes: dict[str, ResolvedNode] = {}
    refusals: list[Problem] = []   # of input checks: the graph still resolves, so graph checks run too
    types = OutputTypes(graph, registry)
    for node_id, node in graph.nodes.items():
        spec = registry.get(node.op)
        if spec is None:
            close = registry.suggest(node.op)
            hint = f" (did you mean '{close}'?)" if close else ""
            problems.append(Problem(f"unknown op '{node.op}'{hint}", node_id, line=doc.line_of("nodes", node_id, "op")))
            continue
        checker = _NodeChecker(graph, registry, doc, params, folders, node_id, spec, types)
        nodes[node_id] = checker.resolve(graph.parsed_inputs(node_id))
        problems += checker.problems
        refusals += checker.refusals
    outputs = graph.output_refs()
    for name, ref in outputs.items():
        message = _ref_problem(graph, registry, ref)
        if message:
            problems.append(Problem(f"output '{name}': {message}", line=doc.line_of("outputs", name)))
    problems += _cycle_problems(nodes, doc)
    checked = nodes
    if not problems:   # a lazy switch known now drops the branch it does not take, and what only that fed
        taken = {node_id: _branch_taken(node, nodes) for node_id, node in nodes.items()}
        skipped = _feeding_outputs(nodes, outputs) - _feeding_outputs(taken, outputs)
        nodes, checked = taken, {node_id: node for node_id, node in taken.items() if node_id not in skipped}
    whole_graph = _graph_check_problems(registry, checked, doc) if not problems and folders is not None else []
    problems += refusals + whole_graph
    if problems:
        raise ValidationError(problems, doc.path)
    return ResolvedGraph(nodes, outputs, params)


def _known_value(value: Any, nodes: dict[str, ResolvedNode]) -> tuple[bool, Any]:
    """(True, value) when ``value`` is a literal, or comes from a chain of ops that return their input unchanged
    ending in one; (False, None) when it is computed."""
    seen: set[str] = set()
    while isinstance(value, NodeRef):
        source = nodes.get(value.node)
        if source is None or source.spec.identity_of is None or value.node in seen:
            return False, None
        seen.add(value.node)
        value = source.inputs.get(source.spec.identity_of)
    return True, value


def _branch_taken(node: ResolvedNode, nodes: dict[str, ResolvedNode]) -> ResolvedNode:
    """``node`` without the input its lazy switch does not take, when the switch is known before the run."""
    if node.spec.lazy_switch is None:
        return node
    switch, when_off, when_on = node.spec.lazy_switch
    known, value = _known_value(node.inputs.get(switch), nodes)
    if not known:
        return node
    untaken = when_off if value else when_on
    return ResolvedNode(node.id, node.spec, {**node.inputs, untaken: None}, node.files)


def _feeding_outputs(nodes: dict[str, ResolvedNode], outputs: dict[str, NodeRef]) -> set[str]:
    """The nodes a run of every output needs: the outputs' nodes, the output ops and all they read from."""
    needed: set[str] = set()
    stack = [ref.node for ref in outputs.values()] + [n.id for n in nodes.values() if n.spec.output_node]
    while stack:
        node_id = stack.pop()
        if node_id in nodes and node_id not in needed:
            needed.add(node_id)
            stack.extend(nodes[node_id].upstream())
    return needed


def _graph_check_problems(registry: Registry, nodes: dict[str, ResolvedNode], doc: SourceDoc) -> list[Problem]:
    """The findings of the op packages' whole-graph checks (run on a graph whose nodes all resolved)."""
    problems = []
    for check in registry.graph_checks:
        for node_id, input_name, message in check(nodes):
            path = ("nodes", node_id, "in", input_name) if input_name else ("nodes", node_id)
            problems.append(Problem(message, node_id, input_name, doc.line_of(*path)))
    return problems


def _ref_problem(graph: GraphFile, registry: Registry, ref: NodeRef) -> str | None:
    node = graph.nodes.get(ref.node)
    if node is None:
        close = difflib.get_close_matches(ref.node, list(graph.nodes), n=1)
        return f"references unknown node '{ref.node}'" + (f" (did you mean '{close[0]}'?)" if close else "")
    spec = registry.get(node.op)
    if spec is not None and spec.output_type(ref.port) is None:
        ports = ", ".join(name for name, _ in spec.outputs) or "none"
        return f"node '{ref.node}' ({node.op}) has no output '{ref.port}' (outputs: {ports})"
    return None


class OutputTypes:
    """The type of each node output; an output declared ``"=input"`` takes the type of what feeds that input."""

    def __init__(self, graph: GraphFile, registry: Registry) -> None:
        self.graph, self.registry = graph, registry
        self._known: dict[NodeRef, str | None] = {}

    def of(self, ref: NodeRef, depth: int = 0) -> str | None:
        """None when unknown (a missing node or op, an unconnected or cyclic source; reported elsewhere)."""
        if ref in self._known:
            return self._known[ref]
        node = self.graph.nodes.get(ref.node)
        spec = self.registry.get(node.op) if node else None
        declared = spec.output_type(ref.port) if spec else None
        if declared and declared.startswith("="):
            source = parse_input(node.inputs.get(declared[1:]))
            declared = self.of(source, depth + 1) if isinstance(source, NodeRef) and depth < 256 else None
        self._known[ref] = declared
        return declared


class _NodeChecker:
    """Checks one node's inputs and collects its problems."""

    def __init__(self, graph: GraphFile, registry: Registry, doc: SourceDoc, params: dict[str, Any],
                 folders: Folders | None, node_id: str, spec: OpSpec, types: OutputTypes) -> None:
        self.graph, self.registry, self.doc, self.params, self.types = graph, registry, doc, params, types
        self.folders, self.node_id, self.spec = folders, node_id, spec
        self.problems: list[Problem] = []
        self.refusals: list[Problem] = []

    def problem(self, input_name: str | None, message: str, found: list[Problem] | None = None) -> None:
        path = ("nodes", self.node_id, "in", input_name) if input_name else ("nodes", self.node_id)
        (self.problems if found is None else found).append(
            Problem(message, self.node_id, input_name, self.doc.line_of(*path)))

    def resolve(self, given: dict[str, Any]) -> ResolvedNode:
        inputs: dict[str, Any] = {}
        files: dict[str, Path] = {}
        for name in given:
            if name not in self.spec.input_by_name:
                close = difflib.get_close_matches(name, list(self.spec.input_by_name), n=1)
                known = ", ".join(self.spec.input_by_name) or "none"
                hint = f"did you mean '{close[0]}'?" if close else f"inputs: {known}"
                self.problem(name, f"{self.spec.name} has no input '{name}' ({hint})")
        for input_spec in self.spec.inputs:
            if input_spec.name not in given:
                if input_spec.required:
                    self.problem(None, f"missing required input '{input_spec.name}' ({input_spec.port.type})")
                else:
                    inputs[input_spec.name] = input_spec.default
                continue
            value = self.check_input(input_spec, given[input_spec.name])
            inputs[input_spec.name] = value
            if input_spec.port.file and isinstance(value, str) and self.folders is not None:
                try:
                    files[input_spec.name] = self.folders.find(input_spec.port.file, value)
                except InvalidInput as exc:
                    self.problem(input_spec.name, str(exc))
        if not self.problems and self.folders is not None:
            self.run_checks(inputs, files)
        return ResolvedNode(self.node_id, self.spec, inputs, files)

    def run_checks(self, inputs: dict[str, Any], files: dict[str, Path]) -> None:
        """The op's input checks on the values the op would be called with (files as resolved paths), for every
        check whose inputs are all known now (a connection is known only as present, to a check that reads no more
        of it)."""
        values = {name: str(files[name]) if name in files else value for name, value in inputs.items()}
        for check in self.spec.checks:
            linked = [name for name in check.reads if isinstance(values[name], NodeRef)]
            if not set(linked) <= set(check.presence):
                continue
            message = check.message({**values, **{name: CONNECTED for name in linked}}, self.folders)
            if message:
                self.problem(check.input, message, self.refusals)

    def check_input(self, input_spec: InputSpec, value: Any) -> Any:
        name, port_type = input_spec.name, input_spec.port.type
        if isinstance(value, BadRef):
            sign = value.text[0]
            self.problem(name, f"malformed reference {value.text!r}: use '@node.PORT' or '$param' "
                               f"(write a literal string starting with {sign} as {sign}{sign}...)")
            return None
        if isinstance(value, NodeRef):
            message = _ref_problem(self.graph, self.registry, value)
            if message:
                self.problem(name, message)
                return value
            source_type = self.types.of(value)
            if source_type:
                if not accepts(port_type, source_type):
                    self.problem(name, f"type mismatch: '{value}' is {source_type}, input expects {port_type}")
            return value
        if isinstance(value, ParamRef):
            if value.name not in self.params:
                self.problem(name, f"unknown parameter '${value.name}'")
                return None
            spec = self.graph.params[value.name]
            if not is_scalar(port_type) or not literal_matches(port_type, spec.default):
                self.problem(name, f"parameter '${value.name}' is {spec.type}, input expects {port_type}")
                return None
            value = self.params[value.name]
        if not is_scalar(port_type):
            self.problem(name, f"needs a connection from a node producing {port_type}, got the literal {value!r:.60}")
            return None
        if not literal_matches(port_type, value):
            self.problem(name, f"expects {port_type}, got {type(value).__name__} {value!r:.60}")
            return None
        message = check_value(input_spec, value)
        if message:
            self.problem(name, message)
        return float(value) if port_type == "FLOAT" and isinstance(value, int) else value


def _cycle_problems(nodes: dict[str, ResolvedNode], doc: SourceDoc) -> list[Problem]:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((up, node.id) for node in nodes.values() for up in node.upstream() if up in nodes)
    problems: list[Problem] = []
    if nx.is_directed_acyclic_graph(graph):
        return problems
    position = {node_id: i for i, node_id in enumerate(nodes)}
    for cycle in nx.simple_cycles(graph):
        start = min(range(len(cycle)), key=lambda i: position[cycle[i]])  # report from the first node in the file
        cycle = cycle[start:] + cycle[:start]
        path = " -> ".join(cycle + [cycle[0]])
        problems.append(Problem(f"cycle: {path}", cycle[0], line=doc.line_of("nodes", cycle[0])))
        if len(problems) >= 10:
            break
    return problems
