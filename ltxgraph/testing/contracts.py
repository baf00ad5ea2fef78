"""The op contracts the engine relies on, checked for drawn valid inputs.

- ``inputs_unchanged``: an op never modifies an input in place (a cached value changed by a later node would
  corrupt every run that reuses it); tensors compared bit for bit, nested values included.
- ``same_outputs``: the same inputs give equal outputs (seeded noise included): the content-hash cache is sound.
- ``output_types``: every output has its declared type; an ``=input`` output has the class of that input's value.
- ``refuses_invalid``: scalar values outside their ports' constraints are refused, naming the input
  (:mod:`ltxgraph.testing.refusals`).
- the geometry laws of :mod:`ltxgraph.testing.geometry` (latent frames, audio steps, pixel cells, fps kept),
  where the port types say they apply.

An op exempt from a law declares it: ``@op(..., exempt={"same_outputs": "reason"})``. Drawn inputs an op refuses
with an :class:`~ltxgraph.errors.InvalidInput` (e.g. two images of different sizes) are discarded, not failures;
any other exception is a failure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, reject, settings

from ltxgraph.errors import InvalidInput, LtxGraphError
from ltxgraph.registry import OpSpec

from .geometry import GEOMETRY, GEOMETRY_LAWS
from .refusals import RefusalError, check_refusals
from .strategies import InputStrategies, call, outputs
from .values import difference, snapshot

LAWS = ("inputs_unchanged", "same_outputs", "output_types", "refuses_invalid", *GEOMETRY_LAWS)


class ContractError(AssertionError):
    """An op broke a contract; the message names the op, the law and where the values differ."""


@dataclass
class OpReport:
    """What checking one op found: laws checked, exemptions declared (law -> reason), or why it was not drawn;
    drawn: inputs drawn, checked: of those, the ones the op accepted (the others it refused as invalid);
    refusing: the inputs whose out-of-constraint values were checked to be refused; model_sets: the model versions
    its model inputs were drawn from (empty for an op that reads no model); fitted: its related inputs were drawn
    to agree (its :data:`~ltxgraph.testing.strategies.Fit`)."""

    op: str
    laws: tuple[str, ...] = ()
    exempt: dict[str, str] = field(default_factory=dict)
    not_drawn: str | None = None
    drawn: int = 0
    checked: int = 0
    refusing: tuple[str, ...] = ()
    model_sets: tuple[str, ...] = ()
    fitted: bool = False


def check_call(spec: OpSpec, kwargs: dict[str, Any], strategies: InputStrategies) -> tuple[Any, ...]:
    """Run ``spec`` on ``kwargs`` twice and check every law it is not exempt from; returns its outputs."""
    laws = [law for law in LAWS if law not in spec.exempt]
    before = snapshot(kwargs)
    try:
        returned = call(spec, kwargs, strategies.tiny)
    except InvalidInput:
        reject()
    try:
        first = outputs(spec, returned)
    except LtxGraphError as exc:
        if "output_types" not in laws:
            first = returned if isinstance(returned, tuple) else (returned,)
        else:
            raise ContractError(f"op {spec.name} breaks output_types: {exc}") from exc
    if "inputs_unchanged" in laws:
        changed = difference(before, kwargs, "inputs")
        if changed:
            raise ContractError(f"op {spec.name} breaks inputs_unchanged: modified {changed}")
    if "output_types" in laws:
        _check_followed_types(spec, kwargs, first)
    for law in (law for law in GEOMETRY_LAWS if law in laws):
        broken = GEOMETRY[law](spec, kwargs, first)
        if broken:
            raise ContractError(f"op {spec.name} breaks {law}: {broken}")
    if "same_outputs" in laws:
        second = outputs(spec, call(spec, snapshot(before), strategies.tiny))
        differs = difference(first, second, "outputs")
        if differs:
            raise ContractError(f"op {spec.name} breaks same_outputs: two runs on equal inputs differ at {differs}")
    return first


def _check_followed_types(spec: OpSpec, kwargs: dict[str, Any], values: tuple[Any, ...]) -> None:
    for (name, port_type), value in zip(spec.outputs, values):
        source = kwargs.get(port_type[1:]) if port_type.startswith("=") else None
        if source is not None and not isinstance(value, type(source)):
            raise ContractError(f"op {spec.name} breaks output_types: output '{name}' follows input "
                                f"'{port_type[1:]}' ({type(source).__name__}) but is a {type(value).__name__}")


def check_op(spec: OpSpec, strategies: InputStrategies, examples: int = 4) -> OpReport:
    """Check ``spec``'s contracts on ``examples`` drawn inputs; raises :class:`ContractError` on a break."""
    report = OpReport(spec.name, tuple(law for law in LAWS if law not in spec.exempt), dict(spec.exempt),
                      fitted=spec.name in strategies.fits)
    if "refuses_invalid" in report.laws:
        try:
            report.refusing = check_refusals(spec, examples)
        except RefusalError as exc:
            raise ContractError(str(exc)) from exc
    missing = strategies.undrawable(spec)
    if missing:
        report.not_drawn = f"no strategy for input(s) {', '.join(missing)}"
        return report
    if strategies.reads_models(spec):
        report.model_sets = tuple(strategies.model_sets(spec))

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate))
    @given(strategies.inputs(spec))
    def run(kwargs: dict[str, Any]) -> None:
        report.drawn += 1
        check_call(spec, kwargs, strategies)
        report.checked += 1

    run()
    return report
