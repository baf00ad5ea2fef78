"""A corpus of bad inputs a user can hand ltxgraph. Each must end in one clear message naming what is wrong and
where, exit code 2 (invalid input) or 1 (runtime failure), no traceback, and no file written to the output."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ltxgraph.cli import main

OK_NODES = "nodes:\n  img: {op: MakeTensor, in: {seed: 1}}\n"


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes]
    args: list[str]
    code: int
    words: list[str] = field(default_factory=list)


def graph(body: str) -> dict[str, str]:
    return {"g.yaml": body}


def ui_workflow(nodes: list, links: list, subgraphs: list | None = None) -> str:
    return json.dumps({"nodes": nodes, "links": links, "definitions": {"subgraphs": subgraphs or []}})


PREVIEW = {"id": 3, "type": "PreviewTensor", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 1}],
           "outputs": []}
MAKE = {"id": 1, "type": "MakeTensor", "mode": 0, "widgets_values": [1, "fixed", 16], "inputs": [],
        "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}]}

CASES = [
    Case("empty-file", graph(""), ["run", "g.yaml"], 2, ["g.yaml", "not a graph or workflow", "empty document"]),
    Case("top-level-list", graph("- 1\n- 2\n"), ["run", "g.yaml"], 2, ["not a graph", "a list of 2 items"]),
    Case("yaml-syntax", graph("ltxgraph: 1\nnodes: {a: [\n"), ["run", "g.yaml"], 2, ["g.yaml:", "not valid YAML"]),
    Case("json-syntax", {"g.json": '{"ltxgraph": 1, "nodes": {'}, ["run", "g.json"], 2, ["g.json:", "not valid"]),
    Case("duplicate-node", graph("ltxgraph: 1\nnodes:\n  a: {op: Const}\n  a: {op: Add}\n"), ["run", "g.yaml"], 2,
         ["g.yaml:4", "duplicate key 'a'"]),
    Case("unknown-top-key", graph("ltxgraph: 1\n" + OK_NODES + "extra: 1\n"), ["run", "g.yaml"], 2,
         ["extra", "not permitted"]),
    Case("format-version", graph("ltxgraph: 2\n" + OK_NODES), ["run", "g.yaml"], 2, ["unsupported format version 2"]),
    Case("no-nodes", graph("ltxgraph: 1\nnodes: {}\n"), ["run", "g.yaml"], 2, ["nodes", "at least 1"]),
    Case("node-without-op", graph("ltxgraph: 1\nnodes:\n  a: {in: {}}\n"), ["run", "g.yaml"], 2,
         ["node 'a'", "op", "required"]),
    Case("unknown-op", graph("ltxgraph: 1\nnodes:\n  a: {op: MakeTensr, in: {seed: 1}}\n"), ["run", "g.yaml"], 2,
         ["node 'a'", "unknown op 'MakeTensr'", "did you mean 'MakeTensor'"]),
    Case("unknown-input", graph("ltxgraph: 1\nnodes:\n  a: {op: MakeTensor, in: {seed: 1, widht: 16}}\n"),
         ["run", "g.yaml"], 2, ["input 'widht'", "did you mean 'width'"]),
    Case("missing-input", graph("ltxgraph: 1\nnodes:\n  a: {op: MakeTensor}\n"), ["run", "g.yaml"], 2,
         ["node 'a'", "missing required input 'seed' (INT)"]),
    Case("type-mismatch", graph("ltxgraph: 1\nnodes:\n  c: {op: Const, in: {value: 1}}\n"
                                "  s: {op: ScaleImage, in: {image: '@c.VALUE'}}\n"), ["run", "g.yaml"], 2,
         ["node 's' input 'image'", "'@c.VALUE' is INT, input expects IMAGE"]),
    Case("literal-for-socket", graph("ltxgraph: 1\nnodes:\n  s: {op: ScaleImage, in: {image: 3}}\n"),
         ["run", "g.yaml"], 2, ["needs a connection from a node producing IMAGE"]),
    Case("malformed-ref", graph("ltxgraph: 1\nnodes:\n  s: {op: ScaleImage, in: {image: '@img'}}\n"),
         ["run", "g.yaml"], 2, ["malformed reference '@img'"]),
    Case("ref-unknown-node", graph("ltxgraph: 1\nnodes:\n  s: {op: ScaleImage, in: {image: '@imgs.IMAGE'}}\n"),
         ["run", "g.yaml"], 2, ["unknown node 'imgs'"]),
    Case("ref-unknown-port", graph("ltxgraph: 1\n" + OK_NODES + "  s: {op: ScaleImage, in: {image: '@img.IMG'}}\n"),
         ["run", "g.yaml"], 2, ["has no output 'IMG' (outputs: IMAGE)"]),
    Case("cycle", graph("ltxgraph: 1\nnodes:\n  a: {op: Add, in: {a: '@b.SUM'}}\n  b: {op: Add, in: {a: '@a.SUM'}}\n"),
         ["run", "g.yaml"], 2, ["cycle: a -> b -> a"]),
    Case("self-loop", graph("ltxgraph: 1\nnodes:\n  a: {op: Add, in: {a: '@a.SUM'}}\n"), ["run", "g.yaml"], 2,
         ["cycle: a -> a"]),
    Case("param-default-type", graph("ltxgraph: 1\nparams: {s: {type: INT, default: 'x'}}\n" + OK_NODES),
         ["run", "g.yaml"], 2, ["params.s", "is not a INT"]),
    Case("param-unknown-type", graph("ltxgraph: 1\nparams: {s: {type: LATENT, default: 1}}\n" + OK_NODES),
         ["run", "g.yaml"], 2, ["params.s.type"]),
    Case("unknown-param-ref", graph("ltxgraph: 1\nnodes:\n  a: {op: MakeTensor, in: {seed: $sed}}\n"),
         ["run", "g.yaml"], 2, ["unknown parameter '$sed'"]),
    Case("param-type-mismatch", graph("ltxgraph: 1\nparams: {t: {type: STRING, default: x}}\n"
                                      "nodes:\n  a: {op: MakeTensor, in: {seed: $t}}\n"), ["run", "g.yaml"], 2,
         ["parameter '$t' is STRING, input expects INT"]),
    Case("out-of-range", graph("ltxgraph: 1\nnodes:\n  a: {op: MakeTensor, in: {seed: 1, width: 8192}}\n"),
         ["run", "g.yaml"], 2, ["width 8192 is above the maximum 4096"]),
    Case("not-multiple", graph("ltxgraph: 1\nnodes:\n  a: {op: MakeTensor, in: {seed: 1, width: 30}}\n"),
         ["run", "g.yaml"], 2, ["width 30 is not a multiple of 8: use 24 or 32"]),
    Case("not-8n+1", graph("ltxgraph: 1\nnodes:\n  a: {op: EmptyVideoLatent, in: {length: 24}}\n"),
         ["run", "g.yaml"], 2, ["length 24 is not 8n+1: use 17 or 25"]),
    Case("bad-choice", graph("ltxgraph: 1\nnodes:\n  a: {op: EmptyVideoLatent, in: {mode: zero}}\n"),
         ["run", "g.yaml"], 2, ["mode 'zero' is not one of: zeros, ones", "did you mean 'zeros'"]),
    Case("bool-for-int", graph("ltxgraph: 1\nnodes:\n  a: {op: MakeTensor, in: {seed: true}}\n"),
         ["run", "g.yaml"], 2, ["expects INT, got bool"]),
    Case("bad-output-ref", graph("ltxgraph: 1\n" + OK_NODES + "outputs: {x: img.IMAGE}\n"), ["run", "g.yaml"], 2,
         ["must reference a node port"]),
    Case("output-unknown-node", graph("ltxgraph: 1\n" + OK_NODES + "outputs: {x: '@im.IMAGE'}\n"),
         ["run", "g.yaml"], 2, ["output 'x'", "unknown node 'im'"]),
    Case("not-utf8", {"g.yaml": b"ltxgraph: 1\n\xff\xfe"}, ["run", "g.yaml"], 2, ["not UTF-8"]),
    Case("too-large", {"g.yaml": "#" * (17 * 2**20)}, ["run", "g.yaml"], 2, ["larger than 16 MiB"]),
    Case("alias-bomb", graph("a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [" + ",".join([f"*{p}"] * 10) + "]\n" for p, c in zip("abcdefgh", "bcdefghi"))),
         ["run", "g.yaml"], 2, ["too large"]),
    Case("python-tag", graph("ltxgraph: !!python/object/apply:os.system ['true']\n"), ["run", "g.yaml"], 2,
         ["not valid YAML"]),
    Case("deep-nesting", graph("a: " + "[" * 100 + "]" * 100 + "\n"), ["run", "g.yaml"], 2, ["nested too deeply"]),
    Case("set-wrong-type", graph("ltxgraph: 1\nparams: {seed: {type: INT, default: 1}}\n" + OK_NODES),
         ["run", "g.yaml", "--set", "seed=abc"], 2, ["--set seed='abc'", "must be a INT"]),
    Case("set-unknown", graph("ltxgraph: 1\nparams: {seed: {type: INT, default: 1}}\n" + OK_NODES),
         ["run", "g.yaml", "--set", "sed=1"], 2, ["unknown parameter 'sed'", "did you mean 'seed'"]),
    Case("set-no-equals", graph("ltxgraph: 1\n" + OK_NODES), ["run", "g.yaml", "--set", "seed"], 2,
         ["write --set name=value"]),
    Case("set-out-of-range", graph("ltxgraph: 1\nparams: {n: {type: INT, default: 1, max: 3}}\n" + OK_NODES),
         ["run", "g.yaml", "--set", "n=9"], 2, ["'n' = 9 is above the maximum 3"]),
    Case("set-bad-bool", graph("ltxgraph: 1\nparams: {b: {type: BOOLEAN, default: true}}\n" + OK_NODES),
         ["run", "g.yaml", "--set", "b=maybe"], 2, ["must be a BOOLEAN"]),
    Case("unknown-output", graph("ltxgraph: 1\n" + OK_NODES + "outputs: {x: '@img.IMAGE'}\n"),
         ["run", "g.yaml", "--output", "y"], 2, ["unknown output(s) y"]),
    Case("graph-is-directory", {"d/x": ""}, ["run", "d"], 2, ["cannot read file"]),
    Case("missing-graph", {}, ["run", "nope.yaml"], 2, ["nope.yaml", "cannot read file"]),
    Case("missing-model", graph("ltxgraph: 1\nnodes:\n  m: {op: LoadFakeModel, in: {name: absent.safetensors}}\n"),
         ["run", "g.yaml", "--models-dir", "models"], 2, ["node 'm' input 'name'", "not found in"]),
    Case("model-dotdot", graph("ltxgraph: 1\nnodes:\n  m: {op: LoadFakeModel, in: {name: ../secret.bin}}\n"),
         ["run", "g.yaml", "--models-dir", "models"], 2, ["must be a name inside"]),
    Case("model-absolute", graph("ltxgraph: 1\nnodes:\n  m: {op: LoadFakeModel, in: {name: /etc/passwd}}\n"),
         ["run", "g.yaml", "--models-dir", "models"], 2, ["must be a name inside"]),
    Case("output-prefix-escape", graph("ltxgraph: 1\nnodes:\n  w: {op: WriteText, in: {text: x, "
                                       "filename_prefix: ../../escape}}\n"), ["run", "g.yaml"], 2,
         ["node 'w' (WriteText) failed", "not a path that leaves it"]),
    Case("output-prefix-absolute", graph("ltxgraph: 1\nnodes:\n  w: {op: WriteText, in: {text: x, "
                                         "filename_prefix: /tmp/escape}}\n"), ["run", "g.yaml"], 2,
         ["not a path that leaves it"]),
    Case("op-raises", graph("ltxgraph: 1\nnodes:\n  f: {op: Fail, in: {value: 1}}\noutputs: {v: '@f.VALUE'}\n"),
         ["run", "g.yaml"], 1,
         ["node 'f' (Fail) failed: RuntimeError: boom 1"]),
    Case("op-wrong-output-type", graph("ltxgraph: 1\nnodes:\n  f: {op: BadOutput, in: {text: x}}\n"
                                       "outputs: {v: '@f.VALUE'}\n"), ["run", "g.yaml"], 1, ["returned a str"]),
    Case("ui-broken-link", {"wf.json": ui_workflow([MAKE, PREVIEW], [])}, ["run", "wf.json"], 2,
         ["link 1 is used"]),
    Case("ui-unsupported-nodes", {"wf.json": ui_workflow([{**MAKE, "type": "KSamplerX"}, PREVIEW],
                                                         [[1, 1, 0, 3, 0, "IMAGE"]])}, ["run", "wf.json"], 2,
         ["1 node(s)", "node 1: KSamplerX; feeds 3 (PreviewTensor).images"]),
    Case("ui-no-output-node", {"wf.json": ui_workflow([{**MAKE, "outputs": []}], [])}, ["run", "wf.json"], 2,
         ["no output node"]),
    Case("ui-recursive-subgraph", {"wf.json": ui_workflow(
        [{"id": 1, "type": "sg", "mode": 0, "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}]},
         PREVIEW], [[1, 1, 0, 3, 0, "IMAGE"]],
        [{"id": "sg", "name": "loop", "nodes": [{"id": 1, "type": "sg", "mode": 0, "inputs": [], "outputs": []}],
          "links": [{"id": 5, "origin_id": 1, "origin_slot": 0, "target_id": -20, "target_slot": 0}],
          "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE", "linkIds": [5]}]}])}, ["run", "wf.json"], 2,
         ["nested deeper"]),
    Case("api-missing-node", {"p.json": json.dumps({"2": {"class_type": "ScaleImage", "inputs": {"image": ["9", 0]}}})},
         ["run", "p.json"], 2, ["links to missing node '9'"]),
    Case("api-bad-inputs", {"p.json": json.dumps({"2": {"class_type": "ScaleImage", "inputs": [1, 2]}})},
         ["run", "p.json"], 2, ["inputs must be a mapping"]),
    Case("api-bad-slot", {"p.json": json.dumps({"1": {"class_type": "MakeTensor", "inputs": {"seed": 1}},
                                                "3": {"class_type": "PreviewTensor", "inputs": {"images": ["1", 4]}}})},
         ["run", "p.json"], 2, ["reads output slot 4 of node 1"]),
    Case("bad-memory-budget", graph("ltxgraph: 1\n" + OK_NODES), ["run", "g.yaml", "--memory-budget", "lots"], 2,
         ["not a size"]),
]


# ------------------------------------------------------------------------------------------ weights files


def _tiny_checkpoint() -> bytes:
    import tempfile

    from ltxgraph_ops.tiny import transformer
    from ltxgraph_ops.tiny.files import write_checkpoint
    with tempfile.TemporaryDirectory() as folder:
        return write_checkpoint(Path(folder) / "t.safetensors", "fp8", 0, [transformer]).read_bytes()


CKPT = _tiny_checkpoint()
UNET_GRAPH = "ltxgraph: 1\nnodes:\n  m: {op: UNETLoader, in: {unet_name: x.safetensors}}\noutputs: {m: '@m.MODEL'}\n"


def split(data: bytes) -> tuple[dict, bytes]:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + size]), data[8 + size:]


def join(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + body


def edited(edit) -> bytes:
    header, body = split(CKPT)
    result = edit(header, body)
    return join(header, body) if result is None else result


def unet_case(case_id: str, content: bytes, words: list[str]) -> Case:
    return Case(case_id, {"g.yaml": UNET_GRAPH, "models/diffusion_models/x.safetensors": content},
                ["run", "g.yaml", "--models-dir", "models"], 2, ["node 'm'", *words])  # header: at validation


KEY = "model.diffusion_model.proj_out.weight"


def _set(header, key, field, value):
    header[key][field] = value


def _config(header, text):
    header["__metadata__"]["config"] = text


def _without(header, body, key):
    header.pop(key)


def _extra(header, body):
    header["model.diffusion_model.extra.weight"] = {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}


WEIGHT_CASES = [
    unet_case("st-truncated", CKPT[: len(CKPT) // 2], ["x.safetensors", "outside the"]),
    unet_case("st-garbage", b"\x80\x04\x95pickle-not-safetensors" * 4, ["x.safetensors", "header"]),
    unet_case("st-huge-header", (2**60).to_bytes(8, "little") + b"{}", ["header claims"]),
    unet_case("st-unknown-dtype", edited(lambda h, b: _set(h, KEY, "dtype", "F99")), [KEY, "unknown dtype 'F99'"]),
    unet_case("st-dtype-lies", edited(lambda h, b: _set(h, KEY, "dtype", "F32")), [KEY, "bytes stored but shape"]),
    unet_case("st-offsets-lie", edited(lambda h, b: _set(h, KEY, "data_offsets", [0, 10**12])), [KEY, "outside"]),
    unet_case("st-overlap", edited(lambda h, b: _set(h, KEY, "data_offsets",
                                                      h["model.diffusion_model.proj_out.bias"]["data_offsets"]
                                                      if h["model.diffusion_model.proj_out.bias"]["dtype"] == "F8_E4M3"
                                                      else [0, h[KEY]["data_offsets"][1] - h[KEY]["data_offsets"][0]])),
              ["overlaps"]),
    unet_case("st-missing-key", edited(lambda h, b: _without(h, b, KEY)), ["missing tensor '" + KEY + "'"]),
    unet_case("st-extra-key", edited(_extra), ["unexpected tensor 'model.diffusion_model.extra.weight'"]),
    unet_case("st-wrong-shape", edited(lambda h, b: _set(h, KEY, "shape", list(reversed(h[KEY]["shape"])))),
              ["misshapen tensor " + KEY]),
    unet_case("st-no-config", edited(lambda h, b: _config(h, "{}")), ["no 'transformer' config"]),
    unet_case("st-bad-config", edited(lambda h, b: _config(h, "{oops")), ["'config' is not valid JSON"]),
    unet_case("st-unsupported-config", edited(lambda h, b: _config(h, json.dumps(
        {"transformer": {**json.loads(h["__metadata__"]["config"])["transformer"], "apply_gated_attention": True}}))),
        ["mixes LTX-2.0 and LTX-2.3 fields (apply_gated_attention=True"]),
    Case("lora-no-layer-fits", {"g.yaml": UNET_GRAPH.replace(
        "outputs: {m: '@m.MODEL'}", "  l: {op: LoraLoaderModelOnly, in: {model: '@m.MODEL', lora_name: l.safetensors}}\n"
        "outputs: {m: '@l.MODEL'}"), "models/diffusion_models/x.safetensors": CKPT,
        "models/loras/l.safetensors": join({"a.lora_A.weight": {"dtype": "F32", "shape": [1, 1],
                                                                 "data_offsets": [0, 4]},
                                             "a.lora_B.weight": {"dtype": "F32", "shape": [1, 1],
                                                                 "data_offsets": [4, 8]}}, b"\0" * 8)},
         ["run", "g.yaml", "--models-dir", "models"], 2, ["node 'l' (LoraLoaderModelOnly)", "l.safetensors",
                                                           "no tensor of this LoRA fits"]),
]
CASES += WEIGHT_CASES


# ------------------------------------------------------------------------------------------ mixed model versions


def _tiny_model_files() -> dict[str, bytes]:
    """Transformer-only 2.0 / 2.3 checkpoints, a LoRA for each layout and the 2.0 x2 upscaler (validation reads
    headers only)."""
    import tempfile

    import torch

    from ltxgraph_ops.tiny import transformer
    from ltxgraph_ops.tiny.files import write_checkpoint, write_lora, write_upscalers
    files = {}
    with tempfile.TemporaryDirectory() as folder:
        for version, name in (("2.0", "ltx2"), ("2.3", "ltx23")):
            files[f"{name}.safetensors"] = write_checkpoint(Path(folder) / "c.safetensors", "fp8", 0, [transformer],
                                                            version=version).read_bytes()
            with torch.device("meta"):
                layout = transformer.build(transformer.TINY_CONFIGS[version](), device="meta")
            files[f"{name}-lora.safetensors"] = write_lora(Path(folder) / "l.safetensors", layout, 1, 0,
                                                           {}).read_bytes()
        write_upscalers(Path(folder))
        files["upscaler"] = (Path(folder) / "ltx-2-spatial-upscaler-x2-1.0.safetensors").read_bytes()
    return files


MODEL_FILES = _tiny_model_files()
MIXED_GRAPH = ("ltxgraph: 1\nparams:\n  model: {type: STRING, default: ltx23.safetensors}\n"
               "  audio_vae: {type: STRING, default: ltx23.safetensors}\n"
               "  lora: {type: STRING, default: ltx23-lora.safetensors}\nnodes:\n"
               "  m: {op: CheckpointLoaderSimple, in: {ckpt_name: $model}}\n"
               "  a: {op: LTXVAudioVAELoader, in: {ckpt_name: $audio_vae}}\n"
               "  l: {op: LoraLoaderModelOnly, in: {model: '@m.MODEL', lora_name: $lora}}\n"
               "outputs: {m: '@l.MODEL', a: '@a.Audio VAE'}\n")
MODELS_FOLDER = {"models/checkpoints/ltx2.safetensors": MODEL_FILES["ltx2.safetensors"],
                 "models/checkpoints/ltx23.safetensors": MODEL_FILES["ltx23.safetensors"],
                 "models/loras/ltx2-lora.safetensors": MODEL_FILES["ltx2-lora.safetensors"],
                 "models/loras/ltx23-lora.safetensors": MODEL_FILES["ltx23-lora.safetensors"]}


def mixed_case(case_id: str, settings: list[str], words: list[str], graph_text: str = MIXED_GRAPH,
               files: dict[str, bytes] | None = None) -> Case:
    """Refused at validation (before any node runs) with what was found and what fits."""
    sets = [arg for setting in settings for arg in ("--set", setting)]
    return Case(case_id, {"g.yaml": graph_text, **MODELS_FOLDER, **(files or {})},
                ["validate", "g.yaml", "--models-dir", "models", *sets], 2,
                ["graph is invalid", "mixed model versions", *words])


CASES += [
    mixed_case("mixed-audio-vae", ["audio_vae=ltx2.safetensors"],
               ["node 'a' input 'ckpt_name'", "ltx2.safetensors (node 'a') is an LTX-2.0 checkpoint",
                "the model, ltx23.safetensors (node 'm') is an LTX-2.3 checkpoint", "files that fit: ltx23.safetensors"]),
    mixed_case("mixed-model-2.0-audio-vae-2.3", ["model=ltx2.safetensors", "lora=ltx2-lora.safetensors"],
               ["node 'a'", "ltx23.safetensors (node 'a') is an LTX-2.3 checkpoint",
                "ltx2.safetensors (node 'm') is an LTX-2.0 checkpoint", "files that fit: ltx2.safetensors"]),
    mixed_case("lora-for-2.0-on-2.3", ["lora=ltx2-lora.safetensors"],
               ["node 'l' input 'lora_name'", "ltx2-lora.safetensors (node 'l') is an LTX-2.0 LoRA",
                "is an LTX-2.3 checkpoint", "files that fit: ltx23-lora.safetensors"]),
    mixed_case("lora-for-2.3-on-2.0", ["model=ltx2.safetensors", "audio_vae=ltx2.safetensors"],
               ["ltx23-lora.safetensors (node 'l') is an LTX-2.3 LoRA", "ltx2.safetensors (node 'm') is an LTX-2.0",
                "files that fit: ltx2-lora.safetensors"]),
    mixed_case("upscaler-2.0-with-2.3", [], ["node 'u' input 'model_name'",
                                            "ltx-2-spatial-upscaler-x2-1.0.safetensors (node 'u') is an LTX-2.0 "
                                            "latent upscaler", "use an LTX-2.3 latent upscaler"],
               MIXED_GRAPH.replace("nodes:\n", "nodes:\n  u: {op: LatentUpscaleModelLoader, in: {model_name: "
                                   "ltx-2-spatial-upscaler-x2-1.0.safetensors}}\n"),
               {"models/latent_upscale_models/ltx-2-spatial-upscaler-x2-1.0.safetensors": MODEL_FILES["upscaler"]}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch) -> None:
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "secret.bin").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTXGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    try:
        code = main(["--plugin", "tests.engine.sample_ops", *case.args])
    except SystemExit as exc:  # argparse rejects malformed options itself, with exit code 2
        code = exc.code
    err = capsys.readouterr().err
    assert code == case.code, err
    for words in case.words:
        assert words in err, f"{words!r} not in {err!r}"
    assert "Traceback" not in err
    assert not (tmp_path / "output").exists() or not any((tmp_path / "output").rglob("*"))
    assert not (Path("/tmp") / "escape.txt").exists() and not (tmp_path.parent / "escape.txt").exists()


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
