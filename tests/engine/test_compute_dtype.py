"""The compute dtype policy: auto decided by a cached measurement, bfloat16 refused where the device lacks it,
the decision in the summary and in every cache key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ltxgraph import RunSettings, Runner
from ltxgraph.cli import main
from ltxgraph.compute_dtype import MachineProbe, MatmulTiming, decide_dtype
from ltxgraph.errors import InvalidInput
from ltxgraph.registry import Registry

from .test_progress import GRAPH


class FakeMachine(MachineProbe):
    """A machine whose bf16 support and matmul speed the test chooses; counts its measurements."""

    def __init__(self, bf16_reason: str | None = None, float32: float = 1.0, bfloat16: float = 0.25) -> None:
        self.bf16_reason, self.timing, self.measured = bf16_reason, MatmulTiming(float32, bfloat16), 0

    def bf16_unsupported(self, device: str) -> str | None:
        return self.bf16_reason

    def time_matmul(self, repeats: int = 3) -> MatmulTiming:
        self.measured += 1
        return self.timing


def test_auto_picks_bf16_where_its_matmul_is_faster_and_caches_the_measurement(tmp_path: Path) -> None:
    fast = FakeMachine(float32=1.0, bfloat16=0.25)
    decision = decide_dtype("auto", "cpu", tmp_path, fast)
    assert decision.dtype == "bfloat16" and decision.torch_dtype == torch.bfloat16
    assert "4.00x" in decision.reason and "measured" in decision.reason
    again = decide_dtype("auto", "cpu", tmp_path, fast)
    assert fast.measured == 1 and again.dtype == "bfloat16" and "cached" in again.reason
    [saved] = (tmp_path / "machine").glob("matmul-*.json")
    assert {"cpu", "bf16_flags", "torch"} <= set(json.loads(saved.read_text()))


def test_auto_keeps_float32_where_bf16_is_emulated(tmp_path: Path) -> None:
    slow = FakeMachine(float32=0.01, bfloat16=3.0)   # emulated bf16: hundreds of times slower
    assert decide_dtype("auto", "cpu", tmp_path, slow).dtype == "float32"
    assert decide_dtype("auto", "cpu", None, FakeMachine(float32=1.0, bfloat16=0.9)).dtype == "float32"


def test_a_damaged_measurement_is_measured_again(tmp_path: Path) -> None:
    machine = FakeMachine()
    decide_dtype("auto", "cpu", tmp_path, machine)
    [saved] = (tmp_path / "machine").glob("matmul-*.json")
    saved.write_text("{not json")
    assert decide_dtype("auto", "cpu", tmp_path, machine).dtype == "bfloat16" and machine.measured == 2


def test_explicit_dtypes_and_unknown_names() -> None:
    machine = FakeMachine(bf16_reason="no bf16 here")
    assert decide_dtype("float32", "cpu", None, machine).dtype == "float32"
    assert decide_dtype("auto", "cpu", None, machine).dtype == "float32"
    with pytest.raises(InvalidInput, match="'float16' is not one of auto, float32, bfloat16"):
        decide_dtype("float16", "cpu", None, machine)


def test_bf16_on_a_device_without_it_is_refused_at_validation(tmp_path: Path) -> None:
    registry = Registry.discover(["tests.engine.sample_ops"])
    (tmp_path / "g.yaml").write_text(GRAPH)
    from ltxgraph import load
    graph = load(tmp_path / "g.yaml", registry)
    runner = Runner(registry, cache_dir=tmp_path / "cache", settings=RunSettings(dtype="bfloat16"),
                    machine=FakeMachine(bf16_reason="this test's device has no bfloat16"))
    with pytest.raises(InvalidInput, match=r"RunSettings\(dtype=...\): bfloat16 cannot run on device 'cpu': "
                                           "this test's device has no bfloat16"):
        runner.validate(graph)


def test_cli_refuses_bf16_with_exit_2_and_the_reason(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.yaml").write_text(GRAPH)
    monkeypatch.setattr(MachineProbe, "bf16_unsupported", lambda self, device: "no bfloat16 on this device")
    code = main(["--plugin", "tests.engine.sample_ops", "run", "g.yaml", "--dtype", "bfloat16",
                 "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and "--dtype: bfloat16 cannot run on device 'cpu': no bfloat16 on this device" in err
    assert not (tmp_path / "output").exists()   # nothing ran, nothing written


def test_the_decision_is_in_the_json_summary_and_in_every_cache_key(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.yaml").write_text(GRAPH)
    base = ["--plugin", "tests.engine.sample_ops", "run", "g.yaml", "--json", "--cache-dir", str(tmp_path / "c")]
    assert main(base + ["--dtype", "float32"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["compute_dtype"] == {"dtype": "float32", "requested": "float32", "reason": "asked for"}
    assert main(base + ["--dtype", "bfloat16"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["compute_dtype"]["dtype"] == "bfloat16" and second["cache_hits"] == 0   # other keys
    assert main(base + ["--dtype", "bfloat16"]) == 0
    assert json.loads(capsys.readouterr().out)["cache_hits"] == 2
