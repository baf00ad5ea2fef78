"""Ray mode: long-lived Ray Core actors, each holding one warm runner (models loaded once per actor), take the
jobs as they become free. Imported only by ``ltxgraph batch --ray`` (ray is the optional extra
``ltxgraph[ray]``).

Each actor asks Ray for ``num_cpus``, ``num_gpus`` and, with ``--memory-budget``, that many bytes of Ray's
``memory`` resource, and runs with the budget as its runner's memory budget. Outputs are written by the actor
under ``--out`` (a path every actor shares: the default on one machine) or, with ``return_files``, sent back as
bytes and written by the driver. The disk cache is shared when its folder is. When the first job's nodes
(cache keys, known before anything runs) recur in later jobs, it runs alone first, so what they share (e.g. the
text encoding of a seed sweep) is computed once and served from the disk cache to every actor. A job whose
actor dies (killed, out of memory) is retried once on another actor (a new one replaces the dead one); a job
that fails is reported and the others go on."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from ..allocator import large_tensors_advised, return_large_frees_to_os, use_huge_pages
from ..api import Graph, Runner, load
from ..errors import InvalidInput, LtxGraphError
from .execute import Outcome, PreparedJob, RunnerOptions, progress_line, run_job, settle, still_to_run, \
    worker_info
from .jobs import Job
from .manifest import Manifest

MAX_ATTEMPTS = 2          # a job whose actor died is tried once more
START_SECONDS = 600.0     # how long actors may take to start (import torch, build a runner)


@ray.remote
class JobActor:
    """One warm runner in a Ray worker process."""

    def __init__(self, options: RunnerOptions, name: str) -> None:
        # the memory settings of the CLI (a Ray worker is not started by it), before the worker's first tensor
        use_huge_pages()
        return_large_frees_to_os()
        self.huge_pages = large_tensors_advised()
        self.name = name
        self.runner: Runner = options.runner()
        self.graphs: dict[Path, Graph] = {}

    def info(self) -> dict[str, Any]:
        return {**worker_info(), "actor": self.name, "huge_pages": self.huge_pages}

    def run(self, job: Job, params: dict[str, Any], output: str, return_files: bool) -> Outcome:
        """Run ``job`` into ``output`` (or, with ``return_files``, into a scratch folder whose files come
        back as ``payload``: relative name -> bytes)."""
        if job.graph not in self.graphs:
            self.graphs[job.graph] = load(job.graph, self.runner.registry)
        folder = Path(tempfile.mkdtemp(prefix="ltxgraph-batch-")) if return_files else Path(output)
        try:
            outcome = run_job(self.runner, self.graphs[job.graph], params, folder)
            if return_files:
                outcome["payload"] = {name: (folder / name).read_bytes() for name in outcome["files"]}
        finally:
            if return_files:
                shutil.rmtree(folder, ignore_errors=True)
        outcome["worker"] = self.info()
        return outcome


@dataclass
class ActorPool:
    """How many actors, with which resources, and what they run with."""

    options: RunnerOptions
    actors: int = 2
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    return_files: bool = False
    handles: dict[str, Any] = field(default_factory=dict)   # actor name -> handle (alive ones)
    prefix: str = field(default_factory=lambda: f"ltxgraph-batch-{uuid.uuid4().hex[:8]}-")
    _made: int = field(default=0, repr=False)

    def new_actor(self) -> str:
        """Start one more actor; its name (``actor-<n>``) is the Ray actor name after :attr:`prefix`."""
        self._made += 1
        name = f"actor-{self._made}"
        resources: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.options.settings.memory_budget:
            resources["memory"] = self.options.settings.memory_budget
        self.handles[name] = JobActor.options(name=self.prefix + name, **resources).remote(self.options, name)
        return name

    def start(self, timeout: float = START_SECONDS) -> None:
        """Start the actors and wait until each holds its runner; LtxGraphError when one cannot start (e.g.
        ltxgraph is not installed on its machine) or the cluster has no room for them within ``timeout``."""
        for _ in range(self.actors):
            self.new_actor()
        try:
            ray.get([handle.info.remote() for handle in self.handles.values()], timeout=timeout)
        except RayActorError as exc:
            raise LtxGraphError(f"a Ray actor could not start: {_first_line(exc)}") from None
        except GetTimeoutError:
            raise LtxGraphError(f"the Ray actors did not start within {timeout:g} s (is the cluster busy, or "
                                f"short of the CPUs, GPUs or memory they reserve?)") from None

    def stop(self) -> None:
        for handle in self.handles.values():
            ray.kill(handle)
        self.handles.clear()

    def run(self, prepared: list[PreparedJob], manifest: Manifest,
            echo: Callable[[str], None] = print, cached: Callable[[str], bool] = lambda key: False
            ) -> list[Outcome]:
        """Run every job not done before on the actors (started already); see the module docstring.
        ``cached(key)``: whether the shared disk cache holds a node's result already."""
        queue = deque(still_to_run(prepared, manifest, echo))
        schedule = _Schedule(queue, deque(self.handles), _first_runs_alone([item for _, item in queue], cached))
        try:
            self._drain(schedule, len(prepared), manifest, echo)
        except KeyboardInterrupt:
            manifest.interrupt([item.job for _, item, _ in schedule.pending.values()])
            raise
        return schedule.outcomes

    def _drain(self, schedule: "_Schedule", count: int, manifest: Manifest, echo: Callable[[str], None]) -> None:
        queue, free, pending, attempts = schedule.queue, schedule.free, schedule.pending, schedule.attempts
        alone = schedule.alone
        while queue or pending:
            while queue and free and not (alone and pending):
                index, item = queue.popleft()
                actor = free.popleft()
                attempts[item.job.name] = attempts.get(item.job.name, 0) + 1
                manifest.start(item.job, {"actor": actor, "ray_actor": self.prefix + actor})
                ref = self.handles[actor].run.remote(item.job, item.params, str(manifest.out / item.job.folder),
                                                     self.return_files)
                pending[ref] = (index, item, actor)
                if alone:
                    break
            [ready], _ = ray.wait(list(pending), num_returns=1)
            index, item, actor = pending.pop(ready)
            alone = alone and bool(pending)
            try:
                outcome = ray.get(ready)
                free.append(actor)
            except RayActorError as exc:
                self.handles.pop(actor, None)
                free.append(self.new_actor())
                if attempts[item.job.name] < MAX_ATTEMPTS:
                    echo(f"[{index}/{count}] {item.job.name}: {actor} died ({_first_line(exc)}); "
                         f"retrying on another actor")
                    queue.appendleft((index, item))
                    continue
                outcome = {"state": "failed", "error": f"its actor died {MAX_ATTEMPTS} times ({_first_line(exc)})",
                           "seconds": 0.0, "files": [], "nodes": {}, "executed_ops": {}, "report": None,
                           "worker": {"actor": actor}}
            recorded = settle(manifest, item.job, outcome)
            echo(progress_line(index, count, item.job, recorded))
            schedule.outcomes.append(recorded)


