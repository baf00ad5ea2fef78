"""One streamed block's tensors read from its file into one reused, page-aligned slab, as few reads as possible.

A streamed model reads every block once per forward, the whole file per step. Where the file stays in the page
cache that is a memory copy; where it does not (a release checkpoint larger than the memory beside it), a plain
read makes the kernel allocate cache pages, copy out of them and reclaim them again, on the same two cores the
matmuls need: measured here, a bf16 GEMM loop lost 17-28 % of its rate beside such reads of 369 MiB every 0.8 s,
6-9 % beside the same reads from a cached file and 9 % beside direct ones (``O_DIRECT``: the disk writes into our
buffer, the page cache is left alone).

So ``mode="direct"`` reads the disk directly, for blocks that would not stay cached anyway
(:func:`read_mode`), and ``"buffered"`` reads through the page cache, for blocks that fit in memory beside
everything else, so the next forward finds them there. Direct reads need file offsets, lengths and buffer
addresses aligned to the device's block: the slab is aligned and every read range widened to :data:`ALIGNMENT`.
Where the platform or the file system refuses direct reads, they fall back to buffered ones.
"""
from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import torch

from ltxgraph_ops.weights.safetensors_file import SafetensorsFile, TensorEntry

ALIGNMENT = 4096          # file offset, length and address granularity of direct reads (a page; >= any sector)
CHUNK = 256 << 20         # bytes per read call (direct: 0.22 s per 19B block here at 256 MiB, 0.33 s at 64, 0.65 s
                          # at 16: the device works on a long request in parallel)
MERGE_GAP = 1 << 20       # tensors this close in the file are read in one range (the bytes between are read too)
READ_MODES = ("direct", "buffered")


@dataclass
class ReadCounts:
    """Bytes a reader got by direct reads and by buffered ones."""

    direct: int = 0
    buffered: int = 0


@dataclass(frozen=True)
class ReadRange:
    """Bytes ``[start, stop)`` of the file (aligned) that hold ``entries``, at ``slab_offset`` in the slab."""

    start: int
    stop: int
    needed: int                     # bytes from ``start`` the entries need (the file may end before ``stop``)
    slab_offset: int
    entries: tuple[tuple[str, TensorEntry], ...] = field(default=())


def plan_ranges(entries: dict[str, TensorEntry], data_offset: int, gap: int = MERGE_GAP) -> list[ReadRange]:
    """The aligned file ranges that cover ``entries`` (key -> entry, offsets relative to ``data_offset``):
    entries less than ``gap`` bytes apart share a range; ranges lie one after another in the slab, each at an
    aligned offset."""
    ordered = sorted(entries.items(), key=lambda item: item[1].begin)
    groups: list[list[tuple[str, TensorEntry]]] = []
    for key, entry in ordered:
        if groups and data_offset + entry.begin - _align_up(data_offset + groups[-1][-1][1].end) <= gap:
            groups[-1].append((key, entry))
        else:
            groups.append([(key, entry)])
    ranges, slab_offset = [], 0
    for group in groups:
        start = _align_down(data_offset + group[0][1].begin)
        end = data_offset + max(entry.end for _, entry in group)
        stop = _align_up(end)
        ranges.append(ReadRange(start, stop, end - start, slab_offset, tuple(group)))
        slab_offset += stop - start
    return ranges


