"""Validation promises what runs: every refusal a run can raise from a graph's literal content is raised by
validation first, with the same node, input and message, and without reading a weight.

One table holds a graph per refusal: the node under test (id "subject") with the offending literal, its other
required inputs fed by the cheapest producers of their types (file names and scalars of those feeders arrive
through connections, so nothing else is checked). For an input check the run's refusal is produced by calling
the op itself with the same literals. A second table accounts for every ``raise InputValueError`` in the op
package: refused at validation by a named check, or known only at run time, with the reason.
"""
from __future__ import annotations

import ast
import wave
from pathlib import Path
from typing import Any

import pytest
import torch

from ltxgraph import Registry
from ltxgraph.context import OpContext
from ltxgraph.errors import Problem, ValidationError
from ltxgraph.graph import GraphFile
from ltxgraph.input_checks import RefusedInput
from ltxgraph.paths import Folders
from ltxgraph.types import accepts, is_scalar, members
from ltxgraph.validate import validate
from ltxgraph_ops.sampling.preview import png_bytes
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile, ShardedSafetensors
from ltxgraph_ops.weights.writing import save_atomic
from tests.conftest import REPO

REGISTRY = Registry.discover()
EMPTY_CLIP = ("CheckpointLoaderSimple", "CLIP")   # always empty: no feeder
PRIMITIVES = {"STRING": ("PrimitiveString", "x"), "INT": ("PrimitiveInt", 1), "FLOAT": ("PrimitiveFloat", 1.0),
              "BOOLEAN": ("PrimitiveBoolean", False)}

