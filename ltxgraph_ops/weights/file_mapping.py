"""A weights file mapped into memory, read in place: tensors as views of the page cache, no copy.

Streamed blocks are read every forward. Reading a block with ``readinto`` copies its bytes from the page cache
into a buffer (a 19B block in fp8, 369 MiB: 73-76 ms of CPU), and on two cores that copy competes with the GEMMs
it was meant to overlap. Mapped, the same bytes are the dequantisation's input where they lie: the read becomes
mapping the pages (``MADV_POPULATE_READ``: 16 ms for that block; pages fetched from disk first when they are not
cached) and, once the block is converted, unmapping them again (``MADV_DONTNEED``: 9 ms), so a run's resident
memory holds one block as stored, as with a buffer. The page cache itself is the kernel's to keep or evict.

The mapping is private (copy-on-write: a stray write never reaches the file). Where the platform lacks a private
mapping or ``madvise``, or with ``LTXGRAPH_MAPPED_WEIGHTS=0``, :meth:`FileMapping.open` gives None and callers
read as before. Touching a mapped page beyond the end of a file that shrank after opening would kill the process
(SIGBUS), so :meth:`check_size` is called before each use and names the file instead.
"""
from __future__ import annotations

import mmap
import os
from pathlib import Path

import torch

POPULATE_READ = 22       # MADV_POPULATE_READ (Linux 5.14+): map the pages now, reading them from disk if needed


class FileMapping:
    """A private read mapping of the whole file at ``path`` of ``size`` bytes."""

    def __init__(self, path: Path, size: int, mapping: mmap.mmap) -> None:
        self.path, self.size, self._mapping = path, size, mapping
        self._populate = hasattr(mmap, "MADV_WILLNEED")

    @classmethod
    def open(cls, path: Path) -> "FileMapping | None":
        """The mapping, or None where this platform cannot map privately or advise, the file is empty, or
        ``LTXGRAPH_MAPPED_WEIGHTS=0``."""
        if os.environ.get("LTXGRAPH_MAPPED_WEIGHTS", "1") == "0" or not (
                hasattr(mmap, "MAP_PRIVATE") and hasattr(mmap.mmap, "madvise") and hasattr(mmap, "MADV_DONTNEED")):
            return None
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size == 0:
                    return None
                mapping = mmap.mmap(handle.fileno(), size, flags=mmap.MAP_PRIVATE,
                                    prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError):
            return None
        return cls(path, size, mapping)

    def view(self, begin: int, nbytes: int, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor | None:
        """The bytes [begin, begin + nbytes) as a tensor of ``dtype`` and ``shape``, in place; None when they
        do not start at a multiple of the dtype's size (a view there would be a misaligned tensor)."""
        if begin % torch.empty((), dtype=dtype).element_size() or nbytes == 0:
            return None
        raw = torch.frombuffer(self._mapping, dtype=torch.uint8, count=nbytes, offset=begin)
        return raw.view(dtype).view(shape)

    def populate(self, spans: list[tuple[int, int]]) -> None:
        """Map the pages of the byte spans [begin, end) now (reading them from disk if they are not cached), so
        the first reads of them do not fault one page range at a time."""
        for begin, end in spans:
            if begin >= self.size:
                continue
            start, length = _pages(begin, end)
            if self._populate:
                try:
                    self._mapping.madvise(POPULATE_READ, start, length)
                    continue
                except OSError:        # a kernel before 5.14: read-ahead only, the first reads map the pages
                    self._populate = False
            self._mapping.madvise(mmap.MADV_WILLNEED, start, length)

    def drop(self, spans: list[tuple[int, int]]) -> None:
        """Unmap the pages of the byte spans (out of this process's resident memory; the page cache keeps or
        evicts them). Views of them stay valid: a later read maps the pages again."""
        for begin, end in spans:
            if begin < self.size:
                self._mapping.madvise(mmap.MADV_DONTNEED, *_pages(begin, end))

    def check_size(self) -> int | None:
        """The file's size now when it differs from the size when mapped (it shrank or grew: reading the mapping
        could crash or mislead), else None."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return -1
        return None if size == self.size else size


def _pages(begin: int, end: int) -> tuple[int, int]:
    """The page-aligned start and length covering bytes [begin, end)."""
    start = begin - begin % mmap.PAGESIZE
    return start, max(end - start, 1)
