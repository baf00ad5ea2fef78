"""A text encoder of the wrong Gemma generation for the checkpoint (LTX-2.5 with Gemma 3, LTX-2.0/2.3 with Gemma 4)
is refused from the headers, at validation, naming both files."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from ltxgraph_ops.gemma_generation import gemma_generation
from ltxgraph_ops.text_ops import text_encoder_files
from ltxgraph_ops.tiny import gemma as tiny_gemma
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
from ltxgraph_ops.weights.writing import save_atomic

LTX23_FLAGS = {"apply_gated_attention": True, "cross_attention_adaln": True, "caption_proj_before_connector": True}


def _checkpoint(path, **transformer) -> str:
    """A header-only stand-in for an LTX-2.3-layout checkpoint: transformer and text-projection keys."""
    tensors = {f"model.diffusion_model.{key}": torch.zeros(2, 2) for key in
               ("patchify_proj.weight", "transformer_blocks.0.attn1.to_gate_logits.weight")}
    tensors["text_embedding_projection.video_aggregate_embed.weight"] = torch.zeros(2, 2)
    save_atomic(path, tensors, {"config": json.dumps({"transformer": {**LTX23_FLAGS, **transformer}})})
    return str(path)


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gemma")
    gemma3 = tiny_gemma.write_file(folder / "gemma_3_12B_it.safetensors")
    tensors = load_file(gemma3)
    header = json.loads(SafetensorsFile(gemma3).metadata["config"])
    gemma4 = save_atomic(folder / "gemma_4_12B_it.safetensors", tensors,
                         {"config": json.dumps({**header, "model_type": "gemma4_text"})})
    return str(gemma3), str(gemma4)


def test_generation_from_the_header_or_the_layer_keys(encoders, tmp_path):
    gemma3, gemma4 = encoders
    assert gemma_generation(SafetensorsFile(gemma3)) == 3
    assert gemma_generation(SafetensorsFile(gemma4)) == 4
    keyed = save_atomic(tmp_path / "g4.safetensors", {"model.layers.0.layer_scalar": torch.ones(1)}, {})
    assert gemma_generation(SafetensorsFile(keyed)) == 4


def test_ltx25_with_gemma3_is_refused_naming_both(encoders, tmp_path):
    gemma3, gemma4 = encoders
    ltx25 = _checkpoint(tmp_path / "ltx-2.5.safetensors", ff_bias=False)
    message = text_encoder_files.fn(gemma3, ltx25)
    assert message is not None
    assert "gemma_3_12B_it.safetensors is Gemma 3" in message and "ltx-2.5.safetensors is LTX-2.5" in message
    assert text_encoder_files.fn(gemma4, ltx25) is None


def test_ltx23_with_gemma4_is_refused_naming_both(encoders, tmp_path):
    gemma3, gemma4 = encoders
    ltx23 = _checkpoint(tmp_path / "ltx-2.3.safetensors")
    message = text_encoder_files.fn(gemma4, ltx23)
    assert message is not None and "gemma_4_12B_it.safetensors is Gemma 4" in message
    assert "ltx-2.3.safetensors is LTX-2.3" in message and "Gemma 3" in message
    assert text_encoder_files.fn(gemma3, ltx23) is None
