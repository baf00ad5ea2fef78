"""Results cache: keys from lineage, a memory LRU bounded in bytes, and an on-disk content-addressed store.

A node's key is the hash of its op name and version, its literal inputs, the keys of the upstream outputs it
reads and fingerprints of the files it reads. Keys are known before anything runs, so a changed parameter
re-runs exactly the nodes downstream of it. Disk entries are written atomically (a temporary directory renamed
into place), carry the SHA-256 of their tensor file and the name of the op that computed them, and are verified
on read: a damaged entry is deleted and its node recomputed, never used. Images on the 8-bit grid are stored as
bytes (:mod:`ltxgraph.codec`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from . import codec
from .graph import NodeRef
from .resume import remove_checkpoints

FORMAT = 2                 # 2: 8-bit tensors ("unorm8") and the op name; format 1 entries are still read
READABLE_FORMATS = (1, 2)
UNKNOWN_OP = "unknown"     # the op of entries written before op names were recorded
SMALL_FILE_BYTES = 64 * 2**20
CHECKPOINT_OP = "sampler checkpoints"
CHECKPOINTS = "resume"     # root/resume/<key>/: a running sampler's per-step checkpoints (ltxgraph.resume)


def file_fingerprint(path: Path) -> str:
    """Content hash for files up to 64 MiB (media); path, size and mtime for larger ones (model weights)."""
    stat = path.stat()
    if stat.st_size <= SMALL_FILE_BYTES:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return f"stat:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def node_key(op: str, version: str, inputs: dict[str, Any], upstream_keys: dict[str, str],
             files: dict[str, str], run: dict[str, Any] | None = None) -> str:
    """The cache key of a node: a hash over everything its result depends on. ``run``: run settings that change
    results (the compute dtype when not float32, media limits other than the defaults for a node that reads
    input media); None leaves the key as it always was."""

    def encode_input(value: Any) -> Any:
        if isinstance(value, NodeRef):
            return {"ref": upstream_keys[value.node], "port": value.port}
        if isinstance(value, float):
            return {"float": repr(value)}
        return value

    payload = {"op": op, "version": version, "files": files,
               "inputs": {name: encode_input(value) for name, value in sorted(inputs.items())}}
    if run:
        payload["run"] = run
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def value_bytes(value: Any) -> int:
    """Approximate memory held by a value: its tensors (and module parameters) in bytes."""
    seen: set[int] = set()

    def walk(item: Any, depth: int = 0) -> int:
        if depth > 8 or id(item) in seen:
            return 0
        seen.add(id(item))
        if isinstance(item, torch.Tensor):
            return item.numel() * item.element_size()
        if isinstance(item, torch.nn.Module):
            return sum(walk(t, depth + 1) for t in [*item.parameters(), *item.buffers()])
        if isinstance(item, (list, tuple)):
            return sum(walk(x, depth + 1) for x in item)
        if isinstance(item, dict):
            return sum(walk(x, depth + 1) for x in item.values())
        if hasattr(item, "__dict__"):
            return sum(walk(x, depth + 1) for x in vars(item).values())
        return 0

    return walk(value)


class MemoryCache:
    """Least-recently-used results, bounded by total bytes. A value larger than the budget is not kept."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._used: int | None = None  # bytes in the store as this process knows it: scanned once, then counted
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._used = 0

    def has(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: str, value: Any) -> None:
        size = value_bytes(value)
        if size > self.max_bytes:
            return
        if key in self._entries:
            self._used -= self._entries.pop(key)[1]
        self._entries[key] = (value, size)
        self._used += size
        while self._used > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._used -= evicted

    def clear(self) -> None:
        self._entries.clear()
        self._used = 0

    @property
    def used_bytes(self) -> int:
        return self._used

    def __len__(self) -> int:
        return len(self._entries)


def _entry_bytes(entry: Path) -> int:
    return sum(f.stat().st_size for f in entry.iterdir() if f.is_file())


