"""The drawn-input strategies (over the discovered registry, one tiny model folder per session, the built-in ops'
related inputs drawn to agree: ltxgraph/testing/fits.py) the contract tests share."""
from __future__ import annotations

import pytest

from ltxgraph.registry import Registry
from ltxgraph.testing import FITS, InputStrategies, TinyModels


@pytest.fixture(scope="session")
def strategies(tmp_path_factory) -> InputStrategies:
    return InputStrategies(Registry.discover(), TinyModels(tmp_path_factory.mktemp("contracts")), FITS)
