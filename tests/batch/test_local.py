"""``ltxgraph batch`` in one process: every job validated first, jobs in order on one warm runner whose cache
serves what jobs share (the text encoding once for a seed sweep), the same MP4 bytes as ``ltxgraph run`` of each
job alone, a failed job reported while the others go on, and a batch started again skipping what is done."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ltxgraph import cli

from .conftest import PLUGIN, REPO, SMALL, T2V, executed_ops, read_manifest, run_alone


def batch(*args: str) -> int:
    return cli.main([*PLUGIN, "batch", *args])


def test_seed_sweep_encodes_the_prompt_once_and_matches_run_alone(tiny_models: Path, tmp_path: Path,
                                                                 capsys) -> None:
    out = tmp_path / "out"
    common = ["--models-dir", str(tiny_models), "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    sets = [arg for value in SMALL for arg in ("--set", value)]
    assert batch(str(T2V), "--sweep", "seed=1..3", *sets, *common) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[:3] for line in lines] == [["[1/3]", "job-001", "done"], ["[2/3]", "job-002", "done"],
                                                       ["[3/3]", "job-003", "done"]]
    assert executed_ops(out, "CLIPTextEncode") == {"job-001": 1, "job-002": 0, "job-003": 0}
    assert executed_ops(out, "CheckpointLoaderSimple") == {"job-001": 1, "job-002": 0, "job-003": 0}  # warm
    jobs = read_manifest(out)
    assert {name: entry["state"] for name, entry in jobs.items()} == dict.fromkeys(jobs, "done")
    for seed, name in ((1, "job-001"), (3, "job-003")):
        [video] = jobs[name]["files"]
        alone = run_alone(T2V, (*SMALL, f"seed={seed}"), tiny_models, tmp_path / f"alone-{seed}")
        assert (out / video).read_bytes() == alone
    assert (out / jobs["job-001"]["files"][0]).read_bytes() != (out / jobs["job-002"]["files"][0]).read_bytes()

    stamps = {name: (out / entry["files"][0]).stat().st_mtime_ns for name, entry in jobs.items()}
    (out / jobs["job-002"]["files"][0]).unlink()                 # started again: only the job missing its file
    assert batch(str(T2V), "--sweep", "seed=1..3", *sets, *common) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[1:3] for line in lines] == [["job-001", "skipped:"], ["job-003", "skipped:"],
                                                        ["job-002", "done"]]   # skipped ones are said first
    again = read_manifest(out)
    assert again["job-002"]["attempts"] == 2 and again["job-001"]["attempts"] == 1
    assert (out / again["job-002"]["files"][0]).is_file()
    assert all((out / jobs[n]["files"][0]).stat().st_mtime_ns == stamps[n] for n in ("job-001", "job-003"))


def test_a_failed_job_is_reported_and_the_others_run(tmp_path: Path, sample_graphs, capsys) -> None:
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text(f'{{"graph": "{sample_graphs["sleeping"]}", "name": "first"}}\n'
                         f'{{"graph": "{sample_graphs["failing"]}", "name": "broken"}}\n'
                         f'{{"graph": "{sample_graphs["sleeping"]}", "name": "last", "set": {{"seconds": 0}}}}\n')
    out = tmp_path / "out"
    assert batch(str(jobs_file), "--out", str(out), "--cache-dir", str(tmp_path / "cache")) == 1
    captured = capsys.readouterr()
    assert "[2/3] broken failed after" in captured.out and "boom 1" in captured.out
    assert "2 done, 1 failed" in captured.err
    jobs = read_manifest(out)
    assert [jobs[n]["state"] for n in ("first", "broken", "last")] == ["done", "failed", "done"]
    assert "node 'boom'" in jobs["broken"]["error"] and jobs["last"]["files"] == ["last/slept.txt"]
    assert (out / "last" / "slept.txt").read_text() == "slept"


def test_every_job_is_validated_before_any_runs(tmp_path: Path, sample_graphs, capsys) -> None:
    jobs_file = tmp_path / "jobs.yaml"
    jobs_file.write_text(f"- {{graph: {sample_graphs['sleeping']}, name: fine}}\n"
                         f"- {{graph: {sample_graphs['sleeping']}, set: {{seconds: -1}}}}\n"
                         f"- {{graph: {sample_graphs['sleeping']}, set: {{secs: 1}}}}\n"
                         f"- {{graph: {tmp_path / 'missing.yaml'}, out: fine}}\n")
    out = tmp_path / "out"
    assert batch(str(jobs_file), "--out", str(out), "--cache-dir", str(tmp_path / "cache")) == 2
    err = capsys.readouterr().err
    assert "batch is invalid (4 problems)" in err
    assert "output folder 'fine' is used by 2 jobs" in err
    assert "job-002:" in err and "job-003:" in err and "'secs'" in err and "job-004:" in err
    assert not out.exists()   # nothing ran, nothing written


def test_ctrl_c_records_the_running_job_interrupted_and_it_runs_again(tmp_path: Path, sample_graphs) -> None:
    jobs_file = tmp_path / "jobs.yaml"
    jobs_file.write_text(f"- {{graph: {sample_graphs['sleeping']}, name: nap, set: {{seconds: 4}}}}\n")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "ltxgraph.cli", *PLUGIN, "batch", str(jobs_file), "--out", str(out),
               "--cache-dir", str(tmp_path / "cache")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))}
    child = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if (out / "batch-manifest.json").is_file() and read_manifest(out).get("nap", {}).get("state") == "running":
            break
        time.sleep(0.1)
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=60) == 130
    entry = read_manifest(out)["nap"]
    assert entry["state"] == "interrupted" and entry["attempts"] == 1
    assert batch(str(jobs_file), "--out", str(out), "--cache-dir", str(tmp_path / "cache")) == 0
    entry = read_manifest(out)["nap"]
    assert entry["state"] == "done" and entry["attempts"] == 2
