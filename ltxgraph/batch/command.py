"""The ``ltxgraph batch`` subcommand: its options, and the batch from jobs to manifest (validate every job,
then run them locally or on Ray). Exit codes: 0 every job done (or done before), 1 a job failed, 2 a job is
invalid (nothing ran), 130 interrupted."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from ..api import DEFAULT_DISK_BYTES
from ..cache import default_cache_dir
from ..cache_info import format_bytes
from ..compute_dtype import CHOICES
from ..context import RunSettings
from ..errors import InvalidInput
from ..media_limits import MediaLimits
from ..progress import ConsoleProgress
from ..registry import Registry
from .execute import Outcome, PreparedJob, RunnerOptions, prepare
from .jobs import Job, read_jobs
from .local import run_local
from .manifest import Manifest
from .sweep import sweep_jobs

LOCAL_RAY = "local"


def add_batch_parser(sub: Any, parse_bytes: Any, parse_media_limits: Any) -> argparse.ArgumentParser:
    """Register ``batch`` on the subparsers ``sub`` (the size and media-limit parsers are ``run``'s)."""
    cmd = sub.add_parser(
        "batch", help="run many jobs: a jobs file, or one graph over --sweep values (locally or on Ray)",
        description="Run many jobs with warm models and a shared cache, locally (one process, jobs in order) or "
                    "on Ray actors (--ray). Every job is validated before any starts. A manifest "
                    "(OUT/batch-manifest.json) records each job's state and files; started again, the batch "
                    "skips the jobs done. Exit 0: all done; 1: a job failed; 2: a job is invalid.")
    cmd.add_argument("source", metavar="JOBS|GRAPH",
                     help="a jobs file (YAML list or JSONL: each job {graph, set, name, out}), or a graph or "
                          "workflow file with --sweep")
    cmd.add_argument("--sweep", action="append", default=[], metavar="NAME=VALUES",
                     help="run GRAPH once per value: NAME is a graph parameter, as in run --set NAME=VALUE; "
                          "VALUES are 1..8 (integers, ends included), a,b,c (a list), or write NAME@FILE for one "
                          "value per line of FILE. Several --sweep: every combination (the last varies fastest)")
    cmd.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="a parameter value for every job (a job's own values win)")
    cmd.add_argument("--models-dir", action="append", default=[], type=Path,
                     help="models folder laid out like ComfyUI's; repeatable")
    cmd.add_argument("--input-dir", type=Path, default=Path.cwd(), help="where input media are looked up")
    cmd.add_argument("--out", type=Path, default=Path("output"),
                     help="output folder (default ./output): each job writes into OUT/<its out or name>/")
    cmd.add_argument("--allow-outside-paths", action="store_true",
                     help="let file names in the graphs reach outside their folders")
    cmd.add_argument("--device", default="cpu", help="torch device for model compute (default cpu)")
    cmd.add_argument("--memory-budget", type=parse_bytes, metavar="SIZE",
                     help="bytes a runner may use, e.g. 8G (with --ray: each actor's Ray 'memory' resource)")
    cmd.add_argument("--dtype", choices=CHOICES, default=os.environ.get("LTXGRAPH_DTYPE") or "auto",
                     help="what models compute in (as for run; default $LTXGRAPH_DTYPE or auto)")
    cmd.add_argument("--media-limits", type=parse_media_limits, default=MediaLimits(), metavar="NAME=VALUE,...",
                     help="largest input media decoded (as for run)")
    cmd.add_argument("--no-cache", action="store_true", help="neither read nor write cached results")
    cmd.add_argument("--no-resume", action="store_true", help="start samplers afresh (as for run)")
    cmd.add_argument("--cache-dir", type=Path, help=f"cache folder (default {default_cache_dir()})")
    cmd.add_argument("--cache-size", type=parse_bytes, default=DEFAULT_DISK_BYTES, metavar="SIZE",
                     help=f"most the disk cache may hold (default {format_bytes(DEFAULT_DISK_BYTES)})")
    cmd.add_argument("--verbose", action="store_true", help="also show every node's progress")
    ray = cmd.add_argument_group("Ray (pip install 'ltxgraph[ray]')")
    ray.add_argument("--ray", nargs="?", const=LOCAL_RAY, metavar="ADDRESS",
                     help="run the jobs on Ray actors: on the cluster at ADDRESS ('auto': the one this machine "
                          "joined), or without ADDRESS on a Ray started here for this batch")
    ray.add_argument("--actors", type=int, metavar="N",
                     help="actors to start (default: as many as the cluster's CPUs, GPUs and memory hold, at most "
                          "one per job)")
    ray.add_argument("--num-cpus", type=float, default=1.0, help="CPUs each actor reserves (default 1)")
    ray.add_argument("--num-gpus", type=float, default=0.0, help="GPUs each actor reserves (default 0)")
    ray.add_argument("--return-outputs", action="store_true",
                     help="actors send their files back as bytes and this process writes them under --out "
                          "(for clusters whose machines do not share --out)")
    return cmd


