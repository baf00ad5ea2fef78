"""The tiny model set: every file an LTX-2 workflow loads, with the real file names, key layout and header
format, random weights deterministic from a seed, laid out like ComfyUI's models folder.

Proves the pipeline, not the picture: outputs of tiny random models are noise-like but have exactly the shapes,
frame counts, rates and durations real weights give.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import torch

from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.weights.writing import checkpoint_tensors, header_metadata, save_atomic, seeded_value, store

# components of the single-file LTX-2 checkpoint (2.0, 2.3), in file order
CHECKPOINT_COMPONENTS = ("transformer", "connector", "video_vae", "audio_vae", "vocoder")
# what an LTX-2.5 single file carries (ltx-pipelines 1.2.0's ModelPaths.from_monolith reads every component but
# Gemma from it): the 2.5 transformer, the text projection and connectors (2.5 section), the diffusion video VAE
# (``CausalDiffusionVAE``), 2.3's audio VAE and BigVGAN + BWE vocoder, and the duration head
CHECKPOINT_COMPONENTS_25 = ("transformer", "connector", "diffusion_decoder", "audio_vae", "vocoder", "duration_head")
COMPONENTS = {"2.0": CHECKPOINT_COMPONENTS, "2.3": CHECKPOINT_COMPONENTS, "2.5": CHECKPOINT_COMPONENTS_25}
# the metadata beside ``config`` a 2.5 file is stamped with (ltx-core 1.2.0 requires ``gemma_source_checkpoint``
# from model_version 2.4 on, and checks its ``gemma_version`` against the Gemma config's; ltx-pipelines' README
# names the 2.5 encoder's version ``gemma4-12b-ltx-v1``)
GEMMA_VERSION_25 = "gemma4-12b-ltx-v1"
STAMPS_25 = {"model_version": "2.5", "gemma_source_checkpoint": json.dumps({"gemma_version": GEMMA_VERSION_25})}
CHECKPOINTS = {  # file name -> (storage, seed offset); "distilled" is another set of weights
    "ltx-2-19b-dev-fp8.safetensors": ("fp8", 0),
    "ltx-2-19b-dev.safetensors": ("bf16", 0),
    "ltx-2-19b-distilled.safetensors": ("bf16", 1),
    "ltx-2-19b-distilled-fp8.safetensors": ("fp8", 1),
}
# LTX-2.3 checkpoints
CHECKPOINTS_23 = {
    "ltx-2.3-22b-dev-fp8.safetensors": ("fp8", 0),
    "ltx-2.3-22b-dev.safetensors": ("bf16", 0),
    "ltx-2.3-22b-distilled-fp8.safetensors": ("fp8", 1),
}
# LTX-2.5: a single-file checkpoint (every component of CHECKPOINT_COMPONENTS_25 in its 2.5 form; the tiny Gemma 4
# (TEXT_ENCODERS_25) reads its text) and the transformer-only file ComfyUI's 2.5 templates load with UNETLoader
# (int8-convrot there; its tiny stand-in is bf16)
CHECKPOINTS_25 = {"ltx-2.5-22b-distilled.safetensors": ("bf16", 1)}
DIFFUSION_MODELS_25 = {"ltx-2.5-22b-distilled-transformer-comfy-int8-convrot.safetensors": ("bf16", 1)}
LORAS = {  # file name -> (rank, header metadata)
    "ltx-2-19b-distilled-lora-384.safetensors": (4, {}),
    "ltx-2-19b-ic-lora-pose-control.safetensors": (2, {"reference_downscale_factor": "1"}),
    "ltx-2-19b-ic-lora-depth-control.safetensors": (2, {"reference_downscale_factor": "1"}),
    "ltx-2-19b-ic-lora-canny-control.safetensors": (2, {"reference_downscale_factor": "1"}),
    "ltx-2-19b-ic-lora-detailer.safetensors": (2, {"reference_downscale_factor": "1"}),
    "ltx-2-19b-ic-lora-union-ref0.5.safetensors": (2, {"reference_downscale_factor": "2"}),
    "ltx-2-19b-lora-camera-control-dolly-left.safetensors": (2, {}),
    "ltx2-squish.safetensors": (2, {}),
}
# LTX-2.3 LoRAs, written against the tiny 2.3 transformer (gates, no caption projection). The "ref0.5" IC-LoRAs
# are trained with their reference video at half resolution: their release metadata says 2
LORAS_23 = {
    "ltx-2.3-22b-distilled-lora-384-1.1.safetensors": (4, {}),
    # its rank-reduced variant, the name ComfyUI's 2.3 templates load (video_ltx2_3_*.json)
    "ltx_2.3_22b_distilled_1.1_lora_dynamic_fro09_avg_rank_111_bf16.safetensors": (4, {}),
    "ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors": (2, {"reference_downscale_factor": "2"}),
    "ltx-2.3-22b-ic-lora-motion-track-control-ref0.5.safetensors": (2, {"reference_downscale_factor": "2"}),
    # IC-LoRAs of ComfyUI-LTXVideo's 2.3 examples trained at full reference resolution (their notes say 1)
    "ltx-2.3-22b-ic-lora-instant-shave-0.9.safetensors": (2, {"reference_downscale_factor": "1"}),
    "ltx-2.3-22b-ic-lora-in-outpainting-0.9.safetensors": (2, {"reference_downscale_factor": "1"}),
    "ltx-2.3-22b-ic-lora-lipdub-0.9.safetensors": (2, {"reference_downscale_factor": "1"}),
    "ltx-2.3-22b-ic-lora-ingredients-0.9.safetensors": (2, {"reference_downscale_factor": "1"}),
    # the HDR IC-LoRA also names the transfer its output is encoded in (ltx-pipelines' read_hdr_lora_config)
    "ltx-2.3-22b-ic-lora-hdr-0.9.safetensors": (2, {"reference_downscale_factor": "1", "hdr_transform": "logc3"}),
    # the pixel upscalers take their reference clip at 1/2 and 1/4 of the output size
    "ltx-2.3-22b-ic-lora-pixel-spatial-upscaler-x2-0.9.safetensors": (2, {"reference_downscale_factor": "2"}),
    "ltx-2.3-22b-ic-lora-pixel-spatial-upscaler-x4-0.9.safetensors": (2, {"reference_downscale_factor": "4"}),
}
LORA_LAYOUTS = {"2.0": LORAS, "2.3": LORAS_23}  # the transformer version each set of LoRAs is made for
# where else under loras/ each set is found: ComfyUI's LTX-2.3 templates and ComfyUI-LTXVideo's 2.3 examples load
# the 2.3 LoRAs from this subfolder
LORA_SUBFOLDERS = {"2.0": ("",), "2.3": ("", "ltxv/ltx2/")}
# LoRAs of the Gemma text encoder (file name -> rank), over every projection of the tiny Gemma under ``model.``;
# ComfyUI's 2.3 templates load this one through LoraLoader's CLIP side
GEMMA_LORAS = {"gemma-3-12b-it-abliterated_lora_rank64_bf16.safetensors": 2}
UPSCALER = "ltx-2-spatial-upscaler-x2-1.0.safetensors"
# the fp4-mixed name is what ComfyUI's templates load; its tiny stand-in is bf16 (nvfp4 is not read by ltxgraph)
TEXT_ENCODERS = {"gemma_3_12B_it_fp8_scaled.safetensors": "fp8", "gemma_3_12B_it.safetensors": "bf16",
                 "gemma_3_12B_it_fp4_mixed.safetensors": "bf16",
                 "comfy_gemma_3_12B_it.safetensors": "bf16"}  # the name ComfyUI-LTXVideo's 2.3 examples load
# LTX-2.5's Gemma 4 text encoder (int8-convrot in the release; its tiny stand-in is bf16)
TEXT_ENCODERS_25 = {"gemma4-12b-with-proj-ltx-2.5-comfy-int8-convrot.safetensors": "bf16"}
# LTX-2.5's split files as ComfyUI's 2.5 templates load them (VAELoader, CLIPLoader; the int8-convrot ones are bf16
# stand-ins): the diffusion video VAE, the audio VAE with its vocoder, Gemma 4 with the text projection and
# connectors bundled ("with-proj"), and Gemma 4 alone for prompt generation (E2B in the release), with its vision
# encoder
VIDEO_VAE_25 = "ltx-2.5-video-vae-bf16.safetensors"
AUDIO_VAE_25 = "ltx-2.5-audio-vae-bf16.safetensors"
TEXT_ENCODER_WITH_PROJ_25 = "gemma4-12b-with-proj-ltx-2.5-comfy-int8-convrot.safetensors"
PROMPT_GEMMA_25 = "gemma4_e2b_it_int8_convrot.safetensors"
# ComfyUI-LTXVideo's example workflows name Gemma as one shard of a Hugging Face folder
SHARDED_TEXT_ENCODER = "gemma-3-12b-it-qat-q4_0-unquantized"
VERSION = "17"  # bump when the tiny configs or the writer change: the provider rewrites the set


def component(name: str) -> ModuleType:
    return importlib.import_module(f"ltxgraph_ops.tiny.{name}")


def available(names: tuple[str, ...]) -> list[ModuleType]:
    """The tiny modules of ``names`` that exist in this version of the package."""
    found = []
    for name in names:
        try:
            found.append(component(name))
        except ModuleNotFoundError:
            continue
    return found


def write_checkpoint(path: Path, storage: str = "bf16", seed: int = 0,
                     modules: list[ModuleType] | None = None, version: str = "2.0") -> Path:
    """One single-file LTX-2 checkpoint of model ``version``: each component under its prefix, the header
    ``config`` holding each component's section (a section two components share holds both configs' fields, the
    first one's winning). ``modules`` default to every component a release file of ``version`` carries
    (:data:`COMPONENTS`); each is written in its layout for ``version`` (:func:`tiny_config_of`), and a module with
    none is left out. A 2.5 file also carries :data:`STAMPS_25`."""
    modules = available(COMPONENTS[version]) if modules is None else modules
    modules = [module for module in modules if has_tiny_config(module, version)]
    sections: dict[str, dict] = {}
    for module in modules:
        if module.SECTION:
            sections[module.SECTION] = {**tiny_config_of(module, version), **sections.get(module.SECTION, {})}
    parts = []
    for module in modules:
        config = sections if getattr(module, "BUILDS_FROM_HEADER", False) else sections.get(
            module.SECTION, tiny_config_of(module, version))
        with torch.device("meta"):
            parts.append((module.build(config, device="meta"), module.PREFIX))
    tensors = checkpoint_tensors(parts, seed, storage)
    for module in modules:
        tensors.update(fixed_tensors(module, sections.get(module.SECTION, tiny_config_of(module, version)), storage))
    return save_atomic(path, tensors, header_metadata(sections, STAMPS_25 if version == "2.5" else None))


TINY_CONFIG_NAMES = {"2.0": ("tiny_config",), "2.3": ("tiny_config_23",), "2.5": ("tiny_config_25", "tiny_config_23")}


def has_tiny_config(module: ModuleType, version: str) -> bool:
    return any(hasattr(module, name) for name in TINY_CONFIG_NAMES[version])


def tiny_config_of(module: ModuleType, version: str) -> dict:
    """The tiny config of a component module at model ``version`` (2.5 falls back to the 2.3 one: the components
    2.5 keeps from 2.3)."""
    name = next(name for name in TINY_CONFIG_NAMES[version] if hasattr(module, name))
    return getattr(module, name)()


def fixed_tensors(module: ModuleType, config: dict, storage: str) -> dict[str, torch.Tensor]:
    """The real values of the stored non-learned tensors (filters, bases) a tiny module declares, as stored."""
    fixed = getattr(module, "fixed_tensors", None)
    return store(fixed(config), set(), storage) if fixed else {}


def write_lora(path: Path, model: torch.nn.Module, rank: int, seed: int, metadata: dict[str, str],
               module_prefix: str = "diffusion_model.", dtype: torch.dtype = torch.bfloat16) -> Path:
    """A LoRA in the LTX-2 format (``<module_prefix><layer>.lora_A.weight`` [r, in] / ``.lora_B.weight`` [out, r],
    no alpha) over every Linear of ``model``."""
    tensors = {}
    for name, layer in model.named_modules():
        if isinstance(layer, Linear):
            stem = f"{module_prefix}{name}"
            down = seeded_value(f"{stem}.lora_A.weight", (rank, layer.in_features), seed)
            up = 0.1 * seeded_value(f"{stem}.lora_B.weight", (layer.out_features, rank), seed)
            tensors[f"{stem}.lora_A.weight"] = down.to(dtype)
            tensors[f"{stem}.lora_B.weight"] = up.to(dtype)
    return save_atomic(path, tensors, dict(metadata))


def write_tiny_models(folder: Path, seed: int = 0) -> list[Path]:
    """Every tiny file, in ComfyUI's folder layout under ``folder``; returns the paths written."""
    written = [write_checkpoint(folder / "checkpoints" / name, storage, seed + offset)
               for name, (storage, offset) in CHECKPOINTS.items()]
    written += [write_checkpoint(folder / "checkpoints" / name, storage, seed + offset, version="2.3")
                for name, (storage, offset) in CHECKPOINTS_23.items()]
    written += [write_checkpoint(folder / "checkpoints" / name, storage, seed + offset, version="2.5")
                for name, (storage, offset) in CHECKPOINTS_25.items()]
    transformer = component("transformer")
    written += [write_checkpoint(folder / "diffusion_models" / name, storage, seed + offset, [transformer],
                                 version="2.5") for name, (storage, offset) in DIFFUSION_MODELS_25.items()]
    for module in available(("duration_head",)):
        written.append(module.write_file(folder / "model_patches" / module.RELEASE_FILE, seed))
    for version, loras in LORA_LAYOUTS.items():
        with torch.device("meta"):
            layout = transformer.build(transformer.TINY_CONFIGS[version](), device="meta")
        for index, (name, (rank, metadata)) in enumerate(loras.items()):
            written += [write_lora(folder / "loras" / f"{subfolder}{name}", layout, rank, seed + 100 + index,
                                   metadata) for subfolder in LORA_SUBFOLDERS[version]]
    written += write_upscalers(folder / "latent_upscale_models", seed)
    for module in available(("gemma",)):
        for name, storage in TEXT_ENCODERS.items():
            written.append(module.write_file(folder / "text_encoders" / name, storage, seed))
        gemma = module.lora_layout()
        for index, (name, rank) in enumerate(GEMMA_LORAS.items()):
            written.append(write_lora(folder / "loras" / name, gemma, rank, seed + 200 + index, {},
                                      module_prefix=module.PREFIX))
        written += module.write_sharded_folder(folder / "text_encoders" / SHARDED_TEXT_ENCODER, 5, seed)
    for module in available(("gemma4",)):
        written += [module.write_file(folder / "text_encoders" / name, storage, seed)
                    for name, storage in TEXT_ENCODERS_25.items()]
        written += write_split_25(folder, seed)
    return written


