"""Golden outputs from ComfyUI itself: run pinned ComfyUI on the tiny models for the corpus workflows and store
the outputs of key nodes (sampled latents per stage; decoded frames first, middle and last as 8-bit codes; the
waveform's first, middle and last WAVEFORM_WINDOW samples) as small safetensors fixtures under
tests/data/comfyui_golden/, the ComfyUI commit recorded in each file's metadata. A maintainer script, never run in
CI (CI compares ltxgraph with the stored fixtures: tests/comfyui/test_comfyui_golden.py, tools/parity.py).
Two runs write byte-identical fixtures (ComfyUI on the CPU is deterministic; one metadata entry).

Recipe (issue 24; ComfyUI is not on the package index):

1. ``git clone https://github.com/YellowRoseCx/ComfyUI`` and check out PINNED_COMMIT (LTX-2 and LTX-2.3
   audio-video support, 2026-05-10). Two of its LFS tokenizer files (llama, qwen35) may be missing from a mirror:
   a sparse checkout without them is enough.
2. ``python3.11 -m venv VENV``; torch 2.13 CPU; ComfyUI's requirements.txt minus spandrel (kornia is needed by
   its Canny node, the IC-LoRA canny workflow); torchvision 0.28 and torchaudio 2.11 are CUDA-only builds:
   delete their compiled .so files and, in torchvision/_meta_registrations.py, register the fake ``nms`` /
   ``qnms`` kernels only when its ops loaded (torch 2.13 refuses a fake kernel for an undefined operator).
3. ``python tools/comfyui_golden.py --comfyui PATH --python VENV/bin/python``: writes the tiny models (the CI
   set with the audio stream widened, see AUDIO_HEAD_DIM), copies tools/comfyui_golden_node.py into ComfyUI's
   custom_nodes/ (tiny Gemma 3 sizes instead of the hard-coded 12B config, the text projection at the
   checkpoint's widths, a capture node), starts ``main.py --cpu`` and queues each workflow as an API prompt
   (exported by ltxgraph, pruned to what the captures need, fp8 checkpoints replaced: see without_fp8).

Usage: python tools/comfyui_golden.py --comfyui DIR [--python EXE] [--only NAME] [--out DIR] [--scratch DIR]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from ltxgraph import api  # noqa: E402
from ltxgraph.comfyui import export_api  # noqa: E402
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
WAVEFORM_WINDOW = 4800     # samples of each stored waveform window (0.2 s at 24 kHz, 0.1 s at 48 kHz)
# The golden models' audio stream is 2 heads x 12 = 24 wide (CI's: 2 x 8): video 32 + audio 24 != 2 x caption_channels
# 24, a coincidence ComfyUI's context split (av_model.py) would take for already-split text; the head count stays
# the video's, since ComfyUI cuts the video side's audio<->video RoPE table per audio head and ltx-core per video
# head (the same for every released model, where both streams have 32 heads).
AUDIO_HEAD_DIM = 12


@contextlib.contextmanager
def golden_transformer_config() -> Iterator[None]:
    """Inside: the tiny transformer config of the golden models (audio stream widened, see AUDIO_HEAD_DIM)."""
    original, original_23 = tiny_transformer.tiny_config, tiny_transformer.tiny_config_23
    config_23 = original_23()       # the LTX-2.3 set stays as it is (its context arrives split in any case)

    def golden() -> dict:
        config = original()
        return {**config, "audio_attention_head_dim": AUDIO_HEAD_DIM,
                "audio_cross_attention_dim": config["audio_num_attention_heads"] * AUDIO_HEAD_DIM}

    def ltx23() -> dict:
        return dict(config_23)

    configs = dict(tiny_transformer.TINY_CONFIGS)
    tiny_transformer.tiny_config, tiny_transformer.tiny_config_23 = golden, ltx23
    tiny_transformer.TINY_CONFIGS.update({"2.0": golden, "2.3": ltx23})   # (the LoRAs are laid out from these)
    try:
        yield
    finally:
        tiny_transformer.tiny_config, tiny_transformer.tiny_config_23 = original, original_23
        tiny_transformer.TINY_CONFIGS.update(configs)


def golden_world(root: Path) -> dict[str, Path]:
    """The tiny models (golden transformer config) and the corpus runs' input media under ``root``: written,
    unless ``root`` holds them already (a kept scratch folder)."""
    from tests.comfyui.corpus_runs import make_world    # the very inputs CI gives ltxgraph
    if (root / "input").exists():
        return {"root": root, "models": root / "models", "input": root / "input"}
    with golden_transformer_config():
        return make_world(root)


def without_fp8(graph: api.Graph) -> None:
    """Checkpoint names ``*-fp8.safetensors`` replaced by their bf16 files. ComfyUI (the pin) reads scaled fp8
    weights only with a ``_quantization_metadata`` header or a ``scaled_fp8`` marker; the tiny fp8 files carry
    ``<layer>.weight_scale`` alone (ltx-core's layout), which ComfyUI ignores: its outputs are NaN."""
    def bf16(name):
        return name.replace("-fp8.safetensors", ".safetensors") if isinstance(name, str) else name

    for node in graph.file.nodes.values():
        if "ckpt_name" in node.inputs:
            node.inputs["ckpt_name"] = bf16(node.inputs["ckpt_name"])
    for param in graph.file.params.values():          # (converted workflows name the checkpoint in a parameter)
        param.default = bf16(param.default)


def shrunk_graph(workflow: Path) -> tuple[api.Graph, dict]:
    """The workflow converted, its fp8 checkpoints replaced (:func:`without_fp8`), its sizes shrunk as in CI
    (tests/comfyui/corpus_runs.py), and its parameters."""
    from tests.comfyui.corpus_runs import shrink_graph
    graph = api.load(workflow)
    without_fp8(graph)
    return graph, shrink_graph(graph)


def captured_nodes(graph: api.Graph) -> dict[str, str]:
    """node id -> fixture key of every captured node (``sampled.<id>``, ``frames.<id>``, ``waveform.<id>``)."""
    return {node_id: f"{CAPTURED[node.op]}.{node_id}" for node_id, node in graph.file.nodes.items()
            if node.op in CAPTURED}


def api_prompt(graph: api.Graph, params: dict, capture_dir: Path) -> dict:
    """The ComfyUI API prompt of ``graph`` with one capture node after each captured node, pruned to what the
    captures need (ComfyUI runs only output nodes and their inputs: its own savers are left out)."""
    prompt = export_api(graph.file, Registry.discover(), params)
    captures = {f"capture:{node_id}": {"class_type": "LtxgraphGoldenCapture",
                                       "inputs": {"value": [node_id, 0], "key": key, "folder": str(capture_dir)}}
                for node_id, key in captured_nodes(graph).items()}
    needed, todo = set(), [link[0] for capture in captures.values() for link in [capture["inputs"]["value"]]]
    while todo:
        node_id = todo.pop()
        if node_id not in needed:
            needed.add(node_id)
            todo.extend(value[0] for value in prompt[node_id]["inputs"].values() if is_link(value))
    return {**{node_id: prompt[node_id] for node_id in prompt if node_id in needed}, **captures}


def is_link(value) -> bool:
    """Whether an API prompt input is a link [node id, output slot]."""
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


NODE_PACKAGE = Path(__file__).resolve().parent / "comfyui_golden_node.py"


def tiny_gemma_sizes() -> dict:
    """The sizes ComfyUI's Gemma 3 config must take for the tiny text encoder (ComfyUI's field names)."""
    import sentencepiece
    from ltxgraph_ops.tiny import gemma
    pieces = sentencepiece.SentencePieceProcessor(model_proto=gemma.train_tiny_spm())
    vocab = pieces.get_piece_size()
    text, vision = gemma.tiny_config(vocab), gemma.tiny_vision_config(vocab, 0)
    fields = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "head_dim")
    # ComfyUI: one entry per layer of the pattern, the window of a local layer or False for a global one
    pattern = [text.sliding_window] * (text.sliding_window_pattern - 1) + [False]
    return {"gemma": {**{field: getattr(text, field) for field in fields}, "sliding_attention": pattern},
            "vision": {field: getattr(vision, field) for field in ("hidden_size", "intermediate_size",
                       "num_hidden_layers", "num_attention_heads", "image_size", "patch_size")},
            "mm_tokens_per_image": vision.mm_tokens_per_image, "waveform_window": WAVEFORM_WINDOW,
            # ComfyUI hard-codes Gemma 3's ids of these pieces (lt.py); the tiny vocabulary has its own
            "real_special_ids": {"<end_of_turn>": 106, "<image_soft_token>": 262144},
            "special_ids": {"<end_of_turn>": pieces.piece_to_id("<end_of_turn>"),
                            "<image_soft_token>": vision.image_token_id}}


