"""Refusals that no single node's literals show, found at validation from the graph alone (connections and file
headers, no weights): an image for prompt enhancement whose Gemma file has no vision tower (Gemma 3's or Gemma 4's)
or, for LTXVGemmaEnhancePrompt's Gemma 3 layout, a Gemma 4 one, a prompt encoded with the empty CLIP of
CheckpointLoaderSimple, and one modality's guidance given twice.
The messages are the ones the ops raise when such a graph runs."""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from ltxgraph import graph_check
from ltxgraph.graph import NodeRef
from ltxgraph_ops.gemma_image_prompt import vision_layout
from ltxgraph_ops.sampling_ops import guidance_set_twice
from ltxgraph_ops.text_ops import EMPTY_CLIP, gemma3_image_layout_only, no_vision_tower
from ltxgraph_ops.weights.safetensors_file import CheckpointError, ShardedSafetensors

IMAGE_PROMPT_OPS = {"LTXVGemmaEnhancePrompt": ("image",), "TextGenerateLTX2Prompt": ("image",)}   # (a video: unused)
GEMMA3_LAYOUT_ONLY = {"LTXVGemmaEnhancePrompt"}   # ops that lay out an image prompt for Gemma 3 alone
GEMMA_FOLDER = "text_encoders"


def _gemma_file(nodes: Mapping[str, Any], ref: Any, seen: set[str] | None = None) -> Any:
    """The Gemma file (path) behind a CLIP connection: the text_encoders file of the node it comes from, or of
    the node feeding that node's own ``clip`` input (a CLIP passed along)."""
    seen = seen or set()
    if not isinstance(ref, NodeRef) or ref.node in seen or ref.node not in nodes:
        return None
    node = nodes[ref.node]
    for name, path in node.files.items():
        if node.spec.input_by_name[name].port.file == GEMMA_FOLDER:
            return path
    return _gemma_file(nodes, node.inputs.get("clip"), seen | {ref.node})


@graph_check
def image_prompts_need_vision(nodes: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """A problem for an image connected to prompt enhancement whose Gemma file has no vision tower, or a Gemma 4
    one where the op lays the prompt out for Gemma 3."""
    for node_id, node in nodes.items():
        images = [name for name in IMAGE_PROMPT_OPS.get(node.spec.name, ()) if isinstance(node.inputs.get(name),
                                                                                          NodeRef)]
        if not images or node.inputs.get("bypass_i2v") is True:
            continue
        path = _gemma_file(nodes, node.inputs.get("clip"))
        if path is None:
            continue
        try:
            file = ShardedSafetensors.for_shard(path)
            layout = vision_layout(file)
            if layout is None:
                yield node_id, images[0], no_vision_tower(file.name)
            elif layout.generation == 4 and node.spec.name in GEMMA3_LAYOUT_ONLY:
                yield node_id, images[0], gemma3_image_layout_only(file.name)
        except CheckpointError:
            continue  # the loader refuses the file, naming it


@graph_check
def clip_not_empty(nodes: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """A problem for a prompt encoded with CheckpointLoaderSimple's CLIP, which is always empty."""
    for node_id, node in nodes.items():
        clip = node.inputs.get("clip")
        if node.spec.name == "CLIPTextEncode" and isinstance(clip, NodeRef) and clip.node in nodes and (
                nodes[clip.node].spec.name, clip.port) == ("CheckpointLoaderSimple", "CLIP"):
            yield node_id, "clip", EMPTY_CLIP


@graph_check
def guidance_once_per_modality(nodes: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """A problem for GuiderParameters that set a modality the connected parameters already set."""
    for node_id, node in nodes.items():
        if node.spec.name != "GuiderParameters":
            continue
        earlier, ref, seen = [], node.inputs.get("parameters"), {node_id}
        while isinstance(ref, NodeRef) and ref.node in nodes and ref.node not in seen and \
                nodes[ref.node].spec.name == "GuiderParameters":
            seen.add(ref.node)
            earlier.append(nodes[ref.node].inputs.get("modality"))
            ref = nodes[ref.node].inputs.get("parameters")
        message = guidance_set_twice(node.inputs.get("modality"), earlier)
        if message:
            yield node_id, "modality", message