# (op, literal inputs of the subject, inputs to connect although optional, input reported on, message start)
INPUT_CHECK_CASES = [
    ("ManualSigmas", {"sigmas": "1, nan, 0"}, (), "sigmas", "sigma 'nan' in"),
    ("ManualSigmas", {"sigmas": "1e999, 0.5, 0"}, (), "sigmas", "sigmas must be finite and non-negative"),
    ("ManualSigmas", {"sigmas": "1, -0.5"}, (), "sigmas", "sigmas must be finite and non-negative"),
    ("ManualSigmas", {"sigmas": "0.5, 0.9, 0"}, (), "sigmas", "sigmas must fall from noise to clean: sigma 1"),
    ("ManualSigmas", {"sigmas": " , "}, (), "sigmas", "sigmas ' , ' holds no numbers"),
    ("MultimodalGuider", {"skip_blocks": "29, last"}, (), "skip_blocks", "skip_blocks '29, last' must be block"),
    ("LTXVSetAudioVideoMaskByTime", {"start_time": 5.0, "end_time": 2.0}, (), "end_time",
     "end_time 2.0 is before start_time 5.0"),
    ("LTXVSetAudioVideoMaskByTime", {"video_fps": 0.0}, (), "video_fps", "video_fps must be > 0"),
    ("LTXVExtendAVLatentByTime", {"video_fps": 0.0}, (), "video_fps", "video_fps must be > 0"),
    ("Canny", {"low_threshold": 0.8, "high_threshold": 0.4}, (), "low_threshold", "low_threshold 0.8 is above"),
    ("LTXVReferenceAudio", {"start_percent": 0.9, "end_percent": 0.1}, (), "end_percent",
     "start_percent 0.9 is after end_percent 0.1"),
    ("ComfySwitchNode", {"switch": True}, ("on_false",), "switch", "switch is on but on_true has no value"),
    ("SimpleMath+", {"value": "a *"}, (), "value", "expression 'a *' is not valid"),
    ("SimpleMath+", {"value": "x * 2"}, (), "value", "expression uses 'x', which is not connected"),
    ("SimpleMath+", {"value": "__import__('os')"}, (), "value", "expression \"__import__('os')\": "),
    ("ComfyMathExpression", {"expression": "a + c"}, ("a",), "expression", "expression uses 'c', which is not"),
    ("LTXVSparseTrackEditor", {"points_store": "[[{"}, (), "points_store", "points_store is not valid JSON"),
    ("LTXVDrawTracks", {"tracks": "[\"[1,\"]"}, (), "tracks", "a track is not valid JSON"),
    ("LTXVDilateVideoMask", {}, (), "mask", "connect a mask or an image_as_mask"),
    ("ResizeImageMaskNode", {"resize_type": "match size"}, (), "match", "resize_type 'match size' needs"),
    ("TextGenerateLTX2Prompt", {}, ("audio",), "audio", "audio: Gemma 3 takes no audio input"),
    ("VAEDecodeTiled", {"tile_size": 256, "overlap": 256}, (), "overlap", "overlap 256 must be smaller than"),
    ("LTXVLoopingSampler", {"temporal_tile_size": 32, "temporal_overlap": 32}, (), "temporal_overlap",
     "temporal_overlap 32 must be smaller than temporal_tile_size 32"),
    ("LTXVLoopingSampler", {}, ("optional_positive_conditionings",), "optional_positive_conditionings",
     "per-tile prompts (optional_positive_conditionings)"),
    ("LTXVLoopingSampler", {}, ("optional_negative_index_latents",), "optional_negative_index_latents",
     "negative-index latents (optional_negative_index_latents) are not supported"),
    ("LTXVLoopingSampler", {"optional_cond_image_indices": "0, forty"}, (), "optional_cond_image_indices",
     "optional_cond_image_indices '0, forty' must be frame numbers"),
    ("SaveVideo", {"filename_prefix": "../elsewhere/clip"}, (), "filename_prefix",
     "'../elsewhere/clip' must be a name inside"),
    ("SaveVideo", {"filename_prefix": "/tmp/clip"}, (), "filename_prefix", "'/tmp/clip' must be a name inside"),
    ("SaveImage", {"filename_prefix": "frames/../../up"}, (), "filename_prefix", "'frames/../../up' must be"),
    ("BasicScheduler", {"steps": 10, "denoise": 1e-9}, (), "denoise", "denoise 1e-09 with 10 steps asks for a"),
    ("PadAudioToDuration", {"frames": 121, "fps": 1e-6}, (), "duration", "frames 121 / fps 1e-06 asks for"),
    ("LoadImage", {"image": "notes.png"}, (), "image", "{input}/notes.png: cannot be read as an image"),
    ("LoadImage", {"image": "tone.wav"}, (), "image", "{input}/tone.wav: holds no image"),
    ("LoadVideo", {"file": "tone.wav"}, (), "file", "{input}/tone.wav: has no video stream"),
    ("LoadAudio", {"audio": "still.png"}, (), "audio", "{input}/still.png: has no audio"),
    ("CheckpointLoaderSimple", {"ckpt_name": "gemma-text-only.safetensors"}, (), "ckpt_name",
     "{models}/gemma-text-only.safetensors: no LTX-2 transformer in this file"),
    ("UNETLoader", {"unet_name": "gemma-text-only.safetensors"}, (), "unet_name",
     "{models}/gemma-text-only.safetensors: no LTX-2 transformer in this file"),
    ("ModelPatchLoader", {"name": "gemma-text-only.safetensors"}, (), "name",
     "{models}/gemma-text-only.safetensors: not an LTX duration head"),
    ("LTXVDurationPredictor", {"min_seconds": 5.0, "max_seconds": 2.0}, (),
     "max_seconds", "max_seconds 2.0 is below min_seconds 5.0"),
    ("VAELoader", {"vae_name": "gemma-text-only.safetensors"}, (), "vae_name",
     "{models}/gemma-text-only.safetensors: header has no 'vae' config section"),
    ("VAELoaderAudio", {"vae_name": "projection-only.safetensors"}, (), "vae_name",
     "projection-only.safetensors is a video VAE file, not an audio VAE: connect it to a VAE input"),
    ("CLIPLoader", {"clip_name": "projection-only.safetensors"}, (), "clip_name",
     "{models}/projection-only.safetensors"),
    ("LTXVAudioVAELoader", {"ckpt_name": "projection-only.safetensors"}, (), "ckpt_name",
     "{models}/projection-only.safetensors: header has no 'audio_vae' config section"),
    ("LTXAVTextEncoderLoader", {"text_encoder": "projection-only.safetensors",
                                "ckpt_name": "projection-only.safetensors"}, (), "text_encoder",
     "{models}/projection-only.safetensors: not a Gemma 3 text encoder"),
    ("LTXVGemmaCLIPModelLoader", {"gemma_path": "gemma-text-only.safetensors",
                                  "ltxv_path": "gemma-text-only.safetensors"}, (), "gemma_path",
     "{models}/gemma-text-only.safetensors: no 'text_embedding_projection.aggregate_embed.weight'"),
]

