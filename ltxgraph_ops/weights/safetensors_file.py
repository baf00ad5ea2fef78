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
import re
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

    def read(self, key: str, out: torch.Tensor | None = None) -> torch.Tensor:
        """One tensor, read from disk into fresh CPU memory of its stored dtype, or into ``out`` (a contiguous
        CPU tensor of the stored dtype and shape, e.g. a buffer reused for every block of a streamed model)."""
        entry = self.entries.get(key)
        if entry is None:
            raise self.error("not in file", key)
        if out is not None and (out.dtype != entry.dtype or tuple(out.shape) != entry.shape
                                or not out.is_contiguous() or out.device.type != "cpu"):
            raise self.error(f"cannot read into a {out.dtype} {list(out.shape)} buffer: stored as {entry.dtype} "
                             f"{list(entry.shape)}", key)
        tensor = torch.empty(entry.shape, dtype=entry.dtype, device="cpu") if out is None else out
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

    def read_rows(self, key: str, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` of a tensor along its first dimension, read alone: [stop - start, ...]."""
        entry = self.entries.get(key)
        if entry is None:
            raise self.error("not in file", key)
        if not 0 <= start <= stop <= entry.shape[0]:
            raise self.error(f"rows {start}:{stop} outside its {entry.shape[0]} rows", key)
        row_bytes = entry.nbytes // max(1, entry.shape[0])
        tensor = torch.empty((stop - start, *entry.shape[1:]), dtype=entry.dtype)
        if stop > start and row_bytes:
            target = tensor.reshape(-1).view(torch.uint8).numpy()
            with open(self.path, "rb") as handle:
                handle.seek(self.data_offset + entry.begin + start * row_bytes)
                if handle.readinto(target) != target.nbytes:
                    raise self.error("file ended early (truncated?)", key)
        return tensor


class ShardedSafetensors:
    """Several safetensors files read as one (a model saved in shards, e.g. ``model-00001-of-00005``): the same
    interface as :class:`SafetensorsFile`; a key present in two shards is an error."""

    def __init__(self, paths: list[str | Path]) -> None:
        if not paths:
            raise CheckpointError("no shard files given")
        self.files = [SafetensorsFile(p) for p in paths]
        self.path = self.files[0].path
        self.name = self.path.name
        self.metadata = self.files[0].metadata
        self.owner: dict[str, SafetensorsFile] = {}
        for file in self.files:
            for key in file.entries:
                if key in self.owner:
                    raise file.error(f"also in shard {self.owner[key].name}", key)
                self.owner[key] = file
        self.entries = {key: file.entries[key] for key, file in self.owner.items()}

    @classmethod
    def for_shard(cls, path: str | Path) -> "SafetensorsFile | ShardedSafetensors":
        """All shards of the set ``path`` belongs to (``name-0000k-of-0000n.safetensors``), or the file alone."""
        path = Path(path)
        match = re.match(r"^(.*-)(\d+)-of-(\d+)(\.safetensors)$", path.name)
        if not match:
            return SafetensorsFile(path)
        stem, _, total, suffix = match.groups()
        width = len(match.group(2))
        names = [path.with_name(f"{stem}{i:0{width}d}-of-{total}{suffix}") for i in range(1, int(total) + 1)]
        missing = [n.name for n in names if not n.is_file()]
        if missing:
            raise CheckpointError(f"{path}: shard set is incomplete, missing {', '.join(missing)}")
        return cls(names)

    def error(self, message: str, key: str | None = None) -> CheckpointError:
        owner = self.owner.get(key) if key else None
        return (owner or self.files[0]).error(message, key)

    def config(self) -> dict:
        return self.files[0].config()

    def keys(self, prefix: str = "") -> list[str]:
        return [key for key in self.entries if key.startswith(prefix)]

    def read(self, key: str, out: torch.Tensor | None = None) -> torch.Tensor:
        if key not in self.owner:
            raise self.error("not in any shard", key)
        return self.owner[key].read(key, out)

    def read_rows(self, key: str, start: int, stop: int) -> torch.Tensor:
        if key not in self.owner:
            raise self.error("not in any shard", key)
        return self.owner[key].read_rows(key, start, stop)
