"""``ltxgraph serve`` as a user starts it: the command listens (on 127.0.0.1 unless told otherwise), answers,
and stops cleanly on SIGTERM with exit code 0."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from ..conftest import REPO
from .conftest import http


def test_serve_command_listens_on_loopback_and_stops_on_sigterm(tmp_path: Path, tiny_models: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LTXGRAPH_CACHE_DIR": str(tmp_path / "cache"),
           "LTXGRAPH_DTYPE": "float32"}
    command = [sys.executable, "-m", "ltxgraph.cli", "serve", "--port", "0", "--models-dir", str(tiny_models),
               "--out", str(tmp_path / "out"), "--input-dir", str(tmp_path / "in")]
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+) \(0 queued", line)
        assert found, line
        status, queue = http("GET", f"{found.group(1)}/queue")
        assert status == 200 and queue == {"queue_running": [], "queue_pending": []}
        assert (tmp_path / "cache" / "server" / "queue.sqlite").is_file()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=120) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
