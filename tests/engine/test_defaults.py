from __future__ import annotations

import importlib.metadata
import sys
import types
from pathlib import Path

import pytest

from ltxgraph.cli import main


def test_runs_without_models_dir_use_the_provided_default_models(tmp_path: Path, monkeypatch, capsys) -> None:
    calls = []

    def provide(folder: Path) -> str:
        calls.append(folder)
        (folder / "checkpoints").mkdir(exist_ok=True)
        (folder / "checkpoints" / "tiny.safetensors").write_bytes(b"x")
        return "tiny test models"

    module = types.ModuleType("fake_default_models")
    module.provide = provide
    monkeypatch.setitem(sys.modules, "fake_default_models", module)
    entry = importlib.metadata.EntryPoint("fake", "fake_default_models:provide", "ltxgraph.default_models")
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [entry] if group == "ltxgraph.default_models" else real(group=group))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.yaml").write_text("ltxgraph: 1\nnodes:\n  m: {op: LoadFakeModel, in: {name: tiny.safetensors}}\n"
                                     "outputs: {model: '@m.MODEL'}\n")
    code = main(["--plugin", "tests.engine.sample_ops", "run", "g.yaml", "--cache-dir", str(tmp_path / "c")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "note: no models folder given (--models-dir DIR): tiny test models" in captured.err
    assert calls == [tmp_path / "c" / "default-models" / "fake"]
    code = main(["--plugin", "tests.engine.sample_ops", "run", "g.yaml", "--models-dir", str(tmp_path / "none")])
    assert code == 2 and "not found" in capsys.readouterr().err and len(calls) == 1
