from __future__ import annotations

import dataclasses
import weakref
from collections import Counter
from pathlib import Path

import pytest

import ltxgraph
from ltxgraph import Runner
from ltxgraph.errors import NodeError, ValidationError
from ltxgraph.paths import Folders

from ltxgraph.registry import Registry

from .conftest import SAMPLE_OPS, counting_registry


def test_python_api_runs_like_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("ltxgraph: 1\nparams: {n: {type: INT, default: 2}}\nnodes:\n"
                    "  c: {op: Const, in: {value: $n}}\n  s: {op: Add, in: {a: '@c.VALUE', b: 40}}\n"
                    "outputs: {total: '@s.SUM', base: '@c.VALUE'}\n")
    calls: Counter = Counter()
    runner = Runner(counting_registry(calls), cache_dir=tmp_path / "cache",
                    folders=Folders((), tmp_path, tmp_path / "out"))
    graph = ltxgraph.load(path)
    assert graph.run(runner=runner).outputs == {"total": 42, "base": 2}
    assert graph.run(params={"n": 3}, runner=runner, ).outputs["total"] == 43
    only = runner.run(graph, {"n": 5}, outputs=["base"])
    assert only.outputs == {"base": 5} and [n.id for n in only.report.nodes] == ["c"]
    assert calls == Counter({"Const": 3, "Add": 2})


def test_op_failure_names_node_and_keeps_cause(tmp_path: Path, registry) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("ltxgraph: 1\nnodes:\n  f: {op: Fail, in: {value: 3}}\noutputs: {v: '@f.VALUE'}\n")
    with pytest.raises(NodeError) as info:
        ltxgraph.load(path).run(runner=Runner(registry, use_cache=False))
    assert info.value.node == "f" and isinstance(info.value.cause, RuntimeError)
    assert info.value.report.nodes[0].status == "failed"


def test_intermediates_are_released_after_last_use(tmp_path: Path, registry) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("ltxgraph: 1\nnodes:\n  a: {op: MakeTensor, in: {seed: 1}}\n"
                    "  b: {op: ScaleImage, in: {image: '@a.IMAGE'}}\n  c: {op: ScaleImage, in: {image: '@b.IMAGE'}}\n"
                    "  d: {op: BlendImages, in: {a: '@c.IMAGE', b: '@a.IMAGE'}}\noutputs: {out: '@d.IMAGE'}\n")
    plan = Runner(registry, use_cache=False).plan(ltxgraph.load(path))
    assert plan.order == ("a", "b", "c", "d")
    assert plan.release_after == {"c": ("b",), "d": ("a", "c")}


def test_an_output_nothing_reads_is_released_when_its_node_returns(tmp_path: Path) -> None:
    """A node's port that no node reads and no output returns (a sampler's ``output`` beside the used
    ``denoised_output``) is not kept alive with its used sibling until that sibling's last consumer."""
    path = tmp_path / "g.yaml"
    path.write_text("ltxgraph: 1\nnodes:\n  a: {op: MakeTensor, in: {seed: 1}}\n"
                    "  s: {op: SplitChannels, in: {image: '@a.IMAGE'}}\n"
                    "  b: {op: ScaleImage, in: {image: '@s.RED'}}\n  c: {op: ScaleImage, in: {image: '@b.IMAGE'}}\n"
                    "  d: {op: BlendImages, in: {a: '@c.IMAGE', b: '@s.RED'}}\noutputs: {out: '@d.IMAGE'}\n")
    registry = Registry.from_modules(SAMPLE_OPS)
    made: dict[str, weakref.ref] = {}
    split = registry.get("SplitChannels")

    def remembering(*args, **kwargs):
        red, rest = split.fn(*args, **kwargs)
        made["RED"], made["REST"] = weakref.ref(red), weakref.ref(rest)
        return red, rest

    registry = Registry([dataclasses.replace(spec, fn=remembering) if spec.name == "SplitChannels" else spec
                         for spec in registry])
    alive: dict[str, tuple[bool, bool]] = {}

    def watch(event) -> None:
        if event.kind == "node_started" and event.node in ("b", "c", "d"):
            alive[event.node] = (made["RED"]() is not None, made["REST"]() is not None)

    plan = Runner(registry, use_cache=False).plan(ltxgraph.load(path))
    assert plan.unused_ports == {"s": ("REST",)}
    result = ltxgraph.load(path).run(runner=Runner(registry, use_cache=False, progress=watch))
    assert result.outputs["out"].shape == (1, 8, 16, 3)
    assert alive == {"b": (True, False), "c": (True, False), "d": (True, False)}


def test_progress_reports_nodes_and_inner_steps(tmp_path: Path, registry) -> None:
    events = []

    class Recorder:
        def node_started(self, index, total, node, op):
            events.append(("start", node, index, total))

        def node_finished(self, report):
            events.append(("end", report.id, report.status))

        def step(self, node, step, total, info):
            events.append(("step", node, step, total))

    path = tmp_path / "g.yaml"
    path.write_text("ltxgraph: 1\nnodes:\n  e: {op: EmptyVideoLatent, in: {length: 17}}\noutputs: {l: '@e.LATENT'}\n")
    Runner(registry, use_cache=False, progress=Recorder()).run(ltxgraph.load(path))
    assert events == [("start", "e", 0, 1), ("step", "e", 1, 3), ("step", "e", 2, 3), ("step", "e", 3, 3),
                      ("end", "e", "executed")]


