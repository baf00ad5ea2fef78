"""``ltxgraph batch``: 8 seeds of the distilled text-to-video graph on the embedded tiny models, locally (one
process, jobs in order) and on a Ray started for the batch with 2 actors (``--ray --actors 2``), each mode in a
fresh child process of the CLI with its own empty cache folder (so both compute the shared nodes once).

Figures per mode: wall seconds of the whole command (Ray's start included), the seconds the actors took to
start (import torch, build a runner), the sum of the jobs' own seconds,
the peak RSS of the driver (``wait4``) and of each actor (``ru_maxrss`` reported with each job), how many times
the text encoding (CLIPTextEncode) and the checkpoint loader executed over all jobs (from the jobs' reports).

``python tools/bench.py --only batch-seeds``; ``LTXGRAPH_BENCH_SIZE=WxHxF`` (default 256x256x25) sets the size.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRAPH = ROOT / "graphs" / "ltx2_t2v_distilled.yaml"
SEEDS = "1..8"


def run_batch(work: Path, mode: str, size: tuple[int, int, int]) -> dict:
    """One ``ltxgraph batch`` in a child process; its figures (see the module docstring)."""
    width, height, frames = size
    out = work / mode
    command = [sys.executable, "-m", "ltxgraph.cli", "batch", str(GRAPH), "--sweep", f"seed={SEEDS}",
               "--set", f"width={width}", "--set", f"height={height}", "--set", f"length={frames}",
               "--out", str(out), "--cache-dir", str(work / f"cache-{mode}")]
    if mode == "ray":
        command += ["--ray", "--actors", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    stderr = child.stderr.read().decode(errors="replace") if child.stderr is not None else ""
    ready = re.search(r"Ray actors .* ready in ([0-9.]+)s", stderr)
    jobs = json.loads((out / "batch-manifest.json").read_text())["jobs"] if (out / "batch-manifest.json").is_file() \
        else {}
    executed: dict[str, int] = defaultdict(int)
    for report in (out / "reports").glob("*.json"):
        for node in json.loads(report.read_text())["nodes"]:
            if node["status"] == "executed":
                executed[node["op"]] += 1
    actors: dict[str, int] = {}
    for entry in jobs.values():
        worker = entry.get("worker") or {}
        name = worker.get("actor", "driver")
        actors[name] = max(actors.get(name, 0), worker.get("peak_rss", 0))
    figures = {"mode": mode, "exit": os.waitstatus_to_exitcode(status), "seconds": round(seconds, 1),
               "actors_start_seconds": float(ready[1]) if ready else None,
               "job_seconds": round(sum(e.get("seconds") or 0 for e in jobs.values()), 1),
               "jobs_done": sum(e.get("state") == "done" for e in jobs.values()),
               "driver_peak_rss_mib": round(usage.ru_maxrss / 1024),
               "peak_rss_mib": {name: round(rss / 2**20) for name, rss in sorted(actors.items())},
               "text_encodings_executed": executed["CLIPTextEncode"],
               "checkpoint_loads_executed": executed["CheckpointLoaderSimple"]}
    if figures["exit"] != 0:
        figures["stderr_tail"] = stderr[-600:]
    return figures


def batch_seeds() -> dict:
    size = tuple(int(n) for n in os.environ.get("LTXGRAPH_BENCH_SIZE", "256x256x25").split("x"))
    with tempfile.TemporaryDirectory() as folder:
        runs = [run_batch(Path(folder), mode, size) for mode in ("local", "ray")]   # type: ignore[arg-type]
    return {"graph": GRAPH.name, "seeds": SEEDS, "size": "x".join(map(str, size)), "runs": runs}


BENCHMARKS = {"batch-seeds": batch_seeds}
