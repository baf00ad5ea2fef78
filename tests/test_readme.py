"""The README's first commands are the ones that work: its test command is exactly what .ci/run runs, and its
main command names a shipped graph that validates with the parameters it sets (on the embedded models)."""
from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def first_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## First commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_the_test_command_is_what_ci_runs() -> None:
    script = (REPO / ".ci" / "run").read_text().splitlines()
    ci = [line for line in script if line and not line.startswith(("#", "set ", "cd ", "export "))]
    assert first_commands()[1] == ci[-1]


def test_the_main_command_validates(tmp_path: Path) -> None:
    install, run = first_commands()[0].split(" && ")
    assert install == "pip install torch==2.13.0 -e ."
    args = shlex.split(run)
    assert args[:2] == ["ltxgraph", "run"] and (REPO / args[2]).is_file()
    env = {**os.environ, "LTXGRAPH_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "ltxgraph.cli", "validate", *args[2:]], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def python_api_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)\n```", section, flags=re.S)[0]


def test_the_python_api_example_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "graphs").symlink_to(REPO / "graphs")        # run from a folder that has the shipped graphs
    env = {**os.environ, "LTXGRAPH_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", python_api_example()], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:8] == [f"stage1: sampling step {i}/8" for i in range(1, 9)]
    assert lines[11] == f"[{str(tmp_path / 'output' / 'ltx2' / 't2v_distilled_00001_.mp4')!r}]"
    assert lines[12] == "torch.Size([17, 128, 256, 3])"
    rerun = ast.literal_eval(lines[13])
    assert "stage1" in rerun and "prompt" not in rerun            # the prompt's encoding came from the cache
