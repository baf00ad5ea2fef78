"""ComfyUI's LTX-2.5 text-to-video template (tests/data/comfyui/ltx25/video_ltx2_5_t2v.json): it flattens, every
node is an op (its 2.5 nodes LTXVDualCFGGuider and ResolutionSelector take the template's widget values; the
loaders of the split 2.5 files are VAELoader, picked per file as VAE or AUDIO_VAE by what it feeds, and
CLIPLoader), and it converts, validates and runs end to end on the tiny split files (sizes shrunk)."""
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

TEMPLATE = CORPUS / "ltx25" / "video_ltx2_5_t2v.json"
REGISTRY = Registry.discover()
NOT_YET: dict[str, str] = {}


def flat_nodes() -> dict:
    return flatten_ui(read_document(TEMPLATE).data).nodes


def test_every_other_node_of_the_template_is_an_op() -> None:
    nodes = flat_nodes()
    missing = {node_id: node.type for node_id, node in nodes.items()
               if node.type not in REGISTRY and node.type not in DISPLAY_ONLY}
    assert missing == NOT_YET
    assert {"LTXVDualCFGGuider", "ResolutionSelector", "UNETLoader", "LatentUpscaleModelLoader"} <= {
        node.type for node in nodes.values()}


def test_conversion_picks_the_vae_loader_by_what_it_feeds() -> None:
    nodes = api.load(TEMPLATE).file.nodes
    assert (nodes["405:385"].op, nodes["405:386"].op) == ("VAELoader", "VAELoaderAudio")   # video VAE, audio VAE
    assert nodes["405:387"].op == nodes["405:393"].op == "CLIPLoader"


def test_template_runs_end_to_end_on_the_split_files(world) -> None:
    graph = api.load(TEMPLATE)
    graph.file.nodes["409"].inputs["megapixels"] = 0.1     # ResolutionSelector: 416 x 256 instead of 1280 x 736
    runner = api.Runner(use_cache=False, folders=Folders(models=(world["models"],), input=world["input"],
                                                         output=world["root"] / "out" / TEMPLATE.stem))
    result = runner.run(graph, {"duration": 1, "frame_rate": 8})    # 1 s x 8 fps + 1 = 9 frames
    frames, width, height, rate, seconds = decoded(single_mp4(result))
    # the first stage at half of 416 x 256 (208 -> 192 in latent cells of 32), the second upscales it x2
    assert (frames, width, height, rate) == (9, 384, 256, 8.0)
    assert seconds >= 0.9 * frames / rate


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
