"""Small C kernels compiled once per machine with the system's C compiler, and run over rows on several threads.

A kernel's source is built with ``cc -O3 -march=native`` (plus its own flags) into ``<cache>/kernels/`` under a
name made from the source, the flags, the compiler and the CPU, in about a second, once per machine; later
processes load the file. Without a C compiler, or when the build fails, :func:`load_library` returns None and
the caller keeps its torch path. A failed build leaves ``<name>-<digest>.failed`` (the compiler's message) beside
where the library would be, so later processes do not compile it again (e.g. ``-fopenmp`` where the compiler has
no OpenMP runtime: a second or so per kernel, in every process); deleting that file makes the next process retry.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

BASE_FLAGS = ("-O3", "-march=native", "-shared", "-fPIC")
# OpenMP through the runtime torch has already loaded (libgomp.so.1: the dynamic linker gives the kernel the
# library of that name already in the process), so a kernel's parallel loops run on torch's own threads: a
# second pool would wake threads of its own while torch's spin on the same cores
OPENMP_FLAGS = (*BASE_FLAGS, "-fopenmp")
PARALLEL_ELEMENTS = 1 << 16     # default: split a call across threads only above this many elements


def kernel_folder() -> Path:
    """``$LTXGRAPH_CACHE_DIR/kernels`` (or ``~/.cache/ltxgraph/kernels``), where compiled kernels are kept."""
    from ltxgraph.cache import default_cache_dir
    return default_cache_dir() / "kernels"


def machine_signature() -> str:
    """What ``-march=native`` depends on: the CPU model and its feature flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    wanted = [line for line in lines if line.startswith(("model name", "flags", "Features", "CPU part"))]
    return "\n".join(dict.fromkeys(wanted))


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them (empty where it cannot be read)."""
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        return frozenset()
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def _build(compiler: str, source: str, flags: tuple[str, ...], library: Path) -> None:
    """Compile ``source`` into ``library``, written under a temporary name and renamed (safe when two processes
    build at once)."""
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent) as work:
        written, built = Path(work) / "kernel.c", Path(work) / library.name
        written.write_text(source)
        subprocess.run([compiler, *flags, "-o", str(built), str(written), "-lm"], check=True,
                       capture_output=True, timeout=120)
        os.replace(built, library)


def library_path(name: str, source: str, flags: tuple[str, ...], compiler: str) -> Path:
    """Where the build of ``source`` with ``flags`` by ``compiler`` on this machine is kept."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    digest = hashlib.sha256("\0".join([source, " ".join(flags), version, machine_signature(),
                                       platform.machine()]).encode()).hexdigest()[:16]
    return kernel_folder() / f"{name}-{digest}.so"


def failed_build_marker(library: Path) -> Path:
    """The file that records a failed build of ``library`` (see the module's docstring)."""
    return library.with_suffix(".failed")


def load_library(name: str, source: str, flags: tuple[str, ...] = BASE_FLAGS) -> ctypes.CDLL | None:
    """The compiled ``source`` (built on first use, then read from :func:`kernel_folder`), or None where it
    cannot be had: no C compiler (``$CC``, ``cc`` or ``gcc``), or a failed build (this one, or an earlier one on
    record: :func:`failed_build_marker`)."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    try:
        library = library_path(name, source, flags, compiler)
        if not library.exists():
            if failed_build_marker(library).exists():
                return None
            try:
                _build(compiler, source, flags, library)
            except subprocess.CalledProcessError as error:     # the compiler refused it (a timeout may pass)
                _record_failure(library, error)
                return None
        return ctypes.CDLL(str(library))
    except (OSError, subprocess.SubprocessError):
        return None


def _record_failure(library: Path, error: subprocess.CalledProcessError) -> None:
    """Write :func:`failed_build_marker` for ``library`` with what the compiler said (under a temporary name,
    then renamed); a marker that cannot be written is left out (the next process tries again)."""
    said = (error.stderr or b"").decode(errors="replace")          # _build captures the compiler's bytes
    try:
        with tempfile.NamedTemporaryFile("w", dir=library.parent, delete=False, suffix=".tmp") as file:
            file.write(f"{error}\n{said[-4000:]}")
        os.replace(file.name, failed_build_marker(library))
    except OSError:
        pass


class RowSplitter:
    """Runs a C function over rows ``[first, last)`` in near-equal parts on threads of its own (a C function
    called through ctypes runs without Python's lock, so the parts overlap)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size, self._pool_process = 0, 0

    def run(self, function: Callable[..., None], rows: int, row_elements: int, leading: tuple,
            trailing: tuple = (), threads: int | None = None, parallel_elements: int = PARALLEL_ELEMENTS) -> None:
        """``function(*leading, first, last, *trailing)`` over ``rows`` rows of ``row_elements`` elements, on
        ``threads`` threads (default torch's intra-op count) when there are at least ``parallel_elements``."""
        if threads is None:
            import torch
            threads = torch.get_num_threads()
        parts = max(1, min(threads, rows, rows * row_elements // parallel_elements))
        if parts == 1:
            function(*leading, 0, rows, *trailing)
            return
        bounds = [rows * part // parts for part in range(parts + 1)]
        with self._lock:
            if self._pool is None or self._pool_size < parts or self._pool_process != os.getpid():
                # a forked child inherits the pool object but not its threads: it gets a pool of its own
                self._pool = ThreadPoolExecutor(parts, thread_name_prefix=self._name)
                self._pool_size, self._pool_process = parts, os.getpid()
            jobs = [self._pool.submit(function, *leading, first, last, *trailing)
                    for first, last in zip(bounds[1:-1], bounds[2:])]
        function(*leading, bounds[0], bounds[1], *trailing)      # the first part on this thread
        for job in jobs:
            job.result()
