"""A strict, lazy reader of safetensors files.

The header (8-byte little-endian length, then JSON) is parsed and checked whole before any tensor is read: every
entry's dtype is known, its byte range lies inside the data section and matches its shape, and ranges do not
overlap. Tensors are then read one at a time, straight into their own storage (no intermediate copy, no mmap
kept open), so a caller holds exactly the tensors it asked for.

We read the format ourselves rather than through ``safetensors.safe_open`` to give errors that name the file and
key, and to keep per-tensor reads exact in memory; the ``safetensors`` package is still what writes files.
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from ltxgraph.errors import InvalidInput

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the 19B checkpoint's header is ~1 MB


class CheckpointError(InvalidInput):
    """A weights file is unreadable, inconsistent, or does not fit the model it is loaded into."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives: dtype, shape, and its byte range relative to the data section."""

    key: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


class SafetensorsFile:
    """The header of a safetensors file, checked, with tensors read on demand.

    ``metadata`` is the header's ``__metadata__`` (str -> str); ``entries`` maps key -> :class:`TensorEntry`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = self.path.name
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as handle:
                prefix = handle.read(8)
                if len(prefix) < 8:
                    raise self.error(f"file is {size} bytes, too short for a safetensors header")
                (header_len,) = struct.unpack("<Q", prefix)
                if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
                    raise self.error(f"header claims {header_len} bytes but the file has {size}")
                raw = handle.read(header_len)
        except OSError as exc:
            raise CheckpointError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        self.data_offset = 8 + header_len
        self.data_size = size - self.data_offset
        self.metadata, self.entries = self._parse(raw)

    def error(self, message: str, key: str | None = None) -> CheckpointError:
        return CheckpointError(f"{self.path}" + (f": tensor '{key}'" if key else "") + f": {message}")

    def _parse(self, raw: bytes) -> tuple[dict[str, str], dict[str, TensorEntry]]:
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self.error(f"header is not valid JSON ({exc})") from None
        if not isinstance(header, dict):
            raise self.error("header is not a JSON object")
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise self.error("__metadata__ must map names to strings")
        entries = {key: self._entry(key, info) for key, info in header.items()}
        spans = sorted((e.begin, e.end, e.key) for e in entries.values() if e.nbytes)
        for (_, end, key), (begin, _, other) in zip(spans, spans[1:]):
            if begin < end:
                raise self.error(f"byte range overlaps tensor '{other}'", key)
        return metadata, entries

    def _entry(self, key: str, info: object) -> TensorEntry:
        if not isinstance(info, dict):
            raise self.error("header entry is not an object", key)
        dtype = DTYPES.get(info.get("dtype"))  # type: ignore[arg-type]
        if dtype is None:
            raise self.error(f"unknown dtype {info.get('dtype')!r}", key)
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
                or isinstance(shape, bool) or any(isinstance(d, bool) for d in shape)):
            raise self.error(f"shape {shape!r} is not a list of non-negative integers", key)
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise self.error(f"data_offsets {offsets!r} is not [begin, end]", key)
        begin, end = offsets
        expected = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        if not 0 <= begin <= end <= self.data_size:
            raise self.error(f"data_offsets [{begin}, {end}] lie outside the {self.data_size}-byte data section",
                             key)
        if end - begin != expected:
            raise self.error(f"{end - begin} bytes stored but shape {shape} of {info['dtype']} needs {expected}",
                             key)
        return TensorEntry(key, dtype, tuple(shape), begin, end)

    def config(self) -> dict:
        """The JSON in the ``config`` metadata entry ({} if absent)."""
        text = self.metadata.get("config")
        if text is None:
            return {}
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self.error(f"metadata 'config' is not valid JSON ({exc})") from None
        if not isinstance(config, dict):
            raise self.error("metadata 'config' is not a JSON object")
        return config

    def keys(self, prefix: str = "") -> list[str]:
        return [key for key in self.entries if key.startswith(prefix)]

    def read(self, key: str) -> torch.Tensor:
        """One tensor, read from disk into fresh CPU memory of its stored dtype."""
        entry = self.entries.get(key)
        if entry is None:
            raise self.error("not in file", key)
        tensor = torch.empty(entry.shape, dtype=entry.dtype)
        if entry.nbytes:
            target = tensor.reshape(-1).view(torch.uint8).numpy()
            try:
                with open(self.path, "rb") as handle:
                    handle.seek(self.data_offset + entry.begin)
                    got = handle.readinto(target)
            except OSError as exc:
                raise self.error(f"cannot read: {exc.strerror or exc}", key) from exc
            if got != entry.nbytes:
                raise self.error(f"file ended after {got} of {entry.nbytes} bytes (truncated?)", key)
        return tensor
