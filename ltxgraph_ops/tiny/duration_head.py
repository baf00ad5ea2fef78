"""Tiny LTX-2.5 duration head (keys ``duration_head.*``; the header ``config`` carries the transformer section the
stream widths come from and a ``duration_head`` section). ``RELEASE_FILE`` is the name ltx-pipelines' docs give the
release file; ComfyUI loads it with ModelPatchLoader from ``models/model_patches``. A 2.5 single-file checkpoint
carries the head too (ltx-pipelines 1.2.0 reads a monolith's duration head from the checkpoint itself), so
:func:`ltxgraph_ops.tiny.files.write_checkpoint` writes it there from :data:`BUILDS_FROM_HEADER`'s whole header."""
from __future__ import annotations

from pathlib import Path

import torch

from ltxgraph_ops.models.duration_head import PREFIX, DurationHead, DurationHeadConfig
from ltxgraph_ops.tiny import transformer
from ltxgraph_ops.weights.writing import checkpoint_tensors, header_metadata, save_atomic

COMPONENT = "duration_head"
SECTION = "duration_head"
BUILDS_FROM_HEADER = True   # ``build`` takes the whole header config: the head's widths are the transformer's
RELEASE_FILE = "ltx-2.5-duration-head-bf16.safetensors"


def full_config() -> dict:
    """The reference's head widths (ltx-core 1.2.0 reads a ``duration_head`` section; these are its defaults)."""
    return {"pooler_hidden_dim": 256, "num_queries": 1, "num_pooler_heads": 4, "mlp_hidden": 256}


def tiny_config() -> dict:
    return {"pooler_hidden_dim": 16, "num_queries": 2, "num_pooler_heads": 2, "mlp_hidden": 12}


def tiny_config_25() -> dict:
    return tiny_config()


def tiny_header() -> dict:
    """The whole header ``config`` of the tiny file: the tiny 2.5 transformer's section and the head's."""
    return {"transformer": transformer.tiny_config_25(), SECTION: tiny_config()}


def build(config: dict, device: str | torch.device = "cpu") -> DurationHead:
    """The head for a whole header ``config`` (sections ``transformer`` and ``duration_head``)."""
    return DurationHead(DurationHeadConfig.from_header(config), device=device)


def write_file(path: Path, seed: int = 0, storage: str = "bf16") -> Path:
    header = tiny_header()
    with torch.device("meta"):
        layout = build(header, device="meta")
    return save_atomic(path, checkpoint_tensors([(layout, PREFIX)], seed, storage), header_metadata(header))
