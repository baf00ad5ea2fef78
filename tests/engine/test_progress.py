"""Console progress in its three modes (live on a terminal, plain lines for a log, quiet) and the end-of-run
summary on stdout (human and --json)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ltxgraph.cli import main
from ltxgraph.events import ProgressEvent
from ltxgraph.executor import NodeReport
from ltxgraph.progress import ConsoleProgress

GRAPH = """\
ltxgraph: 1
nodes:
  e: {op: EmptyVideoLatent, in: {length: 17}}
  text: {op: WriteText, in: {text: "hello", filename_prefix: notes}}
outputs: {latent: '@e.LATENT'}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def long_node(progress: ConsoleProgress, clock: Clock, steps: int, seconds_per_step: float) -> None:
    """One node of ``steps`` sampling steps, each with 4 blocks, taking ``seconds_per_step`` each."""
    progress(ProgressEvent("note", message="using the default models"))
    progress(ProgressEvent("node_started", "sampler", "SamplerCustomAdvanced", 3, 7, "node"))
    for step in range(1, steps + 1):
        for block in range(1, 5):
            clock.now += seconds_per_step / 4
            progress(ProgressEvent("step", "sampler", None, block, 4, "block"))
        progress(ProgressEvent("step", "sampler", None, step, steps, "step", {"sigma": 0.5}))
    progress(ProgressEvent("node_finished", "sampler", "SamplerCustomAdvanced", 3, 7, "node",
                           report=NodeReport("sampler", "SamplerCustomAdvanced", "k", "executed",
                                             steps * seconds_per_step, ["a warning"])))


def test_plain_lines_show_movement_within_a_long_node_at_most_every_interval() -> None:
    stream, clock = io.StringIO(), Clock()
    long_node(ConsoleProgress(stream, interval=5.0, clock=clock), clock, steps=8, seconds_per_step=2.0)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    assert lines[0] == "note: using the default models"
    assert lines[1] == "[3/7] sampler (SamplerCustomAdvanced) started"
    assert lines[-2:] == ["[3/7] sampler (SamplerCustomAdvanced) executed 16.00s", "    warning: a warning"]
    moving = lines[2:-2]
    assert len(moving) == 3                   # 16 s of work, one line per 5 s at most
    assert moving[0] == "[3/7] sampler (SamplerCustomAdvanced) step 2/8 block 2/4 5.0s"   # outer loop first


def test_live_mode_redraws_one_line_with_a_bar() -> None:
    stream, clock = io.StringIO(), Clock()
    long_node(ConsoleProgress(stream, mode="live", clock=clock), clock, steps=4, seconds_per_step=1.0)
    text = stream.getvalue()
    assert text.startswith("\r\x1b[Knote: using the default models\n\r\x1b[K[3/7] sampler (SamplerCustomAdvanced)\r")
    assert "\r\x1b[K[3/7] sampler (SamplerCustomAdvanced) block 1/4 [#####               ]" in text
    assert "step 2/4 [##########          ] block 1/4" in text   # the bar follows the outermost loop
    assert text.count("\n") == 3                             # the note, the finished line, its warning


def test_quiet_mode_writes_nothing() -> None:
    stream, clock = io.StringIO(), Clock()
    long_node(ConsoleProgress(stream, mode="quiet", clock=clock), clock, steps=4, seconds_per_step=10.0)
    assert stream.getvalue() == ""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "g.yaml").write_text(GRAPH)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTXGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def run(*args: str) -> int:
    return main(["--plugin", "tests.engine.sample_ops", "run", "g.yaml", *args])


def test_quiet_run_prints_nothing_but_errors(workdir: Path, capsys) -> None:
    assert run("--quiet") == 0
    assert capsys.readouterr() == ("", "")
    assert run("--quiet", "--set", "nope=1") == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and "unknown parameter 'nope'" in err


def test_stdout_ends_with_a_short_summary(workdir: Path, capsys) -> None:
    assert run() == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["latent: video latent [1, 4, 3, 2, 2] (17 frames)",
                                f"wrote {workdir / 'output' / 'notes.txt'}", out.splitlines()[-1]]
    assert out.splitlines()[-1].startswith("ok in ")
    assert out.splitlines()[-1].endswith("s (2 executed), computed in float32 (asked for)")
    assert "[1/2] e (EmptyVideoLatent) started" in err and "executed" in err
    assert run() == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("s (2 cached), computed in float32 (asked for)")


def test_json_prints_one_summary_object(workdir: Path, capsys) -> None:
    assert run("--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "ok" and summary["seconds"] >= 0 and summary["error"] is None
    assert summary["files"] == [str(workdir / "output" / "notes.txt")]
    assert summary["outputs"] == {"latent": "video latent [1, 4, 3, 2, 2] (17 frames)"}
    assert summary["nodes"] == {"executed": 2} and summary["cache_hits"] == 0
    assert run("--json") == 0
    assert json.loads(capsys.readouterr().out)["cache_hits"] == 2
    assert run("--json", "--set", "nope=1") == 2
    failed = json.loads(capsys.readouterr().out)
    assert failed["status"] == "invalid" and "unknown parameter 'nope'" in failed["error"]


def test_a_resumed_sampler_is_announced_once_on_its_own_line() -> None:
    stream = io.StringIO()
    progress = ConsoleProgress(stream, mode="lines", interval=1000.0, clock=lambda: 0.0)
    progress(ProgressEvent("node_started", "stage1", "SamplerCustomAdvanced", 3, 9, "node"))
    progress(ProgressEvent("step", "stage1", None, 5, 8, "step", {"resumed": "resumed at step 5 of 8"}))
    progress(ProgressEvent("step", "stage1", None, 6, 8, "step", {}))
    assert stream.getvalue().splitlines()[1:] == ["[3/9] stage1 (SamplerCustomAdvanced) resumed at step 5 of 8"]
