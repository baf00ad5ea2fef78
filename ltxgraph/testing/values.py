"""Deep copies and bit-exact comparison of op values (tensors, dataclasses, containers, frames, handles)."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from ltxgraph.frames import Frames
from ltxgraph.values import SavedFile


def snapshot(value: Any) -> Any:
    """A copy of ``value`` sharing no tensor storage with it (tensors cloned, containers and dataclasses
    rebuilt); other objects (model handles, frames) are kept as they are."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and _plain(value):
        return dataclasses.replace(value, **{f.name: snapshot(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(v) for v in value) if not hasattr(value, "_fields") else value
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    return value


def _plain(value: Any) -> bool:
    """Whether every init field of a dataclass can be passed back to ``replace``."""
    return all(hasattr(value, f.name) for f in dataclasses.fields(value) if f.init)


def difference(a: Any, b: Any, where: str = "value", seen: dict[tuple[int, int], Any] | None = None) -> str | None:
    """Where ``a`` and ``b`` differ (bit for bit for tensors, NaN equal to NaN), or None when they are equal.
    Objects without their own ``==`` (model handles, tokenizers, lazy loaders) compare by their attributes, a
    function by its code and closure, one with neither (a lock) by type; SavedFile by its info (two runs write two files)."""
    seen = {} if seen is None else seen  # pairs under comparison, kept alive so their ids stay theirs
    if (id(a), id(b)) in seen or a is b:
        return None
    seen[id(a), id(b)] = (a, b)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return f"{where}: {type(a).__name__} vs {type(b).__name__}"
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"{where}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}"
        if a.is_meta or b.is_meta:  # no data (a model not loaded yet): shape and dtype are all there is
            return None if a.is_meta and b.is_meta else f"{where}: meta vs {b.device if a.is_meta else a.device}"
        return None if torch.equal(a, b) or bool(((a == b) | (a.isnan() & b.isnan())).all()) else f"{where}: values differ"
    if type(a) is not type(b):
        return f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, Frames):
        return difference(a.float(), b.float(), where, seen)
    if isinstance(a, SavedFile):
        return difference(a.info, b.info, where + ".info", seen)
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            found = difference(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}", seen)
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"{where}: length {len(a)} vs {len(b)}"
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := difference(x, y, f"{where}[{i}]", seen))), None)
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return f"{where}: keys {sorted(map(str, a))} vs {sorted(map(str, b))}"
        return next((d for k in a if (d := difference(a[k], b[k], f"{where}[{k!r}]", seen))), None)
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return None
    if callable(a) and hasattr(a, "__code__"):
        if a.__code__ is not b.__code__:
            return f"{where}: function {a.__qualname__} vs {b.__qualname__}"
        cells = [c.cell_contents for c in a.__closure__ or ()], [c.cell_contents for c in b.__closure__ or ()]
        return difference(*cells, f"{where}.<closure>", seen)
    if type(a).__eq__ is object.__eq__:  # no value semantics: its attributes, or nothing to compare (a lock)
        return difference(vars(a), vars(b), where, seen) if hasattr(a, "__dict__") else None
    if a == b:
        return None
    return f"{where}: {a!r} vs {b!r}"
