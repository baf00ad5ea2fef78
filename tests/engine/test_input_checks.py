"""Input checks: one declaration refuses a value at validation (literals; connections only for presence checks)
and when the op runs (whatever it is called with), with the same input and message."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import pytest

from ltxgraph import Port, Registry, Runner, load, op
from ltxgraph.errors import NodeError, ValidationError
from ltxgraph.input_checks import RefusedInput, input_check
from ltxgraph.paths import Folders
from ltxgraph.registry import OpDeclarationError


@input_check("high")
def ordered(low: int, high: int) -> str | None:
    return f"high {high} is below low {low}" if high < low else None


@input_check("extra", presence=("extra",))
def needs_extra(flag: bool, extra: Any) -> str | None:
    return "flag on needs extra connected" if flag and extra is None else None


@input_check("name")
def stays_inside(name: str, folders: Folders) -> str | None:
    return None if not Path(name).is_absolute() else f"{name} is outside {folders.output.name}"


@op("Span", outputs={"INT": "INT"}, checks=(ordered,))
def span(low: Annotated[int, Port("INT")] = 0, high: Annotated[int, Port("INT")] = 1) -> int:
    return high - low


@op("Flag", outputs={"BOOLEAN": "BOOLEAN"})
def flag() -> bool:
    return True


@op("Flagged", outputs={"INT": "INT"}, checks=(needs_extra, stays_inside))
def flagged(flag: Annotated[bool, Port("BOOLEAN")] = False,
            extra: Annotated[int | None, Port("INT", optional=True, widget=False)] = None,
            name: Annotated[str, Port("STRING")] = "out") -> int:
    return extra or 0


def registry() -> Registry:
    module = ModuleType("checked_ops")
    for fn in (span, flag, flagged):
        fn.__module__ = module.__name__
        setattr(module, fn.__name__, fn)
    return Registry.from_modules(module)


def test_the_op_runs_its_checks_before_its_body() -> None:
    assert span(1, 3) == 2
    with pytest.raises(RefusedInput) as refused:
        span(low=3, high=1)
    assert (refused.value.input, refused.value.reason) == ("high", "high 1 is below low 3")
    with pytest.raises(RefusedInput, match="flag on needs extra connected"):
        flagged(flag=True)


def test_a_check_must_read_inputs_of_its_op() -> None:
    def only_low(low: Annotated[int, Port("INT")] = 0) -> int:
        return low

    with pytest.raises(OpDeclarationError, match=r"reads unknown inputs \['high'\]"):
        op("Bad", outputs={"INT": "INT"}, checks=(ordered,))(only_low)
    with pytest.raises(OpDeclarationError, match="@input_check"):
        op("Bad", outputs={"INT": "INT"}, checks=(lambda low: None,))(only_low)


def _problems(tmp_path: Path, nodes: str) -> list:
    (tmp_path / "g.yaml").write_text(f"ltxgraph: 1\nnodes:\n{nodes}")
    runner = Runner(registry(), use_cache=False, folders=Folders((), tmp_path, tmp_path / "out"))
    with pytest.raises(ValidationError) as refused:
        runner.validate(load(tmp_path / "g.yaml"))
    return [(p.node, p.input, p.message) for p in refused.value.problems]


def test_validation_runs_checks_on_literals_and_presence_on_connections(tmp_path: Path) -> None:
    # e: flag arrives through a connection, so needs_extra (which reads its value) waits for the run
    found = _problems(tmp_path, """\
  a: {op: Span, in: {low: 3, high: 1}}
  b: {op: Span, in: {low: "@a.INT", high: 1}}
  c: {op: Flagged, in: {flag: true}}
  d: {op: Flagged, in: {flag: true, extra: "@a.INT", name: /abs}}
  e: {op: Flagged, in: {flag: "@f.BOOLEAN"}}
  f: {op: Flag, in: {}}
""")
    assert found == [("a", "high", "high 1 is below low 3"), ("c", "extra", "flag on needs extra connected"),
                     ("d", "name", "/abs is outside out")]


def test_a_run_refuses_a_connected_value_with_the_same_message(tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text("ltxgraph: 1\nnodes:\n  a: {op: Span, in: {low: 5, high: 9}}\n"
                                     "  b: {op: Span, in: {low: '@a.INT', high: 1}}\noutputs: {x: '@b.INT'}\n")
    runner = Runner(registry(), use_cache=False, folders=Folders((), tmp_path, tmp_path / "out"))
    with pytest.raises(NodeError) as failed:
        runner.run(load(tmp_path / "g.yaml"))
    assert failed.value.node == "b" and str(failed.value.cause) == "input 'high': high 1 is below low 4"
