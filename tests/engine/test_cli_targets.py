"""What the command line writes and where, and what it refuses before anything runs: reports and converted
files into folders that do not exist yet, an output folder that is a file, a document that is no graph, and the
report of a run refused by validation. Run in-process: one clear line, the right exit code, never a traceback."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltxgraph.cli import main

REPO = Path(__file__).resolve().parents[2]
GRAPH = """\
ltxgraph: 1
name: targets
nodes:
  img: {op: MakeTensor, in: {seed: 1}}
  text: {op: WriteText, in: {text: "hello", filename_prefix: notes}}
outputs:
  image: "@img.IMAGE"
"""
WORKFLOW = REPO / "tests" / "data" / "comfyui" / "video_ltx2_i2v.json"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTXGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "g.yaml").write_text(GRAPH)
    return tmp_path


def ltxgraph(*args: str) -> int:
    return main(["--plugin", "tests.engine.sample_ops", *args])


def test_report_inside_an_output_folder_that_does_not_exist_yet(workdir: Path, capsys) -> None:
    code = ltxgraph("run", "g.yaml", "--out", "new/out", "--report", "new/out/logs/report.json", "--quiet")
    assert code == 0, capsys.readouterr().err
    report = json.loads((workdir / "new/out/logs/report.json").read_text())
    assert report["status"] == "ok" and (workdir / "new/out/notes.txt").read_text() == "hello"


def test_report_of_a_graph_writing_nothing_goes_into_a_new_folder(workdir: Path, capsys) -> None:
    (workdir / "quiet.yaml").write_text("ltxgraph: 1\nnodes:\n  c: {op: Const, in: {value: 2}}\n"
                                        "outputs: {v: '@c.VALUE'}\n")
    assert ltxgraph("run", "quiet.yaml", "--out", "o", "--report", "o/r.json", "--quiet") == 0
    assert json.loads((workdir / "o/r.json").read_text())["status"] == "ok"


def test_convert_into_a_missing_folder_creates_it(workdir: Path, capsys) -> None:
    assert ltxgraph("convert", str(WORKFLOW), "-o", "graphs/new/i2v.yaml") == 0
    assert (workdir / "graphs/new/i2v.yaml").read_text().startswith("#")
    assert ltxgraph("export", "g.yaml", "-o", "prompts/new/p.json") == 0
    assert set(json.loads((workdir / "prompts/new/p.json").read_text())) == {"img", "text"}


@pytest.mark.parametrize("args, words", [
    (["convert", str(WORKFLOW), "-o", "."], "is a folder; name a file to write"),
    (["convert", str(WORKFLOW), "-o", "afile/x.yaml"], "cannot be written, afile is a file"),
    (["run", "g.yaml", "--report", "afile/r.json"], "cannot be written, afile is a file"),
])
def test_unwritable_targets_are_refused_before_anything_runs(workdir: Path, capsys, args, words) -> None:
    (workdir / "afile").write_text("keep")
    assert ltxgraph(*args) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (workdir / "output").exists() and (workdir / "afile").read_text() == "keep"


@pytest.mark.parametrize("out, words", [("afile", "output folder afile is a file, not a folder"),
                                        ("afile/sub", "lies under the file afile")])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_out_naming_an_existing_file_is_refused_before_anything_runs(workdir: Path, capsys, out, words,
                                                                     command) -> None:
    (workdir / "afile").write_text("keep")
    assert ltxgraph(command, "g.yaml", "--out", out, *(["--no-cache"] if command == "run" else [])) == 2
    err = capsys.readouterr().err
    assert words in err and "--out DIR" in err and "Traceback" not in err
    assert (workdir / "afile").read_text() == "keep" and not (workdir / "cache").exists()


@pytest.mark.parametrize("text, found", [('{"foo": 1, "bar": [1, 2]}', "found a mapping with keys 'foo', 'bar'"),
                                         ("[1, 2, 3]", "found a list of 3 items"),
                                         ("", "found an empty document")])
@pytest.mark.parametrize("command", ["run", "validate", "convert"])
def test_a_document_that_is_no_graph_says_so(workdir: Path, capsys, text, found, command) -> None:
    (workdir / "w.json").write_text(text)
    args = ["convert", "w.json", "-o", "x.yaml"] if command == "convert" else [command, "w.json"]
    assert ltxgraph(*args) == 2
    err = capsys.readouterr().err
    assert "w.json: not a graph or workflow: " + found in err and "class_type" in err
    assert not (workdir / "x.yaml").exists()


def test_convert_of_a_graph_file_says_there_is_nothing_to_convert(workdir: Path, capsys) -> None:
    assert ltxgraph("convert", "g.yaml", "-o", "x.yaml") == 2
    assert "is already a graph file" in capsys.readouterr().err


def test_report_is_written_when_validation_fails(workdir: Path, capsys) -> None:
    (workdir / "bad.yaml").write_text("ltxgraph: 1\nnodes:\n  img: {op: MakeTensor, in: {seed: x}}\n"
                                      "  s: {op: ScaleImage, in: {image: '@img.IMAGE', factor: 0.5, extra: 1}}\n"
                                      "outputs: {v: '@s.IMAGE'}\n")
    assert ltxgraph("run", "bad.yaml", "--report", "reports/r.json", "--json") == 2
    report = json.loads((workdir / "reports/r.json").read_text())
    assert report["status"] == "invalid" and report["graph"] == "bad.yaml" and report["nodes"] == []
    problems = {(p["node"], p["input"]): p for p in report["problems"]}
    assert problems[("img", "seed")]["line"] == 3 and "expects INT" in problems[("img", "seed")]["message"]
    assert ("s", "extra") in problems and "graph is invalid (2 problems)" in report["error"]
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "invalid" and printed["problems"] == report["problems"]


def test_report_is_written_when_the_graph_file_cannot_be_read(workdir: Path, capsys) -> None:
    (workdir / "broken.yaml").write_text("ltxgraph: 1\nnodes: [\n")
    assert ltxgraph("run", "broken.yaml", "--report", "r.json") == 2
    report = json.loads((workdir / "r.json").read_text())
    assert report["status"] == "invalid" and report["problems"][0]["line"] and report["problems"][0]["message"]
