"""Parity of checkpoint loading and LoRAs: the same tiny checkpoint file and LoRA files, loaded by ltx-core's own
builder (LoRAs fused into the weights) and by ours (weights as stored, LoRAs attached as deltas at compute time);
the full AV forward of both compared in float32."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from ltxgraph_ops.model_files import load_transformer  # noqa: E402
from ltxgraph_ops.tiny import transformer as tiny  # noqa: E402
from ltxgraph_ops.tiny.files import write_checkpoint, write_lora  # noqa: E402
from ltxgraph_ops.weights.lora import LoraPatch, read_lora  # noqa: E402
from ltxgraph_ops.handles import ModelHandle  # noqa: E402
from tools.oracle.transformer import (SEED, Pair, audio_input, compare, video_input)  # noqa: E402
from ltxgraph_ops.models.transformer import Perturbations  # noqa: E402

LORAS = ((0.8, 4, 11), (-0.5, 2, 12))  # (strength, rank, seed) of two stacked LoRAs


def reference_from_files(checkpoint: Path, loras: list[tuple[Path, float]]) -> torch.nn.Module:
    """ltx-core's transformer built by its own single-file builder, LoRAs fused, float32 on CPU."""
    from ltx_core.loader.primitives import LoraPathStrengthAndSDOps
    from ltx_core.loader.sd_ops import LTXV_LORA_COMFY_RENAMING_MAP
    from ltx_core.loader.single_gpu_model_builder import SingleGPUModelBuilder
    from ltx_core.model.transformer.model_configurator import (LTXModelConfigurator,
                                                               LTXV_MODEL_COMFY_RENAMING_MAP)
    builder = SingleGPUModelBuilder(
        model_class_configurator=LTXModelConfigurator, model_path=str(checkpoint),
        model_sd_ops=LTXV_MODEL_COMFY_RENAMING_MAP,
        loras=tuple(LoraPathStrengthAndSDOps(str(path), strength, LTXV_LORA_COMFY_RENAMING_MAP)
                    for path, strength in loras))
    # tensors no LoRA touches stay in their stored dtype in its build: upcast them as we do per call
    return builder.build(device=torch.device("cpu"), dtype=torch.float32).float().eval()


@torch.no_grad()
def file_pair_error(with_loras: bool) -> float:
    with tempfile.TemporaryDirectory() as folder:
        # ltx-core fuses LoRAs only into bf16 or fp8 weights; its float32 build upcasts them as we do per call
        storage = "bf16" if with_loras else "float32"
        checkpoint = write_checkpoint(Path(folder) / "ckpt.safetensors", storage, SEED,
                                      [sys.modules["ltxgraph_ops.tiny.transformer"]])
        ours_model = load_transformer(checkpoint)
        loras = []
        if with_loras:
            for index, (strength, rank, seed) in enumerate(LORAS):
                path = write_lora(Path(folder) / f"lora{index}.safetensors", ours_model, rank, seed, {},
                                  dtype=torch.float32)
                loras.append((path, strength))
        handle = ModelHandle(ours_model, checkpoint.name)
        for path, strength in loras:
            handle = handle.with_patch(LoraPatch(read_lora(path, ours_model), strength))
        reference = reference_from_files(checkpoint, loras)
        config = tiny.tiny_config()
        generator = torch.Generator().manual_seed(SEED + 1)
        video, audio = video_input(config, generator), audio_input(config, generator)
        with handle.applied() as module:
            errors = [compare(Pair(module, reference), video, audio),
                      compare(Pair(module, reference), video, audio, Perturbations.stg([1]))]
        return max(errors)


def check_checkpoint_file() -> float:
    return file_pair_error(with_loras=False)


def check_checkpoint_with_two_loras() -> float:
    return file_pair_error(with_loras=True)


CHECKS: dict[str, Callable[[], float]] = {
    "checkpoint_file_load": check_checkpoint_file,
    "checkpoint_two_loras_stacked": check_checkpoint_with_two_loras,
}