TEXT_ENCODER = {"text_encoder": "gemma-text-only.safetensors", "ckpt_name": "projection-only.safetensors"}
# (extra nodes, the subject, input reported on, message): refusals of graph checks (connections and headers)
GRAPH_CHECK_CASES = [
    ({"te": {"op": "LTXAVTextEncoderLoader", "in": TEXT_ENCODER}},
     ("LTXVGemmaEnhancePrompt", {"clip": "@te.CLIP"}, ("image",)), "image",
     "gemma-text-only.safetensors: this Gemma file has no vision tower"),
    ({"te": {"op": "LTXAVTextEncoderLoader", "in": TEXT_ENCODER}},
     ("TextGenerateLTX2Prompt", {"clip": "@te.CLIP"}, ("image",)), "image",
     "gemma-text-only.safetensors: this Gemma file has no vision tower"),
    ({"ckpt": {"op": "CheckpointLoaderSimple", "in": {"ckpt_name": "@name.STRING"}}},
     ("CLIPTextEncode", {"clip": "@ckpt.CLIP", "text": "a lighthouse"}, ()), "clip",
     "the CLIP input is empty: LTX-2 checkpoints carry no text encoder"),
    ({"first": {"op": "GuiderParameters", "in": {"modality": "AUDIO"}}},
     ("GuiderParameters", {"modality": "AUDIO", "parameters": "@first.GUIDER_PARAMETERS"}, ()), "modality",
     "guidance for AUDIO is already set by the connected parameters"),
]


# ------------------------------------------------------------------------------------------ building graphs


def _producers() -> dict[str, tuple[str, str]]:
    """Per port type, (op, output port) of a producer whose required inputs are all producible without it:
    built in rounds (ops with only scalar inputs first), the fewest required inputs winning within a round.
    Ops with presence checks are left out, so a feeder is never refused itself."""
    found: dict[str, tuple[str, str]] = {}
    while True:
        added = {}
        for spec in REGISTRY:
            if any(check.presence for check in spec.checks):
                continue
            needs = [s.port.type for s in spec.inputs if s.required and not is_scalar(s.port.type)]
            if not all(any(t in found for t in members(need)) for need in needs):
                continue
            for port, output_type in spec.outputs:
                if output_type not in found and not output_type.startswith("=") and (spec.name, port) != EMPTY_CLIP:
                    cost = (len(needs), spec.name, port)
                    added[output_type] = min(added.get(output_type, cost), cost)
        if not added:
            return found
        found.update({t: (name, port) for t, (_, name, port) in added.items()})


PRODUCERS = _producers()


