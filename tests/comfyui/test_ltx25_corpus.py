"""ComfyUI's LTX-2.5 templates (tests/data/comfyui/ltx25/: text-to-video, image-to-video and first-last-frame, as
the package comfyui-workflow-templates-json 0.1.123 ships them): they flatten, every node is an op (the 2.5 nodes
LTXVDualCFGGuider and ResolutionSelector take the template's widget values; the loaders of the split 2.5 files are
VAELoader, picked per file as VAE or AUDIO_VAE by what it feeds, and CLIPLoader), and they convert, validate and
run end to end on the tiny split files (sizes shrunk). Prompt enhancement (TextGenerateLTX2Prompt, which looks at
the input image) is off in all three: its lazy switch leaves that branch out, as ComfyUI does; switched on, the
enhancer (Gemma 4 E2B's stand-in, with its vision encoder) reads the image and its reply is the prompt encoded."""
from __future__ import annotations

import pytest

from ltxgraph import Registry, api
from ltxgraph.comfyui import widget_slots
from ltxgraph.comfyui.splice import DISPLAY_ONLY
from ltxgraph.comfyui.workflow import flatten_ui
from ltxgraph.loader import read_document
from ltxgraph.paths import Folders
from ltxgraph_ops.nodes.sampling import DualCFGGuider
from ltxgraph_ops.nodes.utility import resolution_selector

from ..conftest import CORPUS
from .corpus_runs import decoded, single_mp4

TEMPLATES = {kind: CORPUS / "ltx25" / f"video_ltx2_5_{kind}.json" for kind in ("t2v", "i2v", "flf2v")}
TEMPLATE = TEMPLATES["t2v"]
REGISTRY = Registry.discover()
NOT_YET: dict[str, str] = {}
# per template: its video VAE loader, audio VAE loader and the two CLIPLoaders (encoder, prompt enhancer)
LOADERS = {"t2v": ("405:385", "405:386", "405:387", "405:393"), "i2v": ("398:385", "398:386", "398:387", "398:393"),
           "flf2v": ("251:229", "251:227", "251:228", "251:246")}


def flat_nodes(path=TEMPLATE) -> dict:
    return flatten_ui(read_document(path).data).nodes


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_every_other_node_of_the_template_is_an_op(kind: str) -> None:
    nodes = flat_nodes(TEMPLATES[kind])
    missing = {node_id: node.type for node_id, node in nodes.items()
               if node.type not in REGISTRY and node.type not in DISPLAY_ONLY}
    assert missing == NOT_YET
    assert {"LTXVDualCFGGuider", "UNETLoader", "CLIPLoader", "VAELoader", "TextGenerateLTX2Prompt"} <= {
        node.type for node in nodes.values()}


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_conversion_picks_the_vae_loader_by_what_it_feeds(kind: str) -> None:
    nodes = api.load(TEMPLATES[kind]).file.nodes
    video, audio, encoder, enhancer = LOADERS[kind]
    assert (nodes[video].op, nodes[audio].op) == ("VAELoader", "VAELoaderAudio")   # video VAE, audio VAE
    assert nodes[encoder].op == nodes[enhancer].op == "CLIPLoader"


def test_template_runs_end_to_end_on_the_split_files(world) -> None:
    graph = api.load(TEMPLATE)
    graph.file.nodes["409"].inputs["megapixels"] = 0.1     # ResolutionSelector: 416 x 256 instead of 1280 x 736
    result = runner_for(TEMPLATE, world).run(graph, {"duration": 1, "frame_rate": 8})   # 1 s x 8 fps + 1 = 9 frames
    frames, width, height, rate, seconds = decoded(single_mp4(result))
    # the first stage at half of 416 x 256 (208 -> 192 in latent cells of 32), the second upscales it x2
    assert (frames, width, height, rate) == (9, 384, 256, 8.0)
    assert seconds >= 0.9 * frames / rate


def runner_for(path, world) -> api.Runner:
    return api.Runner(use_cache=False, folders=Folders(models=(world["models"],), input=world["input"],
                                                       output=world["root"] / "out" / path.stem))


