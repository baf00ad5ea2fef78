"""The model version of a checkpoint, decided once from its header and keys: 2.0, 2.3, 2.5 or a clear refusal."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ltxgraph_ops.model_files import checkpoint_version, transformer_config
from ltxgraph_ops.model_version import ModelVersionError, model_version
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile
from ltxgraph_ops.weights.writing import checkpoint_tensors, header_metadata, save_atomic

REFERENCE = Path(__file__).resolve().parent.parent / "data" / "reference"


def keys_of(config: dict) -> list[str]:
    with torch.device("meta"):
        model = tiny.build(config, device="meta")
    return [f"model.diffusion_model.{key}" for key in model.state_dict()]


def test_release_headers_are_told_apart() -> None:
    header_23 = json.loads((REFERENCE / "ltx23_22b_config.json").read_text())
    assert model_version({"config": {"transformer": tiny.full_config()}}) == "2.0"
    assert model_version({"config": header_23}) == "2.3"
    assert model_version({"config": json.dumps(header_23), "model_version": "2.3.0"}) == "2.3"


def test_later_headers_are_2_5() -> None:
    section = tiny.full_config_23()
    assert model_version({"config": {"transformer": {**section, "ff_bias": False}}}) == "2.5"
    assert model_version({"config": {"transformer": section}, "model_version": "2.5.0"}) == "2.5"
    assert model_version({"config": {"transformer": section},
                          "gemma_source_checkpoint": {"gemma_version": "gemma4-12b-ltx-v1"}}) == "2.5"


def test_keys_must_fit_the_header() -> None:
    assert model_version({"config": {"transformer": tiny.tiny_config()}}, keys_of(tiny.tiny_config())) == "2.0"
    assert model_version({"config": {"transformer": tiny.tiny_config_23()}},
                         keys_of(tiny.tiny_config_23())) == "2.3"
    with pytest.raises(ModelVersionError, match="describes LTX-2.3, but the transformer holds "
                                                "'audio_caption_projection.linear_1.weight'"):
        model_version({"config": {"transformer": tiny.tiny_config_23()}}, keys_of(tiny.tiny_config()))
    with pytest.raises(ModelVersionError, match="describes LTX-2.0, but the transformer holds"):
        model_version({"config": {"transformer": tiny.tiny_config()}}, keys_of(tiny.tiny_config_23()))


def test_headers_that_are_neither_are_refused_naming_what_was_found() -> None:
    with pytest.raises(ModelVersionError, match="no 'transformer' section \\(found: vae\\)"):
        model_version({"config": {"vae": {}}})
    with pytest.raises(ModelVersionError, match="mixes .*apply_gated_attention=True, cross_attention_adaln=None"):
        model_version({"config": {"transformer": {**tiny.full_config(), "apply_gated_attention": True}}})
    with pytest.raises(ModelVersionError, match="not valid JSON"):
        model_version({"config": "{"})


def write_transformer_file(path: Path, header: dict, layout: dict) -> Path:
    with torch.device("meta"):
        model = tiny.build(layout, device="meta")
    return save_atomic(path, checkpoint_tensors([(model, tiny.PREFIX)], 0, "bf16"),
                       header_metadata({"transformer": header}))


def test_loaders_ask_the_version_and_refuse_a_contradiction(tmp_path: Path) -> None:
    good = write_transformer_file(tmp_path / "good.safetensors", tiny.tiny_config_23(), tiny.tiny_config_23())
    assert checkpoint_version(SafetensorsFile(good)) == "2.3"
    assert transformer_config(SafetensorsFile(good)).cross_attention_adaln
    bad = write_transformer_file(tmp_path / "bad.safetensors", tiny.tiny_config_23(), tiny.tiny_config())
    with pytest.raises(CheckpointError, match="bad.safetensors: the header describes LTX-2.3"):
        transformer_config(SafetensorsFile(bad))
