"""The drawn-input strategies (over the discovered registry, one tiny model folder per session, the built-in ops'
related inputs drawn to agree: tests/contracts/fits.py) the contract tests share."""
from __future__ import annotations

import pytest

from ltxgraph.registry import Registry
from ltxgraph.testing import InputStrategies, TinyModels
from tests.contracts.fits import FITS


@pytest.fixture(scope="session")
def strategies(tmp_path_factory) -> InputStrategies:
    return InputStrategies(Registry.discover(), TinyModels(tmp_path_factory.mktemp("contracts")), FITS)
