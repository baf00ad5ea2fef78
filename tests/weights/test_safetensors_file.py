"""The safetensors reader: lazy reads equal to the safetensors library's, and a clear error for every way a
header can lie."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile


def write_raw(path: Path, header: dict, data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


@pytest.fixture
def sample(tmp_path) -> Path:
    tensors = {"a.weight": torch.randn(3, 4), "b": torch.arange(6, dtype=torch.int64).reshape(2, 3),
               "c": torch.randn(5).to(torch.bfloat16), "d": torch.randn(2, 2).to(torch.float8_e4m3fn),
               "e": torch.zeros(0, 3)}
    path = tmp_path / "sample.safetensors"
    save_file(tensors, str(path), metadata={"config": json.dumps({"x": {"y": 1}}), "note": "hi"})
    return path


def test_reads_every_tensor_exactly_like_the_library(sample: Path) -> None:
    file = SafetensorsFile(sample)
    expected = load_file(str(sample))
    assert set(file.entries) == set(expected)
    for key, tensor in expected.items():
        got = file.read(key)
        assert got.dtype == tensor.dtype and got.shape == tensor.shape
        assert torch.equal(got.view(torch.uint8), tensor.view(torch.uint8)) if tensor.numel() else True
    assert file.config() == {"x": {"y": 1}} and file.metadata["note"] == "hi"
    assert file.keys("a.") == ["a.weight"]


def bad(tmp_path: Path, header: dict, data: bytes = b"\0" * 16) -> str:
    with pytest.raises(CheckpointError) as info:
        SafetensorsFile(write_raw(tmp_path / "bad.safetensors", header, data))
    return str(info.value)


def test_header_lies_are_named(tmp_path: Path) -> None:
    entry = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    assert "unknown dtype 'F99'" in bad(tmp_path, {"w": {**entry, "dtype": "F99"}})
    assert "outside" in bad(tmp_path, {"w": {**entry, "data_offsets": [0, 32]}}, b"\0" * 16)
    assert "needs 16" in bad(tmp_path, {"w": {**entry, "data_offsets": [0, 8]}})
    assert "overlaps" in bad(tmp_path, {"w": entry, "v": {**entry, "shape": [2], "data_offsets": [8, 16]}})
    assert "shape" in bad(tmp_path, {"w": {**entry, "shape": [-2, 2]}})
    assert "data_offsets" in bad(tmp_path, {"w": {**entry, "data_offsets": "0-16"}})
    assert "tensor 'w'" in bad(tmp_path, {"w": {**entry, "dtype": "F99"}})
    assert "__metadata__" in bad(tmp_path, {"__metadata__": {"a": 1}})


def test_truncated_and_garbage_files(tmp_path: Path, sample: Path) -> None:
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\x01\x02")
    with pytest.raises(CheckpointError, match="too short"):
        SafetensorsFile(short)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(sample.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="outside|short"):
        SafetensorsFile(cut)
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    with pytest.raises(CheckpointError, match="header claims"):
        SafetensorsFile(huge)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{]")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        SafetensorsFile(junk)
    with pytest.raises(CheckpointError, match="cannot read"):
        SafetensorsFile(tmp_path / "absent.safetensors")


def test_file_shrunk_after_opening_is_reported_on_read(tmp_path: Path, sample: Path) -> None:
    path = tmp_path / "shrinks.safetensors"
    path.write_bytes(sample.read_bytes())
    file = SafetensorsFile(path)
    path.write_bytes(sample.read_bytes()[: file.data_offset + 4])
    with pytest.raises(CheckpointError, match="truncated"):
        file.read("a.weight")


def test_bad_config_metadata(tmp_path: Path) -> None:
    path = tmp_path / "cfg.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"config": "{not json"})
    with pytest.raises(CheckpointError, match="'config' is not valid JSON"):
        SafetensorsFile(path).config()
