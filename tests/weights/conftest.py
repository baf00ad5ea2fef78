from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.tiny.files import write_checkpoint


@pytest.fixture(scope="session")
def tiny_layout() -> torch.nn.Module:
    return tiny.build(tiny.tiny_config(), device="meta")


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """The tiny transformer written in each storage format (same seed)."""
    folder = tmp_path_factory.mktemp("ckpt")
    return {storage: write_checkpoint(folder / f"{storage}.safetensors", storage, 0, [tiny])
            for storage in ("float32", "bf16", "fp8", "fp8-old")}
