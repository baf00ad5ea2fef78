"""The command line, run as a user runs it: in a subprocess, checking exit codes, output and files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GRAPH = """\
ltxgraph: 1
name: cli demo
params:
  seed: {type: INT, default: 1}
  scale: {type: FLOAT, default: 0.5}
nodes:
  img: {op: MakeTensor, in: {seed: $seed}}
  half: {op: ScaleImage, in: {image: "@img.IMAGE", factor: $scale}}
  text: {op: WriteText, in: {text: "hello", filename_prefix: notes}}
outputs:
  image: "@half.IMAGE"
"""


def ltxgraph(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LTXGRAPH_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "ltxgraph.cli", "--plugin", "tests.engine.sample_ops", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "g.yaml").write_text(GRAPH)
    return tmp_path


def test_run_then_rerun_from_disk_cache_in_a_new_process(workdir: Path) -> None:
    first = ltxgraph("run", "g.yaml", "--report", "r1.json", cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert "image: tensor [1, 8, 16, 3]" in first.stdout
    assert (workdir / "output" / "notes.txt").read_text() == "hello"
    report = json.loads((workdir / "r1.json").read_text())
    assert report["status"] == "ok" and report["params"] == {"seed": 1, "scale": 0.5}
    assert {n["id"]: n["status"] for n in report["nodes"]} == {"img": "executed", "half": "executed", "text": "executed"}
    assert all(len(n["key"]) == 40 and n["seconds"] >= 0 for n in report["nodes"])

    second = ltxgraph("run", "g.yaml", "--report", "r2.json", cwd=workdir)
    statuses = {n["id"]: n["status"] for n in json.loads((workdir / "r2.json").read_text())["nodes"]}
    # the output node and what it reads come from the cache; 'img' is not even read (its consumer is cached)
    assert second.returncode == 0 and statuses == {"img": "unused", "half": "cached", "text": "cached"}

    (workdir / "output" / "notes.txt").unlink()  # a deleted output file is written again
    third = ltxgraph("run", "g.yaml", "--set", "scale=0.25", "--report", "r3.json", cwd=workdir)
    statuses = {n["id"]: n["status"] for n in json.loads((workdir / "r3.json").read_text())["nodes"]}
    assert statuses == {"img": "cached", "half": "executed", "text": "executed"}
    assert (workdir / "output" / "notes.txt").exists()

    elsewhere = ltxgraph("run", "g.yaml", "--set", "scale=0.25", "--out", "other", "--report", "r4.json",
                         cwd=workdir)   # cached, but this run's files belong in another folder: written there
    statuses = {n["id"]: n["status"] for n in json.loads((workdir / "r4.json").read_text())["nodes"]}
    assert elsewhere.returncode == 0 and statuses == {"img": "unused", "half": "cached", "text": "executed"}
    assert (workdir / "other" / "notes.txt").read_text() == "hello"


def test_no_cache_executes_everything_and_writes_no_entries(workdir: Path) -> None:
    for _ in range(2):
        result = ltxgraph("run", "g.yaml", "--no-cache", "--report", "r.json", cwd=workdir)
        assert result.returncode == 0
        assert {n["status"] for n in json.loads((workdir / "r.json").read_text())["nodes"]} == {"executed"}
    assert not (workdir / "cache").exists()


def test_cache_info_and_clear(workdir: Path) -> None:
    ltxgraph("run", "g.yaml", cwd=workdir)
    info = json.loads(ltxgraph("cache", "info", "--json", cwd=workdir).stdout)
    assert info["entries"] == 3 and info["bytes"] > 0 and info["limit"] == 8 * 2**30
    assert info["path"] == str(workdir / "cache" / "results")
    assert set(info["by_op"]) == {"MakeTensor", "ScaleImage", "WriteText"}
    assert sum(t["bytes"] for t in info["by_op"].values()) == info["bytes"]
    assert all(t["entries"] == 1 for t in info["by_op"].values())
    text = ltxgraph("cache", "info", cwd=workdir).stdout
    assert f"folder:  {workdir / 'cache' / 'results'}" in text and "limit:   8 GiB" in text
    assert f"total:   {info['bytes'] / 1024:.3g} KiB in 3 entries" in text
    image_line = next(line.split() for line in text.splitlines() if "MakeTensor" in line)
    assert image_line[:2] == ["MakeTensor", "1"]
    assert "removed 3 entries" in ltxgraph("cache", "clear", cwd=workdir).stdout
    assert json.loads(ltxgraph("cache", "info", "--json", cwd=workdir).stdout)["entries"] == 0


@pytest.mark.parametrize("args, code, words", [
    (["run", "g.yaml", "--set", "seed=abc"], 2, "parameter 'seed' must be a INT"),
    (["run", "g.yaml", "--set", "sead=3"], 2, "did you mean 'seed'"),
    (["run", "g.yaml", "--set", "scale=20"], 2, "node 'half' input 'factor': factor 20.0 is above the maximum 10"),
    (["run", "missing.yaml"], 2, "cannot read file"),
    (["run", "g.yaml", "--output", "nope"], 2, "unknown output(s) nope"),
    (["validate", "bad.yaml"], 2, "bad.yaml:3: node 'x' input 'a'"),
    (["run", "fail.yaml"], 1, "node 'f' (Fail) failed: RuntimeError: boom 7"),
    (["run", "fail_input.yaml"], 2, "node 'f' (Fail) failed: value 7 is not acceptable"),
    (["run", "bad_output.yaml"], 1, "returned a str for output 'VALUE' (INT)"),
    (["ops", "Nope"], 2, "unknown op 'Nope'"),
])
def test_errors_are_one_clear_line_with_the_right_exit_code(workdir: Path, args, code, words) -> None:
    (workdir / "bad.yaml").write_text("ltxgraph: 1\nnodes:\n  x: {op: Add, in: {a: 'oops'}}\n")
    (workdir / "fail.yaml").write_text("ltxgraph: 1\nnodes:\n  f: {op: Fail, in: {value: 7}}\noutputs: {v: '@f.VALUE'}\n")
    (workdir / "fail_input.yaml").write_text(
        "ltxgraph: 1\nnodes:\n  f: {op: Fail, in: {value: 7, kind: input}}\noutputs: {v: '@f.VALUE'}\n")
    (workdir / "bad_output.yaml").write_text(
        "ltxgraph: 1\nnodes:\n  f: {op: BadOutput, in: {text: x}}\noutputs: {v: '@f.VALUE'}\n")
    result = ltxgraph(*args, cwd=workdir)
    assert result.returncode == code, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(workdir: Path) -> None:
    (workdir / "fail.yaml").write_text("ltxgraph: 1\nnodes:\n  f: {op: Fail, in: {value: 7}}\noutputs: {v: '@f.VALUE'}\n")
    result = subprocess.run([sys.executable, "-m", "ltxgraph.cli", "--debug", "--plugin", "tests.engine.sample_ops",
                             "run", "fail.yaml", "--no-cache"], cwd=workdir, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 1 and "Traceback" in result.stderr and "RuntimeError: boom 7" in result.stderr


def test_failed_run_still_writes_its_report(workdir: Path) -> None:
    (workdir / "fail.yaml").write_text(
        "ltxgraph: 1\nnodes:\n  c: {op: Const, in: {value: 7}}\n  f: {op: Fail, in: {value: '@c.VALUE'}}\n"
        "outputs: {v: '@f.VALUE'}\n")
    result = ltxgraph("run", "fail.yaml", "--report", "r.json", cwd=workdir)
    report = json.loads((workdir / "r.json").read_text())
    assert result.returncode == 1 and report["status"] == "failed" and "boom 7" in report["error"]
    assert {n["id"]: n["status"] for n in report["nodes"]} == {"c": "executed", "f": "failed"}


def test_ctrl_c_stops_cleanly_and_keeps_finished_results(workdir: Path) -> None:
    (workdir / "slow.yaml").write_text(
        "ltxgraph: 1\nnodes:\n  c: {op: Const, in: {value: 3}}\n  s: {op: Sleep, in: {value: '@c.VALUE', seconds: 30}}\n"
        "outputs: {v: '@s.VALUE'}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "LTXGRAPH_CACHE_DIR": str(workdir / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "ltxgraph.cli", "--plugin", "tests.engine.sample_ops", "run",
                             "slow.yaml", "--report", "r.json"], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (workdir / "cache" / "results").exists() and time.time() < deadline:
        time.sleep(0.1)  # the Const node has been stored: Sleep is running
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    report = json.loads((workdir / "r.json").read_text())
    assert report["status"] == "interrupted"
    assert {n["id"]: n["status"] for n in report["nodes"]} == {"c": "executed", "s": "interrupted"}


def test_validate_and_ops_listing(workdir: Path) -> None:
    result = ltxgraph("validate", "g.yaml", cwd=workdir)
    assert result.returncode == 0 and "valid (3 nodes)" in result.stdout
    ops = json.loads(ltxgraph("ops", "--json", cwd=workdir).stdout)
    make = next(o for o in ops if o["name"] == "MakeTensor")
    assert make["outputs"] == [{"name": "IMAGE", "type": "IMAGE"}]
    assert make["inputs"][1] == {"name": "width", "type": "INT", "required": False, "default": 16, "widget": True,
                                 "min": 8, "max": 4096, "multiple_of": 8}
    assert "MakeTensor v1" in ltxgraph("ops", cwd=workdir).stdout


def test_ops_check_reports_each_op_and_exits_1_at_a_broken_contract(workdir: Path) -> None:
    kept = ltxgraph("ops", "--check", "tests.engine.sample_ops", "MakeTensor", "--examples", "3", cwd=workdir)
    assert kept.returncode == 0, kept.stderr
    assert ("MakeTensor: ok on 3 of 3 drawn inputs (inputs_unchanged, same_outputs, output_types, refuses_invalid, "
            "latent_frames, audio_steps, pixel_cells, fps_kept, frame_count); refuses invalid width") in kept.stdout
    broken = ltxgraph("ops", "--check", "tests.engine.sample_ops", "BadOutput", cwd=workdir)
    assert broken.returncode == 1
    assert "op BadOutput breaks output_types: op BadOutput returned a str for output 'VALUE' (INT)" in broken.stderr
