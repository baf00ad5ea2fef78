from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltxgraph import load
from ltxgraph.errors import GraphFileError, ValidationError
from ltxgraph.loader import detect_format, parse_text

GRAPH = """\
ltxgraph: 1
name: demo
nodes:
  a:
    op: Const
    in: {value: 1}
  b:
    op: Add
    in:
      a: "@a.VALUE"
      b: 2
outputs:
  total: "@b.SUM"
"""


def test_yaml_and_json_load_to_the_same_graph(tmp_path: Path) -> None:
    yaml_file = tmp_path / "g.yaml"
    yaml_file.write_text(GRAPH)
    json_file = tmp_path / "g.json"
    json_file.write_text(json.dumps(parse_text(GRAPH).data))
    assert load(yaml_file).file == load(json_file).file


def test_lines_are_recorded_for_keys() -> None:
    doc = parse_text(GRAPH, "g.yaml")
    assert doc.line_of("nodes", "b", "in", "b") == 11
    assert doc.line_of("nodes", "b", "in", "missing") == 9  # nearest known ancestor


@pytest.mark.parametrize("text, line, words", [
    ("ltxgraph: 1\nnodes:\n  a: {op: X}\n  a: {op: Y}\n", 4, "duplicate key 'a'"),
    ("ltxgraph: 1\nnodes: [\n", 3, "not valid YAML"),
    ("a: !!python/object:os.system {}\n", 1, "not valid YAML"),
    ("a: &x [*x]\n", 1, "nested too deeply"),
])
def test_bad_yaml_names_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(GraphFileError) as info:
        load(path)
    assert info.value.line == line
    assert words in str(info.value) and str(path) in str(info.value)


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 10) + "]")
    with pytest.raises(GraphFileError, match="too large"):
        parse_text("\n".join(lines), "bomb.yaml")


def test_schema_errors_are_collected_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("ltxgraph: 1\nnodes:\n  a:\n    op: Const\n    inn: {}\n  b:\n    in: {}\noutputs:\n  x: a.VALUE\n")
    with pytest.raises(ValidationError) as info:
        load(path)
    text = str(info.value)
    assert f"{path}:5" in text and "inn" in text            # extra field on node a
    assert f"{path}:7" in text or f"{path}:6" in text        # node b lacks op
    assert "'@node.PORT'" in text                            # bad output reference
    assert len(info.value.problems) == 3


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(GraphFileError, match="cannot read"):
        load(tmp_path / "absent.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(GraphFileError, match="UTF-8"):
        load(binary)


def test_format_detection() -> None:
    assert detect_format({"ltxgraph": 1}) == "ltxgraph"
    assert detect_format({"nodes": [], "links": []}) == "comfyui-ui"
    assert detect_format({"3": {"class_type": "KSampler", "inputs": {}}}) == "comfyui-api"
    assert detect_format([1, 2]) == "unknown"


def test_json_with_surrogate_escapes_is_read(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"ltxgraph": 1, "name": "emoji \U0001F600", "nodes": {"a": {"op": "Const"}}}))
    assert load(path).file.name == "emoji \U0001F600"
    path.write_text('{"ltxgraph": 1, "name": "\\ud83d\\ude00", "nodes": {}, "nodes": {}}')
    with pytest.raises(GraphFileError, match="duplicate key 'nodes'"):
        load(path)
