"""Write synthetic full-size LTX-2 model files (random weights; the real key layout, shapes and header config) in
ComfyUI's models-folder layout, for benchmarks at real scale on small machines.

Usage: python tools/make_full.py OUT_DIR [--version 2.0|2.3] [--component checkpoint|gemma|upscaler] [--seed N]
                                  [--depth N]
Files under OUT_DIR (--version 2.0, the default):
  checkpoints/ltx-2-19b-dev-fp8.safetensors            transformer (fp8 Linear weights with per-tensor scales),
                                                       text projection + connectors, video VAE, audio VAE and
                                                       vocoder (bf16); header config as the release's (~23 GB)
  text_encoders/gemma_3_12B_it_fp8_scaled.safetensors  Gemma 3 12B (fp8 Linear weights, bf16 token table and
                                                       norms) with a small SentencePiece model (~12.9 GB)
  latent_upscale_models/ltx-2-spatial-upscaler-x2-1.0.safetensors   the x2 latent upscaler, bf16 (~1 GB)
--version 2.3 writes the LTX-2.3 files instead (the same Gemma):
  checkpoints/ltx-2.3-22b-dev-fp8.safetensors          the 22B transformer (fp8 Linear weights with scales), the
                                                       V2 text path (per-stream projections, 8-layer gated
                                                       connectors), video VAE, audio VAE, vocoder with bandwidth
                                                       extension (bf16); the 2.3 header sections (~27 GB)
  latent_upscale_models/ltx-2.3-spatial-upscaler-x2-1.1.safetensors
--version 2.5 writes only LTX-2.5's text encoder (--component gemma), in the bundled "with-proj" layout that
ComfyUI's CLIPLoader reads:
  text_encoders/gemma4-12b-with-proj-ltx-2.5-fp8.safetensors   Gemma 4 12B (assumed config, see
                                                       ltxgraph_ops.tiny.gemma4.FULL_HEADER; fp8 Linear weights
                                                       with scales) with the 2.5 text projection and connectors
                                                       (bf16) and the header's ``transformer`` section (~16 GB)
A file that exists is kept (delete it to rewrite it).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ltxgraph_ops.models.gemma import GemmaTextModel  # noqa: E402
from ltxgraph_ops.tiny import files as tiny_files  # noqa: E402
from ltxgraph_ops.weights.writing import SyntheticPart, header_metadata, write_synthetic  # noqa: E402

FILES = {
    "checkpoint": Path("checkpoints/ltx-2-19b-dev-fp8.safetensors"),
    "gemma": Path("text_encoders/gemma_3_12B_it_fp8_scaled.safetensors"),
    "upscaler": Path("latent_upscale_models/ltx-2-spatial-upscaler-x2-1.0.safetensors"),
}
FILES_23 = {**FILES, "checkpoint": Path("checkpoints/ltx-2.3-22b-dev-fp8.safetensors"),
            "upscaler": Path("latent_upscale_models/ltx-2.3-spatial-upscaler-x2-1.1.safetensors")}
FILES_25 = {"gemma": Path("text_encoders/gemma4-12b-with-proj-ltx-2.5-fp8.safetensors")}
RELEASE_FILES = {"2.0": FILES, "2.3": FILES_23, "2.5": FILES_25}   # model version -> component -> file under OUT_DIR
FP8_COMPONENTS = ("transformer",)  # the rest of the fp8 release is stored in 16 bits


def vocab_size(spm: bytes) -> int:
    import sentencepiece
    return sentencepiece.SentencePieceProcessor(model_proto=spm).get_piece_size()


def _meta(module, config):
    with torch.device("meta"):
        return module.build(config, device="meta")


def check_version(version: str) -> None:
    if version not in RELEASE_FILES:
        raise ValueError(f"unknown model version {version!r}: choose from {', '.join(RELEASE_FILES)}")


def section_config(module, scale: str, version: str) -> dict:
    """A tiny module's header section at ``scale`` ("full" or "tiny") for model ``version``."""
    check_version(version)
    suffix = {"2.0": ""}.get(version, "_" + version.replace(".", ""))
    return getattr(module, f"{scale}_config{suffix}")()


def checkpoint_parts(scale: str = "full", depth: int | None = None, version: str = "2.0",
                     only: tuple[str, ...] | None = None
                     ) -> tuple[list[SyntheticPart], dict[str, str], dict[str, torch.Tensor]]:
    """The single-file checkpoint's components at ``scale`` ("full", or "tiny" for tests) for model ``version``,
    its header, and the real values of its stored non-learned tensors (vocoder filters and bases, bf16). With
    ``depth``: only the transformer (``depth`` blocks) and the text connectors (for a Gemma of ``depth`` layers);
    ``only``: just those components (of ``tiny_files.CHECKPOINT_COMPONENTS``, e.g. ("video_vae",))."""
    sections: dict[str, dict] = {}
    parts = []
    fixed: dict[str, torch.Tensor] = {}
    names = only or (("transformer", "connector") if depth else tiny_files.CHECKPOINT_COMPONENTS)
    for module in tiny_files.available(names):
        config = sections.setdefault(module.SECTION, section_config(module, scale, version))
        if depth and module.COMPONENT == "transformer":
            config["num_layers"] = depth
        layout = _meta(module, config) if not (depth and module.COMPONENT == "connector") else \
            module.build(config, device="meta", states=depth + 1)
        parts.append(SyntheticPart(layout, module.PREFIX, module.COMPONENT in FP8_COMPONENTS))
        fixed.update(tiny_files.fixed_tensors(module, config, "bf16"))
    return parts, header_metadata(sections), fixed


