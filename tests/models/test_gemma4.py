"""Gemma 4 text model (LTX-2.5's encoder): parity with transformers' Gemma4UnifiedTextModel
(tools/oracle/gemma4.py), config and generation read from the tiny file, and the tiny file encoding a prompt
through LTX-2.5's text path, streamed under a memory budget exactly as resident."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltxgraph.context import OpContext, RunSettings
from ltxgraph_ops.gemma_generation import gemma_generation
from ltxgraph_ops.models.gemma import GemmaConfig, GemmaTextModel, rope_tables
from ltxgraph_ops.text_ops import gemma_config, gemma_prefix, text_encoder_handle
from ltxgraph_ops.tiny import gemma4 as tiny
from ltxgraph_ops.tiny.files import write_checkpoint
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
from tools.oracle import gemma4 as oracle

PROMPT = "A lighthouse on a cliff at dusk, waves crashing below."


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    return tiny.write_file(tmp_path_factory.mktemp("gemma4") / "gemma4.safetensors")


def test_config_and_generation_from_the_file(tiny_file: Path) -> None:
    file = SafetensorsFile(tiny_file)
    cfg = gemma_config(file, gemma_prefix(file))
    assert gemma_generation(file) == 4
    assert cfg == tiny.tiny_config(cfg.vocab_size)
    assert (cfg.head_dim_of(False), cfg.head_dim_of(True), cfg.key_value_heads_of(True)) == (8, 16, 1)
    assert cfg.shares_keys_and_values(True) and not cfg.shares_keys_and_values(False)
    assert "model.layers.1.self_attn.v_proj.weight" not in file.entries       # values from the key projection
    assert file.entries["model.layers.0.layer_scalar"].shape == (1,)


def test_gemma3_config_is_unchanged_by_the_gemma4_fields() -> None:
    cfg = GemmaConfig()
    assert (cfg.norm_offset, cfg.value_norm, cfg.layer_scalar, cfg.head_dim_of(True)) == (1.0, False, False, 256)
    assert [cfg.is_global(i) for i in range(6)] == [False] * 5 + [True]


def test_proportional_rope_turns_only_a_share_of_the_frequencies() -> None:
    cos, sin = rope_tables(torch.arange(5), 16, 1e6, 1.0, torch.float32, rotating=0.25)
    assert bool((sin[:, 2:8] == 0).all()) and bool((cos[:, 2:8] == 1).all())
    assert bool((sin[1:, :2] != 0).all())


def test_streamed_gemma4_equals_resident_through_the_25_text_path(tiny_file: Path) -> None:
    gemma = str(tiny_file)
    ckpt = str(write_checkpoint(tiny_file.with_name("ltx-2.5.safetensors"), "bf16", 1, version="2.5"))
    resident = text_encoder_handle(gemma, ckpt, None)
    streamed = text_encoder_handle(gemma, ckpt, OpContext("t", settings=RunSettings(memory_budget=1000)))
    assert isinstance(resident.gemma.get(), GemmaTextModel) and resident.gemma.get().config.layer_scalar
    a, b = resident.encode([PROMPT]), streamed.encode([PROMPT])
    assert type(streamed.gemma.get().layers).__name__ == "StreamedBlocks"
    assert torch.isfinite(a.video_context).all() and torch.equal(a.video_context, b.video_context)
    assert torch.equal(a.audio_context, b.audio_context)


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_parity(name: str) -> None:
    pytest.importorskip("transformers.models.gemma4_unified")
    assert oracle.CHECKS[name]() <= 1e-5
