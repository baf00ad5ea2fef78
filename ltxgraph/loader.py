"""Read graph files (YAML, JSON) safely into a :class:`GraphFile`, remembering the line of every key so that
errors point at the file, the line and the node."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from .errors import GraphFileError, Problem, ValidationError
from .graph import GraphFile

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_YAML_NODES = 200_000
MAX_DEPTH = 64

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: same results, ~10x faster
_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}

LineMap = dict[tuple[Any, ...], int]


@dataclass
class SourceDoc:
    """A parsed document with the line (1-based) of each mapping key and list item, by path."""

    data: Any
    lines: LineMap = field(default_factory=dict)
    path: str | None = None
    text: str = ""

    def line_of(self, *path: Any) -> int | None:
        """The line of the longest known prefix of ``path``."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def parse_text(text: str, path: str | None = None) -> SourceDoc:
    """Parse YAML (JSON is YAML) with SafeLoader; refuse duplicate keys, alias bombs and deep nesting.
    JSON that YAML cannot read (surrogate-pair escapes such as emoji in ComfyUI titles) is read as JSON."""
    try:
        return _parse_yaml(text, path)
    except GraphFileError as yaml_error:
        if not text.lstrip().startswith(("{", "[")):
            raise
        try:
            return SourceDoc(json.loads(text, object_pairs_hook=_unique_keys), {}, path, text)
        except json.JSONDecodeError:
            raise yaml_error from None
        except RecursionError:
            raise GraphFileError("document nested too deeply", path) from None
        except ValueError as exc:  # duplicate keys
            raise GraphFileError(f"not valid JSON: {exc}", path) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _parse_yaml(text: str, path: str | None) -> SourceDoc:
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            doc = SourceDoc(None, {}, path, text)
            budget = [MAX_YAML_NODES]
            doc.data = None if root is None else _build(loader, root, (), doc.lines, budget)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise GraphFileError(f"not valid YAML/JSON: {exc.problem or exc}", path, line) from None
    except yaml.YAMLError as exc:
        raise GraphFileError(f"not valid YAML/JSON: {exc}", path) from None
    except GraphFileError as exc:
        if exc.file is None and path is not None:
            raise GraphFileError(exc.message, path, exc.line) from None
        raise
    except RecursionError:
        raise GraphFileError("document nested too deeply", path) from None
    return doc


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: tuple[Any, ...], lines: LineMap, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise GraphFileError("document too large or uses aliases that expand too far", None, node.start_mark.line + 1)
    if len(path) > MAX_DEPTH:
        raise GraphFileError("document nested too deeply", None, node.start_mark.line + 1)
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        raise GraphFileError(f"not valid YAML/JSON: tag {node.tag} is not allowed", None, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _build(loader, key_node, path, {}, budget)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise GraphFileError(f"mapping key must be a string, got {type(key).__name__}", None,
                                     key_node.start_mark.line + 1)
            if key in result:
                raise GraphFileError(f"duplicate key '{key}'", None, key_node.start_mark.line + 1)
            lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = _build(loader, value_node, path + (key,), lines, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, path + (i,), lines, budget) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def read_document(path: str | Path) -> SourceDoc:
    """Read and parse a graph or workflow file; errors name the file."""
    name = str(path)
    try:
        raw = Path(path).read_bytes() if Path(path).stat().st_size <= MAX_FILE_BYTES else None
    except OSError as exc:
        raise GraphFileError(f"cannot read file: {exc.strerror or exc}", name) from None
    if raw is None:
        raise GraphFileError(f"file is larger than {MAX_FILE_BYTES // 2**20} MiB", name)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GraphFileError(f"not UTF-8 text (byte {exc.start})", name) from None
    return parse_text(text, name)


def detect_format(data: Any) -> str:
    """'ltxgraph', 'comfyui-ui', 'comfyui-api' or 'unknown'."""
    if isinstance(data, dict):
        if "ltxgraph" in data:
            return "ltxgraph"
        if isinstance(data.get("nodes"), list) and "links" in data:
            return "comfyui-ui"
        if data and all(isinstance(v, dict) and "class_type" in v for v in data.values()):
            return "comfyui-api"
    return "unknown"


def describe_document(data: Any) -> str:
    """What a parsed document holds, in a few words: 'a mapping with keys 'a', 'b'', 'a list of 3 items'..."""
    if data is None:
        return "an empty document"
    if isinstance(data, dict):
        keys = ", ".join(repr(str(k)) for k in list(data)[:6]) + (", ..." if len(data) > 6 else "")
        return f"a mapping with keys {keys}" if data else "an empty mapping"
    if isinstance(data, list):
        return f"a list of {len(data)} items"
    return f"a {type(data).__name__} value"


def looks_like_a_graph(data: Any) -> bool:
    """Whether ``data`` is any kind of graph (possibly a broken one): an ltxgraph file, a ComfyUI workflow, or a
    mapping with ``nodes``."""
    return detect_format(data) != "unknown" or (isinstance(data, dict) and "nodes" in data)


def not_a_graph(doc: SourceDoc) -> GraphFileError:
    """The error for a document that is neither a graph file nor a ComfyUI workflow, saying what it holds."""
    return GraphFileError(f"not a graph or workflow: found {describe_document(doc.data)} (a graph file has "
                          "'ltxgraph: 1', 'nodes' and 'outputs'; a ComfyUI workflow has 'nodes' and 'links' (UI "
                          "format) or entries with 'class_type' (API format))", doc.path)


def graph_from_doc(doc: SourceDoc) -> GraphFile:
    """Build the GraphFile model from a parsed ltxgraph document; all schema problems reported together."""
    if not isinstance(doc.data, dict):
        raise GraphFileError("a graph file must be a mapping with 'ltxgraph: 1', 'nodes' and 'outputs'", doc.path, 1)
    try:
        return GraphFile.model_validate(doc.data)
    except PydanticValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            node = str(loc[1]) if len(loc) > 1 and loc[0] == "nodes" else None
            field_path = ".".join(str(p) for p in loc) or "(top level)"
            message = err["msg"].removeprefix("Value error, ")
            problems.append(Problem(f"{field_path}: {message}", node=node, line=doc.line_of(*loc)))
        raise ValidationError(problems, doc.path) from None
