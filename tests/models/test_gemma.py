"""Gemma 3 text model and tokenizer: parity with transformers (tools/oracle/gemma.py), config from tensor shapes,
tokenizer round trips and padding, and the tiny file."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltxgraph_ops.models.gemma_config import GemmaConfig
from ltxgraph_ops.models.gemma_tokenizer import BOS_ID, PAD_ID, GemmaTokenizer
from ltxgraph_ops.tiny import gemma as tiny
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
from tools.oracle import gemma as oracle


@pytest.fixture(scope="module")
def tokenizer() -> GemmaTokenizer:
    return GemmaTokenizer(tiny.train_tiny_spm())


def test_tokenizer_round_trip_bos_no_eos_left_padding(tokenizer) -> None:
    text = "A lighthouse stands on a cliff at dusk"
    tokens = tokenizer.tokenize(text)
    assert tokens[0] == BOS_ID and 1 not in tokens
    assert tokenizer.decode(tokens) == text
    ids, mask, lost = tokenizer.encode([text, "waves"], max_length=32)
    assert ids.shape == mask.shape == (2, 32) and lost == [0, 0]
    assert ids[0, -len(tokens):].tolist() == tokens and bool((ids[0, :-len(tokens)] == PAD_ID).all())
    assert mask[1].sum() == len(tokenizer.tokenize("waves")) and mask[1, -1] == 1 and mask[1, 0] == 0


def test_truncation_is_reported(tokenizer) -> None:
    ids, mask, lost = tokenizer.encode(["seagulls " * 50], max_length=16)
    assert mask.sum() == 16 and ids[0, 0] == BOS_ID and lost[0] > 0


def test_tiny_spm_is_deterministic() -> None:
    assert tiny.train_tiny_spm() == tiny.train_tiny_spm()


def test_config_from_tensor_shapes(tmp_path: Path) -> None:
    path = tiny.write_file(tmp_path / "te.safetensors", "fp8")
    file = SafetensorsFile(path)
    shapes = {k[len("model."):]: e.shape for k, e in file.entries.items() if k.startswith("model.")}
    cfg = GemmaConfig.from_tensors(shapes, {"sliding_window": 16, "rope_scaling": {"factor": 4.0}})
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.head_dim, cfg.num_attention_heads,
            cfg.num_key_value_heads) == (2, 24, 8, 2, 1)
    assert cfg.sliding_window == 16 and cfg.rope_scaling_factor == 4.0 and cfg.rope_theta == 1e6
    assert "spiece_model" in file.entries and file.entries["model.layers.0.mlp.up_proj.weight"].dtype == \
        torch.float8_e4m3fn


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_parity(name: str) -> None:
    assert oracle.CHECKS[name]() <= 1e-5
