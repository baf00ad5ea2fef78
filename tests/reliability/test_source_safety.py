"""No code path can run code from a file: no pickle, no unsafe YAML, no eval/exec, anywhere in our source."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for d in ("ltxgraph", "ltxgraph_ops", "tools") for p in (REPO / d).rglob("*.py"))

FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib", "cloudpickle"}


def findings(path: Path, root: Path = REPO) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
            found.append(f"calls {func.id}()")
        if isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else ""
            if owner == "torch" and func.attr == "load":
                safe = any(k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in node.keywords)
                if not safe:
                    found.append("calls torch.load without weights_only=True")
            if owner == "yaml" and func.attr in {"load", "load_all", "unsafe_load", "full_load"}:
                found.append(f"calls yaml.{func.attr} (use the safe loader)")
            if func.attr == "load" and owner in {"np", "numpy"} and any(k.arg == "allow_pickle" for k in node.keywords):
                found.append("calls numpy.load with allow_pickle")
    return [f"{path.relative_to(root)}:{message}" for message in found]


def test_scanner_catches_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nimport yaml, torch\nyaml.load(s)\ntorch.load(f)\neval('1')\n")
    assert len(findings(bad, tmp_path)) == 4


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_code_execution_from_data(path: Path) -> None:
    assert findings(path) == []