def write_split_25(folder: Path, seed: int = 0, storage: str = "bf16") -> list[Path]:
    """LTX-2.5's split files (besides the transformer-only one) into ``folder``'s vae/ and text_encoders/: the
    components of the tiny 2.5 checkpoint (seed offset 1, as the distilled one), the video VAE in its 2.5 form.
    ``storage``: how the two Gemma 4 files (and the bundled text path) hold their weights ("int8-convrot" as in
    the release)."""
    seed += CHECKPOINTS_25["ltx-2.5-22b-distilled.safetensors"][1]
    written = [component("diffusion_decoder").write(folder / "vae" / VIDEO_VAE_25, seed=seed),
               write_checkpoint(folder / "vae" / AUDIO_VAE_25, "bf16", seed,
                                [component("audio_vae"), component("vocoder")], version="2.5")]
    gemma = component("gemma4")
    prompt_gemma = gemma.write_file(folder / "text_encoders" / PROMPT_GEMMA_25, storage, seed, vision=True)
    with_proj = folder / "text_encoders" / TEXT_ENCODER_WITH_PROJ_25
    gemma.write_file(with_proj, storage, seed)
    # the text path reads the 2.5 checkpoint's ``transformer`` section (the transformer's fields winning, as there)
    connector = component("connector")
    section = {**tiny_config_of(connector, "2.5"), **tiny_config_of(component("transformer"), "2.5")}
    with torch.device("meta"):
        text_path = connector.build(section, device="meta")
    written += [prompt_gemma, bundle(with_proj, checkpoint_tensors([(text_path, connector.PREFIX)], seed, storage),
                                     {"transformer": section})]
    return written


def bundle(path: Path, tensors: dict[str, torch.Tensor], sections: dict[str, dict]) -> Path:
    """``path`` rewritten with ``tensors`` and the header config ``sections`` added."""
    import json
    from safetensors import safe_open
    with safe_open(str(path), "pt") as opened:
        tensors = {**{key: opened.get_tensor(key) for key in opened.keys()}, **tensors}
        config = {**json.loads((opened.metadata() or {}).get("config", "{}")), **sections}
    return save_atomic(path, tensors, {"config": json.dumps(config, sort_keys=True)})


def write_upscalers(folder: Path, seed: int = 0) -> list[Path]:
    """Every latent upscaler release file (2.0 x2; 2.3 x2 1.1, x1.5, temporal x2), tiny, into ``folder``."""
    written = []
    for module in available(("upscaler",)):
        for name, release in module.RELEASE_FILES.items():
            config = module.tiny_config(release())
            with torch.device("meta"):
                built = module.build(config, device="meta")
            tensors = checkpoint_tensors([(built, module.PREFIX)], seed, "bf16")
            tensors.update(fixed_tensors(module, config, "bf16"))
            written.append(save_atomic(folder / name, tensors, header_metadata(config)))
    return written
