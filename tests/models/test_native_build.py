"""ltxgraph_ops.native: kernels built once per machine, and a failed build remembered so that later processes do
not compile it again."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from ltxgraph_ops import native

pytestmark = pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="needs a C compiler")

GOOD = "int answer(void) { return 42; }\n"
BAD = "int answer(void) { return 42 }\n"           # a missing semicolon: the compiler refuses it


@pytest.fixture
def kernels(tmp_path, monkeypatch):
    """An empty kernel folder of this test's own."""
    monkeypatch.setenv("LTXGRAPH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("CC", raising=False)
    return tmp_path / "kernels"


def compiler() -> str:
    return shutil.which("cc") or shutil.which("gcc")


def test_a_kernel_is_built_once_and_then_loaded(kernels, monkeypatch):
    assert native.load_library("probe", GOOD).answer() == 42
    built = list(kernels.glob("probe-*.so"))
    assert len(built) == 1

    def no_build(*args):
        raise AssertionError("built again")

    monkeypatch.setattr(native, "_build", no_build)
    assert native.load_library("probe", GOOD).answer() == 42


def test_a_failed_build_is_recorded_and_not_tried_again(kernels, monkeypatch):
    assert native.load_library("probe", BAD) is None
    library = native.library_path("probe", BAD, native.BASE_FLAGS, compiler())
    marker = native.failed_build_marker(library)
    assert marker.exists() and not library.exists()
    assert "expected" in marker.read_text()                     # what the compiler said
    assert not list(kernels.glob("*.tmp"))

    calls = []
    monkeypatch.setattr(native, "_build", lambda *args: calls.append(args))
    assert native.load_library("probe", BAD) is None
    assert calls == []
    # another source, or other flags, is another build
    assert native.load_library("probe", GOOD) is None and len(calls) == 1


def test_deleting_the_record_retries_the_build(kernels):
    assert native.load_library("probe", BAD) is None
    marker = native.failed_build_marker(native.library_path("probe", BAD, native.BASE_FLAGS, compiler()))
    marker.unlink()
    assert native.load_library("probe", BAD) is None
    assert marker.exists()                                      # tried, and refused, again


def test_a_build_that_timed_out_is_not_recorded(kernels, monkeypatch):
    def timed_out(compiler, source, flags, library):
        raise subprocess.TimeoutExpired("cc", 120)

    monkeypatch.setattr(native, "_build", timed_out)
    assert native.load_library("probe", GOOD) is None
    assert not kernels.exists() or not list(kernels.glob("*.failed"))
    monkeypatch.undo()
    monkeypatch.setenv("LTXGRAPH_CACHE_DIR", str(kernels.parent))
    assert native.load_library("probe", GOOD).answer() == 42   # the next process builds it
