"""Tiny and full-size Gemma 3 text encoders in the ComfyUI file layout (``model.*`` keys plus the serialized
SentencePiece model in a ``spiece_model`` uint8 tensor), and the tiny tokenizer it embeds: trained here with the
sentencepiece library on a built-in English text, deterministically."""
from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from ltxgraph_ops.models.gemma import GemmaConfig, GemmaTextModel
from ltxgraph_ops.weights.writing import random_state, save_atomic, store

COMPONENT = "gemma"
PREFIX = "model."
HF_PREFIX = "language_model.model."  # Gemma3ForConditionalGeneration's text model in a Hugging Face folder
SECTION = None
# The tiny file's header carries these (a real ComfyUI file has no config: the 12B values are the defaults).
TINY_OVERRIDES = {"sliding_window": 16, "sliding_window_pattern": 2}

CORPUS = """A lighthouse stands on a cliff at dusk while waves crash below and seagulls call over the wind.
A man in a black tuxedo sings opera in a small red tiled bathroom, facing the mirror.
The camera slowly pushes in on a cheerful puppet holding a red umbrella in the rain.
Mountain bikers race across fresh snow on a bright winter morning, kicking up powder.
A squirrel nibbles at something on a wooden platform under a decorated tree.
Soft forest sounds, rustling leaves, distant birdsong and a gentle breeze fill the air.
She tilts her head and says in a warm voice: welcome, what can I get for you today?
The mood is calm, cinematic and detailed, with warm light and long shadows.
"""


def full_config() -> GemmaConfig:
    return GemmaConfig()


def tiny_config(vocab_size: int) -> GemmaConfig:
    return GemmaConfig(vocab_size=vocab_size, hidden_size=24, intermediate_size=48, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, head_dim=8, query_pre_attn_scalar=8,
                       **TINY_OVERRIDES)


def build(config: GemmaConfig, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return GemmaTextModel(config)


def train_tiny_spm(vocab_size: int = 128) -> bytes:
    """A SentencePiece model (unigram) with Gemma's special ids: pad 0, eos 1, bos 2, unk 3; deterministic."""
    import sentencepiece as spm
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS.splitlines() * 4), model_writer=model,
                                   vocab_size=vocab_size, model_type="unigram", pad_id=0, eos_id=1, bos_id=2,
                                   unk_id=3, num_threads=1, hard_vocab_limit=False,
                                   user_defined_symbols=["<start_of_turn>", "<end_of_turn>"], minloglevel=2)
    return model.getvalue()


def tiny_weights(storage: str, seed: int) -> tuple[bytes, dict[str, torch.Tensor]]:
    """The tokenizer (SentencePiece bytes) and the tiny weights under ``model.*`` keys, stored as ``storage``."""
    spm_bytes = train_tiny_spm()
    import sentencepiece as spm
    vocab = spm.SentencePieceProcessor(model_proto=spm_bytes).get_piece_size()
    model = build(tiny_config(vocab), device="meta")
    linears = {f"{PREFIX}{name}.weight" for name, sub in model.named_modules()
               if type(sub).__name__ == "Linear"}
    return spm_bytes, store(random_state(model, PREFIX, seed), linears, storage)


def write_file(path: Path, storage: str = "bf16", seed: int = 0) -> Path:
    """A tiny text-encoder file: weights (``storage``: bf16, fp8 (scaled) or float32) and the tokenizer."""
    spm_bytes, tensors = tiny_weights(storage, seed)
    tensors["spiece_model"] = torch.frombuffer(bytearray(spm_bytes), dtype=torch.uint8).clone()
    return save_atomic(path, tensors, {"config": json.dumps(TINY_OVERRIDES)})


def write_sharded_folder(folder: Path, shards: int = 5, seed: int = 0) -> list[Path]:
    """The same tiny Gemma (bf16, same weights) as a Hugging Face folder: ``model-0000k-of-0000n.safetensors``
    shards under ``language_model.model.*`` keys (the first shard's header carries the tiny config) and the
    tokenizer as ``tokenizer.model`` beside them."""
    spm_bytes, tensors = tiny_weights("bf16", seed)
    keys = sorted(tensors)
    per_shard = -(-len(keys) // shards)
    written = []
    for index in range(shards):
        part = {HF_PREFIX + key[len(PREFIX):]: tensors[key] for key in keys[index * per_shard:(index + 1) * per_shard]}
        metadata = {"format": "pt"} | ({"config": json.dumps(TINY_OVERRIDES)} if index == 0 else {})
        written.append(save_atomic(folder / f"model-{index + 1:05d}-of-{shards:05d}.safetensors", part, metadata))
    folder.joinpath("tokenizer.model").write_bytes(spm_bytes)
    return written + [folder / "tokenizer.model"]
