"""One job on a warm runner, and what the driver does with its outcome. The runner is built once per process
(or Ray actor) from :class:`RunnerOptions` and kept: models stay in its memory cache across jobs and its disk
cache serves nodes that jobs share (one text encoding for a sweep of seeds). An outcome is a plain dictionary
(it crosses process boundaries): state ``done`` or ``failed``, error, seconds, files (relative to the job's
folder), node counts by status, the ops executed, the run report, and with ``payload`` the files' bytes."""
from __future__ import annotations

import json
import os
import re
import resource
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ..api import DEFAULT_DISK_BYTES, DEFAULT_MEMORY_BYTES, Graph, Runner, load
from ..context import RunSettings
from ..errors import InvalidInput, LtxGraphError, RunInterrupted
from ..events import Progress, ProgressCallback
from ..executor import RunReport
from ..paths import Folders, UnsafePath, atomic_write_bytes, inside
from ..registry import Registry
from ..wording import CLI_NAMES
from .jobs import Job
from .manifest import Manifest

REPORTS = "reports"                  # <out>/reports/<job>.json: each job's full run report
RESULT_TYPES = frozenset({"CONDITIONING", "GUIDES", "VIDEO_LATENT", "AUDIO_LATENT", "AV_LATENT", "IMAGE", "MASK",
                          "AUDIO", "VIDEO"})   # what the disk cache keeps (models stay in memory only)
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")
Outcome = dict[str, Any]


@dataclass(frozen=True)
class RunnerOptions:
    """What every warm runner of a batch is built from (picklable: Ray actors receive it). models, input,
    allow_outside: as ``run``'s folders; settings: device, memory budget, dtype, media limits, resume;
    plugins: extra op modules; memory_bytes: the memory cache kept across jobs (models included)."""

    models: tuple[Path, ...] = ()
    input: Path = field(default_factory=Path.cwd)
    allow_outside: bool = False
    settings: RunSettings = field(default_factory=RunSettings)
    cache_dir: Path | None = None
    use_cache: bool = True
    cache_size: int | None = DEFAULT_DISK_BYTES
    plugins: tuple[str, ...] = ()
    memory_bytes: int = DEFAULT_MEMORY_BYTES

    def runner(self, registry: Registry | None = None,
               progress: Progress | ProgressCallback | None = None) -> Runner:
        """A runner of these options (its output folder is set per job)."""
        return Runner(registry or Registry.discover(self.plugins), cache_dir=self.cache_dir,
                      use_cache=self.use_cache, memory_bytes=self.memory_bytes if self.use_cache else 0,
                      disk_bytes=self.cache_size, progress=progress, settings=self.settings,
                      folders=Folders(self.models, self.input, Path.cwd(), self.allow_outside, CLI_NAMES))


@dataclass
class PreparedJob:
    """A job checked as ``run`` checks a graph: its graph loaded, its values typed, the cache keys of its nodes
    that compute results the disk cache keeps (jobs sharing such keys share those results)."""

    job: Job
    graph: Graph
    params: dict[str, Any]
    keys: frozenset[str]


def prepare(jobs: list[Job], runner: Runner, out: Path,
            parse: Callable[[Graph, tuple[str, ...]], dict[str, Any]]) -> list[PreparedJob]:
    """Every job validated before any runs; InvalidInput listing every problem of every job (exit 2).
    ``parse`` types a job's ``NAME=VALUE`` strings for its graph (``run --set``'s rules)."""
    problems: list[str] = []
    for attribute, what in (("name", "name"), ("folder", "output folder")):
        seen = Counter(getattr(job, attribute) for job in jobs)
        problems += [f"{what} '{value}' is used by {count} jobs" for value, count in seen.items() if count > 1]
    graphs: dict[Path, Graph] = {}
    prepared = []
    for job in jobs:
        try:
            if not JOB_NAME.match(job.name):
                raise InvalidInput(f"name '{job.name}': use letters, digits and . _ = + - (it names the report file)")
            output = inside(out, job.folder)
            if job.graph not in graphs:
                graphs[job.graph] = load(job.graph, runner.registry)
            graph = graphs[job.graph]
            params = parse(graph, job.assignments)
            runner.folders = replace(runner.folders, output=output)
            plan = runner.plan(graph, params)
            prepared.append(PreparedJob(job, graph, params, frozenset(
                plan.keys[n] for n in plan.order if _computes_results(plan.nodes[n].spec.outputs))))
        except UnsafePath as exc:
            problems.append(f"{job.name}: output folder: {exc}")
        except LtxGraphError as exc:
            problems.append(f"{job.name}: {exc}".replace("\n", "\n    "))
    if problems:
        raise InvalidInput(f"batch is invalid ({len(problems)} problem{'s' * (len(problems) > 1)}):\n  "
                           + "\n  ".join(problems))
    return prepared