class BlockReader:
    """Tensors of ``file`` read as views of one reused slab (see the module's docstring), ``mode`` "direct" or
    "buffered". The views of one :meth:`read` are valid until the next one."""

    def __init__(self, file: SafetensorsFile, mode: str = "direct") -> None:
        if mode not in READ_MODES:
            raise ValueError(f"block reads must be one of {READ_MODES}, not {mode!r}")
        self.file, self.mode = file, mode
        self.counts = ReadCounts()
        self._slab = torch.empty(0, dtype=torch.uint8)
        self._plans: dict[tuple[str, ...], list[ReadRange]] = {}
        self._direct_refused = not hasattr(os, "O_DIRECT")

    @property
    def nbytes(self) -> int:
        """Bytes the slab holds (for reports and tests)."""
        return self._slab.numel()

    def release(self) -> None:
        """Give the slab back (the next read allocates it again)."""
        self._slab = torch.empty(0, dtype=torch.uint8)

    def read(self, names: dict[str, str]) -> dict[str, torch.Tensor]:
        """``{key: tensor}`` for ``{key: name in the file}``, each tensor of its stored dtype and shape."""
        missing = [name for name in names.values() if name not in self.file.entries]
        if missing:
            raise self.file.error("not in file", missing[0])
        plan_key = tuple(sorted(names.values()))
        if plan_key not in self._plans:
            self._plans[plan_key] = plan_ranges({name: self.file.entries[name] for name in plan_key},
                                                self.file.data_offset)
        ranges = self._plans[plan_key]
        slab = self._slab_of(ranges[-1].slab_offset + ranges[-1].stop - ranges[-1].start if ranges else 0)
        try:
            with open(self.file.path, "rb", buffering=0) as handle, self._direct_descriptor() as direct:
                by_name = {name: tensor for span in ranges
                           for name, tensor in self._span_tensors(handle, direct, span, slab).items()}
        except OSError as exc:                                        # the file could not be opened
            raise self.file.error(f"cannot read: {exc.strerror or exc}", next(iter(names.values()))) from exc
        return {key: by_name[name] for key, name in names.items()}

    def _span_tensors(self, handle: BinaryIO, direct: int | None, span: ReadRange,
                      slab: torch.Tensor) -> dict[str, torch.Tensor]:
        """The tensors of ``span``, read into ``slab``; errors name the file and a tensor of the span."""
        try:
            got = self._read_range(handle, direct, span, slab)
        except OSError as exc:
            raise self.file.error(f"cannot read: {exc.strerror or exc}", span.entries[0][0]) from exc
        if got < span.needed:
            short = next(name for name, entry in span.entries if self.file.data_offset + entry.end > span.start + got)
            raise self.file.error(f"file ended after {got} of the {span.needed} bytes read with it (truncated?)",
                                  short)
        return {name: self._view(slab, span, entry) for name, entry in span.entries}

    def _slab_of(self, nbytes: int) -> torch.Tensor:
        """An aligned uint8 view of at least ``nbytes`` (the slab grows, never shrinks)."""
        if self._slab.numel() < nbytes:
            self.release()                                            # the old one goes before the new one comes
            raw = torch.empty(nbytes + ALIGNMENT, dtype=torch.uint8)
            shift = -raw.data_ptr() % ALIGNMENT
            self._slab = raw[shift: shift + nbytes]
        return self._slab

    @contextmanager
    def _direct_descriptor(self) -> Iterator[int | None]:
        """A descriptor of the file opened for direct reads, closed afterwards; None where this reader does not
        read directly or the file system refuses it (EINVAL; then never asked again)."""
        fd = None
        if self.mode == "direct" and not self._direct_refused:
            try:
                fd = os.open(self.file.path, os.O_RDONLY | os.O_DIRECT)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._direct_refused = True
        try:
            yield fd
        finally:
            if fd is not None:
                os.close(fd)

    def _read_range(self, handle: BinaryIO, direct: int | None, span: ReadRange, slab: torch.Tensor) -> int:
        """Bytes of ``span`` read into its place in ``slab``: at least ``span.needed`` unless the file ends."""
        view = memoryview(slab[span.slab_offset: span.slab_offset + span.stop - span.start].numpy())
        done = 0
        while done < span.needed:
            got = self._direct(direct, view, span.start, done) if direct is not None else None
            if got is not None:
                self.counts.direct += got
            else:
                got = _pread(handle, view[done: done + CHUNK], span.start + done)
                self.counts.buffered += got
            if got == 0:
                break                                                 # the file ended
            done += got
        return done

    def _direct(self, fd: int, view: memoryview, start: int, done: int) -> int | None:
        """One direct read of up to :data:`CHUNK` into ``view`` (which begins at the aligned file offset ``start``)
        from ``done`` on, widened back to an aligned offset (a short read mid-file leaves ``done`` off it): the new
        bytes from ``done`` on, or None where direct reads are refused (the reader then reads buffered)."""
        if self._direct_refused:
            return None
        back = done - _align_down(done)
        chunk = view[done - back: done - back + CHUNK]
        try:
            got = os.preadv(fd, [chunk], start + done - back)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._direct_refused = True
            return None
        return max(0, got - back)

    def _view(self, slab: torch.Tensor, span: ReadRange, entry: TensorEntry) -> torch.Tensor:
        """The entry's tensor in ``slab``; a copy of its own where its offset does not suit its dtype."""
        offset = span.slab_offset + self.file.data_offset + entry.begin - span.start
        raw = slab[offset: offset + entry.nbytes]
        if offset % entry.dtype.itemsize:
            raw = raw.clone()
        return raw.view(entry.dtype).reshape(entry.shape)


def read_mode(stream_bytes: int, available: int | None = None) -> str:
    """How a streamed model of ``stream_bytes`` (its blocks as stored) is read: "buffered" where the blocks fit in
    half the memory available (``available`` bytes; default: the system's ``MemAvailable``), so the page cache
    can keep them from one forward to the next; "direct" where they do not, so reading them neither costs the
    cache's copies nor evicts everything else for pages a cycling read would evict again before their reuse."""
    available = memory_available() if available is None else available
    return "buffered" if available is None or stream_bytes <= available // 2 else "direct"


def memory_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """The system's available memory in bytes (Linux's ``MemAvailable``); None where it is not known."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _pread(handle: BinaryIO, view: memoryview, offset: int) -> int:
    """Bytes read into ``view`` from ``offset`` of the open file (positional where the platform has it)."""
    if hasattr(os, "preadv"):
        return os.preadv(handle.fileno(), [view], offset)
    handle.seek(offset)
    return handle.readinto(view) or 0


def _align_down(offset: int) -> int:
    return offset - offset % ALIGNMENT


def _align_up(offset: int) -> int:
    return _align_down(offset + ALIGNMENT - 1)