def write_custom_node(comfyui: Path, models: Path) -> None:
    """The package of tools/comfyui_golden_node.py in ComfyUI's custom_nodes/, with the tiny Gemma's sizes."""
    from ltxgraph_ops.tiny.files import TEXT_ENCODERS
    assert any((models / "text_encoders" / name).exists() for name in TEXT_ENCODERS), "no tiny text encoder"
    folder = comfyui / "custom_nodes" / "ltxgraph_golden"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text(NODE_PACKAGE.read_text())
    (folder / "sizes.json").write_text(json.dumps(tiny_gemma_sizes(), indent=1))


def extra_model_paths(path: Path, models: Path) -> Path:
    folders = {name: name for name in ("checkpoints", "loras", "text_encoders", "vae", "diffusion_models",
                                       "latent_upscale_models", "model_patches")}
    lines = ["ltxgraph_tiny:", f"    base_path: {models}"] + [f"    {k}: {v}" for k, v in folders.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def check_checkout(comfyui: Path) -> str:
    commit = subprocess.run(["git", "-C", str(comfyui), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    if commit != PINNED_COMMIT:
        raise SystemExit(f"{comfyui} is at {commit}; check out {PINNED_COMMIT} of {PINNED_REPO}")
    return commit


def wait_until_serving(port: int, server: subprocess.Popen, timeout: float = 600.0) -> None:
    """Return once ComfyUI answers on ``port``; raise if it exited or did not start in ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"ComfyUI exited with {server.returncode} before serving (see its log)")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/system_stats", timeout=5):
                return
        except OSError:
            time.sleep(2)
    raise TimeoutError(f"ComfyUI did not serve on port {port} in {timeout:.0f} s")


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
    # one metadata entry: safetensors writes several in a random order, the fixture would differ byte-wise
    metadata = {"golden": json.dumps({"comfyui_repo": PINNED_REPO, "comfyui_commit": commit, "workflow": workflow,
                                      "audio_head_dim": AUDIO_HEAD_DIM}, sort_keys=True)}
    path = out / f"{name}.safetensors"
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata)
    size = path.stat().st_size
    if size > MAX_FIXTURE_BYTES:
        path.unlink()
        raise SystemExit(f"{name}: the fixture would be {size} bytes (> 2 MB): shrink the run")
    return path


def waveform_windows(waveform: torch.Tensor) -> torch.Tensor:
    """[B, C, S] -> [3, C, WAVEFORM_WINDOW]: the first, middle and last samples of the first item (the capture
    node stores ComfyUI's the same way)."""
    start = (waveform.shape[-1] - WAVEFORM_WINDOW) // 2
    return torch.stack([waveform[0, :, :WAVEFORM_WINDOW], waveform[0, :, start:start + WAVEFORM_WINDOW],
                        waveform[0, :, -WAVEFORM_WINDOW:]])


def fixture_metadata(opened) -> dict:
    """What :func:`store_fixture` recorded in an opened fixture (ComfyUI's repository and commit, the workflow)."""
    return json.loads(opened.metadata()["golden"])


def ltxgraph_tensors(key: str, value) -> dict[str, torch.Tensor]:
    """ltxgraph's output of a captured node under the capture node's keys (tools/comfyui_golden_node.py), frames
    as values k / 255."""
    from ltxgraph.frames import Frames
    from ltxgraph.values import Audio, AVLatent
    if isinstance(value, AVLatent):
        return {f"{key}.video": value.video.samples, f"{key}.audio": value.audio.samples}
    if isinstance(value, Audio):
        return {key: waveform_windows(value.waveform.float())}
    samples = getattr(value, "samples", None)
    if samples is not None:
        return {f"{key}.latent": samples}
    frames = value.float() if isinstance(value, Frames) else value       # (8-bit codes as k / 255)
    return {key: frames[[0, frames.shape[0] // 2, frames.shape[0] - 1]]}


def as_values(stored: torch.Tensor) -> torch.Tensor:
    """A fixture tensor as float values: 8-bit frame codes k -> k / 255."""
    return stored.float() / 255 if stored.dtype == torch.uint8 else stored.float()


def compare_with_fixture(fixture: Path, world: dict[str, Path], emulate_comfyui: bool = False) -> dict[str, float]:
    """Max abs difference per fixture key between ComfyUI's stored output and ltxgraph's output of the same
    workflow on the same tiny models; ``emulate_comfyui``: ltxgraph with ComfyUI's departures from the reference
    (tools/comfyui_rules.py) switched on, which should leave nothing but float rounding. ``world``: what
    :func:`golden_world` gives."""
    from safetensors import safe_open

    from tests.comfyui.corpus_runs import run_shrunk
    from ltxgraph.context import RunSettings
    from tools.comfyui_rules import comfyui_departures
    from tools.oracle.guard import compared
    with safe_open(str(fixture), "pt") as f:
        workflow, golden = fixture_metadata(f)["workflow"], {k: f.get_tensor(k) for k in f.keys()}
    graph, _ = shrunk_graph(CORPUS / workflow)
    registry = Registry.discover()
    outputs = {key: f"@{node}.{registry.get(graph.file.nodes[node].op).outputs[0][0]}"
               for node, key in captured_nodes(graph).items()}
    rules = comfyui_departures() if emulate_comfyui else contextlib.nullcontext()
    with golden_transformer_config(), rules:     # float32, as ComfyUI computes on a CPU
        result = run_shrunk(CORPUS / workflow, world, outputs=outputs, settings=RunSettings(dtype="float32"),
                            edit=without_fp8)
    ours = {}
    for key, value in result.outputs.items():
        ours.update(ltxgraph_tensors(key, value))
    return {key: compared(f"{fixture.stem} {key}", ours[key].float(), as_values(expected))
            for key, expected in golden.items()}


def run(args: argparse.Namespace, commit: str, scratch: Path) -> None:
    """Start ComfyUI on the tiny models in ``scratch`` and store one fixture per selected workflow."""
    world = golden_world(scratch)
    write_custom_node(args.comfyui, world["models"])
    config = extra_model_paths(scratch / "extra_model_paths.yaml", world["models"])
    log = open(scratch / "comfyui.log", "w")
    print(f"ComfyUI's log: {log.name}", flush=True)
    server = subprocess.Popen([args.python, "main.py", "--cpu", "--port", str(args.port),
                               "--input-directory", str(world["input"]), "--output-directory", str(scratch / "output"),
                               "--extra-model-paths-config", str(config), *args.comfyui_args],
                              cwd=args.comfyui, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})   # the fixtures' bits: one thread
    try:
        wait_until_serving(args.port, server)
        for name, workflow in WORKFLOWS.items():
            if args.only not in name:
                continue
            graph, params = shrunk_graph(CORPUS / workflow)
            capture_dir = scratch / "captured" / name
            shutil.rmtree(capture_dir, ignore_errors=True)
            capture_dir.mkdir(parents=True)
            queue(args.port, api_prompt(graph, params, capture_dir))
            print(store_fixture(name, capture_dir, commit, workflow, args.out), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", type=Path, required=True, help=f"checkout of {PINNED_REPO} at the pin")
    parser.add_argument("--python", default=sys.executable, help="the Python of ComfyUI's venv")
    parser.add_argument("--only", default="", help="run only workflows whose name contains this")
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--port", type=int, default=8199)
    parser.add_argument("--comfyui-args", nargs="*", default=[],
                        help="more arguments for ComfyUI's main.py (experiments only: fixtures use none)")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="keep the tiny models, captures and ComfyUI's log here (default: a temporary folder)")
    args = parser.parse_args(argv)
    commit = check_checkout(args.comfyui)
    if args.scratch:
        args.scratch.mkdir(parents=True, exist_ok=True)
        run(args, commit, args.scratch)
    else:
        with tempfile.TemporaryDirectory(prefix="comfyui-golden-") as scratch:
            run(args, commit, Path(scratch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