def test_image_to_video_template_runs_end_to_end_on_the_split_files(world) -> None:
    """The image (resized, LTXVPreprocess'ed) replaces the first latent frame of both stages
    (LTXVImgToVideoInplace); the prompt enhancer that would read it is switched off, so it never runs."""
    path = TEMPLATES["i2v"]
    graph = api.load(path)
    graph.file.nodes["403"].inputs["megapixels"] = 0.1     # ResolutionSelector: 416 x 256 instead of 1280 x 736
    result = runner_for(path, world).run(graph, {"duration": 1, "frame_rate": 8})
    frames, width, height, rate, seconds = decoded(single_mp4(result))
    assert (frames, width, height, rate) == (9, 384, 256, 8.0)
    assert seconds >= 0.9 * frames / rate
    executed = result.report.executed()
    assert "398:349" in executed and "398:357" in executed       # both LTXVImgToVideoInplace
    assert "398:380" not in executed                              # TextGenerateLTX2Prompt: enhancement off


def test_image_to_video_template_runs_with_prompt_enhancement_on(world) -> None:
    """The template's prompt_enhance switch on: TextGenerateLTX2Prompt runs with the input image (through the tiny
    Gemma 4 prompt enhancer's vision encoder), its reply is what CLIPTextEncode encodes, and the MP4 is written."""
    path = TEMPLATES["i2v"]
    graph = api.load(path)
    graph.file.nodes["403"].inputs["megapixels"] = 0.1
    graph.file.nodes["398:380"].inputs["max_length"] = 12          # a short reply keeps the tiny run quick
    graph.file.outputs.update({"enhanced": "@398:380.generated_text", "encoded": "@398:382.output"})
    result = runner_for(path, world).run(graph, {"duration": 1, "frame_rate": 8,
                                                 "boolean_enable_prompt_enhance": True})
    frames, width, height, rate, _ = decoded(single_mp4(result))
    assert (frames, width, height, rate) == (9, 384, 256, 8.0)
    executed = result.report.executed()
    assert "398:380" in executed and "398:364" in executed         # the enhancer and the prompt's CLIPTextEncode
    enhanced = result.outputs["enhanced"]
    assert isinstance(enhanced, str) and enhanced and result.outputs["encoded"] == enhanced


def test_first_last_frame_template_guides_frame_0_and_the_last_frame(world) -> None:
    """LTXVAddGuide at frame_idx 0 and at -1 (counted from the end of the generated frames, not of the guides
    already appended, as ComfyUI's get_latent_index): 9 frames -> guides at pixel frames 0 and 8, one latent
    frame each, cropped off again by LTXVCropGuides before decoding."""
    path = TEMPLATES["flf2v"]
    graph = api.load(path)
    graph.file.outputs.update({"guided": "@251:204.positive", "guided_latent": "@251:204.latent",
                               "cropped": "@251:200.latent"})
    result = runner_for(path, world).run(graph, {"duration": 1, "frame_rate_int": 8, "width": 256, "height": 128})
    frames, width, height, rate, seconds = decoded(single_mp4(result))
    assert (frames, width, height, rate) == (9, 256, 128, 8.0)
    guides = result.outputs["guided"].guides
    assert guides.latent_frames == (1, 1) and guides.strengths == (0.7, 0.7)
    starts = guides.positions[0, 0, :, 0]                          # time start (pixel frames) of every guide token
    tokens = guides.token_counts[0]
    assert set(starts[:tokens].tolist()) == {0.0} and set(starts[tokens:].tolist()) == {8.0}
    guided, cropped = result.outputs["guided_latent"], result.outputs["cropped"]
    assert guided.samples.shape[2] == 2 + 2 and cropped.samples.shape[2] == 2
    assert guided.noise_mask[0, 0, 2:].flatten().tolist() == pytest.approx([0.3, 0.3])   # 1 - strength
    assert "251:247" not in result.report.executed()               # TextGenerateLTX2Prompt: enhancement off


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
