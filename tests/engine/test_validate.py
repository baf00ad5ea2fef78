from __future__ import annotations

from pathlib import Path

import pytest

from ltxgraph import Registry, load
from ltxgraph.errors import ValidationError
from ltxgraph.paths import Folders
from ltxgraph.validate import validate


def problems_of(tmp_path: Path, registry: Registry, text: str, params=None, folders=None) -> list:
    path = tmp_path / "g.yaml"
    path.write_text(text)
    graph = load(path)
    with pytest.raises(ValidationError) as info:
        validate(graph.file, registry, graph.doc, params or {}, folders)
    return info.value.problems


def test_every_problem_is_collected_and_located(tmp_path: Path, registry: Registry) -> None:
    text = """\
ltxgraph: 1
params:
  w: {type: INT, default: 100}
nodes:
  a: {op: Cnst, in: {value: 1}}
  b: {op: Add, in: {a: "@nowhere.VALUE", c: 1}}
  c: {op: MakeTensor, in: {seed: "forty", width: $w}}
  d: {op: ScaleImage, in: {image: "@e.LATENT"}}
  e: {op: EmptyVideoLatent, in: {length: 100, mode: "zeroes"}}
  f: {op: ScaleImage, in: {image: 3, factor: "@b.SUM"}}
  g: {op: Add, in: {a: "@g.SUM", b: "@bad ref"}}
  h: {op: Add, in: {a: $missing}}
outputs:
  out: "@zzz.X"
"""
    problems = problems_of(tmp_path, registry, text)
    found = {(p.node, p.input): p for p in problems}
    assert "did you mean 'Const'" in found["a", None].message and found["a", None].line == 5
    assert "unknown node 'nowhere'" in found["b", "a"].message
    assert "has no input 'c'" in found["b", "c"].message
    assert "expects INT, got str" in found["c", "seed"].message
    assert "100 is not a multiple of 8: use 96 or 104" in found["c", "width"].message
    assert "type mismatch" in found["d", "image"].message and "VIDEO_LATENT" in found["d", "image"].message
    assert "100 is not 8n+1: use 97 or 105" in found["e", "length"].message
    assert "did you mean 'zeros'" in found["e", "mode"].message
    assert "needs a connection from a node producing IMAGE" in found["f", "image"].message
    assert "type mismatch: '@b.SUM' is INT, input expects FLOAT" in found["f", "factor"].message
    assert "malformed reference" in found["g", "b"].message
    assert "unknown parameter '$missing'" in found["h", "a"].message
    assert any("cycle: g -> g" in p.message for p in problems)
    assert any("output 'out'" in p.message and "unknown node 'zzz'" in p.message for p in problems)
    assert all(p.line for p in problems)


def test_missing_required_input_and_bad_override(tmp_path: Path, registry: Registry) -> None:
    text = "ltxgraph: 1\nparams:\n  n: {type: INT, default: 1, max: 5}\nnodes:\n  a: {op: Add, in: {b: $n}}\n"
    problems = problems_of(tmp_path, registry, text, params={"n": 9, "m": 1})
    messages = " | ".join(p.message for p in problems)
    assert "missing required input 'a' (INT)" in messages
    assert "unknown parameter 'm'" in messages
    assert "above the maximum 5" in messages


def test_union_input_accepts_each_member(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("ltxgraph: 1\nnodes:\n  e: {op: EmptyVideoLatent}\n  n: {op: LatentAny, in: {latent: '@e.LATENT'}}\n")
    resolved = validate(load(path).file, registry)
    assert resolved.nodes["e"].inputs == {"length": 9, "mode": "zeros"}


def test_escaped_literal_strings(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("ltxgraph: 1\nnodes:\n  w: {op: WriteText, in: {text: '@@home $x', filename_prefix: '$$HOME'}}\n")
    resolved = validate(load(path).file, registry)
    assert resolved.nodes["w"].inputs == {"text": "@home $x", "filename_prefix": "$HOME"}


def test_model_files_are_resolved_inside_their_folder(tmp_path: Path, registry: Registry) -> None:
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "m.safetensors").write_bytes(b"x")
    (tmp_path / "secret.safetensors").write_bytes(b"x")
    (models / "checkpoints" / "link.safetensors").symlink_to(tmp_path / "secret.safetensors")
    folders = Folders((models,), tmp_path, tmp_path / "out")
    text = ("ltxgraph: 1\nnodes:\n  ok: {op: LoadFakeModel, in: {name: m.safetensors}}\n"
            "  up: {op: LoadFakeModel, in: {name: ../secret.safetensors}}\n"
            "  abs: {op: LoadFakeModel, in: {name: " + str(tmp_path / "secret.safetensors") + "}}\n"
            "  link: {op: LoadFakeModel, in: {name: link.safetensors}}\n"
            "  gone: {op: LoadFakeModel, in: {name: absent.safetensors}}\n")
    problems = {p.node: p.message for p in problems_of(tmp_path, registry, text, folders=folders)}
    assert set(problems) == {"up", "abs", "link", "gone"}
    assert "not a path that leaves it" in problems["up"] and "not a path that leaves it" in problems["abs"]
    assert "outside" in problems["link"]
    assert "not found" in problems["gone"]


def test_parameter_constraints_say_what_to_use_and_why(tmp_path: Path, registry: Registry) -> None:
    text = ("ltxgraph: 1\nparams:\n  width: {type: INT, default: 1000, multiple_of: 64,\n"
            "          description: 'pixels; stage 1 runs at half resolution'}\n"
            "  length: {type: INT, default: 100, eight_n_plus_one: true}\n"
            "nodes:\n  a: {op: MakeTensor, in: {seed: 1}}\n")
    messages = [p.message for p in problems_of(tmp_path, registry, text)]
    assert messages == ["parameter 'width' = 1000 is not a multiple of 64: use 960 or 1024 "
                        "(pixels; stage 1 runs at half resolution)",
                        "parameter 'length' = 100 is not 8n+1: use 97 or 105"]


def test_outputs_that_follow_an_input_take_its_type(tmp_path: Path, registry: Registry) -> None:
    ok = ("ltxgraph: 1\nnodes:\n  e: {op: EmptyVideoLatent}\n  p: {op: PassLatent, in: {latent: '@e.LATENT'}}\n"
          "  q: {op: PassLatent, in: {latent: '@p.LATENT'}}\n  n: {op: LatentAny, in: {latent: '@q.LATENT'}}\n")
    path = tmp_path / "g.yaml"
    path.write_text(ok)
    validate(load(path).file, registry)
    bad = ok + "  s: {op: ScaleImage, in: {image: '@q.LATENT'}}\n"
    problems = problems_of(tmp_path, registry, bad)
    assert [p.message for p in problems] == ["type mismatch: '@q.LATENT' is VIDEO_LATENT, input expects IMAGE"]
