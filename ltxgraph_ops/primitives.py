"""Primitive value nodes and small arithmetic, as ComfyUI names them (workflows use them for plumbing)."""
from __future__ import annotations

import ast
import math
import operator
from typing import Annotated, Any, Iterable

from ltxgraph import Port, op
from ltxgraph.errors import InputValueError
from ltxgraph.input_checks import input_check

INT64 = 2**63 - 1


@op("PrimitiveInt", outputs={"INT": "INT"}, category="utilities/primitive", identity_of="value")
def primitive_int(value: Annotated[int, Port("INT", min=-INT64, max=INT64, control_after_generate=True)]) -> int:
    """An integer."""
    return value


@op("PrimitiveFloat", outputs={"FLOAT": "FLOAT"}, category="utilities/primitive")
def primitive_float(value: Annotated[float, Port("FLOAT", min=-INT64, max=INT64)]) -> float:
    """A float."""
    return float(value)


@op("PrimitiveBoolean", outputs={"BOOLEAN": "BOOLEAN"}, category="utilities/primitive", identity_of="value")
def primitive_boolean(value: Annotated[bool, Port("BOOLEAN")]) -> bool:
    """A boolean."""
    return value


@op("PrimitiveString", outputs={"STRING": "STRING"}, category="utilities/primitive", identity_of="value")
def primitive_string(value: Annotated[str, Port("STRING")]) -> str:
    """A one-line string."""
    return value


@op("PrimitiveStringMultiline", outputs={"STRING": "STRING"}, category="utilities/primitive", identity_of="value")
def primitive_string_multiline(value: Annotated[str, Port("STRING", multiline=True)]) -> str:
    """A multi-line string (prompts)."""
    return value


@op("LTXFloatToInt", outputs={"INT": "INT"}, category="math/conversion")
def float_to_int(a: Annotated[float, Port("FLOAT")] = 0.0) -> int:
    """Round a float to the nearest integer (halves away from zero)."""
    return int(math.floor(abs(a) + 0.5) * (1 if a >= 0 else -1))


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_FUNCTIONS = {"min": min, "max": max, "abs": abs, "round": round, "floor": math.floor, "ceil": math.ceil,
              "sqrt": math.sqrt, "int": int, "float": float}
MAX_EXPRESSION_CHARS = 1000


def _children(node: ast.AST) -> list[ast.AST] | None:
    """The sub-expressions of an allowed expression node, None for a node that is not allowed."""
    if isinstance(node, ast.Expression):
        return [node.body]
    if isinstance(node, ast.Constant):
        return [] if isinstance(node.value, (int, float, bool)) else None
    if isinstance(node, ast.Name):
        return []
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return [node.operand]
    if isinstance(node, ast.BoolOp):
        return list(node.values)
    if isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
        return [node.left, *node.comparators]
    if isinstance(node, ast.IfExp):
        return [node.test, node.body, node.orelse]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            and not node.keywords):
        return list(node.args)
    return None


def expression_problem(expression: str, names: Iterable[str]) -> str | None:
    """Why ``expression`` cannot be computed over variables ``names`` whatever their values (too long, not
    valid, a construct that is not allowed, a name that is not connected), or None."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        return f"expression is longer than {MAX_EXPRESSION_CHARS} characters"
    try:
        pending: list[ast.AST] = [ast.parse(expression.strip(), mode="eval")]
    except SyntaxError as exc:
        return f"expression {expression!r} is not valid: {exc.msg}"
    names = set(names)
    while pending:
        node = pending.pop(0)
        children = _children(node)
        if children is None:
            return f"expression {expression!r}: '{ast.unparse(node)}' is not allowed"
        if isinstance(node, ast.Name) and node.id not in names:
            return f"expression uses '{node.id}', which is not connected"
        pending += children
    return None


def compute_expression(expression: str, variables: dict[str, float | int | bool]) -> float | int | bool:
    """The value of an arithmetic expression over ``variables``: numbers, + - * / // % **, comparisons,
    and/or/not, ``x if c else y`` and min/max/abs/round/floor/ceil/sqrt/int/float. Nothing else is run."""
    problem = expression_problem(expression, variables)
    if problem:
        raise InputValueError(problem)

    def walk(node: ast.AST) -> Any:  # an expression expression_problem passed
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return variables[node.id]
        if isinstance(node, ast.BinOp):
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise InputValueError("exponent larger than 64 in expression")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](walk(node.operand))
        if isinstance(node, ast.BoolOp):
            values = [walk(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare):
            left, result = walk(node.left), True
            for cmp, comparator in zip(node.ops, node.comparators):
                right = walk(comparator)
                result = result and _COMPARE[type(cmp)](left, right)
                left = right
            return result
        if isinstance(node, ast.IfExp):
            return walk(node.body) if walk(node.test) else walk(node.orelse)
        return _FUNCTIONS[node.func.id](*[walk(a) for a in node.args])  # type: ignore[attr-defined]

    try:
        return walk(ast.parse(expression.strip(), mode="eval"))
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as exc:
        raise InputValueError(f"expression {expression!r} failed: {exc}") from None


@input_check("expression", presence=tuple("abcdefgh"))
def expression_computable(expression: str, a: Any, b: Any, c: Any, d: Any, e: Any, f: Any, g: Any,
                          h: Any) -> str | None:
    """Refuses an expression that cannot be computed over the connected values a..h, whatever they are."""
    connected = {k for k, v in dict(a=a, b=b, c=c, d=d, e=e, f=f, g=g, h=h).items() if v is not None}
    return expression_problem(expression, connected)


def _variable(name: str):
    """An optional number input of the expression; ComfyUI names it ``values.<name>`` (a growing input group)."""
    return Annotated[float, Port("FLOAT|INT|BOOLEAN", optional=True, widget=False, comfy_name=f"values.{name}")]


@op("ComfyMathExpression", outputs={"FLOAT": "FLOAT", "INT": "INT", "BOOL": "BOOLEAN"}, category="utilities",
    checks=(expression_computable,))
def math_expression(expression: Annotated[str, Port("STRING", multiline=True)] = "a + b",
                    a: _variable("a") = None, b: _variable("b") = None, c: _variable("c") = None,
                    d: _variable("d") = None, e: _variable("e") = None, f: _variable("f") = None,
                    g: _variable("g") = None, h: _variable("h") = None) -> tuple[float, int, bool]:
    """Evaluate an arithmetic expression over the connected values a..h (safely: no Python is executed)."""
    variables = {k: v for k, v in dict(a=a, b=b, c=c, d=d, e=e, f=f, g=g, h=h).items() if v is not None}
    value = compute_expression(expression, variables)
    if isinstance(value, complex):
        raise InputValueError(f"expression {expression!r} gave a complex number")
    return float(value), int(value), bool(value)
