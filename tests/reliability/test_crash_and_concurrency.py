"""Runs killed with SIGKILL at random points leave nothing that a later run would use; two processes sharing a
cache both finish correctly and leave it consistent."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from ltxgraph import Registry
from ltxgraph.cache import DiskStore

REPO = Path(__file__).resolve().parents[2]
GRAPH = """\
ltxgraph: 1
params:
  seed: {type: INT, default: 1}
nodes:
  img: {op: MakeTensor, in: {seed: $seed, width: 512}}
  a: {op: ScaleImage, in: {image: "@img.IMAGE", factor: 0.5}}
  s: {op: Sleep, in: {value: $seed, seconds: 1.5}}
  b: {op: ScaleImage, in: {image: "@a.IMAGE", factor: 2.0}}
  c: {op: BlendImages, in: {a: "@b.IMAGE", b: "@img.IMAGE"}}
outputs:
  image: "@c.IMAGE"
  slept: "@s.VALUE"
"""


def start(workdir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LTXGRAPH_CACHE_DIR": str(workdir / "cache")}
    return subprocess.Popen([sys.executable, "-m", "ltxgraph.cli", "--plugin", "tests.engine.sample_ops", "run",
                             "g.yaml", "--quiet", *args], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def check_store(workdir: Path) -> int:
    """Every entry in the store reads back verified; returns the count."""
    store = DiskStore(workdir / "cache" / "results", Registry().storable)
    entries = list(store.entries())
    for entry in entries:
        assert store.get(entry.name) is not None, f"entry {entry.name} is damaged"
    return len(entries)


def test_sigkill_at_random_points_never_leaves_a_usable_bad_entry(tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text(GRAPH)
    rng = random.Random(1234)
    kills = 0
    for attempt in range(6):
        proc = start(tmp_path, "--set", f"seed={attempt}", "--report", "r.json")
        time.sleep(rng.uniform(0.5, 3.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
        check_store(tmp_path)
        report = tmp_path / "r.json"
        if report.exists():
            json.loads(report.read_text())  # a report is whole or absent, never torn
    assert kills >= 3
    finished = start(tmp_path, "--report", "final.json", "--json")       # --quiet prints nothing; --json does
    out, err = finished.communicate(timeout=120)
    assert finished.returncode == 0, err
    assert json.loads(out)["outputs"] == {"image": "tensor [1, 8, 512, 3] float32", "slept": "1"}
    assert check_store(tmp_path) >= 5


def test_two_processes_sharing_a_cache_both_finish_correctly(tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text(GRAPH)
    procs = [start(tmp_path, "--report", f"r{i}.json", "--out", f"out{i}") for i in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1] for r in results]
    assert results[0][0] == results[1][0]
    count = check_store(tmp_path)
    assert count == 5  # one entry per node, written once though both processes computed them
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 8, 512, 3, generator=generator)
    store = DiskStore(tmp_path / "cache" / "results", Registry().storable)
    blended = [store.get(e.name)[0] for e in store.entries()
               if isinstance(store.get(e.name)[0], torch.Tensor) and store.get(e.name)[0].shape == image.shape]
    assert any(torch.allclose(t, (image * 0.5 * 2.0 + image) / 2) for t in blended)
    assert not list((tmp_path / "cache" / "results").glob("??/.*"))
