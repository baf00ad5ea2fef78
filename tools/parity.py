"""Run every parity check against ltx-core and print {check: max_abs_error}.

Usage: python tools/parity.py [--json] [--only SUBSTRING]
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tools.oracle  # noqa: E402


def all_checks() -> dict:
    """Every registered check, by name, from every module of tools/oracle."""
    checks = {}
    for info in sorted(pkgutil.iter_modules(tools.oracle.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"tools.oracle.{info.name}")
        checks.update(getattr(module, "CHECKS", {}))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", default="", help="run only checks whose name contains this")
    args = parser.parse_args(argv)
    results = {}
    for name, check in all_checks().items():
        if args.only in name:
            results[name] = float(check())
            if not args.json:
                print(f"{name:40s} {results[name]:.3e}", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
