"""What the batch tests share: the tiny distilled text-to-video graph at its smallest size, a graph of the
engine's sample ops that fails and one that sleeps, and ``ltxgraph run`` of one job alone."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ltxgraph import cli

REPO = Path(__file__).resolve().parents[2]
T2V = REPO / "graphs" / "ltx2_t2v_distilled.yaml"
SMALL = ("width=128", "height=128", "length=9")
PLUGIN = ["--plugin", "tests.engine.sample_ops"]
FAILING_GRAPH = """ltxgraph: 1
nodes:
  one: {op: Const, in: {value: 1}}
  boom: {op: Fail, in: {value: "@one.VALUE"}}
outputs: {value: "@boom.VALUE"}
"""
SLEEPING_GRAPH = """ltxgraph: 1
params:
  seconds: {type: FLOAT, default: 0.1}
nodes:
  nap: {op: Sleep, in: {value: 7, seconds: $seconds}}
  note: {op: WriteText, in: {text: "slept", filename_prefix: slept}}
outputs: {value: "@nap.VALUE"}
"""


@pytest.fixture
def sample_graphs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "failing.yaml").write_text(FAILING_GRAPH)
    (tmp_path / "sleeping.yaml").write_text(SLEEPING_GRAPH)
    return {"failing": tmp_path / "failing.yaml", "sleeping": tmp_path / "sleeping.yaml"}


def run_alone(graph: Path, values: tuple[str, ...], models: Path, out: Path, threads: int | None = None) -> bytes:
    """The MP4 ``ltxgraph run`` writes for one job (no cache: computed from scratch); ``threads``: torch's thread
    count for the run (a Ray actor of one CPU computes on one thread, and float sums depend on the thread count)."""
    sets = [arg for value in values for arg in ("--set", value)]
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        assert cli.main(["run", str(graph), *sets, "--models-dir", str(models), "--out", str(out), "--no-cache",
                         "--quiet"]) == 0
    finally:
        torch.set_num_threads(before)
    [video] = out.rglob("*.mp4")
    return video.read_bytes()


def read_manifest(out: Path) -> dict:
    return json.loads((out / "batch-manifest.json").read_text())["jobs"]


def executed_ops(out: Path, op: str) -> dict[str, int]:
    """Per job, how many nodes of ``op`` its report says were executed."""
    counts = {}
    for report in sorted((out / "reports").glob("*.json")):
        nodes = json.loads(report.read_text())["nodes"]
        counts[report.stem] = sum(n["op"] == op and n["status"] == "executed" for n in nodes)
    return counts
