"""The Python API: ``ltxgraph.load(path).run(...)`` does what ``ltxgraph run`` does — the same default models,
the same disk cache, the same progress events; the command line is a thin layer over :class:`Runner`."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from .cache import DiskStore, MemoryCache, default_cache_dir
from .compute_dtype import DtypeDecision, MachineProbe, decide_dtype
from .context import RunSettings
from .defaults import default_models
from .events import Progress, ProgressCallback, ProgressEvent, as_callback
from .executor import Executor, RunReport
from .graph import GraphFile
from .loader import SourceDoc, detect_format, graph_from_doc, looks_like_a_graph, not_a_graph, read_document
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

    def validate(self, params: dict[str, Any] | None = None, runner: "Runner | None" = None,
                 **runner_options: Any) -> ResolvedGraph:
        """Check the graph with ``params``; ``runner_options`` are :class:`Runner`'s when no runner is given."""
        return (runner or Runner(**runner_options)).validate(self, params)

    def run(self, params: dict[str, Any] | None = None, outputs: Iterable[str] | None = None,
            runner: "Runner | None" = None, **runner_options: Any) -> RunResult:
        """Validate and run; ``runner_options`` are :class:`Runner`'s when no runner is given."""
        return (runner or Runner(**runner_options)).run(self, params, outputs)


def load(path: str | Path, registry: Registry | None = None) -> Graph:
    """Load a graph file (YAML or JSON) or a ComfyUI workflow (UI or API format, converted with the op
    signatures of ``registry``, by default the discovered one)."""
    doc = read_document(path)
    if not looks_like_a_graph(doc.data):
        raise not_a_graph(doc)
    kind = detect_format(doc.data)
    if kind == "ltxgraph" or kind == "unknown":
        return Graph(graph_from_doc(doc), doc)
    from . import comfyui

    return comfyui.load_workflow(doc, kind, registry or Registry.discover())


def reads_model_files(graph: Graph, registry: Registry) -> bool:
    """Whether any node of ``graph`` names a model file (only then are default models provided)."""
    for node in graph.file.nodes.values():
        spec = registry.get(node.op)
        if spec is not None and any(i.port.file and i.port.file != "input" for i in spec.inputs):
            return True
    return False


@dataclass
class Runner:
    """Holds what outlives one run: the registry, the caches, the folders and the progress watcher.

    memory_bytes bounds the in-memory results cache (models included) kept across runs of this runner; the
    command line, which runs once, sets it to 0 so every value is released after its last use. disk_bytes bounds
    the disk store (least recently used entries go first; None = unbounded); cache_dir defaults to
    ``$LTXGRAPH_CACHE_DIR`` or ``~/.cache/ltxgraph``. When ``folders`` names no models folder and a graph reads
    model files, the default models of the installed op packages are used (generated on first use under
    ``cache_dir/default-models``; a ``note`` event says so); ``default_models=False`` turns that off.
    progress: a callable receiving :class:`~ltxgraph.events.ProgressEvent`s (or a
    :class:`~ltxgraph.events.Progress` object); None = silent. ``settings.dtype`` "auto" is resolved per run
    (:func:`~ltxgraph.compute_dtype.decide_dtype`, asking ``machine``; measured once per machine and cached in
    ``cache_dir``); an impossible dtype fails validation."""

    registry: Registry | None = None
    cache_dir: Path | str | None = None
    use_cache: bool = True
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    disk_bytes: int | None = DEFAULT_DISK_BYTES
    folders: Folders = field(default_factory=Folders)
    progress: Progress | ProgressCallback | None = None
    settings: RunSettings = field(default_factory=RunSettings)
    default_models: bool = True
    machine: MachineProbe = field(default_factory=MachineProbe)
    memory: MemoryCache | None = field(default=None, init=False)
    disk: DiskStore | None = field(default=None, init=False)
    _default_folders: tuple[Path, ...] | None = field(default=None, init=False, repr=False)
    _dtype_decisions: dict[tuple[str, str], DtypeDecision] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.registry is None:
            self.registry = Registry.discover()
        self.cache_dir = Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()
        as_callback(self.progress)  # refuses a watcher that is neither callable nor a Progress object, now
        if self.use_cache:
            self.memory = MemoryCache(self.memory_bytes)
            self.disk = DiskStore(self.cache_dir / "results", self.registry.storable, self.disk_bytes)

    def emit(self, event: ProgressEvent) -> None:
        """Hand ``event`` to this runner's progress watcher."""
        as_callback(self.progress)(event)

    def folders_for(self, graph: Graph) -> Folders:
        """The folders a run of ``graph`` uses: this runner's, with the default models when it names no models
        folder and the graph reads model files."""
        assert self.registry is not None
        if self.folders.models or not self.default_models or not reads_model_files(graph, self.registry):
            return self.folders
        if self._default_folders is None:
            found, notes = default_models(Path(self.cache_dir))  # type: ignore[arg-type]
            self._default_folders = tuple(found)
            for note in notes:
                self.emit(ProgressEvent("note", message=f"no models folder given "
                                                         f"({self.folders.names.models_dir}): {note}"))
        return replace(self.folders, models=self._default_folders)

    def compute_dtype(self) -> DtypeDecision:
        """What this runner's runs compute in (``settings.dtype`` resolved for ``settings.device``; decided once
        per runner and setting)."""
        key = (self.settings.dtype, self.settings.device)
        if key not in self._dtype_decisions:
            self._dtype_decisions[key] = decide_dtype(self.settings.dtype, self.settings.device,
                                                      Path(self.cache_dir), self.machine,  # type: ignore[arg-type]
                                                      self.folders.names)
        return self._dtype_decisions[key]

    def validate(self, graph: Graph, params: dict[str, Any] | None = None) -> ResolvedGraph:
        assert self.registry is not None
        self.compute_dtype()
        self.folders.check_output()
        return validate(graph.file, self.registry, graph.doc, params or {}, self.folders_for(graph))

    def plan(self, graph: Graph, params: dict[str, Any] | None = None,
             outputs: Iterable[str] | None = None) -> Plan:
        return make_plan(self.validate(graph, params), outputs, self.compute_dtype().dtype, self.settings.media_limits)

    def run(self, graph: Graph, params: dict[str, Any] | None = None,
            outputs: Iterable[str] | None = None) -> RunResult:
        resolved = self.validate(graph, params)
        decision = self.compute_dtype()
        plan = make_plan(resolved, outputs, decision.dtype, self.settings.media_limits)
        metadata = {"graph": graph.doc.text, "graph_name": graph.file.name, "params": resolved.params}
        settings = replace(self.settings, dtype=decision.dtype)
        executor = Executor(self.memory, self.disk, self.folders_for(graph), self.emit, metadata, settings)
        values, report = executor.run(plan, RunReport(graph=graph.path, params=dict(resolved.params),
                                                      compute_dtype=decision.to_json()))
        return RunResult(values, report)