def _computes_results(outputs: list[tuple[str, str]]) -> bool:
    """Whether an op's declared outputs (name, port type) hold results for the disk cache ("=input": any)."""
    return any(kind.startswith("=") or set(kind.split("|")) & RESULT_TYPES for _, kind in outputs)


def run_job(runner: Runner, graph: Graph, params: dict[str, Any], output: Path) -> Outcome:
    """Run one job into ``output`` on ``runner``; a failure becomes a ``failed`` outcome (the batch goes on),
    an interruption (Ctrl-C) is raised."""
    runner.folders = replace(runner.folders, output=output)
    started = time.perf_counter()
    report: RunReport | None = None
    try:
        report = runner.run(graph, params).report
        state, error = "done", None
    except RunInterrupted:
        raise
    except LtxGraphError as exc:
        report, state, error = getattr(exc, "report", None), "failed", str(exc)
    except Exception as exc:  # a bug in an op or in ltxgraph: this job fails, the others run
        state, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
    nodes = report.nodes if report is not None else []
    return {"state": state, "error": error, "seconds": round(time.perf_counter() - started, 3),
            "files": [os.path.relpath(path, output) for path in (report.files if report is not None else [])],
            "nodes": dict(sorted(Counter(n.status for n in nodes).items())),
            "executed_ops": dict(sorted(Counter(n.op for n in nodes if n.status == "executed").items())),
            "report": report.to_json() if report is not None else None}


def worker_info() -> dict[str, int]:
    """This process's id and peak resident memory so far (bytes)."""
    return {"pid": os.getpid(), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def settle(manifest: Manifest, job: Job, outcome: Outcome) -> Outcome:
    """The driver's side of an ended job: files sent back as bytes written under the job's folder, the run
    report written to ``<out>/reports/<name>.json``, file names made relative to ``--out``, the manifest saved.
    Returns the outcome as recorded."""
    out = manifest.out
    folder = out / job.folder
    for relative, data in (outcome.pop("payload", None) or {}).items():
        target = inside(folder, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
    recorded = dict(outcome, files=[os.path.normpath(os.path.join(job.folder, f)) for f in outcome["files"]])
    if outcome.get("report") is not None:
        (out / REPORTS).mkdir(parents=True, exist_ok=True)
        report_path = out / REPORTS / f"{job.name}.json"
        atomic_write_bytes(report_path, json.dumps(outcome["report"], indent=2, default=str).encode())
        recorded["report"] = str(report_path.relative_to(out))
    manifest.finish(job, recorded)
    return recorded


def still_to_run(prepared: list[PreparedJob], manifest: Manifest,
                 echo: Callable[[str], None]) -> list[tuple[int, PreparedJob]]:
    """The jobs (with their 1-based places) that are not recorded done with their files in place; a line
    for each one skipped."""
    todo = []
    for index, item in enumerate(prepared, 1):
        if manifest.is_done(item.job):
            files = manifest.jobs[item.job.name].get("files") or []
            echo(f"[{index}/{len(prepared)}] {item.job.name} skipped: done before"
                 + (f" ({', '.join(files)})" if files else ""))
        else:
            todo.append((index, item))
    return todo


def progress_line(index: int, count: int, job: Job, outcome: Outcome) -> str:
    """``[3/8] job-003 done in 1.6s (16 executed, 4 cached, 6 unused): job-003/x.mp4`` (or the error)."""
    head = f"[{index}/{count}] {job.name}"
    if outcome["state"] != "done":
        return f"{head} failed after {outcome['seconds']:.1f}s: {outcome['error']}"
    nodes = outcome.get("nodes") or {}
    counts = ", ".join(f"{nodes[s]} {s}" for s in ("executed", "cached", "unused") if nodes.get(s))
    files = f": {', '.join(outcome['files'])}" if outcome["files"] else ""
    worker = outcome.get("worker") or {}
    where = f" on actor {worker['actor']}" if "actor" in worker else ""
    return f"{head} done in {outcome['seconds']:.1f}s{where} ({counts or 'no nodes'}){files}"
