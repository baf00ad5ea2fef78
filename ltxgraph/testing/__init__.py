"""Contract tests for ops, usable by authors of op packages (needs the ``test`` extra: hypothesis).

``check_ops(module_or_registry)`` draws valid inputs for every op from its declaration (related inputs of the
built-in ops drawn to agree: :mod:`ltxgraph.testing.fits`) and checks the laws of :mod:`ltxgraph.testing.contracts`;
``ltxgraph ops --check MODULE`` runs it from the command line.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from types import ModuleType
from typing import Iterable, Mapping

from ltxgraph.registry import Registry

from .contracts import LAWS, ContractError, OpReport, check_call, check_op
from .fits import FITS
from .handles import TinyModels
from .strategies import Fit, InputStrategies

__all__ = ["FITS", "LAWS", "ContractError", "Fit", "InputStrategies", "OpReport", "TinyModels", "check_call",
           "check_op", "check_ops", "exemptions", "exemption_summary"]


def check_ops(ops: ModuleType | str | Registry, examples: int = 4, names: Iterable[str] | None = None,
              folder: Path | None = None, fits: Mapping[str, Fit] = FITS) -> list[OpReport]:
    """Check every op of ``ops`` (a module or package of ops, its import name, or a registry). Inputs of types
    no strategy draws directly are made by the built-in ops, so a plugin's ops are checked with them at hand; the
    related inputs of an op in ``fits`` (op name -> :data:`Fit`; the built-in ops' by default) are drawn to agree.
    Raises :class:`ContractError` (or the op's own exception) at the first break; returns one report per op."""
    registry = ops if isinstance(ops, Registry) else Registry.from_modules(ops)
    helpers = Registry.discover()
    for spec in registry:
        if spec.name not in helpers:
            helpers.add(spec)
    wanted = set(names) if names is not None else None
    with tempfile.TemporaryDirectory(prefix="ltxgraph-contracts-") as scratch:   # the tiny models, removed after
        strategies = InputStrategies(helpers, TinyModels(folder or Path(scratch)), fits)
        return [check_op(spec, strategies, examples) for spec in registry if wanted is None or spec.name in wanted]


def exemptions(registry: Registry) -> dict[str, dict[str, str]]:
    """The laws ops of ``registry`` declare themselves exempt from: law -> {op: reason}, laws and ops sorted."""
    found: dict[str, dict[str, str]] = {}
    for spec in sorted(registry, key=lambda spec: spec.name):
        for law, why in spec.exempt.items():
            found.setdefault(law, {})[spec.name] = why
    return dict(sorted(found.items()))


def exemption_summary(registry: Registry) -> str:
    """``exemptions`` as text: per law, the exempt ops and why (for a test run's log and ``ops --check``)."""
    lines = [f"{law}: {len(ops)} exempt" + "".join(f"\n  {name}: {why}" for name, why in ops.items())
             for law, ops in exemptions(registry).items()]
    return "\n".join(lines) or "no op is exempt from a law"