def batch_jobs(args: argparse.Namespace) -> list[Job]:
    """The jobs of ``args.source``: the sweep of a graph, or a jobs file (a graph file without --sweep is
    one job); ``--set`` values come first in every job."""
    source = Path(args.source)
    if args.sweep or _is_graph_file(source):
        return sweep_jobs(source, args.sweep, args.set)
    jobs = read_jobs(source)
    return [Job(job.name, job.graph, tuple(args.set) + job.assignments, job.out) for job in jobs]


def _is_graph_file(path: Path) -> bool:
    if path.suffix.lower() == ".jsonl":
        return False
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False   # read_jobs says what is wrong
    return isinstance(data, dict) and "jobs" not in data


def run_batch(args: argparse.Namespace, registry: Registry) -> int:
    """The ``batch`` command (see the module docstring)."""
    from ..cli import parse_assignments

    started = time.perf_counter()
    if args.ray is None and (args.actors is not None or args.return_outputs):
        raise InvalidInput("--actors and --return-outputs need --ray")
    if args.actors is not None and args.actors < 1:
        raise InvalidInput(f"--actors {args.actors}: at least 1")
    jobs = batch_jobs(args)
    settings = RunSettings(args.device, args.memory_budget, dtype=args.dtype, media_limits=args.media_limits,
                           resume=not args.no_resume)
    options = RunnerOptions(tuple(args.models_dir), args.input_dir, args.allow_outside_paths, settings,
                            args.cache_dir, not args.no_cache, args.cache_size, tuple(args.plugin))
    progress = ConsoleProgress(mode="lines") if args.verbose else None
    runner = options.runner(registry, progress)
    prepared = prepare(jobs, runner, args.out, parse_assignments)
    manifest = Manifest.load(args.out)
    print(f"batch: {len(prepared)} jobs valid; running {'on Ray' if args.ray else 'here'}, "
          f"manifest {manifest.path}", file=sys.stderr)
    if args.ray is None:
        outcomes = run_local(prepared, runner, manifest, _echo)
    else:
        outcomes = _run_on_ray(args, options, prepared, manifest,
                               runner.disk.has if runner.disk is not None else lambda key: False)
    failed = sum(o["state"] != "done" for o in outcomes)
    skipped = len(prepared) - len(outcomes)
    print(f"batch: {len(outcomes) - failed} done, {failed} failed, {skipped} skipped (done before) "
          f"in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return 1 if failed else 0


def _run_on_ray(args: argparse.Namespace, options: RunnerOptions, prepared: list[PreparedJob],
                manifest: Manifest, cached: Callable[[str], bool]) -> list[Outcome]:
    address = None if args.ray == LOCAL_RAY else args.ray
    if address is None:   # a Ray started here listens on this machine's loopback address only
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        from . import ray_pool
    except ImportError as exc:
        raise InvalidInput(f"--ray needs Ray: pip install 'ltxgraph[ray]' ({exc})") from None
    started_here = ray_pool.connect(address)
    pool = ray_pool.ActorPool(options, 1, args.num_cpus, args.num_gpus, args.return_outputs)
    try:
        fits = ray_pool.actors_that_fit(args.num_cpus, args.num_gpus, args.memory_budget)
        if fits < 1:
            raise InvalidInput(f"the Ray cluster has no room for one actor of {args.num_cpus:g} CPUs, "
                               f"{args.num_gpus:g} GPUs and {args.memory_budget or 0} bytes of memory")
        pool.actors = args.actors or max(1, min(fits, len(prepared)))
        waited = time.perf_counter()
        pool.start()
        print(f"batch: {pool.actors} Ray actors ({args.num_cpus:g} CPU, {args.num_gpus:g} GPU each) ready in "
              f"{time.perf_counter() - waited:.1f}s", file=sys.stderr)
        return pool.run(prepared, manifest, _echo, cached)
    finally:
        pool.stop()
        if started_here:
            ray_pool.ray.shutdown()


def _echo(line: str) -> None:
    print(line, flush=True)