@dataclass
class _Schedule:
    """One batch on the pool: jobs waiting (with their places), free actors, whether the first job runs alone,
    jobs running (by the reference of their outcome), attempts by job name, outcomes so far."""

    queue: deque
    free: deque
    alone: bool
    pending: dict[Any, tuple[int, PreparedJob, str]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)


def _first_runs_alone(items: list[PreparedJob], cached: Callable[[str], bool]) -> bool:
    """Whether the first job computes results, not cached yet, that a later job needs (then it runs before the
    others start, and they find those results in the disk cache)."""
    if len(items) < 2:
        return False
    shared = set().union(*(items[0].keys & later.keys for later in items[1:]))
    return any(not cached(key) for key in shared)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def connect(address: str | None, num_cpus: float | None = None) -> bool:
    """Join the Ray cluster at ``address`` ("auto": the one this machine belongs to), or start a local one when
    None (unless ray is initialised already). Returns whether this call started Ray (then the caller shuts it
    down). A local cluster's workers import ltxgraph from where the driver does."""
    if ray.is_initialized():
        return False
    import logging
    package_root = str(Path(__file__).resolve().parents[2])
    try:
        if address is None:
            path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, runtime_env={"env_vars": {"PYTHONPATH": path}})
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InvalidInput(f"--ray {address or ''}: cannot reach a Ray cluster ({_first_line(exc)})") from None
    return True


def actors_that_fit(num_cpus: float, num_gpus: float, memory: int | None) -> int:
    """How many actors of these resources the cluster holds at once."""
    total = ray.cluster_resources()
    counts = [int(total.get("CPU", 0) // num_cpus) if num_cpus else 1 << 30]
    if num_gpus:
        counts.append(int(total.get("GPU", 0) // num_gpus))
    if memory:
        counts.append(int(total.get("memory", 0) // memory))
    return min(counts)
