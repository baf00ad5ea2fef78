"""Freed large allocations go back to the operating system once the mmap threshold is fixed (glibc)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Allocate and free two 8 MiB tensors: glibc maps the first (above its initial 128 KiB threshold), raises its
# threshold to 8 MiB when it is freed, serves the second from its heap and keeps it after it is freed.
PROBE = """
import sys, torch
from ltxgraph.allocator import return_large_frees_to_os
if sys.argv[1] == "fixed":
    assert return_large_frees_to_os()
def rss():
    return [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS')][0] * 1024
before = rss()
for _ in range(2):
    t = torch.empty(2 * 2**20, dtype=torch.float32).fill_(1.0)
    del t
print(rss() - before)
"""


def kept_after_free(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_fixed_threshold_returns_freed_tensors() -> None:
    assert kept_after_free("default") >= 6 * 2**20      # glibc's dynamic threshold keeps the second tensor
    assert kept_after_free("fixed") < 2 * 2**20


def test_user_setting_wins(monkeypatch) -> None:
    from ltxgraph.allocator import return_large_frees_to_os
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert return_large_frees_to_os() is False
