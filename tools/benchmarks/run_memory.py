"""Peak memory of a whole run: the two-stage text-to-video graph at 1920x1088 on the embedded tiny models, for
several clip lengths, each run in a fresh child process of the CLI (``--no-cache``, one thread).

Figures per frame count: the child's peak RSS (``ru_maxrss`` from ``wait4``), wall seconds, exit status, and the
slowest nodes of its report. The tiny models make the model weights negligible, so the peak is the run's own
working memory: sampler activations, the VAE decode's tiles and window, and media buffers.

``python tools/bench.py --only two-stage-memory``; set ``LTXGRAPH_BENCH_FRAMES=121,241`` to choose the lengths
and ``LTXGRAPH_BENCH_BUDGET`` (default 6G) for ``--memory-budget``; ``LTXGRAPH_BENCH_SET="steps=2"`` (comma-separated
NAME=VALUE) adds ``--set`` overrides, e.g. fewer stage-1 steps on a loaded machine (the peak does not depend on the
step count: every step holds the same tensors).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRAPH = ROOT / "graphs" / "ltx2_t2v_two_stage.yaml"
WIDTH, HEIGHT = 1920, 1088
FRAMES = (121, 241, 481)


def run_once(frames: int, budget: str | None, work: Path, graph: Path = GRAPH, width: int = WIDTH,
             height: int = HEIGHT) -> dict:
    """One CLI run in a child process: {"frames", "peak_rss_gib", "seconds", "exit", "slowest_nodes"}."""
    report = work / f"report_{frames}.json"
    command = [sys.executable, "-m", "ltxgraph.cli", "run", str(graph), "--set", f"width={width}",
               "--set", f"height={height}", "--set", f"length={frames}", "--out", str(work / "out"),
               "--no-cache", "--quiet", "--report", str(report)]
    if budget:
        command += ["--memory-budget", budget]
    for item in filter(None, os.environ.get("LTXGRAPH_BENCH_SET", "").split(",")):
        command += ["--set", item.strip()]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=work, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    error = child.stderr.read().decode(errors="replace")[-400:] if child.stderr else ""
    figures = {"frames": frames, "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2), "seconds": round(seconds, 1),
               "exit": os.waitstatus_to_exitcode(status)}
    if error.strip():
        figures["stderr_tail"] = error.strip()
    if report.is_file():
        nodes = json.loads(report.read_text())["nodes"]
        slowest = sorted(nodes, key=lambda n: -n["seconds"])[:4]
        figures["slowest_nodes"] = {n["id"]: round(n["seconds"], 1) for n in slowest}
    return figures


def two_stage_memory() -> dict:
    frames = [int(n) for n in os.environ.get("LTXGRAPH_BENCH_FRAMES", ",".join(map(str, FRAMES))).split(",")]
    budget = os.environ.get("LTXGRAPH_BENCH_BUDGET", "6G")
    with tempfile.TemporaryDirectory() as folder:
        runs = [run_once(n, budget, Path(folder)) for n in frames]
    return {"graph": GRAPH.name, "size": f"{WIDTH}x{HEIGHT}", "memory_budget": budget, "runs": runs}


BENCHMARKS = {"two-stage-memory": two_stage_memory}


if __name__ == "__main__":     # one run, e.g. python tools/benchmarks/run_memory.py 241 6G
    folder = Path(tempfile.mkdtemp(prefix="run-memory-"))
    print(json.dumps(run_once(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None, folder)), flush=True)
