"""Plan a run: prune to what the requested outputs need, order it, know when each value can be released,
and compute every node's cache key from its lineage before anything executes."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable

import networkx as nx

from .cache import file_fingerprint, node_key
from .errors import InvalidInput
from .graph import NodeRef
from .media_limits import MediaLimits
from .validate import ResolvedGraph, ResolvedNode


@dataclass(frozen=True)
class Plan:
    """order: node ids in execution order. keys: cache key per node. release_after: node id -> node ids whose
    values are no longer needed once it has run. targets: the node ports the run must return. unused_ports: node
    id -> its output ports that no planned node reads and no target returns (dropped as soon as the node has run,
    e.g. a sampler's ``output`` when only ``denoised_output`` is used: a latent the size of the clip)."""

    order: tuple[str, ...]
    keys: dict[str, str]
    release_after: dict[str, tuple[str, ...]]
    targets: dict[str, NodeRef]
    nodes: dict[str, ResolvedNode]
    unused_ports: dict[str, tuple[str, ...]] = field(default_factory=dict)


def make_plan(graph: ResolvedGraph, outputs: Iterable[str] | None = None, compute_dtype: str = "float32",
              media_limits: MediaLimits = MediaLimits()) -> Plan:
    """Plan the nodes that feed ``outputs`` (names of graph outputs; default: all of them and every output op).
    A compute dtype other than float32 enters every node's cache key (results of the two dtypes differ), and
    media limits other than the defaults enter the key of every node that reads a file from the input folder
    (a file accepted under raised limits is refused under lower ones, so its result must not be served there)."""
    requested = list(graph.outputs) if outputs is None else list(outputs)
    unknown = [name for name in requested if name not in graph.outputs]
    if unknown:
        raise InvalidInput(f"unknown output(s) {', '.join(unknown)} (graph outputs: {', '.join(graph.outputs) or 'none'})")
    targets = {name: graph.outputs[name] for name in requested}
    roots = {ref.node for ref in targets.values()}
    if outputs is None:
        roots |= {node.id for node in graph.nodes.values() if node.spec.output_node}

    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    dag.add_edges_from((up, node.id) for node in graph.nodes.values() for up in node.upstream())
    needed = set(roots)
    for root in roots:
        needed |= nx.ancestors(dag, root)
    order = tuple(nx.lexicographical_topological_sort(dag.subgraph(needed)))

    keys: dict[str, str] = {}
    for node_id in order:
        node = graph.nodes[node_id]
        upstream_keys = {up: keys[up] for up in node.upstream()}
        files = {name: file_fingerprint(path) for name, path in sorted(node.files.items())}
        run = {"compute_dtype": compute_dtype} if compute_dtype != "float32" else {}
        if media_limits != MediaLimits() and reads_input_files(node):
            run["media_limits"] = asdict(media_limits)
        keys[node_id] = node_key(node.spec.name, node.spec.version, node.inputs, upstream_keys, files, run or None)

    position = {node_id: i for i, node_id in enumerate(order)}
    last_use = {node_id: position[node_id] for node_id in order}
    for node_id in order:
        for up in graph.nodes[node_id].upstream():
            last_use[up] = max(last_use[up], position[node_id])
    kept = {ref.node for ref in targets.values()}
    release_after: dict[str, list[str]] = {}
    for node_id, last in last_use.items():
        if node_id not in kept:
            release_after.setdefault(order[last], []).append(node_id)
    return Plan(order, keys, {k: tuple(v) for k, v in release_after.items()}, targets,
                {node_id: graph.nodes[node_id] for node_id in order}, _unused_ports(graph, order, targets))


def _unused_ports(graph: ResolvedGraph, order: tuple[str, ...], targets: dict[str, NodeRef]) -> dict[str, tuple[str, ...]]:
    """Output ports of the planned nodes that no planned node reads and no target returns."""
    read = {(ref.node, ref.port) for ref in targets.values()}
    read |= {(v.node, v.port) for node_id in order for v in graph.nodes[node_id].inputs.values()
             if isinstance(v, NodeRef)}
    unused = {node_id: tuple(port for port, _ in graph.nodes[node_id].spec.outputs if (node_id, port) not in read)
              for node_id in order}
    return {node_id: ports for node_id, ports in unused.items() if ports}


def reads_input_files(node: ResolvedNode) -> bool:
    """Whether ``node`` reads a file from the input folder (images, videos, audio: decoded under the media
    limits)."""
    return any(spec.port.file == "input" for spec in node.spec.inputs)
