"""The graph model: what a graph file says, as typed objects.

Input values in a graph file are literals, or references written as strings:
``"@node.PORT"`` (another node's output), ``"$name"`` (a parameter). A literal string that starts with
``@`` or ``$`` is written with the sign doubled (``"@@home"`` is the literal ``"@home"``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NODE_ID = r"[A-Za-z0-9_][A-Za-z0-9_:\-]*"
PORT_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
PARAM_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
OUTPUT_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?: [A-Za-z0-9_]+)*"  # ComfyUI output names may hold single spaces
NODE_REF_RE = re.compile(rf"^@({NODE_ID})\.({OUTPUT_NAME})$")
PARAM_REF_RE = re.compile(rf"^\$({PARAM_NAME})$")

ParamType = Literal["INT", "FLOAT", "STRING", "BOOLEAN"]


@dataclass(frozen=True)
class NodeRef:
    """A connection to output ``port`` of node ``node``."""

    node: str
    port: str

    def __str__(self) -> str:
        return f"@{self.node}.{self.port}"


@dataclass(frozen=True)
class ParamRef:
    """A use of the graph parameter ``name``."""

    name: str

    def __str__(self) -> str:
        return f"${self.name}"


@dataclass(frozen=True)
class BadRef:
    """A string that starts like a reference but is not one; reported by validation."""

    text: str


InputValue = Union[NodeRef, ParamRef, BadRef, Any]


def parse_input(raw: Any) -> InputValue:
    """Turn a graph-file input value into a NodeRef, ParamRef, BadRef or literal."""
    if not isinstance(raw, str) or not raw or raw[0] not in "@$":
        return raw
    if raw.startswith(("@@", "$$")):
        return raw[1:]
    match = NODE_REF_RE.match(raw)
    if match:
        return NodeRef(match.group(1), match.group(2))
    match = PARAM_REF_RE.match(raw)
    if match:
        return ParamRef(match.group(1))
    return BadRef(raw)


def format_input(value: InputValue) -> Any:
    """The graph-file spelling of an input value (inverse of :func:`parse_input`)."""
    if isinstance(value, (NodeRef, ParamRef)):
        return str(value)
    if isinstance(value, BadRef):
        return value.text
    if isinstance(value, str) and value[:1] in ("@", "$"):
        return value[0] + value
    return value


class ParamSpec(BaseModel):
    """A graph parameter: overridable from the command line (``--set name=value``). Constraints (min, max,
    multiple_of, eight_n_plus_one, choices) are checked with the op inputs' messages; the description says why."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: ParamType
    default: Union[bool, int, float, str]
    description: str | None = None
    min: float | None = None
    max: float | None = None
    multiple_of: Union[int, float, None] = None
    eight_n_plus_one: bool = False
    choices: list[Union[bool, int, float, str]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _default_matches_type(self) -> "ParamSpec":
        if self.multiple_of is not None:  # JSON Schema's integer admits 2.0: take it as 2
            if isinstance(self.multiple_of, float) and not self.multiple_of.is_integer() or self.multiple_of < 1:
                raise ValueError(f"multiple_of must be a whole number >= 1, got {self.multiple_of!r}")
            self.multiple_of = int(self.multiple_of)
        if self.type == "INT":
            self.default = _integral(self.default)
            self.choices = None if self.choices is None else [_integral(c) for c in self.choices]
        if not value_has_type(self.default, self.type):
            raise ValueError(f"default {self.default!r} is not a {self.type}")
        for choice in self.choices or []:
            if not value_has_type(choice, self.type):
                raise ValueError(f"choice {choice!r} is not a {self.type}")
        return self


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def value_has_type(value: Any, param_type: str) -> bool:
    """Whether ``value`` is a valid value for a parameter of ``param_type`` (ints are valid FLOATs)."""
    if param_type == "BOOLEAN":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if param_type == "INT":
        return isinstance(value, int)
    if param_type == "FLOAT":
        return isinstance(value, (int, float))
    return isinstance(value, str)


class NodeSpec(BaseModel):
    """One node: the op it runs and its inputs (literals or references)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    op: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:+\- ]*$", max_length=200)
    inputs: dict[str, Any] = Field(default_factory=dict, alias="in")
    title: str | None = None

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, inputs: dict[str, Any]) -> dict[str, Any]:
        for name in inputs:
            if not re.fullmatch(PORT_NAME, name):
                raise ValueError(f"input name {name!r} is not an identifier")
        return inputs


class GraphFile(BaseModel):
    """A whole graph file (format version 1)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    ltxgraph: Union[int, float]
    name: str | None = None
    description: str | None = None
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    nodes: dict[str, NodeSpec] = Field(min_length=1)
    outputs: dict[str, str] = Field(default_factory=dict)

    @field_validator("ltxgraph")
    @classmethod
    def _format_version(cls, version: Union[int, float]) -> int:
        if isinstance(version, bool) or version != 1:
            raise ValueError(f"unsupported format version {version!r}: this ltxgraph reads format 1")
        return 1

    @field_validator("params", "nodes", "outputs")
    @classmethod
    def _names(cls, mapping: dict[str, Any], info: Any) -> dict[str, Any]:
        pattern, what = {"params": (PARAM_NAME, "parameter name"), "nodes": (NODE_ID, "node id"),
                         "outputs": (PORT_NAME, "output name")}[info.field_name]
        for name in mapping:
            if not re.fullmatch(pattern, name):
                raise ValueError(f"{what} {name!r} must match {pattern}")
        return mapping

    @field_validator("outputs")
    @classmethod
    def _output_refs(cls, outputs: dict[str, str]) -> dict[str, str]:
        for name, ref in outputs.items():
            if not NODE_REF_RE.match(ref):
                raise ValueError(f"output {name!r} must reference a node port as '@node.PORT', got {ref!r}")
        return outputs

    def parsed_inputs(self, node_id: str) -> dict[str, InputValue]:
        return {name: parse_input(raw) for name, raw in self.nodes[node_id].inputs.items()}

    def output_refs(self) -> dict[str, NodeRef]:
        return {name: parse_input(ref) for name, ref in self.outputs.items()}  # type: ignore[misc]
