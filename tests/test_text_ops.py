"""Text ops on the tiny files: prompt -> CONDITIONING shapes and masks, batch independence, tokenizer source
errors, the checkpoint's projection checked against the Gemma file, prompt enhancement, and streamed Gemma
equal to resident."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ltxgraph.context import OpContext, RunSettings
from ltxgraph.errors import InputValueError, InvalidInput
from ltxgraph_ops.text_ops import (clip_text_encode, ltxav_text_encoder_loader, ltxv_gemma_clip_loader,
                                   ltxv_gemma_enhance_prompt, text_encoder_handle)
from ltxgraph_ops.tiny.files import write_tiny_models
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile

PROMPT = "A lighthouse on a cliff at dusk, waves crashing below."


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    write_tiny_models(folder)
    return folder


def paths(models: Path, gemma: str = "gemma_3_12B_it_fp8_scaled.safetensors") -> tuple[str, str]:
    return str(models / "text_encoders" / gemma), str(models / "checkpoints" / "ltx-2-19b-dev-fp8.safetensors")


def test_prompt_becomes_video_and_audio_contexts(models) -> None:
    clip = ltxav_text_encoder_loader(*paths(models))
    cond = clip_text_encode(PROMPT, clip)
    assert cond.video_context.shape == cond.audio_context.shape == (1, 1024, 24)
    assert bool(cond.context_mask.all()) and torch.isfinite(cond.video_context).all()
    other = clip_text_encode("Snow falls on a quiet street.", clip)
    assert not torch.allclose(cond.video_context, other.video_context)
    batch = clip.encode([PROMPT, "Snow falls on a quiet street."])       # batch > 1: each prompt on its own padding
    assert torch.allclose(batch.video_context[0], cond.video_context[0], atol=1e-5)
    assert torch.allclose(batch.audio_context[1], other.audio_context[0], atol=1e-5)


def test_leading_padding_is_not_run_through_gemma_and_changes_nothing(models) -> None:
    clip = ltxav_text_encoder_loader(*paths(models))
    prompts = [PROMPT, "Snow falls on a quiet street."]
    ids, mask, _ = clip.tokenizer.encode(prompts, clip.max_length)
    with torch.inference_mode():
        full_length = clip.projector.get()(clip.gemma.get()(ids, mask), mask)  # all 1024 columns through Gemma
    seen = []
    gemma = clip.gemma.get()
    hook = gemma.embed_tokens.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[1]))
    try:
        trimmed = clip.encode(prompts)
    finally:
        hook.remove()
    assert seen == [int(mask.sum(dim=1).max())] and seen[0] < 64                # only the longest prompt's columns
    torch.testing.assert_close(trimmed.video_context, full_length[0], rtol=0, atol=5e-6)
    torch.testing.assert_close(trimmed.audio_context, full_length[1], rtol=0, atol=5e-6)
    assert torch.equal(trimmed.context_mask, full_length[2])


def test_streamed_gemma_equals_resident(models) -> None:
    gemma, ckpt = paths(models, "gemma_3_12B_it.safetensors")
    resident = text_encoder_handle(gemma, ckpt, None)
    streamed = text_encoder_handle(gemma, ckpt, OpContext("t", settings=RunSettings(memory_budget=1000)))
    seen: list[tuple[str, int, int]] = []
    counting = OpContext("t", on_step=lambda node, step, total, info: seen.append((info["unit"], step, total)))
    a, b = resident.encode([PROMPT]), streamed.encode([PROMPT], counting)
    assert torch.equal(a.video_context, b.video_context)
    layers = len(streamed.gemma.get().layers)
    assert seen == [("layer", i, layers) for i in range(1, layers + 1)]           # streamed layers are counted
    assert type(streamed.gemma.get().layers).__name__ == "StreamedBlocks"
    table = streamed.gemma.get().embed_tokens
    assert table.weight.device.type == "meta"                      # the token table is left on disk
    table.LOGIT_ROWS = 7                                           # the output head reads it in slices
    hidden = torch.randn(1, 3, table.weight.shape[1])
    torch.testing.assert_close(table.logits(hidden), resident.gemma.get().embed_tokens.logits(hidden))
    ids = torch.tensor([[5, 9, 5, 2]])
    assert torch.equal(table(ids), resident.gemma.get().embed_tokens(ids))


def test_the_budget_counts_the_resident_connectors(models) -> None:
    from ltxgraph_ops.text_ops import TEXT_PREFIXES
    gemma, ckpt = paths(models, "gemma_3_12B_it.safetensors")
    gemma_bytes = sum(entry.nbytes for key, entry in SafetensorsFile(gemma).entries.items()
                      if key.startswith("model."))
    text_bytes = sum(entry.nbytes for key, entry in SafetensorsFile(ckpt).entries.items()
                     if key.startswith(TEXT_PREFIXES))
    assert gemma_bytes > 0 and text_bytes > 0

    def layers_with(budget: int) -> str:
        handle = text_encoder_handle(gemma, ckpt, OpContext("t", settings=RunSettings(memory_budget=budget)))
        return type(handle.gemma.get().layers).__name__
    assert layers_with(gemma_bytes + text_bytes // 2) == "StreamedBlocks"   # Gemma alone would fit
    assert layers_with(gemma_bytes + text_bytes) == "ModuleList"


def test_a_file_without_tokenizer_is_refused_by_name(models, tmp_path: Path) -> None:
    gemma, ckpt = paths(models)
    tensors = load_file(gemma)
    tensors.pop("spiece_model")
    save_file(tensors, str(tmp_path / "te.safetensors"), metadata=SafetensorsFile(gemma).metadata)
    with pytest.raises(CheckpointError, match="no tokenizer.*tokenizer.model"):
        ltxav_text_encoder_loader(str(tmp_path / "te.safetensors"), ckpt)
    (tmp_path / "tokenizer.model").write_bytes(bytes(load_file(gemma)["spiece_model"].tolist()))
    clip = ltxav_text_encoder_loader(str(tmp_path / "te.safetensors"), ckpt)       # the file beside it works
    assert clip_text_encode(PROMPT, clip).video_context.shape == (1, 1024, 24)


def test_sharded_gemma_folder(models, tmp_path: Path) -> None:
    gemma, ckpt = paths(models, "gemma_3_12B_it.safetensors")
    tensors = load_file(gemma)
    keys = sorted(tensors)
    folder = tmp_path / "gemma-3-12b-it"
    folder.mkdir()
    for index, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2:]), start=1):
        save_file({k: tensors[k] for k in part}, str(folder / f"model-0000{index}-of-00002.safetensors"),
                  metadata=SafetensorsFile(gemma).metadata)
    clip = ltxv_gemma_clip_loader(str(folder / "model-00001-of-00002.safetensors"), ckpt, 1024)
    single = ltxav_text_encoder_loader(gemma, ckpt)
    assert torch.equal(clip_text_encode(PROMPT, clip).video_context, clip_text_encode(PROMPT, single).video_context)
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(InvalidInput, match="incomplete"):   # refused by the loader's input check
        ltxv_gemma_clip_loader(str(folder / "model-00001-of-00002.safetensors"), ckpt, 1024)


def test_wrong_pairings_and_empty_clip(models, tmp_path: Path) -> None:
    gemma, ckpt = paths(models)
    with pytest.raises(InvalidInput, match="not a Gemma 3 text encoder"):   # the loader's input check
        ltxav_text_encoder_loader(ckpt, ckpt)
    with pytest.raises(InputValueError, match="LTXAVTextEncoderLoader"):
        clip_text_encode(PROMPT, None)


def test_prompt_enhancement_is_seeded_and_bounded(models) -> None:
    clip = ltxav_text_encoder_loader(*paths(models))
    first = ltxv_gemma_enhance_prompt(clip, "a cat", max_tokens=32, seed=1)
    again = ltxv_gemma_enhance_prompt(clip, "a cat", max_tokens=32, seed=1)
    assert first == again and isinstance(first, str) and first
    seen: list[tuple[str, int, int]] = []
    counting = OpContext("e", on_step=lambda node, step, total, info: seen.append((info["unit"], step, total)))
    assert ltxv_gemma_enhance_prompt(clip, "a cat", max_tokens=32, seed=1, ctx=counting) == first
    assert seen == [("token", i, 32) for i in range(1, len(seen) + 1)] and 0 < len(seen) <= 32
    # (the bound is on generated tokens: the tiny tokenizer falls back to bytes like Gemma's, and random bytes
    # decode to U+FFFD, so the text need not re-tokenize to the same count)
    looked = ltxv_gemma_enhance_prompt(clip, "a cat", max_tokens=32, seed=1, image=torch.zeros(1, 8, 8, 3))
    assert looked and looked != first   # the tiny file carries a vision tower (tests/test_gemma_image_prompt.py)


def test_a_23_checkpoint_gives_contexts_at_the_transformer_widths(models) -> None:
    gemma, _ = paths(models)
    clip = ltxav_text_encoder_loader(gemma, str(models / "checkpoints" / "ltx-2.3-22b-dev-fp8.safetensors"))
    cond = clip_text_encode(PROMPT, clip)
    assert cond.video_context.shape == (1, 1024, 32) and cond.audio_context.shape == (1, 1024, 16)
    assert bool(cond.context_mask.all()) and torch.isfinite(cond.video_context).all()
    assert float(cond.audio_context.std()) > 0
    prompts = [PROMPT, "Snow falls on a quiet street."]
    batch = clip.encode(prompts)                                         # each prompt on its own padding
    torch.testing.assert_close(batch.video_context[0], cond.video_context[0], rtol=0, atol=1e-5)
    ids, mask, _ = clip.tokenizer.encode(prompts, clip.max_length)
    with torch.inference_mode():
        full_length = clip.projector.get()(clip.gemma.get()(ids, mask), mask)  # all 1024 columns through Gemma
    torch.testing.assert_close(batch.video_context, full_length[0], rtol=0, atol=5e-6)
    torch.testing.assert_close(batch.audio_context, full_length[1], rtol=0, atol=5e-6)


def test_a_partial_23_text_header_is_refused_naming_the_field(models, tmp_path: Path) -> None:
    gemma, _ = paths(models)
    source = SafetensorsFile(models / "checkpoints" / "ltx-2.3-22b-dev.safetensors")
    config = source.config()
    del config["transformer"]["caption_proj_input_norm"]
    bad = tmp_path / "ltx-2.3-bad.safetensors"
    save_file(load_file(str(source.path)), str(bad), metadata={**source.metadata, "config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="ltx-2.3-bad.safetensors.*missing caption_proj_input_norm"):
        ltxav_text_encoder_loader(gemma, str(bad))


def test_under_memory_pressure_the_23_connector_blocks_stream_too(models) -> None:
    gemma, _ = paths(models, "gemma_3_12B_it.safetensors")
    ckpt = str(models / "checkpoints" / "ltx-2.3-22b-dev.safetensors")
    resident = text_encoder_handle(gemma, ckpt, None)
    streamed = text_encoder_handle(gemma, ckpt, OpContext("t", settings=RunSettings(memory_budget=1000)))
    a, b = resident.encode([PROMPT]), streamed.encode([PROMPT])
    assert torch.equal(a.video_context, b.video_context) and torch.equal(a.audio_context, b.audio_context)
    connectors = streamed.projector.get().model.diffusion_model
    for connector in (connectors.video_embeddings_connector, connectors.audio_embeddings_connector):
        blocks = connector.transformer_1d_blocks
        assert type(blocks).__name__ == "StreamedBlocks" and blocks.reads == 2      # read once per encode
        assert blocks[0].attn1.to_gate_logits.weight.device.type == "meta"        # released after use
    assert type(resident.projector.get().model.diffusion_model.video_embeddings_connector
                .transformer_1d_blocks).__name__ == "ModuleList"
