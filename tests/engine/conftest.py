from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from ltxgraph import Registry, Runner
from ltxgraph.paths import Folders

SAMPLE_OPS = "tests.engine.sample_ops"


def counting_registry(counter: Counter) -> Registry:
    """The sample ops, each wrapped to count its calls in ``counter`` (by op name)."""
    base = Registry.from_modules(SAMPLE_OPS)
    wrapped = []
    for spec in base:
        def call(*args, _fn=spec.fn, _name=spec.name, **kwargs):
            counter[_name] += 1
            return _fn(*args, **kwargs)
        wrapped.append(dataclasses.replace(spec, fn=call))
    return Registry(wrapped)


@pytest.fixture
def registry() -> Registry:
    return Registry.from_modules(SAMPLE_OPS)


@pytest.fixture
def runner_factory(tmp_path: Path):
    def make(registry: Registry, **options) -> Runner:
        options.setdefault("cache_dir", tmp_path / "cache")
        options.setdefault("folders", Folders((tmp_path / "models",), tmp_path / "input", tmp_path / "out"))
        return Runner(registry, **options)
    return make
