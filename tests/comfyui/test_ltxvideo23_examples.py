"""The LTX-2.3 workflows of ComfyUI's templates (tests/data/comfyui/ltx23) and ComfyUI-LTXVideo's LTX-2.3 example workflows (example_workflows/2.3 of Lightricks/ComfyUI-LTXVideo, copied
into tests/data/comfyui/ltxvideo23) convert to ltxgraph graphs whose types and values validate; the one that
uses another pack's sampler is refused with exactly that node named."""
from __future__ import annotations

import pytest

from ltxgraph import Registry
from ltxgraph.comfyui import ConversionError, convert_document
from ltxgraph.loader import SourceDoc, detect_format, graph_from_doc, read_document
from ltxgraph.validate import validate

from ..conftest import CORPUS

EXAMPLES = CORPUS / "ltxvideo23"
REGISTRY = Registry.discover()
REFUSED = {"LTX-2.3_T2V_I2V_Single_Stage_Distilled_Full.json": {"ClownSampler_Beta"}}
CONVERTIBLE = sorted(p.name for p in EXAMPLES.glob("*.json") if p.name not in REFUSED)


TEMPLATES = CORPUS / "ltx23"
TEMPLATE_NAMES = ["LTX-2.3_T2V_I2V_Two_Stage_Distilled.json", "LTX-2.3_V2V_ICLoRA_Single_Stage_Distilled.json",
                  "video_ltx2_3_flf2v.json", "video_ltx2_3_i2v.json", "video_ltx2_3_t2v.json"]


def convert(name: str, folder=EXAMPLES):
    doc = read_document(folder / name)
    return convert_document(doc, detect_format(doc.data), REGISTRY)


def test_all_twelve_examples_are_there() -> None:
    assert len(CONVERTIBLE) + len(REFUSED) == 12


@pytest.mark.parametrize("folder, name", [(EXAMPLES, n) for n in CONVERTIBLE]
                         + [(TEMPLATES, n) for n in TEMPLATE_NAMES])
def test_workflow_converts_and_validates(folder, name: str) -> None:
    graph = convert(name, folder).graph
    doc = SourceDoc(graph, {}, f"{name} (converted)")
    resolved = validate(graph_from_doc(doc), REGISTRY, doc)
    ops = {node["op"] for node in graph["nodes"].values()}
    assert len(resolved.nodes) == len(graph["nodes"]) and "SamplerCustomAdvanced" in ops


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_example_with_other_packs_names_what_is_refused(name: str) -> None:
    with pytest.raises(ConversionError) as info:
        convert(name)
    text = str(info.value)
    assert f"{len(REFUSED[name])} node(s)" in text
    for node_type in REFUSED[name]:
        assert node_type in text


def test_union_control_runs_canny_only_its_pose_and_depth_branches_are_switched_off() -> None:
    # its pose and depth branches feed no output once its literal switches are resolved
    graph = convert("LTX-2.3_ICLoRA_Union_Control_Distilled.json").graph
    canny = [node for node in graph["nodes"].values() if node["op"] == "CannyEdgePreprocessor"]
    assert len(canny) == 1
    assert {key: canny[0]["in"][key] for key in ("low_threshold", "high_threshold", "resolution")} == {
        "low_threshold": 92, "high_threshold": 200, "resolution": 512}


def test_lipdub_uses_the_ltx23_nodes_it_needs() -> None:
    ops = {node["op"] for node in convert("LTX-2.3_ICLoRA_Lipdub_Two_Stage_Distilled.json").graph["nodes"].values()}
    assert {"LTXAddVideoICLoRAGuide", "LTXVSetAudioRefTokens", "LTXVTiledVAEDecode", "GetImageSizeAndCount"} <= ops
