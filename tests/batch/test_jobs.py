"""Jobs files, --sweep values and the manifest: parsed as documented, refused with the file, line or sweep named."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltxgraph.batch import Job, read_jobs, sweep_jobs
from ltxgraph.batch.manifest import FILE_NAME, Manifest
from ltxgraph.batch.sweep import sweep_values
from ltxgraph.errors import InvalidInput


def test_sweep_values_read_ranges_lists_and_files(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a lighthouse\n\n  a harbour at dawn \n")
    assert sweep_values("seed=1..4") == ("seed", ["1", "2", "3", "4"])
    assert sweep_values("seed=-1..1") == ("seed", ["-1", "0", "1"])
    assert sweep_values("cfg=1.0, 2.5") == ("cfg", ["1.0", "2.5"])
    assert sweep_values("name=x") == ("name", ["x"])
    assert sweep_values(f"prompt@{prompts}") == ("prompt", ["a lighthouse", "a harbour at dawn"])


@pytest.mark.parametrize("text, says", [
    ("seed", "NAME=1..8"), ("=1..3", "NAME=1..8"), ("seed=5..1", "empty"), ("seed=1,,2", "empty value"),
    ("prompt@/no/such/file.txt", "cannot read"),
])
def test_bad_sweeps_are_refused_with_the_sweep_named(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        sweep_values(text)


def test_sweeps_make_the_cartesian_product_last_fastest(tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("cat\ndog\n")
    jobs = sweep_jobs(Path("g.yaml"), ["seed=1..3", f"prompt@{prompts}"], ["width=128"])
    assert [job.name for job in jobs] == [f"job-00{i}" for i in range(1, 7)]
    assert [job.assignments for job in jobs[:3]] == [("width=128", "seed=1", "prompt=cat"),
                                                   ("width=128", "seed=1", "prompt=dog"),
                                                   ("width=128", "seed=2", "prompt=cat")]
    assert all(job.folder == job.name for job in jobs)
    with pytest.raises(InvalidInput, match="seed more than once"):
        sweep_jobs(Path("g.yaml"), ["seed=1..2", "seed=3"])


def test_yaml_and_jsonl_jobs_files(tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text(
        "jobs:\n  - {graph: g.yaml, set: {seed: 3, enabled: true}, out: first}\n"
        "  - {graph: /abs/h.yaml, name: second, set: [prompt=a=b]}\n")
    first, second = read_jobs(tmp_path / "jobs.yaml")
    assert first == Job("job-001", tmp_path / "g.yaml", ("seed=3", "enabled=true"), "first")
    assert second == Job("second", Path("/abs/h.yaml"), ("prompt=a=b",), "")
    assert second.folder == "second"
    (tmp_path / "jobs.jsonl").write_text('{"graph": "g.yaml", "set": {"seed": 1}}\n\n{"graph": "g.yaml"}\n')
    assert [job.name for job in read_jobs(tmp_path / "jobs.jsonl")] == ["job-001", "job-002"]


@pytest.mark.parametrize("name, text, says", [
    ("a.jsonl", '{"graph": "g.yaml"}\nnot json\n', r"a.jsonl:2: not a JSON object"),
    ("b.yaml", "- {graph: g.yaml, sett: {}}\n", r"b.yaml: job 1: unknown key 'sett'"),
    ("c.yaml", "- {set: {seed: 1}}\n", r"c.yaml: job 1: 'graph' must name"),
    ("d.yaml", "- {graph: g.yaml, set: 5}\n", r"'set' must be a mapping"),
    ("e.yaml", "[]\n", "holds no jobs"),
    ("f.yaml", "graph: x\n", "a list of jobs"),
])
def test_bad_jobs_files_are_refused_with_the_place_named(tmp_path: Path, name: str, text: str, says: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(InvalidInput, match=says):
        read_jobs(tmp_path / name)


def test_manifest_records_jobs_atomically_and_knows_what_is_done(tmp_path: Path) -> None:
    job = Job("job-001", tmp_path / "g.yaml", ("seed=1",))
    manifest = Manifest(tmp_path)
    manifest.start(job)
    assert not manifest.is_done(job)
    (tmp_path / "job-001").mkdir()
    (tmp_path / "job-001" / "v.mp4").write_bytes(b"mp4")
    manifest.finish(job, {"state": "done", "files": ["job-001/v.mp4"], "error": None, "seconds": 1.0})
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temporary file left
    again = Manifest.load(tmp_path)
    assert again.is_done(job) and again.jobs["job-001"]["attempts"] == 1
    assert not again.is_done(Job("job-001", tmp_path / "g.yaml", ("seed=2",)))   # another job of that name
    (tmp_path / "job-001" / "v.mp4").unlink()
    assert not again.is_done(job)                                                # its file is gone
    (tmp_path / FILE_NAME).write_text("{not json")
    with pytest.raises(InvalidInput, match=FILE_NAME):
        Manifest.load(tmp_path)
    assert json.loads(json.dumps(again.jobs))["job-001"]["state"] == "done"