class GraphBuilder:
    """Nodes of a test graph: feeders are added on demand, one per type, their own inputs connected."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {"name": {"op": "PrimitiveString", "in": {"value": "x"}}}
        self.fed: dict[str, str] = {}

    def feed(self, input_type: str) -> str:
        """A reference to a node output accepted by an input of ``input_type``."""
        port_type = sorted(t for t in members(input_type) if t in PRODUCERS or is_scalar(t))[0]
        if port_type not in self.fed:
            if is_scalar(port_type):
                op, value = PRIMITIVES[port_type]
                node_id = f"p_{port_type.lower()}"
                self.nodes[node_id] = {"op": op, "in": {"value": value}}
                self.fed[port_type] = f"@{node_id}.{port_type}"
            else:
                op, port = PRODUCERS[port_type]
                node_id = f"feed_{port_type.lower()}"
                self.fed[port_type] = f"@{node_id}.{port}"
                self.nodes[node_id] = {"op": op, "in": self.inputs(op, {}, ())}
        return self.fed[port_type]

    def inputs(self, op: str, given: dict[str, Any], connect: tuple[str, ...]) -> dict[str, Any]:
        """``given``, plus a connection for every other required input and for ``connect``."""
        spec = REGISTRY.get(op)
        inputs = dict(given)
        for input_spec in spec.inputs:
            wanted = input_spec.required or input_spec.name in connect
            if input_spec.name not in inputs and wanted:
                inputs[input_spec.name] = self.feed(input_spec.port.type)
        return inputs

    def graph(self, extra: dict[str, dict[str, Any]], op: str, given: dict[str, Any],
              connect: tuple[str, ...]) -> GraphFile:
        for node_id, node in extra.items():
            self.nodes[node_id] = {"op": node["op"], "in": self.inputs(node["op"], node["in"], ())}
        self.nodes["subject"] = {"op": op, "in": self.inputs(op, given, connect)}
        return GraphFile.model_validate({"ltxgraph": 1, "nodes": self.nodes})


def problems(graph: GraphFile, folders: Folders) -> list[Problem]:
    with pytest.raises(ValidationError) as refused:
        validate(graph, REGISTRY, folders=folders)
    return refused.value.problems


# ------------------------------------------------------------------------------------------ files


def _safetensors(path: Path, keys: list[str], config: dict | None = None) -> None:
    metadata = {"config": __import__("json").dumps(config)} if config is not None else {}
    save_atomic(path, {key: torch.zeros(1, 1) for key in keys}, metadata)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Folders:
    """An input folder with a text file named .png, a WAV and a PNG; a models folder of header-size files:
    a text-only Gemma, and a checkpoint holding only the LTX-2.0 text projection."""
    root = tmp_path_factory.mktemp("refusals")
    (root / "input").mkdir()
    (root / "input" / "notes.png").write_text("not an image")
    (root / "input" / "still.png").write_bytes(png_bytes(torch.zeros(4, 4, 3, dtype=torch.uint8)))
    with wave.open(str(root / "input" / "tone.wav"), "wb") as tone:
        tone.setnchannels(1), tone.setsampwidth(2), tone.setframerate(8000)
        tone.writeframes(bytes(1600))
    (root / "models").mkdir()
    _safetensors(root / "models" / "gemma-text-only.safetensors",
                 ["model.embed_tokens.weight", "model.layers.0.self_attn.q_norm.weight"])
    _safetensors(root / "models" / "projection-only.safetensors",
                 ["text_embedding_projection.aggregate_embed.weight"], {"vae": {}})
    return Folders(models=(root / "models",), input=root / "input", output=root / "output")


@pytest.fixture(autouse=True)
def no_weights_read(monkeypatch) -> None:
    """Validation reads headers only: reading any tensor of a safetensors file fails the test."""
    def refuse(self, key, *args):
        raise AssertionError(f"validation read tensor {key} of {getattr(self, 'path', self)}")
    for cls in (SafetensorsFile, ShardedSafetensors):
        monkeypatch.setattr(cls, "read", refuse)
        monkeypatch.setattr(cls, "read_rows", refuse)


def _expected(message: str, folders: Folders) -> str:
    return message.format(input=folders.input.resolve(), models=folders.models[0].resolve())


# ------------------------------------------------------------------------------------------ the promise


@pytest.mark.parametrize("op, given, connect, input_name, message", INPUT_CHECK_CASES,
                         ids=[f"{case[0]}-{case[3]}-{i}" for i, case in enumerate(INPUT_CHECK_CASES)])
def test_validation_refuses_what_the_op_refuses(op, given, connect, input_name, message, folders) -> None:
    found = problems(GraphBuilder().graph({}, op, given, connect), folders)
    assert [(p.node, p.input) for p in found] == [("subject", input_name)], found
    assert found[0].message.startswith(_expected(message, folders)), found[0].message
    # the run: the op, called with the values the executor would pass, refuses with the same check first
    spec = REGISTRY.get(op)
    values: dict[str, Any] = {name: object() for name in connect}
    for name, value in given.items():
        port = spec.input_by_name[name].port
        values[name] = str(folders.find(port.file, value)) if port.file else value
    for input_spec in spec.inputs:
        if input_spec.name not in values:
            values[input_spec.name] = object() if input_spec.required else input_spec.default
    if spec.context_param:
        values[spec.context_param] = OpContext("subject", folders)
    with pytest.raises(RefusedInput) as refused:
        spec.fn(**values)
    assert (refused.value.input, refused.value.reason) == (found[0].input, found[0].message)


@pytest.mark.parametrize("extra, subject, input_name, message", GRAPH_CHECK_CASES,
                         ids=[case[1][0] + "-" + case[2] for case in GRAPH_CHECK_CASES])
def test_validation_refuses_features_the_models_lack(extra, subject, input_name, message, folders) -> None:
    found = problems(GraphBuilder().graph(extra, *subject), folders)
    assert [(p.node, p.input) for p in found] == [("subject", input_name)], found
    assert found[0].message.startswith(message), found[0].message


def test_graph_check_messages_are_the_runs() -> None:
    from ltxgraph.errors import InputValueError
    from ltxgraph_ops.nodes.text import comfyui_image_chat
    from ltxgraph_ops.text_ops import TextEncoderHandle
    text_only = TextEncoderHandle("gemma-text-only.safetensors", None, None, None)
    with pytest.raises(InputValueError) as refused:
        text_only.image_prompt("a cat", torch.zeros(4, 4, 3))
    with pytest.raises(InputValueError, match=GRAPH_CHECK_CASES[0][3]):         # TextGenerateLTX2Prompt's image
        comfyui_image_chat(text_only, "a cat", torch.zeros(1, 4, 4, 3))
    assert str(refused.value).startswith(GRAPH_CHECK_CASES[0][3])


def test_a_graph_with_every_value_fine_passes_the_same_checks(folders) -> None:
    graph = GraphBuilder().graph({}, "ManualSigmas", {"sigmas": "1.0, 0.725, 0.421875, 0.0"}, ())
    validate(graph, REGISTRY, folders=folders)
    graph = GraphBuilder().graph({}, "SaveVideo", {"filename_prefix": "video/run"}, ())
    validate(graph, REGISTRY, folders=folders)


def test_every_op_check_has_a_case() -> None:
    declared = {(spec.name, check.input) for spec in REGISTRY for check in spec.checks}
    tested = {(case[0], case[3]) for case in INPUT_CHECK_CASES}
    assert declared - tested == set(), "input checks without a refusal case"


# ------------------------------------------------------------------------------------------ accounting

# a raise in the op package -> the check that refuses the same literal case at validation
REFUSED_AT_VALIDATION = {
    "nodes/tracks:_json": "points_store_json / tracks_json",
    "primitives:compute_expression": "expression_computable / simple_expression (expression_problem)",
    "sampling_ops:parse_blocks": "block_numbers",
    "sampling_ops:guider_parameters": "graph check guidance_once_per_modality (guidance_set_twice)",
    "text_ops:vision_tower": "graph check image_prompts_need_vision",
    "text_ops:image_prompt": "graph check image_prompts_need_vision (a Gemma 4 vision path for LTXVGemmaEnhancePrompt)",
    "text_ops:clip_text_encode": "graph check clip_not_empty",
    "looping_sampler:looping_sampler": "temporal_overlap_below_tile (for LTX-2's 8-frame VAE; the others: data)",
    "vae_ops:vae_decode_tiled": "overlap_below_tile (for LTX-2's 32-pixel VAE)",
    "sampling_ops:_schedule": "Port min/choices (steps, scheduler); an empty schedule is data",
}
# a raise that depends on values known only at run time -> why
KNOWN_AT_RUN_TIME = {
    "audio_ops:audio_vae_handle": "the vocoder's rate against the audio VAE's (configs the loader builds)",
    "audio_ops:ltxv_audio_vae_encode": "the audio's shape and samples (data)",
    "audio_ops:ltxv_audio_vae_decode": "the latent's shape (data)",
    "guides:crop_guides": "guide frames against latent frames (data)",
    "guides:encode_into_first_frames": "image frames against latent frames (data)",
    "guides:add_reference_guide": "latent size and the IC-LoRA's downscale factor from its file (data)",
    "guides:append_latent_guide": "guide grid against latent grid (data)",
    "guides:token_weights": "the attention mask's shape (data)",
    "latents:concat_av_latent": "batch sizes of two latents (data)",
    "latents:select_latents": "the latent's frame count (data)",
    "looping_sampler:keyframes_per_chunk": "keyframe index against the video length (data)",
    "looping_sampler:spatial_tile_size": "spatial tiles and overlap against the latent's size (data)",
    "media_audio:read_audio": "decoded samples (an empty or NaN stream is found while decoding)",
    "media_audio:trim_audio_duration": "the audio's duration (data)",
    "media_image:read_image": "decoded frames (no frame, frames of different sizes)",
    "media_video:check_images": "the images' shape and values (data)",
    "media_video:read_video": "decoded frames (a stream without frames); open/stream problems: video_file",
    "media_video:save_video": "the encoder's failure on the frames (data)",
    "nodes/utility:switch": "the types of the two values arriving through connections (data)",
    "media_video:chunks": "reading back the video file this run wrote (data)",
    "vae_handle:_check_latent": "the latent's shape against the VAE's channels (data)",
    "nodes/latents:video_noise_mask": "mask frames against latent frames (data)",
    "nodes/latents:audio_noise_mask": "the mask's shape and values (data)",
    "nodes/loaders:lora_loader": "LoRA keys against the connected model's and Gemma's layers",
    "nodes/duration:predict_seconds": "the conditioning's text widths against the duration head's (data)",
    "nodes/duration:check_head_fits": "the duration head's text widths against the connected model's",
    "nodes/masks:image_to_mask": "the image's channel count (data)",
    "nodes/masks:as_video_mask": "the mask's shape (data)",
    "nodes/masks:inpaint_preprocess": "mask and image sizes (data)",
    "nodes/media:pad_for_outpaint_target_size": "the image's size (data)",
    "nodes/pyramid_blend:laplacian_pyramid_blend": "image and mask sizes and lengths (data)",
    "nodes/utility:simple_math": "a complex result depends on the operands' values",
    "nodes/vae:tile_spans": "tiles against the latent's size (data)",
    "primitives:walk": "an exponent's value may come from an operand",
    "primitives:math_expression": "a complex result depends on the operands' values",
    "resize_node:_as_images": "the input's shape (data)",
    "sampling_ops:multimodal_guider": "skip_blocks against the connected model's block count",
    "sampling_ops:sampler_custom_advanced": "sigmas and latents arriving through connections; NaN while sampling",
    "temporal_mask:_spatial": "the spatial mask's shape (data)",
    "text_ops:encode": "a text encoder without projection: no loader builds one",
    "upscale_ops:ltxv_latent_upsampler": "latent channels against the VAE's (data)",
    "vae_handle:encode": "frames and size of the images (data)",
    "vae_ops:_check_pixels": "frames and size of the pixels (data)",
}


def raise_sites() -> set[str]:
    """"module:function" of every ``raise InputValueError`` in ltxgraph_ops."""
    package, found = REPO / "ltxgraph_ops", set()

    def visit(node: ast.AST, module: str, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if (isinstance(child, ast.Raise) and isinstance(child.exc, ast.Call)
                    and getattr(child.exc.func, "id", None) == "InputValueError"):
                found.add(f"{module}:{function}")
            visit(child, module, name)

    for path in package.rglob("*.py"):
        visit(ast.parse(path.read_text()), str(path.relative_to(package).with_suffix("")), None)
    return found


def test_every_refusal_is_refused_at_validation_or_known_only_at_run_time() -> None:
    sites = raise_sites()
    assert sites - set(REFUSED_AT_VALIDATION) - set(KNOWN_AT_RUN_TIME) == set(), "unclassified refusals"
    assert (set(REFUSED_AT_VALIDATION) | set(KNOWN_AT_RUN_TIME)) - sites == set(), "stale entries"
    assert not set(REFUSED_AT_VALIDATION) & set(KNOWN_AT_RUN_TIME)
    assert all(accepts(t, t) for t in ("SIGMAS", "GUIDER"))  # the feeders' types are real port types
