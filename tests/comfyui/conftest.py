from __future__ import annotations

from pathlib import Path

import pytest

from ltxgraph import Registry

from .corpus_runs import make_world

SAMPLE_OPS = "tests.engine.sample_ops"


@pytest.fixture
def registry() -> Registry:
    """The engine tests' sample ops: small workflows convert and run in milliseconds."""
    return Registry.from_modules(SAMPLE_OPS)


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict[str, Path]:
    """The tiny models and the input media of every corpus workflow (written once per test session)."""
    return make_world(tmp_path_factory.mktemp("corpus"))
