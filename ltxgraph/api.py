"""The Python API: ``ltxgraph.load(path).run(...)`` does what ``ltxgraph run`` does."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .cache import DiskStore, MemoryCache, default_cache_dir
from .context import RunSettings
from .executor import Executor, Progress, RunReport, SilentProgress
from .graph import GraphFile
from .loader import SourceDoc, detect_format, graph_from_doc, read_document
from .paths import Folders
from .plan import Plan, make_plan
from .registry import Registry
from .validate import ResolvedGraph, validate

DEFAULT_MEMORY_BYTES = 8 * 2**30
DEFAULT_DISK_BYTES = 8 * 2**30   # the disk cache's limit for the CLI and the API alike (see README, Cache)


@dataclass
class RunResult:
    outputs: dict[str, Any]
    report: RunReport


@dataclass
class Graph:
    """A loaded graph file (or converted workflow) with the source it came from."""

    file: GraphFile
    doc: SourceDoc = field(default_factory=lambda: SourceDoc(None))
    warnings: list[str] = field(default_factory=list)

    @property
    def path(self) -> str | None:
        return self.doc.path

    def validate(self, params: dict[str, Any] | None = None, runner: "Runner | None" = None) -> ResolvedGraph:
        return (runner or Runner()).validate(self, params)

    def run(self, params: dict[str, Any] | None = None, outputs: Iterable[str] | None = None,
            runner: "Runner | None" = None, **runner_options: Any) -> RunResult:
        """Validate and run; ``runner_options`` are :class:`Runner`'s when no runner is given."""
        return (runner or Runner(**runner_options)).run(self, params, outputs)


def load(path: str | Path, registry: Registry | None = None) -> Graph:
    """Load a graph file (YAML or JSON) or a ComfyUI workflow (UI or API format, converted with the op
    signatures of ``registry``, by default the discovered one)."""
    doc = read_document(path)
    kind = detect_format(doc.data)
    if kind == "ltxgraph" or kind == "unknown":
        return Graph(graph_from_doc(doc), doc)
    from . import comfyui

    return comfyui.load_workflow(doc, kind, registry or Registry.discover())


@dataclass
class Runner:
    """Holds what outlives one run: the registry, the caches, the folders and the progress display.

    memory_bytes bounds the in-memory results cache (models included) kept across runs of this runner; the
    command line, which runs once, sets it to 0 so every value is released after its last use. disk_bytes bounds
    the disk store (least recently used entries go first; None = unbounded)."""

    registry: Registry | None = None
    cache_dir: Path | None = None
    use_cache: bool = True
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    disk_bytes: int | None = DEFAULT_DISK_BYTES
    folders: Folders = field(default_factory=Folders)
    progress: Progress = field(default_factory=SilentProgress)
    settings: RunSettings = field(default_factory=RunSettings)
    memory: MemoryCache | None = field(default=None, init=False)
    disk: DiskStore | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.registry is None:
            self.registry = Registry.discover()
        if self.use_cache:
            self.memory = MemoryCache(self.memory_bytes)
            self.disk = DiskStore(Path(self.cache_dir or default_cache_dir()) / "results", self.registry.storable,
                                  self.disk_bytes)

    def validate(self, graph: Graph, params: dict[str, Any] | None = None) -> ResolvedGraph:
        assert self.registry is not None
        return validate(graph.file, self.registry, graph.doc, params or {}, self.folders)

    def plan(self, graph: Graph, params: dict[str, Any] | None = None,
             outputs: Iterable[str] | None = None) -> Plan:
        return make_plan(self.validate(graph, params), outputs)

    def run(self, graph: Graph, params: dict[str, Any] | None = None,
            outputs: Iterable[str] | None = None) -> RunResult:
        resolved = self.validate(graph, params)
        plan = make_plan(resolved, outputs)
        metadata = {"graph": graph.doc.text, "graph_name": graph.file.name, "params": resolved.params}
        executor = Executor(self.memory, self.disk, self.folders, self.progress, metadata, self.settings)
        values, report = executor.run(plan, RunReport(graph=graph.path, params=dict(resolved.params)))
        return RunResult(values, report)