def test_linked_values_are_rounded_down_where_the_port_says_so(tmp_path: Path, registry) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("ltxgraph: 1\nnodes:\n  n: {op: Const, in: {value: 100}}\n"
                    "  e: {op: EmptyVideoLatent, in: {length: '@n.VALUE'}}\n"
                    "  w: {op: MakeTensor, in: {seed: 1, width: '@n.VALUE'}}\noutputs: {l: '@e.LATENT'}\n")
    result = ltxgraph.load(path).run(runner=Runner(registry, use_cache=False), outputs=["l"])
    assert result.outputs["l"].frames == 97
    assert result.report.nodes[1].warnings == ["input 'length': 100 rounded down to 97 (length 100 is not 8n+1: "
                                               "use 97 or 105)"]
    path.write_text(path.read_text().replace("outputs: {l: '@e.LATENT'}", "outputs: {w: '@w.IMAGE'}"))
    with pytest.raises(NodeError, match="node 'w' \\(MakeTensor\\) failed: input 'width': width 100 is not a "
                                        "multiple of 8: use 96 or 104"):
        ltxgraph.load(path).run(runner=Runner(registry, use_cache=False))


def test_an_output_that_follows_its_input_is_checked_against_that_input(tmp_path: Path, registry) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("ltxgraph: 1\nnodes:\n  e: {op: EmptyVideoLatent}\n  p: {op: PassLatent, in: {latent: '@e.LATENT'}}\n"
                    "outputs: {l: '@p.LATENT'}\n")
    result = ltxgraph.load(path).run(runner=Runner(registry, use_cache=False))
    assert result.outputs["l"].frames == 9


REPO = Path(__file__).resolve().parents[2]
SMALL = {"width": 128, "height": 128, "length": 9}


def test_an_ltx2_graph_runs_from_python_with_only_its_params(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTXGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    graph = ltxgraph.load(REPO / "graphs" / "ltx2_t2v_distilled.yaml")
    result = graph.run(params=SMALL)                       # the embedded models, the default cache and output
    [path] = result.report.files
    assert Path(path).parent == tmp_path / "output" / "ltx2" and Path(path).stat().st_size > 0
    assert result.outputs["video"].images.shape == (9, 128, 128, 3)
    assert (tmp_path / "cache" / "default-models" / "ltx2-tiny" / "checkpoints").is_dir()

    events: list[ltxgraph.ProgressEvent] = []
    again = graph.run(params={**SMALL, "prompt": "a red fox in the snow", "seed": 7}, progress=events.append)
    assert again.report.status == "ok" and "cached" in {n.status for n in again.report.nodes}
    [note] = [e.message for e in events if e.kind == "note"]
    assert note.startswith("no models folder given (Folders(models=[DIR])): using the embedded tiny")
    started = [e.node for e in events if e.kind == "node_started"]
    assert started == [e.node for e in events if e.kind == "node_finished"] == [n.id for n in again.report.nodes
                                                                             if n.status != "unused"]
    units = {(e.node, e.unit) for e in events if e.kind == "step"}
    assert {("stage1", "step"), ("stage1", "block"), ("stage2", "step"), ("prompt", "layer"),
            ("frames", "tile"), ("save", "frame")} <= units
    stage1 = [(e.step, e.total) for e in events if e.kind == "step" and (e.node, e.unit) == ("stage1", "step")]
    assert stage1 == [(i, 8) for i in range(1, 9)] and all(e.total > 0 for e in events if e.kind == "step")


def test_a_progress_watcher_must_be_callable(registry) -> None:
    with pytest.raises(TypeError, match="progress must be a callable taking a ProgressEvent"):
        Runner(registry, use_cache=False, progress="verbose")


def test_errors_raised_through_the_api_name_api_arguments(tmp_path: Path, registry) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("ltxgraph: 1\nnodes:\n  m: {op: LoadFakeModel, in: {name: ../x.safetensors}}\n"
                    "outputs: {model: '@m.MODEL'}\n")
    runner = Runner(registry, use_cache=False, default_models=False, folders=Folders((tmp_path,), tmp_path))
    with pytest.raises(ValidationError) as info:
        runner.validate(ltxgraph.load(path))
    assert "Folders(allow_outside=True) allows it" in str(info.value) and "--" not in str(info.value)
    path.write_text(path.read_text().replace("../x", "x"))
    with pytest.raises(ValidationError, match=r"needs a models folder: none was given \(Folders\(models=\[DIR\]\)\)"):
        Runner(registry, use_cache=False, default_models=False).validate(ltxgraph.load(path))


def test_the_cli_names_its_flags_for_the_same_errors(tmp_path: Path, monkeypatch, capsys) -> None:
    from ltxgraph.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.yaml").write_text("ltxgraph: 1\nnodes:\n  m: {op: LoadFakeModel, in: {name: ../x.safetensors}}\n"
                                     "outputs: {model: '@m.MODEL'}\n")
    code = main(["--plugin", "tests.engine.sample_ops", "validate", "g.yaml", "--models-dir", str(tmp_path)])
    assert code == 2 and "(--allow-outside-paths allows it)" in capsys.readouterr().err