def write_component(component: str, out_dir: Path, seed: int = 0, scale: str = "full",
                    depth: int | None = None, version: str = "2.0", only: tuple[str, ...] | None = None) -> Path:
    """Write one synthetic file of model ``version`` (unless it exists) and return its path; ``scale="tiny"``
    writes the same files with the tiny configs (for tests of this writer); ``depth`` gives the transformer and
    Gemma that many blocks / layers (the checkpoint then holds only the transformer and text connectors);
    ``only``: a checkpoint of just those components (e.g. ("video_vae",) for a decode benchmark)."""
    check_version(version)
    if component not in RELEASE_FILES[version]:
        raise ValueError(f"unknown component {component!r} of version {version}: choose from "
                         f"{', '.join(RELEASE_FILES[version])}")
    path = out_dir / RELEASE_FILES[version][component]
    if path.exists():
        return path
    if version == "2.5":
        return write_text_encoder_25(path, seed, scale, depth)
    if component == "checkpoint":
        parts, metadata, fixed = checkpoint_parts(scale, depth, version, only)
        return write_synthetic(path, parts, metadata, seed, extra=fixed)
    if component == "gemma":
        gemma = tiny_files.component("gemma")
        spm = gemma.train_tiny_spm()
        tokenizer = torch.frombuffer(bytearray(spm), dtype=torch.uint8).clone()
        if scale == "full":
            config, metadata = gemma.full_config(), {}      # the 12B values are the defaults: no header config
        else:
            config, metadata = gemma.tiny_config(vocab_size(spm)), {"config": json.dumps(gemma.TINY_OVERRIDES)}
        if depth:
            config = dataclasses.replace(config, num_hidden_layers=depth)
        part = SyntheticPart(_meta(gemma, config), gemma.PREFIX)
        return write_synthetic(path, [part], metadata, seed, extra={"spiece_model": tokenizer})
    upscaler = tiny_files.component("upscaler")
    config = getattr(upscaler, f"{scale}_config")()
    return write_synthetic(path, [SyntheticPart(_meta(upscaler, config), upscaler.PREFIX, fp8_linears=False)],
                           header_metadata(config), seed, extra=tiny_files.fixed_tensors(upscaler, config, "bf16"))


def write_text_encoder_25(path: Path, seed: int = 0, scale: str = "full", depth: int | None = None) -> Path:
    """LTX-2.5's text encoder file in the bundled layout: Gemma 4 under ``model.*`` (fp8 Linear weights), the
    text projection (``text_embedding_projection.*``) and connectors (``model.diffusion_model.*``) in bf16 for
    Gemma's hidden states, the tokenizer, and the header's Gemma 4 config and 2.5 ``transformer`` section."""
    gemma, connector = tiny_files.component("gemma4"), tiny_files.component("connector")
    spm = tiny_files.component("gemma").train_tiny_spm()
    tokenizer = torch.frombuffer(bytearray(spm), dtype=torch.uint8).clone()
    if scale == "full":
        config, header = gemma.full_config(), json.loads(json.dumps(gemma.FULL_HEADER))
    else:
        config, header = gemma.tiny_config(vocab_size(spm)), json.loads(json.dumps(gemma.TINY_HEADER))
    if depth:
        config = dataclasses.replace(config, num_hidden_layers=depth, layer_types=config.layer_types[:depth])
        header["text_config"]["layer_types"] = list(config.layer_types)
    section = section_config(tiny_files.component("transformer"), scale, "2.5")
    layout = connector.build(section, device="meta", states=config.num_hidden_layers + 1)
    with torch.device("meta"):
        text_model = GemmaTextModel(config)
    parts = [SyntheticPart(text_model, gemma.PREFIX),
             SyntheticPart(layout, connector.PREFIX, fp8_linears=False)]
    metadata = {"config": json.dumps({**header, "transformer": section}, sort_keys=True)}
    return write_synthetic(path, parts, metadata, seed, extra={"spiece_model": tokenizer})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--version", choices=list(RELEASE_FILES), default="2.0",
                        help="model version: 2.0 (19B, default), 2.3 (22B) or 2.5 (its text encoder only)")
    parser.add_argument("--component", choices=list(FILES), action="append")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--depth", type=int, default=None,
                        help="transformer blocks and Gemma layers (default: the release's 48 and 48)")
    args = parser.parse_args(argv)
    for component in args.component or list(RELEASE_FILES[args.version]):
        start = time.perf_counter()
        path = write_component(component, args.out_dir, args.seed, depth=args.depth, version=args.version)
        print(f"{path}  {path.stat().st_size / 2**30:.2f} GiB in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
