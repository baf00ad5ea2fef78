"""Which Gemma a text-encoder file holds (3 or 4) and whether it fits an LTX-2 checkpoint: LTX-2.0 and 2.3 encode
prompts with Gemma 3, LTX-2.5 with Gemma 4 (ltx-core 1.2.0 checks the same pairing when it loads a text encoder).

A file tells its generation by its header (``model_type`` ``gemma3*`` / ``gemma4*``, at the top of the config or
in its ``text_config``) or, without one, by its keys: every Gemma 4 decoder layer holds a ``layer_scalar``
buffer that Gemma 3 layers lack. The header is the ``config`` metadata entry, or in a text-encoder file packed by
ltx-core 1.2.0 (``gemma_assets.build_text_encoder_tensors_from_gemma_root``) the Hugging Face config it stores under
``gemma_config``.
"""
from __future__ import annotations

import json
from typing import Any

from ltxgraph_ops.model_files import checkpoint_version
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile

GEMMA4_LAYER_KEY = "layers.0.layer_scalar"
PACKED_CONFIG_KEY = "gemma_config"
GEMMA_FOR_VERSION = {"2.0": 3, "2.3": 3, "2.5": 4}


def _declared_model_type(config: dict) -> str:
    text = config.get("text_config")
    nested = text.get("model_type", "") if isinstance(text, dict) else ""
    return str(config.get("model_type") or nested or "")


def gemma_header(file: Any) -> dict:
    """The config a Gemma text-encoder file declares: its ``config`` metadata entry, else the Hugging Face config
    of an ltx-core 1.2.0 packed file (``gemma_config``), else {}."""
    config = file.config()
    packed = file.metadata.get(PACKED_CONFIG_KEY)
    if config or packed is None:
        return config
    try:
        config = json.loads(packed)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{file.path}: metadata '{PACKED_CONFIG_KEY}' is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{file.path}: metadata '{PACKED_CONFIG_KEY}' is not a JSON object")
    return config


def gemma_generation(file: Any) -> int:
    """3 or 4 for a Gemma text-encoder file (a SafetensorsFile or ShardedSafetensors)."""
    model_type = _declared_model_type(gemma_header(file))
    if model_type.startswith("gemma4"):
        return 4
    if model_type.startswith("gemma3"):
        return 3
    return 4 if any(key.endswith(GEMMA4_LAYER_KEY) for key in file.entries) else 3


def check_gemma_fits(gemma: Any, checkpoint: SafetensorsFile) -> None:
    """Refuses (CheckpointError naming both files) a Gemma of the wrong generation for the checkpoint's LTX-2
    version; a checkpoint without a transformer (its version unknown here) is not judged."""
    if "transformer" not in checkpoint.config():
        return
    version = checkpoint_version(checkpoint)
    wanted, found = GEMMA_FOR_VERSION[version], gemma_generation(gemma)
    if found != wanted:
        raise CheckpointError(f"text encoder {gemma.name} is Gemma {found}, but checkpoint {checkpoint.path.name} "
                              f"is LTX-{version}, which encodes prompts with Gemma {wanted}: use a Gemma {wanted} "
                              "text encoder with it")
