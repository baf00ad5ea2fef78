"""Resumable runs of a real graph (the tiny distilled two-stage t2v): a run killed with SIGKILL at a sampling step
(in a subprocess, at several steps) or stopped by SIGTERM / Ctrl-C, and run again, writes the same MP4 bytes as
a clean run and reports "resumed at step k of n"; a checkpoint of another parameter or model file is never used,
a damaged one is discarded with a warning, --no-resume starts afresh, checkpoints go once the node is stored and
count against the cache size."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ltxgraph import api, cli
from ltxgraph.cache import DiskStore
from ltxgraph.context import RunSettings
from ltxgraph.errors import RunInterrupted
from ltxgraph.paths import Folders
from ltxgraph_ops.tiny.files import write_tiny_models
from tests.test_vae_ops import models  # noqa: F401 (fixture: the tiny model files)

REPO = Path(__file__).resolve().parents[2]
GRAPH = REPO / "graphs" / "ltx2_t2v_distilled.yaml"
PARAMS = {"width": 128, "height": 128, "length": 9}
STAGE1_STEPS, STAGE2_STEPS = 8, 3

CHILD = """
import os, signal, sys
from pathlib import Path
from ltxgraph import api, cli
from ltxgraph.context import RunSettings
from ltxgraph.paths import Folders

graph, models, root, node, step, signal_name = sys.argv[1:7]

def watch(event):
    if event.kind == "step" and event.node == node and event.unit == "step" and event.step == int(step):
        os.kill(os.getpid(), getattr(signal, signal_name))

runner = api.Runner(cache_dir=Path(root) / "cache", folders=Folders(models=(Path(models),), output=Path(root) / "out"),
                    progress=watch, settings=RunSettings(dtype="float32"))
