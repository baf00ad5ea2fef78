"""Run the benchmarks of tools/benchmarks and print their figures (benchmarks are not tests: no assertions).

Each module of tools/benchmarks exposes ``BENCHMARKS: dict[str, Callable[[], dict]]``; every callable returns a
JSON-serialisable dict of figures. A benchmark whose callable takes ``blocks`` or ``dtype`` gets --blocks / --dtype
(the real-scale steps: measure N transformer blocks and extrapolate to 48; compute dtype).
Usage: python tools/bench.py [--json] [--only NAME] [--list] [--blocks N] [--dtype float32|bfloat16]
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tools.benchmarks  # noqa: E402
from ltxgraph.cli import parse_bytes  # noqa: E402


def all_benchmarks() -> dict:
    """Every registered benchmark, by name, from every module of tools/benchmarks."""
    found = {}
    for info in sorted(pkgutil.iter_modules(tools.benchmarks.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"tools.benchmarks.{info.name}")
        for name, run in getattr(module, "BENCHMARKS", {}).items():
            if name in found:
                raise ValueError(f"benchmark {name!r} is registered twice")
            found[name] = run
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object {name: figures}")
    parser.add_argument("--only", default=None, help="run only the benchmark with this exact name")
    parser.add_argument("--list", action="store_true", help="list benchmark names and exit")
    parser.add_argument("--blocks", type=int, default=None,
                        help="transformer blocks to measure where a benchmark supports it (default: all 48)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                        help="compute dtype where a benchmark supports it (default: float32)")
    parser.add_argument("--memory-budget", type=parse_bytes, default=None, metavar="SIZE",
                        help="activation budget (e.g. 1G) where a benchmark supports it: the transformer step "
                             "benchmarks plan their feed-forward and attention token chunks from it")
    args = parser.parse_args(argv)
    if args.blocks is not None and not 1 <= args.blocks <= 48:
        parser.error(f"--blocks {args.blocks}: choose 1 to 48")
    options = {name: value for name, value in (("blocks", args.blocks), ("dtype", args.dtype),
                                               ("memory_budget", args.memory_budget)) if value is not None}
    benchmarks = all_benchmarks()
    if args.list:
        print("\n".join(benchmarks))
        return 0
    if args.only is not None:
        if args.only not in benchmarks:
            parser.error(f"unknown benchmark {args.only!r}; known: {', '.join(benchmarks)}")
        benchmarks = {args.only: benchmarks[args.only]}
    results = {}
    for name, run in benchmarks.items():
        accepted = inspect.signature(run).parameters
        results[name] = run(**{key: value for key, value in options.items() if key in accepted})
        if not args.json:
            print(f"== {name}\n{json.dumps(results[name], indent=2)}", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
