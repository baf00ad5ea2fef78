"""Turn values into (tensors, JSON metadata) and back, for the disk cache. Only known classes are rebuilt:
nothing in a cache entry can name code to import (no pickle anywhere)."""
from __future__ import annotations

import dataclasses
from typing import Any

import torch


class NotStorable(TypeError):
    """The value holds something the disk cache cannot represent (a model, a function, ...)."""


def encode(value: Any, storable_classes: dict[str, type]) -> tuple[dict[str, torch.Tensor], Any]:
    """Split ``value`` into named tensors and a JSON-able description referencing them."""
    tensors: dict[str, torch.Tensor] = {}
    known = {cls: name for name, cls in storable_classes.items()}
    names: dict[int, str] = {}          # the same tensor object stored once
    storages: set[int] = set()          # distinct tensors over one storage are copied (safetensors refuses)

    def walk(item: Any) -> Any:
        if item is None or isinstance(item, (bool, int, str)):
            return item
        if isinstance(item, float):
            return {"float": repr(item)}  # exact round trip, including nan/inf
        if isinstance(item, torch.Tensor):
            if id(item) in names:
                return {"tensor": names[id(item)]}
            name = names[id(item)] = f"t{len(tensors)}"
            stored = item.detach().contiguous().cpu()
            pointer = stored.untyped_storage().data_ptr() if stored.numel() else -len(tensors) - 1
            stored = stored.clone() if pointer in storages else stored
            storages.add(stored.untyped_storage().data_ptr() if stored.numel() else pointer)
            tensors[name] = stored
            return {"tensor": name}
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
            return tensors[item["tensor"]]
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
