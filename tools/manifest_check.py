"""Compare every full-size model (built on the meta device from ltxgraph_ops/tiny/<component>.py ``full_config()``)
with the 19B checkpoint manifest: per component, the tensors missing from our module, unexpected in it, and
of another shape. Exit status 1 if any component differs or fails to build.

Usage: python tools/manifest_check.py [--json] [--manifest PATH] [--show N]
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ltxgraph_ops.tiny  # noqa: E402

DEFAULT_MANIFEST = ROOT / "tests" / "data" / "reference" / "ltx2_19b_manifest.json"


def tiny_modules(failures: dict[str, str] | None = None) -> list:
    """Every ltxgraph_ops/tiny module that names a manifest component; import errors go to ``failures`` by module name
    (raised when no dict is given)."""
    modules = []
    for info in sorted(pkgutil.iter_modules(ltxgraph_ops.tiny.__path__), key=lambda m: m.name):
        try:
            module = importlib.import_module(f"ltxgraph_ops.tiny.{info.name}")
        except Exception as error:  # noqa: BLE001 - reported per module
            if failures is None:
                raise
            failures[f"ltxgraph_ops.tiny.{info.name}"] = f"{type(error).__name__}: {error}"
            continue
        if getattr(module, "MANIFEST_COMPONENT", None):
            modules.append(module)
    return modules


def meta_shapes(module) -> dict[str, list[int]]:
    """Checkpoint key -> shape of the module's full-size model, built on the meta device."""
    with torch.device("meta"):
        model = module.build(module.full_config(), device="meta")
    return {module.PREFIX + key: list(tensor.shape) for key, tensor in model.state_dict().items()}


def compare(ours: dict[str, list[int]], expected: dict[str, list]) -> dict:
    """Differences between our key -> shape map and the manifest's (key -> [shape, dtype])."""
    want = {key: list(value[0]) for key, value in expected.items()}
    missing = sorted(set(want) - set(ours))
    unexpected = sorted(set(ours) - set(want))
    misshapen = sorted(key for key in set(want) & set(ours) if want[key] != ours[key])
    return {"missing": missing, "unexpected": unexpected,
            "misshapen": [{"key": key, "ours": ours[key], "manifest": want[key]} for key in misshapen]}


def check_all(manifest_path: Path = DEFAULT_MANIFEST) -> dict[str, dict]:
    manifest = json.loads(manifest_path.read_text())
    failures: dict[str, str] = {}
    modules = tiny_modules(failures)
    report = {name: {"module": name, "error": f"import failed: {message}"} for name, message in failures.items()}
    for module in modules:
        component = module.MANIFEST_COMPONENT
        entry: dict = {"module": module.__name__}
        try:
            if component not in manifest:
                raise KeyError(f"component {component!r} is not in {manifest_path.name}")
            entry.update(compare(meta_shapes(module), manifest[component]))
        except Exception as error:  # noqa: BLE001 - reported per component
            entry["error"] = f"{type(error).__name__}: {error}"
        report[component] = entry
    return report


def is_clean(entry: dict) -> bool:
    return "error" not in entry and not (entry["missing"] or entry["unexpected"] or entry["misshapen"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object of counts")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--show", type=int, default=5, help="names shown per kind of difference")
    args = parser.parse_args(argv)
    report = check_all(args.manifest)
    if args.json:
        summary = {}
        for component, entry in report.items():
            summary[component] = ({"module": entry["module"], "error": entry["error"]} if "error" in entry else
                                  {"module": entry["module"], "missing": len(entry["missing"]),
                                   "unexpected": len(entry["unexpected"]), "misshapen": len(entry["misshapen"])})
        print(json.dumps(summary, indent=2))
    else:
        for component, entry in report.items():
            if "error" in entry:
                print(f"{component:14s} ERROR {entry['error']}")
                continue
            print(f"{component:14s} missing {len(entry['missing'])}, unexpected {len(entry['unexpected'])}, "
                  f"misshapen {len(entry['misshapen'])}")
            for kind in ("missing", "unexpected", "misshapen"):
                for item in entry[kind][:args.show]:
                    print(f"    {kind}: {item}")
    return 0 if all(is_clean(entry) for entry in report.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
