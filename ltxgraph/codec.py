"""Turn values into (tensors, JSON metadata) and back, for the disk cache. Only known classes are rebuilt:
nothing in a cache entry can name code to import (no pickle anywhere).

A floating tensor whose values all lie on the 8-bit grid (``k / 255``: images read from files or decoded to
8 bits) is stored as its uint8 codes, a quarter of the bytes, and rebuilt bit for bit (:mod:`ltxgraph.unorm8`);
its description records the dtype to restore: ``{"tensor": name, "unorm8": "float32"}``."""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

from . import unorm8


class NotStorable(TypeError):
    """The value holds something the disk cache cannot represent (a model, a function, ...)."""


def encode(value: Any, storable_classes: dict[str, type]) -> tuple[dict[str, torch.Tensor], Any]:
    """Split ``value`` into named tensors and a JSON-able description referencing them."""
    tensors: dict[str, torch.Tensor] = {}
    known = {cls: name for name, cls in storable_classes.items()}
    described: dict[int, dict[str, str]] = {}   # the same tensor object stored once
    storages: set[int] = set()          # distinct tensors over one storage are copied (safetensors refuses)

    def store(tensor: torch.Tensor) -> dict[str, str]:
        name = f"t{len(tensors)}"
        codes = unorm8.pack(tensor)
        stored = (tensor if codes is None else codes).detach().contiguous().cpu()
        pointer = stored.untyped_storage().data_ptr() if stored.numel() else -len(tensors) - 1
        stored = stored.clone() if pointer in storages else stored
        storages.add(stored.untyped_storage().data_ptr() if stored.numel() else pointer)
        tensors[name] = stored
        if codes is None:
            return {"tensor": name}
        return {"tensor": name, "unorm8": str(tensor.dtype).removeprefix("torch.")}

    def walk(item: Any) -> Any:
        if item is None or isinstance(item, (bool, int, str)):
            return item
        if isinstance(item, float):
            return {"float": repr(item)}  # exact round trip, including nan/inf
        if isinstance(item, torch.Tensor):
            if id(item) not in described:
                described[id(item)] = store(item)
            return described[id(item)]
        if isinstance(item, (list, tuple)):
            return {"list" if isinstance(item, list) else "tuple": [walk(x) for x in item]}
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                raise NotStorable("dictionary keys must be strings")
            return {"dict": {k: walk(v) for k, v in item.items()}}
        if dataclasses.is_dataclass(item) and type(item) in known:
            fields = {f.name: walk(getattr(item, f.name)) for f in dataclasses.fields(item) if f.init}
            return {"class": known[type(item)], "fields": fields}
        raise NotStorable(f"cannot store a {type(item).__name__}")

    return tensors, walk(value)


def unpack_codes(codes: torch.Tensor, dtype_name: Any) -> torch.Tensor:
    """uint8 codes of an entry -> floats of the recorded dtype; anything else is a damaged entry (ValueError)."""
    dtype = getattr(torch, dtype_name, None) if isinstance(dtype_name, str) else None
    if codes.dtype != torch.uint8 or not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"malformed 8-bit tensor in cache entry: {codes.dtype} as {dtype_name!r:.40}")
    return unorm8.unpack(codes, dtype)


def decode(tensors: dict[str, torch.Tensor], description: Any, storable_classes: dict[str, type]) -> Any:
    """Rebuild a value from :func:`encode`'s output; unknown classes or tensors raise ValueError."""

    def walk(item: Any) -> Any:
        if item is None or isinstance(item, (bool, int, str)):
            return item
        if not isinstance(item, dict) or len(item) not in (1, 2):
            raise ValueError(f"malformed cache description: {item!r:.80}")
        if "float" in item:
            return float(item["float"])
        if "tensor" in item:
            stored = tensors[item["tensor"]]
            return stored if "unorm8" not in item else unpack_codes(stored, item["unorm8"])
        if "list" in item:
            return [walk(x) for x in item["list"]]
        if "tuple" in item:
            return tuple(walk(x) for x in item["tuple"])
        if "dict" in item:
            return {k: walk(v) for k, v in item["dict"].items()}
        if "class" in item:
            cls = storable_classes.get(item["class"])
            if cls is None:
                raise ValueError(f"unknown class in cache entry: {item['class']}")
            return cls(**{k: walk(v) for k, v in item["fields"].items()})
        raise ValueError(f"malformed cache description: {item!r:.80}")

    return walk(description)
