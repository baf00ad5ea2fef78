"""One error hierarchy for everything a user can cause. Each error renders as one message that names where
(file, line, node, input) and what to change. Exit codes: 2 for invalid input, 1 for runtime failures."""
from __future__ import annotations

from dataclasses import dataclass


class LtxGraphError(Exception):
    """Base of every error ltxgraph reports to a user."""

    exit_code = 1


class InvalidInput(LtxGraphError):
    """The user's input (graph file, parameter, model file, media) is invalid: exit code 2."""

    exit_code = 2


class GraphFileError(InvalidInput):
    """A graph file cannot be read or parsed."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        self.message, self.file, self.line = message, file, line
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        super().__init__(where + message)


@dataclass(frozen=True)
class Problem:
    """One validation finding, located as precisely as known."""

    message: str
    node: str | None = None
    input: str | None = None
    line: int | None = None

    def render(self, file: str | None) -> str:
        where = []
        if file:
            where.append(f"{file}:{self.line}" if self.line else file)
        if self.node is not None:
            where.append(f"node '{self.node}'" + (f" input '{self.input}'" if self.input else ""))
        return (": ".join(where) + ": " if where else "") + self.message


class ValidationError(InvalidInput):
    """All problems found in a graph, reported together."""

    def __init__(self, problems: list[Problem], file: str | None = None) -> None:
        self.problems, self.file = problems, file
        lines = [p.render(file) for p in problems]
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"graph is invalid ({count}):\n  " + "\n  ".join(lines))


class InputValueError(InvalidInput):
    """An op was given a value it cannot use (raised by ops; the executor adds the node)."""


class NodeError(LtxGraphError):
    """An op failed while running; names the node and op, keeps the cause."""

    def __init__(self, node: str, op: str, cause: BaseException) -> None:
        self.node, self.op, self.cause = node, op, cause
        self.exit_code = cause.exit_code if isinstance(cause, LtxGraphError) else 1
        detail = str(cause) or type(cause).__name__
        if not isinstance(cause, LtxGraphError):
            detail = f"{type(cause).__name__}: {detail}"
        super().__init__(f"node '{node}' ({op}) failed: {detail}")


class RunInterrupted(LtxGraphError):
    """The run was stopped by the user (Ctrl-C); finished results stay cached."""

    exit_code = 130
