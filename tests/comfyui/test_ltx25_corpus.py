"""ComfyUI's LTX-2.5 text-to-video template (tests/data/comfyui/ltx25/video_ltx2_5_t2v.json) as far as ltxgraph
reads LTX-2.5 today: it flattens, its 2.5 nodes (LTXVDualCFGGuider, ResolutionSelector) are ops whose widgets
take the template's values, and conversion refuses exactly the loaders of the split 2.5 files (VAELoader for the
video and audio VAE files, CLIPLoader for the Gemma 4 encoders), naming each node. When those loaders arrive,
this test fails and the template joins the corpus runs (tests/comfyui/test_ltx23_corpus_run.py)."""
from __future__ import annotations

import pytest

from ltxgraph import Registry, api
from ltxgraph.comfyui import widget_slots
from ltxgraph.comfyui.convert import ConversionError
from ltxgraph.comfyui.splice import DISPLAY_ONLY
from ltxgraph.comfyui.workflow import flatten_ui
from ltxgraph.loader import read_document
from ltxgraph_ops.nodes.sampling import DualCFGGuider
from ltxgraph_ops.nodes.utility import resolution_selector

from ..conftest import CORPUS

TEMPLATE = CORPUS / "ltx25" / "video_ltx2_5_t2v.json"
REGISTRY = Registry.discover()
NOT_YET = {"405:385": "VAELoader", "405:386": "VAELoader", "405:387": "CLIPLoader", "405:393": "CLIPLoader"}


def flat_nodes() -> dict:
    return flatten_ui(read_document(TEMPLATE).data).nodes


def test_every_other_node_of_the_template_is_an_op() -> None:
    nodes = flat_nodes()
    missing = {node_id: node.type for node_id, node in nodes.items()
               if node.type not in REGISTRY and node.type not in DISPLAY_ONLY}
    assert missing == NOT_YET
    assert {"LTXVDualCFGGuider", "ResolutionSelector", "UNETLoader", "LatentUpscaleModelLoader"} <= {
        node.type for node in nodes.values()}


def test_conversion_names_the_split_file_loaders_it_lacks() -> None:
    with pytest.raises(ConversionError) as refused:
        api.load(TEMPLATE)
    message = str(refused.value)
    assert message.startswith(f"{len(NOT_YET)} node(s) in this workflow are not available in ltxgraph")
    for node_id, kind in NOT_YET.items():
        assert f"node {node_id}: {kind}" in message


def widgets_of(kind: str) -> list[dict]:
    """The named widget values of every ``kind`` node of the template, mapped by our op's widget order."""
    slots = widget_slots(REGISTRY.get(kind))
    return [{name: value for name, value in zip(slots, node.widgets) if name}
            for node in flat_nodes().values() if node.type == kind]


def test_template_widgets_fit_the_new_ops() -> None:
    [resolution] = widgets_of("ResolutionSelector")
    assert resolution == {"aspect_ratio": "16:9 (Widescreen)", "megapixels": 0.9, "multiple": 32}
    assert resolution_selector(**resolution) == (1280, 736)     # the template's own note: 0.9 MP -> 1280 x 736
    guiders = widgets_of("LTXVDualCFGGuider")
    assert guiders == [{"video_cfg": 1, "audio_cfg": 1}] * 2
    spec = REGISTRY.get("LTXVDualCFGGuider")
    guider = spec.fn(None, None, None, **guiders[0])
    assert isinstance(guider, DualCFGGuider) and guider.per_modality["audio"].cfg == 1
