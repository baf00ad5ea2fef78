"""Parity with ComfyUI itself: ltxgraph's outputs of the corpus workflows against the golden outputs pinned
ComfyUI stored (tools/comfyui_golden.py writes them to tests/data/comfyui_golden/). Two checks per fixture key:
``comfyui_<workflow>_<key>`` with ComfyUI's departures from the reference emulated (tools/comfyui_rules.py; float
rounding is all that should remain) and ``..._without_emulation``, what a user sees (the departures' sizes, listed
in the README section "Same as ComfyUI"); none while no fixture is stored."""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from safetensors import safe_open

from tools.comfyui_golden import FIXTURES, compare_with_fixture, golden_world


@functools.lru_cache(maxsize=None)
def _world() -> dict[str, Path]:
    """The golden models, written once per process into a temporary folder removed at exit."""
    folder = tempfile.mkdtemp(prefix="comfyui-golden-")
    atexit.register(shutil.rmtree, folder, True)
    return golden_world(Path(folder))


@functools.lru_cache(maxsize=None)
def _differences(fixture: Path, emulate_comfyui: bool) -> dict[str, float]:
    return compare_with_fixture(fixture, _world(), emulate_comfyui)


def _checks() -> dict:
    checks = {}
    for fixture in sorted(FIXTURES.glob("*.safetensors")) if FIXTURES.exists() else []:
        with safe_open(str(fixture), "pt") as f:
            keys = list(f.keys())
        for key in keys:
            checks[f"comfyui_{fixture.stem}_{key}"] = functools.partial(lambda p, k: _differences(p, True)[k],
                                                                        fixture, key)
            checks[f"comfyui_{fixture.stem}_{key}_without_emulation"] = functools.partial(
                lambda p, k: _differences(p, False)[k], fixture, key)
    return checks


CHECKS = _checks()
