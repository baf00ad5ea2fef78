"""Block reads: the same tensors as the plain reader, read directly or buffered; the page cache left alone by
direct reads and filled by buffered ones; a file that shrank or a file system without direct I/O handled."""
from __future__ import annotations

import ctypes
import errno
import json
import mmap
import os
import struct
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from ltxgraph_ops.weights import block_reads
from ltxgraph_ops.weights.block_reads import ALIGNMENT, BlockReader, memory_available, plan_ranges, read_mode
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile

DTYPES = [torch.float8_e4m3fn, torch.bfloat16, torch.float32, torch.int64]


def random_tensor(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    bits = torch.randint(0, 256, (max(1, torch.Size(shape).numel()) * torch.empty((), dtype=dtype).element_size(),),
                         dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    return bits.view(dtype)[: torch.Size(shape).numel()].reshape(shape).clone()


def evict(path: Path) -> None:
    """Drop ``path``'s pages from the page cache (written back first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cached(path: Path, offset: int) -> bool:
    """Whether the page cache holds the page of ``path`` at ``offset`` (``mincore`` of a mapping never touched: no
    read, so no read-ahead either)."""
    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY) as mapping:
        address = ctypes.addressof(ctypes.c_char.from_buffer(mapping)) + offset - offset % page
        vector = (ctypes.c_ubyte * 1)()
        if libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(page), vector) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        resident = bool(vector[0] & 1)
    return resident


def direct_io_works(path: Path) -> bool:
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
        return True
    except OSError:
        return False


def as_bits(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(-1).view(torch.uint8) if tensor.numel() else tensor


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(as_bits(a.contiguous()), as_bits(b))


tensors_strategy = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=6),
    st.tuples(st.lists(st.integers(0, 700), min_size=1, max_size=2), st.sampled_from(DTYPES)),
    min_size=1, max_size=8)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=tensors_strategy, pick=st.data(), mode=st.sampled_from(["direct", "buffered"]),
       chunk=st.sampled_from([ALIGNMENT, 3 * ALIGNMENT, 1 << 24]), cold=st.booleans())
def test_block_reads_equal_plain_reads(tmp_path: Path, specs, pick, mode: str, chunk: int, cold: bool,
                                       monkeypatch) -> None:
    monkeypatch.setattr(block_reads, "CHUNK", chunk)
    path = tmp_path / "m.safetensors"
    save_file({name: random_tensor(tuple(shape), dtype, i) for i, (name, (shape, dtype)) in enumerate(specs.items())},
              path)
    file = SafetensorsFile(path)
    names = pick.draw(st.lists(st.sampled_from(sorted(specs)), min_size=1, unique=True))
    if cold:
        evict(path)
    reader = BlockReader(file, mode)
    for _ in range(2):                                 # the second read reuses the slab
        got = reader.read({f"k.{name}": name for name in names})
        assert sorted(got) == sorted(f"k.{name}" for name in names)
        assert all(same(got[f"k.{name}"], file.read(name)) for name in names)


def misaligned_file(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    """A safetensors file whose data section starts at an odd offset (a header of odd length, no padding)."""
    header, offset, data = {}, 0, b""
    for name, tensor in tensors.items():
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": {torch.bfloat16: "BF16", torch.float32: "F32"}[tensor.dtype],
                        "shape": list(tensor.shape), "data_offsets": [offset, offset + len(raw)]}
        offset, data = offset + len(raw), data + raw
    text = json.dumps(header)
    text += " " * (1 - len(text) % 2)                  # odd length
    path.write_bytes(struct.pack("<Q", len(text)) + text.encode() + data)
    return path


@pytest.mark.parametrize("mode", ["direct", "buffered"])
def test_tensors_off_their_alignment_are_copied_out(tmp_path: Path, mode: str) -> None:
    tensors = {"a": random_tensor((3, 5), torch.bfloat16, 0), "b": random_tensor((7,), torch.float32, 1)}
    file = SafetensorsFile(misaligned_file(tmp_path / "odd.safetensors", tensors))
    assert file.data_offset % 2 == 1
    got = BlockReader(file, mode).read({"a": "a", "b": "b"})
    assert all(same(got[name], tensors[name]) for name in tensors)


def test_direct_reads_leave_the_page_cache_alone_and_buffered_ones_fill_it(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"w": random_tensor((1024, 1024), torch.float8_e4m3fn, 0)}, path)   # 1 MiB
    file = SafetensorsFile(path)
    middle = file.data_offset + file.entries["w"].begin + (512 << 10)
    evict(path)
    assert not cached(path, middle)
    direct = BlockReader(file, "direct")
    for _ in range(2):
        direct.read({"w": "w"})
    if direct_io_works(path):
        assert direct.counts.buffered == 0 and direct.counts.direct >= 2 << 20
        assert not cached(path, middle)
    else:                                              # a file system without direct I/O: read through the cache
        assert direct.counts.direct == 0 and direct.counts.buffered >= 2 << 20
    evict(path)
    buffered = BlockReader(file, "buffered")
    buffered.read({"w": "w"})
    assert buffered.counts.buffered >= 1 << 20 and buffered.counts.direct == 0
    assert cached(path, middle)


def test_a_file_without_direct_io_is_read_buffered(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "m.safetensors"
    tensor = random_tensor((300, 700), torch.bfloat16, 3)
    save_file({"w": tensor}, path)
    opened = os.open

    def no_direct(target, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return opened(target, flags, *args)

    monkeypatch.setattr(block_reads.os, "open", no_direct)
    evict(path)
    reader = BlockReader(SafetensorsFile(path), "direct")
    assert same(reader.read({"w": "w"})["w"], tensor)
    assert reader.counts.direct == 0 and reader.counts.buffered > 0


def test_a_file_that_shrank_names_the_tensor(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"a": random_tensor((64,), torch.float32, 0), "b": random_tensor((4096,), torch.float32, 1)}, path)
    file = SafetensorsFile(path)
    os.truncate(path, path.stat().st_size - 100)
    for mode in ("direct", "buffered"):
        with pytest.raises(CheckpointError, match=r"m\.safetensors.*'b'.*truncated"):
            BlockReader(file, mode).read({"a": "a", "b": "b"})
        with pytest.raises(CheckpointError, match="'c'.*not in file"):
            BlockReader(file, mode).read({"c": "c"})


def test_ranges_merge_near_tensors_and_stay_aligned() -> None:
    from ltxgraph_ops.weights.safetensors_file import TensorEntry
    entries = {"a": TensorEntry("a", torch.uint8, (10,), 0, 10), "b": TensorEntry("b", torch.uint8, (10,), 20, 30),
               "far": TensorEntry("far", torch.uint8, (5,), 10 << 20, (10 << 20) + 5)}
    near, far = plan_ranges(entries, data_offset=100, gap=1 << 20)
    assert [name for name, _ in near.entries] == ["a", "b"] and [name for name, _ in far.entries] == ["far"]
    assert near.start == 0 and near.stop == ALIGNMENT and near.needed == 130
    assert far.start % ALIGNMENT == 0 and far.stop % ALIGNMENT == 0 and far.slab_offset == ALIGNMENT
    assert far.start <= 100 + (10 << 20) and far.start + far.needed == 100 + (10 << 20) + 5


def test_reads_go_direct_only_where_the_blocks_would_not_stay_cached(tmp_path: Path) -> None:
    assert read_mode(10 << 30, available=24 << 30) == "buffered"
    assert read_mode(13 << 30, available=24 << 30) == "direct"
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n")
    assert memory_available(meminfo) == 20000000 * 1024
    assert memory_available(tmp_path / "absent") is None
    with pytest.raises(ValueError, match="block reads"):
        BlockReader(SafetensorsFile(misaligned_file(tmp_path / "x.safetensors",
                                                    {"a": torch.zeros(2, dtype=torch.float32)})), "mmap")


@pytest.mark.parametrize("mode", ["direct", "buffered"])
def test_short_reads_are_resumed(tmp_path: Path, mode: str, monkeypatch) -> None:
    path = tmp_path / "m.safetensors"
    tensor = random_tensor((100, 333), torch.float32, 5)
    save_file({"w": tensor}, path)
    real = os.preadv

    def short(fd, buffers, offset, *flags):            # every call reports 5000 bytes of the 8192 it read
        return min(real(fd, [memoryview(buffers[0])[:8192]], offset, *flags), 5000)

    monkeypatch.setattr(block_reads.os, "preadv", short)
    evict(path)
    reader = BlockReader(SafetensorsFile(path), mode)
    assert same(reader.read({"w": "w"})["w"], tensor)
    if mode == "direct" and direct_io_works(path):     # resumed from the aligned offset before, still direct
        assert reader.counts.buffered == 0 and reader.counts.direct >= tensor.numel() * 4


def test_platforms_without_positional_reads_seek_and_read(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "m.safetensors"
    tensors = {"a": random_tensor((3, 200_000), torch.float32, 6), "b": random_tensor((5000,), torch.float32, 7),
               "c": random_tensor((7, 9), torch.bfloat16, 8)}
    save_file(tensors, path)
    monkeypatch.delattr(block_reads.os, "preadv")
    reader = BlockReader(SafetensorsFile(path), "buffered")
    got = reader.read({"x": "c", "y": "b"})          # ranges that start past the file's first bytes
    assert same(got["x"], tensors["c"]) and same(got["y"], tensors["b"])
    assert reader.counts.buffered >= 126 + 20000