runner.run(api.load(graph), {"width": 128, "height": 128, "length": 9})
"""


@pytest.fixture(scope="module")
def clean_mp4(models, tmp_path_factory) -> bytes:  # noqa: F811
    return run_graph(models, tmp_path_factory.mktemp("clean"))[1]


def runner(models: Path, root: Path, resume: bool = True, progress=None) -> api.Runner:
    return api.Runner(cache_dir=root / "cache", folders=Folders(models=(models,), output=root / "out"),
                      progress=progress, settings=RunSettings(dtype="float32", resume=resume))


def run_graph(models: Path, root: Path, params: dict | None = None, resume: bool = True):
    result = runner(models, root, resume).run(api.load(GRAPH), {**PARAMS, **(params or {})})
    [mp4] = [p for p in result.report.files if p.endswith(".mp4")]
    return {n.id: n for n in result.report.nodes}, Path(mp4).read_bytes()


def interrupt(models: Path, root: Path, node: str, step: int, params: dict | None = None) -> None:
    """Run in this process and send ourselves SIGINT while ``node`` computes step ``step``."""
    def watch(event):
        if event.kind == "step" and event.node == node and event.unit == "step" and event.step == step:
            os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(RunInterrupted):
        runner(models, root, progress=watch).run(api.load(GRAPH), {**PARAMS, **(params or {})})


def signal_child(models: Path, root: Path, node: str, step: int, signal_name: str) -> subprocess.CompletedProcess:
    """Run the graph in a subprocess that sends itself ``signal_name`` while ``node`` computes step ``step``, on as
    many threads as this process computes with: a resumed run gives the clean run's bits on the same machine set up
    the same way, and some torch operations (reductions, convolutions) round differently on another thread count."""
    import torch
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.run([sys.executable, "-c", CHILD, str(GRAPH), str(models), str(root), node, str(step),
                           signal_name], env=env, capture_output=True, timeout=300)


def checkpoint_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "cache" / "results" / "resume").glob("*/*.ckpt"))


@pytest.mark.parametrize("node, step", [("stage1", 3), ("stage1", 7), ("stage2", 2)])
def test_sigkilled_run_resumes_to_the_clean_result(models, clean_mp4, tmp_path, node, step):
    done = signal_child(models, tmp_path, node, step, "SIGKILL")
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    # killed while computing step `step`: that step is lost, the one before is on disk
    assert checkpoint_files(tmp_path) == [f"call-000-step-{step - 1:06d}.ckpt"]
    nodes, mp4 = run_graph(models, tmp_path)
    total = STAGE1_STEPS if node == "stage1" else STAGE2_STEPS
    assert nodes[node].status == "executed" and nodes[node].resumed_at == [step - 1, total]
    assert mp4 == clean_mp4
    assert checkpoint_files(tmp_path) == []            # removed once the node's result is stored


def test_sigterm_stops_after_the_current_step(models, clean_mp4, tmp_path):
    done = signal_child(models, tmp_path, "stage1", 5, "SIGTERM")
    assert done.returncode == 1 and b"run again to resume there" in done.stderr
    assert checkpoint_files(tmp_path) == ["call-000-step-000005.ckpt"]   # step 5 finished and written
    nodes, mp4 = run_graph(models, tmp_path)
    assert nodes["stage1"].resumed_at == [5, STAGE1_STEPS] and mp4 == clean_mp4


def test_ctrl_c_resume_is_reported_in_progress(models, clean_mp4, tmp_path):
    interrupt(models, tmp_path, "stage1", 4)
    assert checkpoint_files(tmp_path) == ["call-000-step-000004.ckpt"]
    shown: list[str] = []
    result = runner(models, tmp_path, progress=lambda e: shown.extend(
        [e.info["resumed"]] if e.kind == "step" and "resumed" in e.info else [])).run(api.load(GRAPH), PARAMS)
    assert shown == [f"resumed at step 4 of {STAGE1_STEPS}"]
    assert Path([p for p in result.report.files if p.endswith(".mp4")][0]).read_bytes() == clean_mp4


def test_damaged_checkpoint_is_discarded_and_the_node_recomputed(models, clean_mp4, tmp_path):
    interrupt(models, tmp_path, "stage1", 4)
    [path] = (tmp_path / "cache" / "results" / "resume").glob("*/*.ckpt")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])        # truncated
    nodes, mp4 = run_graph(models, tmp_path)
    assert nodes["stage1"].resumed_at is None
    assert any("damaged sampler checkpoint" in w for w in nodes["stage1"].warnings)
    assert mp4 == clean_mp4


def test_checkpoint_of_another_parameter_or_model_file_is_never_used(models, tmp_path):
    interrupt(models, tmp_path, "stage1", 4)
    [kept] = (tmp_path / "cache" / "results" / "resume").iterdir()
    nodes, _ = run_graph(models, tmp_path, {"seed": 43})
    assert nodes["stage1"].resumed_at is None and nodes["stage1"].key != kept.name
    other_models = tmp_path / "other_models"
    write_tiny_models(other_models, seed=1)
    nodes, _ = run_graph(other_models, tmp_path)
    assert nodes["stage1"].resumed_at is None and nodes["stage1"].key != kept.name
    assert kept.is_dir()                               # another node's checkpoints are left alone


def test_no_resume_starts_afresh(models, clean_mp4, tmp_path):
    interrupt(models, tmp_path, "stage1", 4)
    nodes, mp4 = run_graph(models, tmp_path, resume=False)
    assert nodes["stage1"].resumed_at is None and mp4 == clean_mp4
    assert checkpoint_files(tmp_path) == []


def test_cli_no_resume_starts_afresh(models, tmp_path):
    interrupt(models, tmp_path, "stage1", 4)
    report = tmp_path / "report.json"
    args = ["run", str(GRAPH), *[f"--set={k}={v}" for k, v in PARAMS.items()], "--models-dir", str(models),
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--report", str(report),
            "--dtype", "float32", "--quiet", "--no-resume"]
    assert cli.main(args) == 0
    nodes = {n["id"]: n for n in json.loads(report.read_text())["nodes"]}
    assert nodes["stage1"]["status"] == "executed" and nodes["stage1"]["resumed_at"] is None
    assert checkpoint_files(tmp_path) == []


def test_checkpoints_count_against_the_cache_size(models, tmp_path):
    interrupt(models, tmp_path, "stage1", 4)
    store = DiskStore(tmp_path / "cache" / "results", {})
    [path] = (tmp_path / "cache" / "results" / "resume").glob("*/*.ckpt")
    info = store.info()
    with_checkpoint = info["bytes"]
    assert info["by_op"]["sampler checkpoints"]["bytes"] == path.stat().st_size
    store.trim(with_checkpoint - path.stat().st_size)    # least recently used first: the checkpoint is newest
    assert path.exists()
    store.trim(0)
    assert not path.exists()
    assert checkpoint_files(tmp_path) == []
