"""A converted workflow's user-facing values are graph parameters named after node titles, so ``--set`` works on
a workflow as on a shipped graph (small workflows of the sample ops, and the corpus)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ltxgraph import Registry, Runner, load
from ltxgraph.comfyui.params import snake_name

from ..conftest import CORPUS, REPO
from .builder import UIWorkflow, save
from .conftest import SAMPLE_OPS

def seeded_preview(wf: UIWorkflow, title: str | None = "Seed", node_id: int = 1) -> dict:
    make = wf.node(node_id, "MakeTensor", [5, "randomize", 24], outputs=[("IMAGE", "IMAGE")])
    if title:
        make["title"] = title
    preview = wf.node(node_id + 100, "PreviewTensor", inputs=[("images", "IMAGE")])
    wf.link(make, 0, preview, "images", "IMAGE")
    return make


def test_titled_values_become_parameters_with_types_and_defaults(tmp_path: Path, registry: Registry) -> None:
    wf = UIWorkflow()
    seeded_preview(wf)
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert graph.file.nodes["1"].inputs == {"seed": "$seed", "width": "$seed_width"}
    params = {name: (spec.type, spec.default) for name, spec in graph.file.params.items()}
    assert params == {"seed": ("INT", 5), "seed_width": ("INT", 24)}
    report = Runner(registry, use_cache=False).run(graph, {"seed": 7}).report
    assert report.status == "ok" and report.params == {"seed": 7, "seed_width": 24}


def test_untitled_values_are_named_by_node_type_and_input(tmp_path: Path, registry: Registry) -> None:
    wf = UIWorkflow()
    seeded_preview(wf, title=None)
    assert set(load(save(tmp_path, wf.to_json()), registry).file.params) == {"make_tensor_seed", "make_tensor_width"}


def test_names_two_nodes_share_get_their_node_ids(tmp_path: Path, registry: Registry) -> None:
    wf = UIWorkflow()
    seeded_preview(wf, "Seed", 1)
    seeded_preview(wf, "Seed", 2)
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert set(graph.file.params) == {"seed_1", "seed_2", "seed_width_1", "seed_width_2"}
    assert graph.file.nodes["2"].inputs["seed"] == "$seed_2"


def test_a_primitive_node_feeding_several_inputs_is_one_parameter(tmp_path: Path, registry: Registry) -> None:
    wf = UIWorkflow()
    first, second = seeded_preview(wf, None, 1), seeded_preview(wf, None, 2)
    for node in (first, second):
        node["inputs"].append({"name": "seed", "type": "INT", "link": None, "widget": {"name": "seed"}})
    primitive = wf.node(50, "PrimitiveNode", [9, "fixed"], outputs=[("INT", "INT")])
    primitive["title"] = "Shared Seed"
    wf.link(primitive, 0, first, "seed")
    wf.link(primitive, 0, second, "seed")
    graph = load(save(tmp_path, wf.to_json()), registry)
    assert graph.file.nodes["1"].inputs["seed"] == graph.file.nodes["2"].inputs["seed"] == "$shared_seed"
    assert graph.file.params["shared_seed"].default == 9


def test_api_format_titles_name_parameters(tmp_path: Path, registry: Registry) -> None:
    prompt = {"4": {"class_type": "MakeTensor", "inputs": {"seed": 3, "width": 16}, "_meta": {"title": "Noise"}},
              "5": {"class_type": "PreviewTensor", "inputs": {"images": ["4", 0]}}}
    graph = load(save(tmp_path, prompt), registry)
    assert set(graph.file.params) == {"noise_seed", "noise_width"}


@pytest.mark.parametrize("text, name", [("Positive Prompt", "positive_prompt"), ("Frame Rate (Int)", "frame_rate_int"),
                                        ("Ignore First Frame？", "ignore_first_frame"), ("2nd pass", "_2nd_pass"),
                                        ("???", "")])
def test_titles_are_sanitised(text: str, name: str) -> None:
    assert snake_name(text) == name
    assert snake_name("LTXVScheduler", camel=True) == "ltxv_scheduler"


def test_corpus_workflow_exposes_what_its_user_sets() -> None:
    graph = load(CORPUS / "video_ltx2_t2v_distilled.json")
    params = graph.file.params
    assert params["positive_prompt"].type == "STRING" and params["positive_prompt"].default.startswith("A man in")
    assert (params["width"].default, params["height"].default, params["frame_count"].default) == (1280, 720, 121)
    assert params["noise_seed"].default == 45 and params["frame_rate_float"].default == 24
    assert {"ckpt_name", "text_encoder"} <= set(params)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LTXGRAPH_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "ltxgraph.cli", "--plugin", SAMPLE_OPS, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_runs_a_workflow_with_set_and_convert_writes_the_params(tmp_path: Path) -> None:
    wf = UIWorkflow()
    seeded_preview(wf)
    save(tmp_path, wf.to_json())
    ran = run_cli("run", "wf.json", "--set", "seed=7", "--report", "r.json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads((tmp_path / "r.json").read_text())["params"] == {"seed": 7, "seed_width": 24}
    unknown = run_cli("run", "wf.json", "--set", "sed=7", cwd=tmp_path)
    assert unknown.returncode == 2 and "sed" in unknown.stderr
    converted = run_cli("convert", "wf.json", "-o", "wf.yaml", cwd=tmp_path)
    assert converted.returncode == 0, converted.stderr
    written = yaml.safe_load((tmp_path / "wf.yaml").read_text())
    assert written["params"]["seed"] == {"type": "INT", "default": 5, "description": "1.seed (MakeTensor)"}
    assert written["nodes"]["1"]["in"]["seed"] == "$seed"
