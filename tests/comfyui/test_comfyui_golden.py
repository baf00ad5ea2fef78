"""ComfyUI golden outputs (tools/comfyui_golden.py): the prompts the maintainer script queues, and, for every
fixture it stored under tests/data/comfyui_golden/, ltxgraph's outputs of the same workflow compared with it."""
from __future__ import annotations

from pathlib import Path

import pytest
from safetensors import safe_open

from tools.comfyui_golden import (CAPTURED, CORPUS, FIXTURES, PINNED_COMMIT, WORKFLOWS, api_prompt,
                                  compare_with_fixture, golden_transformer_config, shrunk_graph)
from ltxgraph_ops.tiny import transformer as tiny_transformer

TOLERANCE = 1e-4


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_golden_prompt_captures_the_key_nodes_of_each_workflow(name: str, tmp_path: Path) -> None:
    graph, params = shrunk_graph(CORPUS / WORKFLOWS[name])
    prompt = api_prompt(graph, params, tmp_path)
    captures = {k: v for k, v in prompt.items() if v["class_type"] == "LtxgraphGoldenCapture"}
    kinds = {v["inputs"]["key"].split(".")[0] for v in captures.values()}
    assert {"sampled", "frames"} <= kinds                       # every corpus workflow samples and decodes
    for capture in captures.values():
        source, slot = capture["inputs"]["value"]
        assert prompt[source]["class_type"] in CAPTURED and slot == 0
    for node in prompt.values():                                 # every link names a node of the prompt
        for value in node["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
                assert value[0] in prompt


def test_golden_models_avoid_comfyuis_context_split_coincidence() -> None:
    ci = tiny_transformer.tiny_config()
    assert 2 * ci["caption_channels"] == ci["cross_attention_dim"] + ci["audio_cross_attention_dim"]   # CI's set
    with golden_transformer_config():
        golden = tiny_transformer.tiny_config()
    assert 2 * golden["caption_channels"] != golden["cross_attention_dim"] + golden["audio_cross_attention_dim"]
    assert tiny_transformer.tiny_config() == ci


def stored_fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("*.safetensors")) if FIXTURES.exists() else []


@pytest.mark.parametrize("fixture", stored_fixtures(), ids=lambda p: p.stem)
def test_ltxgraph_with_comfyuis_documented_departures_matches_comfyui(fixture: Path, tmp_path: Path) -> None:
    """Every cause of difference is known: with ComfyUI's departures from the reference emulated, ltxgraph
    gives ComfyUI's stored outputs within 1e-4 (the README's "Same as ComfyUI" lists them and their sizes)."""
    with safe_open(str(fixture), "pt") as f:
        assert f.metadata()["comfyui_commit"] == PINNED_COMMIT
    differences = compare_with_fixture(fixture, tmp_path, emulate_comfyui=True)
    assert differences and all(d <= TOLERANCE for d in differences.values()), differences
