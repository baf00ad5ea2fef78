"""The real LTX-2 ComfyUI workflows of tests/data/comfyui (copied from the project's reference corpus): every one flattens cleanly (subgraphs, reroutes, bypassed
and muted nodes resolved), and every node it runs is a node ComfyUI defines."""
from __future__ import annotations

import json

import pytest

from ltxgraph.comfyui.workflow import Link, flatten_ui
from ltxgraph.loader import read_document

from ..conftest import CORPUS, REFERENCE

WORKFLOWS = sorted(p.name for p in CORPUS.glob("*.json"))
DEFS = json.loads((REFERENCE / "comfyui_node_defs.json").read_text())["nodes"]


def test_the_corpus_is_there() -> None:
    assert len(WORKFLOWS) == 7


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_flattens_to_known_nodes_with_resolved_links(name: str) -> None:
    flat = flatten_ui(read_document(CORPUS / name).data)
    assert {"SaveVideo", "SamplerCustomAdvanced"} <= {n.type for n in flat.nodes.values()}
    for node in flat.nodes.values():
        assert node.type in DEFS and node.type not in {"Reroute", "PrimitiveNode", "Note", "MarkdownNote"}
        for source in node.inputs.values():
            if isinstance(source, Link):
                assert source.node in flat.nodes, f"{node.id}.{source} dangles"


def test_subgraph_widgets_are_promoted_by_position() -> None:
    flat = flatten_ui(read_document(CORPUS / "video_ltx2_i2v_lora.json").data)
    seed_users = [n for n in flat.nodes.values() if n.type == "RandomNoise"]
    assert any(getattr(n.inputs.get("noise_seed"), "value", None) == 4545545 for n in seed_users)
    assert any("missing link" in w for w in flatten_ui(read_document(CORPUS / "video_ltx2_i2v_lora.json").data).warnings)
