"""Compare every full-size model (built on the meta device from ltxgraph_ops/tiny/<component>.py) with the release
checkpoint manifests: per version and component, the tensors missing from our module, unexpected in it, and of
another shape. Version 2.0 (19B) uses each module's ``full_config()``; other versions (2.3: 22B) the module's
``RELEASE_CONFIGS[version]``, and a manifest component no module builds at that version is reported as an error.
Exit status 1 if any component differs or fails to build.

Usage: python tools/manifest_check.py [--json] [--version 2.0|2.3|all] [--manifest PATH] [--show N]
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
MANIFESTS = {"2.0": DEFAULT_MANIFEST, "2.3": ROOT / "tests" / "data" / "reference" / "ltx23_22b_manifest.json"}


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


def release_config(module, version: str = "2.0") -> dict | None:
    """The module's full-size config at release ``version`` (None when it builds no such model)."""
    configs = getattr(module, "RELEASE_CONFIGS", {"2.0": module.full_config})
    return configs[version]() if version in configs else None


def meta_shapes(module, version: str = "2.0") -> dict[str, list[int]]:
    """Checkpoint key -> shape of the module's full-size model at release ``version``, built on the meta device."""
    config = release_config(module, version)
    if config is None:
        raise KeyError(f"{module.__name__} has no LTX-{version} release config")
    with torch.device("meta"):
        model = module.build(config, device="meta")
    return {module.PREFIX + key: list(tensor.shape) for key, tensor in model.state_dict().items()}


def compare(ours: dict[str, list[int]], expected: dict[str, list]) -> dict:
    """Differences between our key -> shape map and the manifest's (key -> [shape, dtype])."""
    want = {key: list(value[0]) for key, value in expected.items()}
    missing = sorted(set(want) - set(ours))
    unexpected = sorted(set(ours) - set(want))
    misshapen = sorted(key for key in set(want) & set(ours) if want[key] != ours[key])
    return {"missing": missing, "unexpected": unexpected,
            "misshapen": [{"key": key, "ours": ours[key], "manifest": want[key]} for key in misshapen]}


def check_all(manifest_path: Path = DEFAULT_MANIFEST, version: str = "2.0") -> dict[str, dict]:
    """Per component of the manifest at ``version``: missing / unexpected / misshapen keys, or an error."""
    manifest = json.loads(manifest_path.read_text())
    failures: dict[str, str] = {}
    modules = tiny_modules(failures)
    report = {name: {"module": name, "error": f"import failed: {message}"} for name, message in failures.items()}
    for module in modules:
        component = module.MANIFEST_COMPONENT
        if version != "2.0" and release_config(module, version) is None:
            continue   # reported below if the manifest has the component
        entry: dict = {"module": module.__name__}
        try:
            if component not in manifest:
                raise KeyError(f"component {component!r} is not in {manifest_path.name}")
            entry.update(compare(meta_shapes(module, version), manifest[component]))
        except Exception as error:  # noqa: BLE001 - reported per component
            entry["error"] = f"{type(error).__name__}: {error}"
        report[component] = entry
    for component in manifest:
        if not component.startswith("_") and component not in report:
            report[component] = {"module": "-", "error": f"no ltxgraph_ops/tiny module builds the LTX-{version} "
                                                         f"{component!r}"}
    return report


def is_clean(entry: dict) -> bool:
    return "error" not in entry and not (entry["missing"] or entry["unexpected"] or entry["misshapen"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object of counts")
    parser.add_argument("--version", choices=[*MANIFESTS, "all"], default="all",
                        help="release to check (default: all)")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="manifest file (only with one --version; default: that version's)")
    parser.add_argument("--show", type=int, default=5, help="names shown per kind of difference")
    args = parser.parse_args(argv)
    versions = list(MANIFESTS) if args.version == "all" else [args.version]
    if args.manifest is not None and args.version == "all":
        versions = ["2.0"]    # a manifest given without a version: the 19B layout, as before versions
    reports = {version: check_all(args.manifest or MANIFESTS[version], version) for version in versions}
    if args.json:
        summary = {version: {component: ({"module": entry["module"], "error": entry["error"]} if "error" in entry
                                         else {"module": entry["module"], "missing": len(entry["missing"]),
                                               "unexpected": len(entry["unexpected"]),
                                               "misshapen": len(entry["misshapen"])})
                             for component, entry in report.items()}
                   for version, report in reports.items()}
        print(json.dumps(summary if len(versions) > 1 else summary[versions[0]], indent=2))
    else:
        for version, report in reports.items():
            print(f"LTX-{version}")
            for component, entry in report.items():
                if "error" in entry:
                    print(f"  {component:14s} ERROR {entry['error']}")
                    continue
                print(f"  {component:14s} missing {len(entry['missing'])}, unexpected {len(entry['unexpected'])}, "
                      f"misshapen {len(entry['misshapen'])}")
                for kind in ("missing", "unexpected", "misshapen"):
                    for item in entry[kind][:args.show]:
                        print(f"      {kind}: {item}")
    return 0 if all(is_clean(entry) for report in reports.values() for entry in report.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
