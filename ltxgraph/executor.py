"""Execute a plan: serve each node from the caches or run its op, check what it returned, release values after
their last use, and report per node (status, seconds, cache key)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import values as V
from .cache import DiskStore, MemoryCache
from .context import OpContext, RunSettings
from .frames import Frames
from .events import ProgressCallback, ProgressEvent, ignore
from .errors import InputValueError, LtxGraphError, NodeError, RunInterrupted
from .graph import NodeRef
from .paths import Folders
from .plan import Plan
from .resume import NodeCheckpoints, StopRequest
from .registry import InputSpec, OpSpec, check_value, round_down
from .types import is_scalar, members

RUNTIME_CLASSES: dict[str, tuple[type, ...]] = {
    "VIDEO_LATENT": (V.VideoLatent,), "AUDIO_LATENT": (V.AudioLatent,), "AV_LATENT": (V.AVLatent,),
    "AUDIO": (V.Audio,), "VIDEO": (V.Video,), "IMAGE": (torch.Tensor, Frames), "MASK": (torch.Tensor,),
    "INT": (int,), "FLOAT": (int, float, tuple), "STRING": (str,), "BOOLEAN": (bool,),  # FLOAT: or a tuple (a list)
}


@dataclass
class NodeReport:
    id: str
    op: str
    key: str
    status: str = "pending"  # executed | cached | failed | interrupted | pending
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    resumed_at: list[int] | None = None   # [k, n]: a sampler continued after step k of n from a checkpoint
    files: list[str] = field(default_factory=list)   # the files this node wrote (or, cached, had written)


@dataclass
class RunReport:
    graph: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    seconds: float = 0.0
    nodes: list[NodeReport] = field(default_factory=list)
    error: str | None = None
    files: list[str] = field(default_factory=list)
    compute_dtype: dict[str, str] = field(default_factory=dict)   # dtype, requested, reason

    def executed(self) -> list[str]:
        return [n.id for n in self.nodes if n.status == "executed"]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Executor:
    """Runs plans. ``memory`` and ``disk`` may be None (no cache); ``progress`` receives the run's events."""

    memory: MemoryCache | None = None
    disk: DiskStore | None = None
    folders: Folders = field(default_factory=Folders)
    progress: ProgressCallback = ignore
    metadata: dict[str, Any] = field(default_factory=dict)
    settings: RunSettings = field(default_factory=RunSettings)
    _report: RunReport | None = field(default=None, init=False, repr=False)
    _stop: StopRequest = field(default_factory=StopRequest, init=False, repr=False)

    def run(self, plan: Plan, report: RunReport | None = None) -> tuple[dict[str, Any], RunReport]:
        """Execute ``plan``; returns the target values by output name and the report. Raises NodeError or
        RunInterrupted (the report, filled so far, is attached as ``exc.report``). While it runs, Ctrl-C and
        SIGTERM stop a checkpointing sampler after its current step (see :class:`ltxgraph.resume.StopRequest`)."""
        self._stop = StopRequest()
        with self._stop.installed():
            return self._run(plan, report)

    def _run(self, plan: Plan, report: RunReport | None) -> tuple[dict[str, Any], RunReport]:
        report = report or RunReport()
        self._report = report
        report.nodes = [NodeReport(n, plan.nodes[n].spec.name, plan.keys[n]) for n in plan.order]
        results: dict[str, tuple[Any, ...]] = {}
        needed = self._needed(plan)
        by_id = {r.id: r for r in report.nodes}
        started = time.perf_counter()
        try:
            for index, node_report in enumerate(report.nodes):
                if node_report.id not in needed:
                    node_report.status = "unused"   # every consumer is served from the cache
                else:
                    self.progress(ProgressEvent("node_started", node_report.id, node_report.op, index + 1,
                                                len(report.nodes), "node"))
                    t0 = time.perf_counter()
                    results[node_report.id] = self._without_unused(plan, node_report.id,
                                                                   self._produce(plan, node_report, results, by_id))
                    node_report.seconds = time.perf_counter() - t0
                    self.progress(ProgressEvent("node_finished", node_report.id, node_report.op,
                                                index + 1, len(report.nodes), "node", report=node_report))
                for done in plan.release_after.get(node_report.id, ()):
                    results.pop(done, None)
        except KeyboardInterrupt:
            self._finish(report, started, "interrupted", "interrupted by the user")
            kept = ("; the sampler stopped after its current step: run again to resume there" if self._stop.requested
                    else "")
            error = RunInterrupted(f"interrupted by the user; results finished so far stay cached{kept}")
            error.report = report  # type: ignore[attr-defined]
            raise error from None
        except NodeError as exc:
            self._finish(report, started, "failed", str(exc))
            exc.report = report  # type: ignore[attr-defined]
            raise
        self._finish(report, started, "ok", None)
        outputs = {}
        for name, ref in plan.targets.items():
            spec = plan.nodes[ref.node].spec
            outputs[name] = results[ref.node][[p for p, _ in spec.outputs].index(ref.port)]
        return outputs, report

    def _available(self, key: str) -> bool:
        return bool((self.memory is not None and self.memory.has(key)) or (self.disk is not None and self.disk.has(key)))

    def _needed(self, plan: Plan) -> set[str]:
        """Nodes whose values this run must produce (from the cache or by running them): the targets and output
        nodes, and, walking back, the inputs of every needed node that has no cache entry."""
        needed = {ref.node for ref in plan.targets.values()} | {n for n in plan.order if plan.nodes[n].spec.output_node}
        for node_id in reversed(plan.order):
            if node_id in needed and not self._available(plan.keys[node_id]):
                needed |= self._parents(plan, node_id)
        return needed

    @staticmethod
    def _without_unused(plan: Plan, node_id: str, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """``values`` with None for the ports nothing reads (the caches got them whole), so a value no consumer
        needs is released when the node returns instead of living as long as its used siblings."""
        unused = plan.unused_ports.get(node_id, ())
        if not unused:
            return values
        ports = [p for p, _ in plan.nodes[node_id].spec.outputs]
        return tuple(None if i < len(ports) and ports[i] in unused else v for i, v in enumerate(values))

    @staticmethod
    def _parents(plan: Plan, node_id: str) -> set[str]:
        return {v.node for v in plan.nodes[node_id].inputs.values() if isinstance(v, NodeRef)}

    def _ensure_inputs(self, plan: Plan, node_id: str, results: dict[str, tuple[Any, ...]],
                       reports: dict[str, NodeReport]) -> None:
        """Produce inputs that were skipped because this node looked cached but its entry turned out unusable
        (a damaged entry is only found when read)."""
        for parent in sorted(self._parents(plan, node_id), key=plan.order.index):
            if parent not in results:
                results[parent] = self._without_unused(plan, parent,
                                                       self._produce(plan, reports[parent], results, reports))

    @staticmethod
    def _finish(report: RunReport, started: float, status: str, error: str | None) -> None:
        report.status, report.error = status, error
        report.seconds = time.perf_counter() - started
        for node in report.nodes:
            if node.status == "pending" and status != "ok":
                node.status = "skipped"

    def _produce(self, plan: Plan, node_report: NodeReport, results: dict[str, tuple[Any, ...]],
                 reports: dict[str, NodeReport]) -> tuple[Any, ...]:
        key = node_report.key
        cached = self._lookup(key)
        if cached is not None:
            node_report.status = "cached"
            self._record_files(cached, node_report)
            return cached
        self._ensure_inputs(plan, node_report.id, results, reports)
        node = plan.nodes[node_report.id]
        spec = node.spec
        node_report.status = "interrupted"
        warnings: list[str] = []
        try:
            kwargs = {}
            for input_spec in spec.inputs:
                value = node.inputs[input_spec.name]
                if isinstance(value, NodeRef):
                    source = plan.nodes[value.node].spec
                    value = results[value.node][[p for p, _ in source.outputs].index(value.port)]
                    if is_scalar(input_spec.port.type):
                        value = self._checked_linked(input_spec, value, warnings)
                    elif isinstance(value, Frames) and not input_spec.takes_frames:
                        value = value.float()   # this op's own float copy, released when it returns
                elif input_spec.name in node.files:
                    value = str(node.files[input_spec.name])
                kwargs[input_spec.name] = value
            context = None
            if spec.context_param:
                context = OpContext(node.id, self.folders, self.metadata, self._on_step, self.settings,
                                    cache_key=key)
                context.checkpoints = self._checkpoints(context)
                kwargs[spec.context_param] = context
            returned = spec.fn(**kwargs)
            outputs = self._check_outputs(spec, returned)
        except KeyboardInterrupt:
            raise
        except NodeError:
            node_report.status = "failed"
            raise
        except Exception as exc:  # attributed to the node; the cause is kept for --debug
            node_report.status = "failed"
            raise NodeError(node.id, spec.name, exc) from exc
        node_report.status = "executed"
        node_report.warnings = warnings + (list(context.warnings) if context is not None else [])
        if context is not None and context.resumed_at is not None:
            node_report.resumed_at = list(context.resumed_at)
        if self.memory is not None:
            self.memory.put(key, outputs)
        if self.disk is not None:
            self.disk.put(key, outputs, spec.name)
            self.disk.discard_checkpoints(key)
        self._record_files(outputs, node_report)
        return outputs

    def _checkpoints(self, context: OpContext) -> NodeCheckpoints | None:
        """Per-step sampler checkpoints of the node in ``context``, kept in the disk cache (None without one)."""
        disk, key = self.disk, context.cache_key
        if disk is None:
            return None
        return NodeCheckpoints(disk.checkpoint_folder(key), key, self.settings.resume, self._stop,
                               on_write=lambda size: disk.count_written(key, size),
                               on_resumed=context.resumed, warn=context.warn)

    def _on_step(self, node: str, step: int, total: int, info: dict[str, Any]) -> None:
        extras = dict(info)
        unit = str(extras.pop("unit", "step"))
        self.progress(ProgressEvent("step", node, None, step, total, unit, extras))

    def _record_files(self, values: tuple[Any, ...], node_report: NodeReport) -> None:
        paths = [v.path for v in values if isinstance(v, V.SavedFile)]
        node_report.files.extend(paths)
        if self._report is not None:
            self._report.files.extend(paths)

    @staticmethod
    def _checked_linked(input_spec: InputSpec, value: Any, warnings: list[str]) -> Any:
        """Constraints on a scalar that arrived through a connection (literals were checked at validation)."""
        message = check_value(input_spec, value)
        if message and input_spec.port.round_down and isinstance(value, int) and not isinstance(value, bool):
            rounded = round_down(input_spec, value)
            if check_value(input_spec, rounded) is None:
                warnings.append(f"input '{input_spec.name}': {value} rounded down to {rounded} ({message})")
                return rounded
        if message:
            raise InputValueError(f"input '{input_spec.name}': {message}")
        return value

    def _lookup(self, key: str) -> tuple[Any, ...] | None:
        found = self.memory.get(key) if self.memory is not None else None
        if found is None and self.disk is not None:
            found = self.disk.get(key)
            if found is not None and self.memory is not None:
                self.memory.put(key, found)
        if found is not None and any(isinstance(v, V.SavedFile) and not self._still_delivered(v) for v in found):
            return None  # an output file was deleted since, or this run writes elsewhere: write it again
        return found

    def _still_delivered(self, saved: V.SavedFile) -> bool:
        path = Path(saved.path)
        return path.is_file() and path.resolve().is_relative_to(self.folders.output.resolve())

    @staticmethod
    def _check_outputs(spec: OpSpec, returned: Any) -> tuple[Any, ...]:
        op, declared = spec.name, spec.outputs
        if not declared:  # output ops: keep the files they wrote, so a deleted file is written again
            files = returned if isinstance(returned, (list, tuple)) else [returned]
            return tuple(f for f in files if isinstance(f, V.SavedFile))
        saved: tuple[Any, ...] = ()
        if spec.output_node and isinstance(returned, tuple) and returned and isinstance(returned[-1], V.SavedFile):
            # an output op with ports returns its ports' values, then the files it wrote (kept, not ports)
            split = len(returned)
            while split and isinstance(returned[split - 1], V.SavedFile):
                split -= 1
            returned, saved = returned[:split], returned[split:]
            if len(declared) == 1 and len(returned) == 1:
                returned = returned[0]
        outputs = returned if isinstance(returned, tuple) and len(declared) != 1 else (returned,)
        if len(outputs) != len(declared):
            raise LtxGraphError(f"op {op} returned {len(outputs)} values for {len(declared)} declared outputs")
        for (name, port_type), value in zip(declared, outputs):
            if port_type.startswith("="):  # follows an input: any of that input's types
                port_type = spec.input_by_name[port_type[1:]].port.type
            kinds = members(port_type)
            allowed = tuple(c for k in kinds for c in RUNTIME_CLASSES.get(k, ())) if all(
                k in RUNTIME_CLASSES for k in kinds) else ()
            bad_bool = kinds <= {"INT", "FLOAT"} and isinstance(value, bool)
            if (allowed and not isinstance(value, allowed)) or bad_bool:
                raise LtxGraphError(f"op {op} returned a {type(value).__name__} for output '{name}' ({port_type})")
        return tuple(outputs) + saved