def _checksum(blob: bytes, description: Any, format_version: int) -> str:
    """SHA-256 of an entry's tensor file and (from format 2) of the description that rebuilds values from it."""
    digest = hashlib.sha256(blob)
    if format_version >= 2:
        digest.update(json.dumps(description, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def _entry_op(entry: Path) -> str:
    """The op name recorded in an entry's metadata ("unknown" for older or unreadable metadata)."""
    try:
        op = json.loads((entry / "meta.json").read_text()).get("op")
    except (OSError, ValueError, AttributeError):   # damaged: counted, and removed when next read
        return UNKNOWN_OP
    return op if isinstance(op, str) and op else UNKNOWN_OP


class DiskStore:
    """Content-addressed results on disk: ``root/ab/<key>/{values.safetensors, meta.json}``. With ``max_bytes``
    the store is trimmed after each write to that size, least recently used entries first (a read refreshes an
    entry: its ``meta.json`` modification time is the last use)."""

    def __init__(self, root: Path, storable_classes: dict[str, type], max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.storable = storable_classes
        self.max_bytes = max_bytes
        self._used: int | None = None  # bytes in the store as this process knows it: scanned once, then counted

    def _entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def put(self, key: str, outputs: tuple[Any, ...], op: str | None = None) -> bool:
        """Store a node's outputs (computed by the op named ``op``); False (nothing written) when a value cannot
        be stored, e.g. a model."""
        entry = self._entry(key)
        if entry.exists():
            return True
        try:
            tensors, description = codec.encode(list(outputs), self.storable)
        except codec.NotStorable:
            return False
        blob = save_safetensors(tensors) if tensors else b""
        meta = {"format": FORMAT, "key": key, "op": op or UNKNOWN_OP,
                "sha256": _checksum(blob, description, FORMAT), "value": description}
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = entry.parent / f".tmp-{key}-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            # No fsync: entries are checksummed and verified on read, so a write torn by a power cut is
            # discarded like any damaged entry; a killed process leaves only an ignored staging directory.
            (staging / "values.safetensors").write_bytes(blob)
            (staging / "meta.json").write_bytes(json.dumps(meta).encode())
            try:
                os.rename(staging, entry)  # atomic; fails if another process stored it first
            except OSError:
                if not entry.exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.count_written(key, len(blob) + (entry / "meta.json").stat().st_size)
        return True

    def count_written(self, key: str, size: int) -> None:
        """Count ``size`` bytes just written for ``key`` (negative: freed) and trim the store to its limit,
        keeping ``key``'s entry and checkpoints."""
        if self.max_bytes is None:
            return
        self._used = self._scan_total() if self._used is None else self._used + size
        if self._used > self.max_bytes:
            self.trim(self.max_bytes, keep=key)

    def checkpoint_folder(self, key: str) -> Path:
        """Where the samplers of the node with cache key ``key`` keep their per-step checkpoints."""
        return self.root / CHECKPOINTS / key

    def discard_checkpoints(self, key: str) -> None:
        folder = self.checkpoint_folder(key)
        if self.max_bytes is not None and self._used is not None and folder.is_dir():
            with contextlib.suppress(OSError):
                self._used -= _entry_bytes(folder)
        remove_checkpoints(folder)

    def checkpoint_folders(self) -> list[Path]:
        folder = self.root / CHECKPOINTS
        return [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []

    def _scan_total(self) -> int:
        total = 0
        for entry in [*self.entries(), *self.checkpoint_folders()]:
            with contextlib.suppress(OSError):
                total += _entry_bytes(entry)
        return total

    def trim(self, max_bytes: int, keep: str | None = None) -> int:
        """Remove least recently used entries until at most ``max_bytes`` remain (``keep`` stays even when it
        alone is larger); returns how many were removed. Entries another process removes meanwhile are skipped."""
        found = []
        for entry in self.entries():
            try:
                found.append(((entry / "meta.json").stat().st_mtime_ns, _entry_bytes(entry), entry.name, False))
            except OSError:
                continue
        for folder in self.checkpoint_folders():
            try:
                found.append((folder.stat().st_mtime_ns, _entry_bytes(folder), folder.name, True))
            except OSError:
                continue
        total = sum(size for _, size, _, _ in found)
        removed = 0
        for _, size, key, is_checkpoint in sorted(found):
            if total <= max_bytes:
                break
            if key != keep:
                if is_checkpoint:
                    remove_checkpoints(self.checkpoint_folder(key))
                else:
                    self.discard(key)
                total -= size
                removed += 1
        self._used = total
        return removed

    def has(self, key: str) -> bool:
        """Whether an entry exists (cheap; :meth:`get` still verifies it)."""
        return self._entry(key).is_dir()

    def get(self, key: str) -> tuple[Any, ...] | None:
        """The stored outputs, or None when absent; a damaged entry is removed and reported as absent."""
        entry = self._entry(key)
        if not entry.is_dir():
            return None
        try:
            meta = json.loads((entry / "meta.json").read_text())
            blob = (entry / "values.safetensors").read_bytes()
            if meta.get("format") not in READABLE_FORMATS or meta.get("key") != key:
                raise ValueError("format or key mismatch")
            if _checksum(blob, meta["value"], meta["format"]) != meta.get("sha256"):
                raise ValueError("checksum mismatch")
            tensors = load_safetensors(blob) if blob else {}
            values = tuple(codec.decode(tensors, meta["value"], self.storable))
            with contextlib.suppress(OSError):
                os.utime(entry / "meta.json")   # last use, for trimming
            return values
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError, RuntimeError):
            self.discard(key)
            return None

    def discard(self, key: str) -> None:
        entry = self._entry(key)
        trash = entry.parent / f".trash-{key}-{uuid.uuid4().hex}"
        try:
            os.rename(entry, trash)
        except OSError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def entries(self) -> Iterable[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.glob("??/*") if p.is_dir() and not p.name.startswith(".")]

    def info(self) -> dict[str, Any]:
        """What the store holds: its folder, limit (bytes or None), entries and bytes in total and per op name
        (``by_op``: {op: {"entries", "bytes"}}, largest first; entries without a recorded op under "unknown",
        the checkpoints of interrupted samplers under "sampler checkpoints", one entry per node)."""
        by_op: dict[str, dict[str, int]] = {}
        listed = [(entry, False) for entry in self.entries()] + [(f, True) for f in self.checkpoint_folders()]
        for entry, is_checkpoint in listed:
            try:
                size, op = _entry_bytes(entry), CHECKPOINT_OP if is_checkpoint else _entry_op(entry)
            except OSError:
                continue   # removed by another process meanwhile
            totals = by_op.setdefault(op, {"entries": 0, "bytes": 0})
            totals["entries"] += 1
            totals["bytes"] += size
        ranked = dict(sorted(by_op.items(), key=lambda item: (-item[1]["bytes"], item[0])))
        return {"path": str(self.root), "limit": self.max_bytes,
                "entries": sum(t["entries"] for t in ranked.values()),
                "bytes": sum(t["bytes"] for t in ranked.values()), "by_op": ranked}

    def clear(self) -> int:
        count = 0
        for entry in self.entries():
            self.discard(entry.name)
            count += 1
        for leftover in self.root.glob("??/.*") if self.root.is_dir() else []:
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.rmtree(self.root / CHECKPOINTS, ignore_errors=True)
        return count


def default_cache_dir() -> Path:
    """``$LTXGRAPH_CACHE_DIR`` or ``$XDG_CACHE_HOME/ltxgraph`` (``~/.cache/ltxgraph``)."""
    if os.environ.get("LTXGRAPH_CACHE_DIR"):
        return Path(os.environ["LTXGRAPH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ltxgraph"
