"""Parity with ComfyUI itself: ltxgraph's outputs of the corpus workflows against the golden outputs pinned
ComfyUI stored (tools/comfyui_golden.py writes them to tests/data/comfyui_golden/). One check per fixture key,
named ``comfyui_<workflow>_<key>``; none while no fixture is stored. Differences above 1e-4 are ComfyUI's
departures from the reference, listed with their measured sizes in the README section "Same as ComfyUI"."""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from safetensors import safe_open

from tools.comfyui_golden import FIXTURES, compare_with_fixture


@functools.lru_cache(maxsize=None)
def _differences(fixture: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="comfyui-golden-") as scratch:
        return compare_with_fixture(fixture, Path(scratch))


def _checks() -> dict:
    checks = {}
    for fixture in sorted(FIXTURES.glob("*.safetensors")) if FIXTURES.exists() else []:
        with safe_open(str(fixture), "pt") as f:
            keys = list(f.keys())
        for key in keys:
            checks[f"comfyui_{fixture.stem}_{key}"] = functools.partial(lambda p, k: _differences(p)[k], fixture, key)
    return checks


CHECKS = _checks()
