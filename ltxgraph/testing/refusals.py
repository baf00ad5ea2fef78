"""The refusal law: a scalar value outside its port's declared constraints (below min, above max, not a
multiple_of, not 8n+1, not among the choices, NaN for a ranged FLOAT) is refused with an
:class:`~ltxgraph.errors.InputValueError` naming the input, never another exception, through the paths a run
takes: a literal in a graph file at validation, a value arriving through a connection in the executor (a
``round_down`` port may round it down instead, with a warning, when the rounded value is valid).

The op itself is never called here: the engine refuses before it would be.
"""
from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ltxgraph.errors import InputValueError, ValidationError
from ltxgraph.executor import Executor
from ltxgraph.graph import GraphFile
from ltxgraph.registry import InputSpec, OpSpec, Port, Registry, check_value
from ltxgraph.types import members
from ltxgraph.validate import validate

SPAN = 48   # how far past a bound an invalid number is drawn
NODE = "subject"


class RefusalError(AssertionError):
    """A value outside an input's declared constraints was accepted, or refused with another exception."""


def invalid_values(port: Port) -> st.SearchStrategy[tuple[Any, str]] | None:
    """Values breaking one declared constraint of a scalar port, each with the constraint it breaks; None when the
    port declares none (or is not a scalar)."""
    kinds = members(port.type)
    if not kinds <= {"INT", "FLOAT", "STRING", "BOOLEAN"}:
        return None
    cases: list[st.SearchStrategy[tuple[Any, str]]] = []
    if port.choices is not None:
        outside = st.text(max_size=12).filter(lambda text: text not in port.choices)
        cases.append(outside.map(lambda text: (text, "choices")))
    number = "INT" if "INT" in kinds else "FLOAT" if "FLOAT" in kinds else None
    if number is not None and port.choices is None:
        cases += _invalid_numbers(port, number)
    return st.one_of(*cases) if cases else None


def _invalid_numbers(port: Port, kind: str) -> list[st.SearchStrategy[tuple[Any, str]]]:
    integers = kind == "INT"
    cases = []
    if port.min is not None:
        below = (st.integers(math.ceil(port.min) - SPAN, math.ceil(port.min) - 1) if integers else
                 st.floats(float(port.min) - _width(port.min), float(port.min), exclude_max=True))
        cases.append(below.map(lambda v: (v, "min")))
    if port.max is not None:
        above = (st.integers(math.floor(port.max) + 1, math.floor(port.max) + SPAN) if integers else
                 st.floats(float(port.max), float(port.max) + _width(port.max), exclude_min=True))
        cases.append(above.map(lambda v: (v, "max")))
    if not integers and (port.min is not None or port.max is not None):
        cases.append(st.just((math.nan, "nan")))
    low = math.ceil(port.min) if port.min is not None else 0
    high = math.floor(port.max) if port.max is not None else low + 8 * SPAN
    if integers and port.multiple_of:
        inside = [v for v in range(low, min(high, low + 8 * SPAN) + 1) if v % port.multiple_of]
        cases += [st.sampled_from(inside).map(lambda v: (v, "multiple_of"))] if inside else []
    if integers and port.eight_n_plus_one:
        inside = [v for v in range(low, min(high, low + 8 * SPAN) + 1) if (v - 1) % 8]
        cases += [st.sampled_from(inside).map(lambda v: (v, "eight_n_plus_one"))] if inside else []
    return cases


def _width(bound: float) -> float:
    """How far past ``bound`` floats are drawn: SPAN, or more where SPAN is below the float spacing."""
    return max(SPAN, abs(float(bound)) * 1e-6)


def refused_linked(input_spec: InputSpec, value: Any) -> None:
    """``value`` arriving through a connection is refused (or, on a round_down port, rounded to a valid value
    with a warning) by the executor's check; raises :class:`RefusalError` otherwise."""
    warnings: list[str] = []
    try:
        passed = Executor._checked_linked(input_spec, value, warnings)
    except InputValueError as exc:
        if f"'{input_spec.name}'" not in str(exc):
            raise RefusalError(f"linked {value!r}: the refusal does not name the input: {exc}") from exc
        return
    except Exception as exc:
        raise RefusalError(f"linked {value!r}: {type(exc).__name__} instead of an InputValueError: {exc}") from exc
    rounded = input_spec.port.round_down and warnings and check_value(input_spec, passed) is None
    if not rounded:
        raise RefusalError(f"linked {value!r} was accepted")


def refused_literal(spec: OpSpec, input_spec: InputSpec, value: Any) -> None:
    """``value`` as a literal of a graph's node is refused by validation, on that input; raises
    :class:`RefusalError` otherwise."""
    graph = GraphFile.model_validate({"ltxgraph": 1, "nodes": {NODE: {"op": spec.name,
                                                                     "in": {input_spec.name: value}}}})
    try:
        validate(graph, Registry([spec]))
    except ValidationError as exc:
        if not any(p.node == NODE and p.input == input_spec.name for p in exc.problems):
            raise RefusalError(f"literal {value!r}: validation did not name the input: {exc}") from exc
        return
    except Exception as exc:
        raise RefusalError(f"literal {value!r}: {type(exc).__name__} instead of a validation problem: {exc}") from exc
    raise RefusalError(f"literal {value!r} passed validation")


def check_refusals(spec: OpSpec, examples: int = 4) -> tuple[str, ...]:
    """Check the refusal law on every constrained scalar input of ``spec`` (``examples`` drawn invalid values
    each); returns the inputs checked, raises :class:`RefusalError` naming op, input and constraint."""
    checked = []
    for input_spec in spec.inputs:
        invalid = invalid_values(input_spec.port)
        if invalid is not None:
            _refusal_test(spec, input_spec, invalid, examples)()
            checked.append(input_spec.name)
    return tuple(checked)


def _refusal_test(spec: OpSpec, input_spec: InputSpec, invalid: st.SearchStrategy[tuple[Any, str]],
                  examples: int):
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate))
    @given(invalid)
    def run(case: tuple[Any, str]) -> None:
        value, constraint = case
        try:
            refused_linked(input_spec, value)
            refused_literal(spec, input_spec, value)
        except RefusalError as exc:
            raise RefusalError(f"op {spec.name} breaks refuses_invalid: input '{input_spec.name}' "
                               f"({constraint}): {exc}") from exc
    return run
