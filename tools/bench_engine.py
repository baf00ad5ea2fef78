"""Engine overhead benchmark (not a test): validate+plan of a 500-node graph, and per-node overhead of execution
with no cache, with the disk cache being written, and when served from the memory and disk caches.

Usage: python tools/bench_engine.py [--nodes 500] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ltxgraph import Port, Registry, Runner, op  # noqa: E402
from ltxgraph.api import Graph  # noqa: E402
from ltxgraph.loader import graph_from_doc, parse_text  # noqa: E402
from ltxgraph.paths import Folders  # noqa: E402


@op("BenchConst", outputs={"VALUE": "INT"})
def bench_const(value: Annotated[int, Port("INT", min=0)]) -> int:
    return value


@op("BenchAdd", outputs={"SUM": "INT"})
def bench_add(a: Annotated[int, Port("INT")], b: Annotated[int, Port("INT")],
              label: Annotated[str, Port("STRING", choices=("x", "y"))] = "x") -> int:
    return a + b


def graph_text(count: int) -> str:
    """A layered DAG: each node adds two earlier nodes; a parameter feeds the first node."""
    lines = ["ltxgraph: 1", "params:", "  start: {type: INT, default: 1, min: 0}", "nodes:",
             "  n0: {op: BenchConst, in: {value: $start}}", "  n1: {op: BenchConst, in: {value: 2}}"]
    for i in range(2, count):
        lines.append(f"  n{i}: {{op: BenchAdd, in: {{a: '@n{i - 1}.SUM' , b: '@n{i // 2}.SUM', label: y}}}}"
                     .replace(f"'@n0.SUM'", "'@n0.VALUE'").replace(f"'@n1.SUM'", "'@n1.VALUE'"))
    lines += ["outputs:", f"  last: '@n{count - 1}.SUM'"]
    return "\n".join(lines) + "\n"


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    registry = Registry.from_modules(sys.modules[__name__])
    text = graph_text(args.nodes)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folders = Folders((), Path(tmp), Path(tmp) / "out")
        graph = Graph(graph_from_doc(parse_text(text)), parse_text(text))
        runner = Runner(registry, use_cache=False, folders=folders)
        results["parse_ms"] = 1e3 * best_of(lambda: graph_from_doc(parse_text(text)))
        results["validate_plan_ms"] = 1e3 * best_of(lambda: runner.plan(graph))
        results["run_no_cache_ms"] = 1e3 * best_of(lambda: runner.run(graph))
        counter = [0]

        def cold_run() -> None:
            counter[0] += 1
            Runner(registry, cache_dir=Path(tmp) / f"c{counter[0]}", folders=folders).run(graph)

        results["run_writing_disk_cache_ms"] = 1e3 * best_of(cold_run, 3)
        warm = Runner(registry, cache_dir=Path(tmp) / "warm", folders=folders)
        warm.run(graph)
        results["run_memory_cached_ms"] = 1e3 * best_of(lambda: warm.run(graph))
        results["run_disk_cached_ms"] = 1e3 * best_of(
            lambda: Runner(registry, cache_dir=Path(tmp) / "warm", folders=folders).run(graph), 3)
        op_ms = 1e3 * best_of(lambda: [bench_add(a=1, b=2) for _ in range(args.nodes)])
    n = args.nodes
    per_node = {f"per_node_{k[4:-3]}_ms": (v - (op_ms if "no_cache" in k or "writing" in k else 0)) / n
                for k, v in results.items() if k.startswith("run_")}
    report = {"nodes": n, **{k: round(v, 3) for k, v in results.items()},
              **{k: round(v, 4) for k, v in per_node.items()}}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:36s} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
