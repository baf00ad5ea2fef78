"""``ltxgraph batch --ray`` on a local Ray cluster started here (2 CPUs, 2 actors): a failed job reported while
the others go on, an actor killed mid-job (ray.kill) whose job is retried on another actor, the same MP4 bytes as
``ltxgraph run`` of each job alone, outputs sent back as bytes, and a batch started again skipping what is done."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")   # the test cluster listens on loopback only
ray = pytest.importorskip("ray")

from ltxgraph import cli  # noqa: E402

from .conftest import PLUGIN, REPO, SMALL, T2V, executed_ops, read_manifest, run_alone  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)   # tests.engine.sample_ops
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


def kill_actor_of(job: str, out: Path, after: float) -> threading.Thread:
    """A thread that waits until ``job`` runs (the manifest names its actor), then ray.kill()s that actor."""
    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                entry = json.loads((out / "batch-manifest.json").read_text())["jobs"].get(job, {})
            except (OSError, ValueError):
                entry = {}
            if entry.get("state") == "running" and entry.get("worker", {}).get("ray_actor"):
                time.sleep(after)
                ray.kill(ray.get_actor(entry["worker"]["ray_actor"]))
                return
            time.sleep(0.05)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_ray_batch_survives_a_failed_job_and_a_killed_actor(cluster, tiny_models: Path, tmp_path: Path,
                                                            sample_graphs, capsys) -> None:
    jobs_file = tmp_path / "jobs.yaml"
    small = {value.split("=")[0]: int(value.split("=")[1]) for value in SMALL}
    jobs_file.write_text(json.dumps([
        {"graph": str(T2V), "name": "seed-1", "set": {**small, "seed": 1}},
        {"graph": str(T2V), "name": "seed-2", "set": {**small, "seed": 2}},
        {"graph": str(sample_graphs["failing"]), "name": "broken"},
        {"graph": str(sample_graphs["sleeping"]), "name": "slow", "set": {"seconds": 3.0}},
    ]))
    out = tmp_path / "out"
    args = [*PLUGIN, "batch", str(jobs_file), "--out", str(out), "--models-dir", str(tiny_models),
            "--cache-dir", str(tmp_path / "cache"), "--ray", "--actors", "2"]
    killer = kill_actor_of("slow", out, after=1.0)
    assert cli.main(args) == 1
    killer.join(timeout=5)
    printed = capsys.readouterr().out
    assert "slow: actor-" in printed and "died" in printed and "retrying on another actor" in printed
    jobs = read_manifest(out)
    assert {n: e["state"] for n, e in jobs.items()} == {"seed-1": "done", "seed-2": "done", "broken": "failed",
                                                        "slow": "done"}
    assert jobs["slow"]["attempts"] == 2 and "boom 1" in jobs["broken"]["error"]
    assert jobs["slow"]["files"] == ["slow/slept.txt"]
    assert executed_ops(out, "CLIPTextEncode") == {"broken": 0, "seed-1": 1, "seed-2": 0, "slow": 0}
    assert {jobs[n]["worker"]["actor"] for n in jobs} <= {"actor-1", "actor-2", "actor-3"}
    for seed in (1, 2):
        [video] = jobs[f"seed-{seed}"]["files"]
        assert (out / video).read_bytes() == run_alone(T2V, (*SMALL, f"seed={seed}"), tiny_models,
                                                       tmp_path / f"alone-{seed}", threads=1)

    stamps = {n: (out / jobs[n]["files"][0]).stat().st_mtime_ns for n in ("seed-1", "seed-2", "slow")}
    assert cli.main(args) == 1                                   # started again: only the failed job runs
    printed = capsys.readouterr().out
    assert printed.count("skipped: done before") == 3 and "broken failed" in printed
    again = read_manifest(out)
    assert again["broken"]["attempts"] == 2 and again["slow"]["attempts"] == 2
    assert all((out / jobs[n]["files"][0]).stat().st_mtime_ns == stamps[n] for n in stamps)


def test_ray_actors_can_send_outputs_back_as_bytes(cluster, tiny_models: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    sets = [arg for value in SMALL for arg in ("--set", value)]
    assert cli.main(["batch", str(T2V), "--sweep", "seed=5..6", *sets, "--out", str(out), "--models-dir",
                     str(tiny_models), "--cache-dir", str(tmp_path / "cache"), "--ray", "--return-outputs"]) == 0
    jobs = read_manifest(out)
    [video] = jobs["job-002"]["files"]
    assert video == "job-002/ltx2/t2v_distilled_00001_.mp4"
    assert (out / video).read_bytes() == run_alone(T2V, (*SMALL, "seed=6"), tiny_models, tmp_path / "alone",
                                                   threads=1)
    assert executed_ops(out, "CLIPTextEncode") == {"job-001": 1, "job-002": 0}
    # the actors set up their memory as the CLI does (this test process never called use_huge_pages)
    from ltxgraph.allocator import transparent_huge_pages
    advised = (transparent_huge_pages() in ("always", "madvise")
               and os.environ.get("THP_MEM_ALLOC_ENABLE", "1") != "0")
    assert {entry["worker"]["huge_pages"] for entry in jobs.values()} == {advised}


def test_the_first_job_runs_alone_only_while_later_jobs_need_its_uncached_results() -> None:
    from ltxgraph.batch.execute import PreparedJob
    from ltxgraph.batch.jobs import Job
    from ltxgraph.batch.ray_pool import _first_runs_alone

    def job(*keys: str) -> PreparedJob:
        return PreparedJob(Job("j", Path("g.yaml")), None, {}, frozenset(keys))   # type: ignore[arg-type]

    never = lambda key: False  # noqa: E731
    assert _first_runs_alone([job("text", "a"), job("text", "b")], never)
    assert not _first_runs_alone([job("text", "a"), job("text", "b")], lambda key: key == "text")
    assert not _first_runs_alone([job("a"), job("b")], never)
    assert not _first_runs_alone([job("text")], never)


def test_actors_that_do_not_fit_the_cluster_are_refused(cluster, tmp_path: Path, sample_graphs, capsys) -> None:
    out = tmp_path / "out"
    assert cli.main([*PLUGIN, "batch", str(sample_graphs["sleeping"]), "--out", str(out), "--cache-dir",
                     str(tmp_path / "cache"), "--ray", "--memory-budget", "100T"]) == 2
    assert "no room for one actor" in capsys.readouterr().err
