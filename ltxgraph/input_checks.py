"""Refusals of an op's input values, declared once and run twice: by validation on a graph's literal values
(before any model loads) and by the op itself before its body runs, so the two cannot drift.

An input check is a plain function whose parameters are named after the op's inputs it reads (and, optionally,
``folders``: the run's :class:`~ltxgraph.paths.Folders`); it returns the refusal message, or None when the values
are fine. ``@input_check("name")`` says which input a refusal is reported on; ``@op(..., checks=(...))`` attaches
checks to an op. A file input (``Port(file=...)``) reaches a check as the resolved path, as it reaches the op.

Validation runs a check when every input it reads is a literal, a parameter or an unconnected default, except
the inputs it declares ``presence=(...)``: of those it reads only whether they are connected, so a connection
reaches it at validation as :data:`CONNECTED`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from .errors import InputValueError, InvalidInput
from .paths import Folders

FOLDERS_PARAM = "folders"


class _Connected:
    def __repr__(self) -> str:
        return "<connected>"


CONNECTED: Any = _Connected()
"""What a presence check receives at validation for an input fed by a connection (its value is not known yet)."""


class RefusedInput(InputValueError):
    """An input check refused a value: ``input`` names the input, ``reason`` is the check's message."""

    def __init__(self, input_name: str, reason: str) -> None:
        self.input, self.reason = input_name, reason
        super().__init__(f"input '{input_name}': {reason}")


@dataclass(frozen=True)
class InputCheck:
    """A refusal of input values: ``fn`` reads the op inputs ``reads`` (and the folders when ``uses_folders``)
    and returns a message or None; refusals are reported on input ``input``. Of the inputs in ``presence`` it
    reads only whether they are connected."""

    fn: Callable[..., str | None]
    input: str
    reads: tuple[str, ...]
    uses_folders: bool = False
    presence: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return getattr(self.fn, "__name__", "check")

    def message(self, values: Mapping[str, Any], folders: Folders) -> str | None:
        """The refusal for ``values`` (input name -> value, at least ``reads``), or None."""
        kwargs = {name: values[name] for name in self.reads}
        if self.uses_folders:
            kwargs[FOLDERS_PARAM] = folders
        return self.fn(**kwargs)


def input_check(input_name: str, presence: tuple[str, ...] = ()) -> Callable[[Callable[..., str | None]], InputCheck]:
    """Declare ``fn`` an input check whose refusals are reported on input ``input_name``; of the inputs named in
    ``presence`` it reads only whether they are connected (None: not connected)."""

    def declare(fn: Callable[..., str | None]) -> InputCheck:
        params = tuple(inspect.signature(fn).parameters)
        reads = tuple(p for p in params if p != FOLDERS_PARAM)
        return InputCheck(fn, input_name, reads, FOLDERS_PARAM in params, tuple(presence))

    return declare


def refusal(build: Callable[..., Any], *args: Any) -> str | None:
    """The message of the :class:`~ltxgraph.errors.InvalidInput` that ``build(*args)`` raises, or None: a check
    made of the code that refuses (a parser, a header-only loader)."""
    try:
        build(*args)
    except InvalidInput as exc:
        return str(exc)
    return None


def refuse(checks: Iterable[InputCheck], values: Mapping[str, Any], folders: Folders) -> None:
    """Raise :class:`RefusedInput` for the first check that refuses ``values`` (what an op was called with)."""
    for check in checks:
        message = check.message(values, folders)
        if message:
            raise RefusedInput(check.input, message)
