"""Gemma 4 text model (LTX-2.5's encoder): parity with transformers' Gemma4UnifiedTextModel
(tools/oracle/gemma4.py), config and generation read from the tiny file, and the tiny file encoding a prompt
through LTX-2.5's text path, streamed under a memory budget exactly as resident."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from ltxgraph.context import OpContext, RunSettings
from ltxgraph_ops.gemma_generation import gemma_generation
from ltxgraph_ops.models.gemma import GemmaTextModel
from ltxgraph_ops.models.gemma_config import GEMMA4_DEFAULTS, GemmaConfig
from ltxgraph_ops.models.gemma_layers import rope_tables
from ltxgraph_ops.text_ops import gemma_config, gemma_prefix, text_encoder_handle
from ltxgraph_ops.tiny import gemma4 as tiny
from ltxgraph_ops.tiny.files import write_checkpoint
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
from ltxgraph_ops.weights.writing import random_state
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


@pytest.fixture(scope="module")
def e2b_file(tmp_path_factory) -> Path:
    return tiny.write_file(tmp_path_factory.mktemp("gemma4_e2b") / "gemma4_e2b_it.safetensors", vision=True)


def test_e2b_layout_from_the_file(e2b_file: Path) -> None:
    """Gemma 4 E2B's text model (the prompt enhancer): per-layer inputs, feed-forward widths per layer, and the
    layers that reuse earlier keys and values (from the header) hold no key/value projections of their own."""
    file = SafetensorsFile(e2b_file)
    cfg = gemma_config(file, gemma_prefix(file))
    assert cfg == tiny.tiny_e2b_config(cfg.vocab_size)
    assert [cfg.kv_source(i) for i in range(4)] == [None, None, 0, 1]
    assert "model.layers.2.self_attn.k_proj.weight" not in file.entries
    assert file.entries["model.embed_tokens_per_layer.weight"].shape == (cfg.vocab_size, 4 * 4)


def test_e2b_depth_and_head_widths_tell_what_a_file_without_config_leaves_out() -> None:
    """A ComfyUI E2B file has no config: 35 layers are E2B (the last 20 reuse keys and values, sliding window 512,
    as ComfyUI's Gemma4_E2B_Config), and the wider heads are the global layers (every fifth)."""
    types = tuple("full_attention" if (i + 1) % 5 == 0 else "sliding_attention" for i in range(35))
    real = GemmaConfig(**{**GEMMA4_DEFAULTS, "sliding_window": 512}, vocab_size=64, hidden_size=16,
                       intermediate_size=32, num_hidden_layers=35, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                       global_head_dim=16, num_global_key_value_heads=1, layer_types=types, per_layer_input_size=2,
                       per_layer_vocab_size=64,
                       kv_shared_layers=20, layer_intermediate_sizes=(32,) * 15 + (64,) * 20)
    with torch.device("meta"):
        shapes = {key: tuple(t.shape) for key, t in GemmaTextModel(real).state_dict().items()}
    assert GemmaConfig.from_tensors(shapes) == real


def test_a_layer_reusing_keys_and_values_ignores_its_own_projections() -> None:
    """Layer 2 takes layer 0's keys and values: its own key projection (a file may still store one) changes
    nothing, layer 0's changes layer 2's output."""
    cfg = dataclasses.replace(tiny.tiny_e2b_config(64), shared_layers_hold_kv=True)
    model = GemmaTextModel(cfg).eval()
    model.load_state_dict(random_state(model, "", 3))
    ids, mask = torch.tensor([[2, 5, 6, 7, 8, 9]]), torch.ones(1, 6, dtype=torch.int64)
    with torch.no_grad():
        base = model(ids, mask)
        noise = torch.randn(model.layers[0].self_attn.k_proj.weight.shape, generator=torch.Generator().manual_seed(4))
        model.layers[2].self_attn.k_proj.weight.add_(noise)         # (a scale alone would vanish in the key norm)
        same = model(ids, mask)
        model.layers[0].self_attn.k_proj.weight.add_(noise)
        changed = model(ids, mask)
    assert all(torch.equal(a, b) for a, b in zip(base, same))
    assert float((changed[3] - base[3]).abs().max()) > 1e-4
