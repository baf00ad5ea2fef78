"""ComfyUI-LTXVideo's LTX-2 example workflows (example_workflows/2.0 of Lightricks/ComfyUI-LTXVideo, copied into
tests/data/comfyui/ltxvideo) convert, validate and run end to end on the tiny models: Gemma named as one shard of
a Hugging Face folder, a lazy switch set by a primitive resolved at conversion, bypassed subgraphs and unknown
bypassed nodes passed through, nodes that feed no output pruned."""
from __future__ import annotations

import pytest
import torch

from ltxgraph import api
from ltxgraph.paths import Folders

from ..conftest import DATA
from .corpus_runs import assert_playable_mp4, run_shrunk

EXAMPLES = DATA / "comfyui" / "ltxvideo"
# the I2V examples' Gemma enhancer looks at the input image (Gemma 3's vision tower)
IMAGE_ENHANCED = ["LTX-2_I2V_Distilled_wLora.json", "LTX-2_I2V_Full_wLora.json"]
RUNNABLE = ["LTX-2_T2V_Distilled_wLora.json", "LTX-2_T2V_Full_wLora.json", "LTX-2_ICLoRA_All_Distilled.json",
            "LTX-2_ICLoRA_All_Distilled_ref0.5.json", "LTX-2_V2V_Detailer.json"] + IMAGE_ENHANCED


def test_the_examples_are_there() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.json")) == sorted(RUNNABLE)


@pytest.mark.parametrize("name", IMAGE_ENHANCED)
def test_image_enhanced_examples_convert_and_validate(world, name: str) -> None:
    graph = api.load(EXAMPLES / name)
    runner = api.Runner(use_cache=False, folders=Folders(models=(world["models"],), input=world["input"]))
    resolved = runner.validate(graph, {"load_image_image": "distilled image.png"})
    assert resolved.params["positive_prompt"] == graph.file.params["positive_prompt"].default


@pytest.mark.parametrize("name", RUNNABLE)
def test_ltxvideo_example_runs_end_to_end(world, name: str) -> None:
    assert_playable_mp4(run_shrunk(EXAMPLES / name, world), name)


def test_lazy_switch_set_by_a_primitive_takes_its_branch_at_conversion() -> None:
    graph = api.load(EXAMPLES / "LTX-2_ICLoRA_All_Distilled.json")
    resolved = [w for w in graph.warnings if "InversionDemoLazySwitch" in w]
    assert resolved == ["node 224:222 (InversionDemoLazySwitch 'Bypass Enhancer'): switch is False, resolved at "
                        "conversion to its 'on_false' input; the other branch was left out"]
    # "Text Only" is false: the prompt goes to the text encoder as written, the Gemma enhancer is left out
    assert graph.file.nodes["224:211"].inputs["text"] == "@224:212.STRING"
    assert graph.file.nodes["224:212"].inputs["value"] == "$positive_prompt"
    assert not any(node.op == "LTXVGemmaEnhancePrompt" for node in graph.file.nodes.values())
    assert not any("InversionDemoLazySwitch" == node.op for node in graph.file.nodes.values())


def test_bypassed_subgraphs_and_unknown_bypassed_nodes_do_not_block() -> None:
    graph = api.load(EXAMPLES / "LTX-2_ICLoRA_All_Distilled.json")   # Depth and Pose groups are bypassed,
    ops = {node.op for node in graph.file.nodes.values()}            # with DWPreprocessor and DepthCrafter in them
    assert not ops & {"DWPreprocessor", "DepthCrafter", "DownloadAndLoadDepthCrafterModel"}
    saved = {node.inputs["video"] for node in graph.file.nodes.values() if node.op == "SaveVideo"}
    assert saved == {"@224:213.VIDEO"}                               # the active (Canny) group's video


def test_tiny_set_has_the_examples_sharded_gemma_folder_holding_the_same_model(world) -> None:
    from ltxgraph_ops.text_ops import text_encoder_handle
    from ltxgraph_ops.tiny.files import SHARDED_TEXT_ENCODER

    folder = world["models"] / "text_encoders"
    checkpoint = str(world["models"] / "checkpoints" / "ltx-2-19b-dev.safetensors")
    shards = sorted(p.name for p in (folder / SHARDED_TEXT_ENCODER).iterdir())
    assert shards == [f"model-0000{k}-of-00005.safetensors" for k in range(1, 6)] + ["tokenizer.model"]
    sharded = text_encoder_handle(str(folder / SHARDED_TEXT_ENCODER / shards[0]), checkpoint, None)
    single = text_encoder_handle(str(folder / "gemma_3_12B_it.safetensors"), checkpoint, None)
    prompt = ["A lighthouse stands on a cliff at dusk"]
    a, b = sharded.encode(prompt), single.encode(prompt)
    assert a.video_context.abs().sum() > 0
    assert torch.equal(a.video_context, b.video_context) and torch.equal(a.audio_context, b.audio_context)
