"""Give freed tensor memory back to the operating system, except while a step's activations churn.

glibc's malloc serves a request below its mmap threshold from its heap, and after each large block is freed it
raises that threshold (up to 32 MiB). Loading a checkpoint tensor by tensor, or dequantising weights layer by
layer, then leaves gigabytes of freed heap in the process: measured on a 12-block synthetic 19B checkpoint (4.6
GiB of weights), 6.5 GiB resident after loading and a 7.3 GiB peak over one step, against 4.9 and 5.3 GiB with
the threshold fixed at 1 MiB. With a fixed threshold every request of 1 MiB or more is its own mapping,
returned when freed. The CLI sets it; Python API users may call :func:`return_large_frees_to_os` once.

The other side of that setting: a transformer forward allocates and frees the same activation sizes block
after block, and each fresh mapping is zeroed and faulted in 4 KiB at a time (0.8 M minor faults per stage-2
block of the 19B model, 12 % of its CPU time). :func:`kept_heap` serves every request from the heap and keeps
what is freed for the next block while it is entered, then returns the free memory to the system
(``malloc_trim``) and restores the setting above.

:func:`use_huge_pages` removes most of those faults without keeping anything: torch then aligns every CPU tensor
of 2 MiB or more to 2 MiB and advises the kernel to back it with transparent huge pages, so a fresh activation
is faulted in 2 MiB at a time (a stage-2 block: 0.8 M -> 55 k minor faults, 13 % less CPU, the same peak) and
freed tensors still go back to the system at once. The CLI calls it first thing.
"""
from __future__ import annotations

import ctypes
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

M_TRIM_THRESHOLD = -1          # glibc's mallopt parameter numbers
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
DEFAULT_THRESHOLD = 1 << 20    # bytes
GLIBC_TRIM_THRESHOLD = 128 * 1024     # glibc's defaults, restored when the last kept_heap exits
GLIBC_MMAP_MAX = 65536
KEPT_TRIM_THRESHOLD = 2**31 - 1
TORCH_HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"   # torch's switch, read once, at the process's first CPU allocation
KERNEL_HUGE_PAGES = Path("/sys/kernel/mm/transparent_hugepage/enabled")


class _Glibc:
    """mallopt / malloc_trim of the process's C library, or None where it is not glibc."""

    def __init__(self) -> None:
        try:
            library = ctypes.CDLL(None)
            self.mallopt, self.malloc_trim = library.mallopt, library.malloc_trim
        except (OSError, AttributeError):
            self.mallopt = self.malloc_trim = None
            return
        self.mallopt.argtypes, self.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        self.malloc_trim.argtypes, self.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int


_GLIBC = _Glibc()
_LOCK = threading.Lock()
_STATE = {"threshold": None, "kept": 0}     # the mmap threshold this module set; kept_heap's nesting depth


def return_large_frees_to_os(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process. Returns False, changing nothing,
    when the C library is not glibc or the user set ``MALLOC_MMAP_THRESHOLD_`` themselves."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or _GLIBC.mallopt is None:
        return False
    with _LOCK:
        if _GLIBC.mallopt(M_MMAP_THRESHOLD, threshold) != 1:
            return False
        _STATE["threshold"] = threshold
        return True


def transparent_huge_pages(setting: Path = KERNEL_HUGE_PAGES) -> str | None:
    """The kernel's transparent huge page mode: "always", "madvise" or "never"; None without the setting (not
    Linux, or a kernel without them)."""
    try:
        chosen = re.search(r"\[(\w+)\]", setting.read_text())
    except OSError:
        return None
    return chosen.group(1) if chosen else None


def use_huge_pages() -> bool:
    """Have torch place its CPU tensors of 2 MiB or more on transparent huge pages (aligned to 2 MiB and advised
    with ``MADV_HUGEPAGE``; torch's own ``THP_MEM_ALLOC_ENABLE``). Effective only before the process's first CPU
    tensor is allocated, since torch reads the switch then: call it first thing (the CLI does). Returns False,
    changing nothing, when the user set ``THP_MEM_ALLOC_ENABLE`` themselves or the kernel gives advised memory no
    huge pages (mode "never", or none)."""
    if TORCH_HUGE_PAGES in os.environ or transparent_huge_pages() not in ("always", "madvise"):
        return False
    os.environ[TORCH_HUGE_PAGES] = "1"
    return True


def large_tensors_advised() -> bool | None:
    """Whether this process's CPU tensors of 2 MiB or more are advised for huge pages (:func:`use_huge_pages`
    took effect): the kernel's ``hg`` flag on the mapping that holds a fresh 4 MiB tensor. None where the
    process's mappings cannot be read (not Linux)."""
    import torch
    probe = torch.empty(4 << 20, dtype=torch.uint8)
    address = probe.data_ptr()
    holds = False
    try:
        with open("/proc/self/smaps") as smaps:
            for line in smaps:
                fields = line.split()
                if fields and "-" in fields[0] and ":" not in fields[0]:
                    start, end = (int(bound, 16) for bound in fields[0].split("-"))
                    holds = start <= address < end
                elif holds and fields[0] == "VmFlags:":
                    return "hg" in fields[1:]
    except OSError:
        return None
    return False


@contextmanager
def kept_heap(mmap_threshold: int | None = None) -> Iterator[bool]:
    """While entered (by any thread; nesting allowed), glibc serves every request from its heap (no fresh
    mappings; with ``mmap_threshold``, requests from that many bytes are still mapped) and trims nothing, so freed
    activations are reused without page faults. On the last exit the
    free memory goes back to the system and the previous setting returns (the threshold of
    :func:`return_large_frees_to_os` if it was set, else the threshold as it stood, no longer adjusted by glibc).
    After the exit glibc may still serve later large requests from chunks freed inside it and keep them when freed
    (no fresh mapping), so a caller that must return memory afterwards should not enter it. Yields False, changing
    nothing, off glibc or when the user set ``MALLOC_MMAP_MAX_`` / ``MALLOC_TRIM_THRESHOLD_`` themselves."""
    usable = _GLIBC.mallopt is not None and not {"MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ)
    if not usable:
        yield False
        return
    with _LOCK:
        _STATE["kept"] += 1
        if _STATE["kept"] == 1:
            _GLIBC.mallopt(M_TRIM_THRESHOLD, KEPT_TRIM_THRESHOLD)
            if mmap_threshold is None:
                _GLIBC.mallopt(M_MMAP_MAX, 0)
            else:
                _GLIBC.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
    try:
        yield True
    finally:
        with _LOCK:
            _STATE["kept"] -= 1
            if _STATE["kept"] == 0:
                _GLIBC.mallopt(M_MMAP_MAX, GLIBC_MMAP_MAX)
                _GLIBC.mallopt(M_TRIM_THRESHOLD, GLIBC_TRIM_THRESHOLD)
                if _STATE["threshold"] is not None:
                    _GLIBC.mallopt(M_MMAP_THRESHOLD, _STATE["threshold"])
                _GLIBC.malloc_trim(0)
