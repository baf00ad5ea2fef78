"""Jobs: a graph (or ComfyUI workflow) file, parameter values as ``run --set`` takes them, and the subfolder of
``--out`` its outputs go to. A jobs file is YAML (a list of jobs, or ``jobs:`` holding one) or JSONL (one job
object per line); each job is a mapping with ``graph`` (required), ``set`` (a mapping name -> value, or a list
of ``NAME=VALUE`` strings), ``name`` and ``out`` (both optional: ``job-001``... and the name). Relative graph
paths are read from the jobs file's folder."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidInput

JOB_KEYS = ("name", "graph", "set", "out")


@dataclass(frozen=True)
class Job:
    """One run of a batch. assignments: ``NAME=VALUE`` strings, typed by the graph's parameters as ``run --set``
    types them. out: the job's output folder, relative to ``--out``."""

    name: str
    graph: Path
    assignments: tuple[str, ...] = ()
    out: str = ""

    @property
    def folder(self) -> str:
        return self.out or self.name

    def identity(self) -> str:
        """A hash of what the job is (graph file, values, folder): a manifest entry of another definition under
        the same name is not taken as this job done."""
        text = json.dumps([str(self.graph.resolve()), list(self.assignments), self.folder])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_name(index: int, count: int) -> str:
    """``job-001``: the 1-based ``index`` padded to the digits of ``count`` (at least 3)."""
    return f"job-{index:0{max(3, len(str(count)))}d}"


def assignment_strings(values: Any, where: str) -> tuple[str, ...]:
    """A job's ``set``: a mapping (YAML values written back as text) or a list of ``NAME=VALUE`` strings."""
    if values is None:
        return ()
    if isinstance(values, dict):
        return tuple(f"{name}={_as_text(value)}" for name, value in values.items())
    if isinstance(values, list) and all(isinstance(v, str) for v in values):
        return tuple(values)
    raise InvalidInput(f"{where}: 'set' must be a mapping of parameter values or a list of NAME=VALUE strings")


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise InvalidInput(f"parameter value {value!r} must be a single value, not a {type(value).__name__}")
    return str(value)


def read_jobs(path: Path) -> list[Job]:
    """The jobs of a YAML or JSONL file (see the module docstring); InvalidInput naming the file and the job."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot be read as a jobs file ({exc})") from None
    records = _jsonl_records(path, text) if path.suffix.lower() == ".jsonl" else _yaml_records(path, text)
    if not records:
        raise InvalidInput(f"{path}: holds no jobs")
    return [_job(record, where, path.parent, index, len(records))
            for index, (where, record) in enumerate(records, 1)]


def _yaml_records(path: Path, text: str) -> list[tuple[str, Any]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML ({exc})") from None
    if isinstance(data, dict) and set(data) == {"jobs"}:
        data = data["jobs"]
    if not isinstance(data, list):
        raise InvalidInput(f"{path}: a jobs file is a list of jobs (or 'jobs:' holding one), one per graph run")
    return [(f"{path}: job {i}", record) for i, record in enumerate(data, 1)]


def _jsonl_records(path: Path, text: str) -> list[tuple[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append((f"{path}:{number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}:{number}: not a JSON object ({exc.msg})") from None
    return records


def _job(record: Any, where: str, base: Path, index: int, count: int) -> Job:
    if not isinstance(record, dict):
        raise InvalidInput(f"{where}: a job is a mapping with 'graph' (and 'set', 'name', 'out')")
    unknown = sorted(set(record) - set(JOB_KEYS))
    if unknown:
        raise InvalidInput(f"{where}: unknown key {', '.join(map(repr, unknown))} (a job has {', '.join(JOB_KEYS)})")
    graph = record.get("graph")
    if not isinstance(graph, str) or not graph:
        raise InvalidInput(f"{where}: 'graph' must name a graph or workflow file")
    for key in ("name", "out"):
        if key in record and (not isinstance(record[key], str) or not record[key]):
            raise InvalidInput(f"{where}: '{key}' must be a non-empty string")
    graph_path = Path(graph).expanduser()
    return Job(name=record.get("name") or default_name(index, count),
               graph=graph_path if graph_path.is_absolute() else base / graph_path,
               assignments=assignment_strings(record.get("set"), where), out=record.get("out", ""))
