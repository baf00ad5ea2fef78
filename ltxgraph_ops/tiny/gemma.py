"""Tiny and full-size Gemma 3 text encoders in the ComfyUI file layout (``model.*`` keys, the vision tower's
``vision_model.*`` and ``multi_modal_projector.*``, plus the serialized SentencePiece model in a ``spiece_model``
uint8 tensor), and the tiny tokenizer it embeds: trained here with the sentencepiece library on a built-in English
text, deterministically."""
from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from ltxgraph_ops.models.gemma import GemmaTextModel
from ltxgraph_ops.models.gemma_config import GemmaConfig
from ltxgraph_ops.models.gemma_vision import GemmaVision, GemmaVisionConfig
from ltxgraph_ops.weights.writing import linear_weight_keys, random_state, save_atomic, store

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


def tiny_vision_config(vocab_size: int, text_hidden: int) -> GemmaVisionConfig:
    """A 32 x 32 image in 8 x 8 patches of 4 pixels, pooled to 2 x 2 soft tokens; the begin / end of image ids
    are the tiny vocabulary's last two, the soft token is just past it (embedded as 0, then replaced)."""
    return GemmaVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                             image_size=32, patch_size=4, text_hidden_size=text_hidden, mm_tokens_per_image=4,
                             boi_token_id=vocab_size - 2, eoi_token_id=vocab_size - 1, image_token_id=vocab_size)


def vision_header(config: GemmaVisionConfig) -> dict:
    """The Gemma3Config fields the file's header carries for its vision tower."""
    return {"vision_config": {"num_attention_heads": config.num_attention_heads},
            "mm_tokens_per_image": config.mm_tokens_per_image, "boi_token_index": config.boi_token_id, "eoi_token_index": config.eoi_token_id,
            "image_token_index": config.image_token_id}


def build(config: GemmaConfig, device: str | torch.device = "cpu") -> torch.nn.Module:
    with torch.device(device):
        return GemmaTextModel(config)


def lora_layout() -> torch.nn.Module:
    """The tiny Gemma text model on the meta device, to write LoRAs against (the shapes of its projections do not
    depend on the vocabulary)."""
    return build(tiny_config(vocab_size=384), device="meta")


def train_tiny_spm(vocab_size: int = 384, text: str = CORPUS, markers: tuple[str, ...] = ()) -> bytes:
    """A SentencePiece model built like Gemma's: BPE with byte fallback and split digits, no normalization, no
    dummy prefix, whitespace kept, Gemma's special pieces (pad 0, eos 1, bos 2, unk 3, mask 4) and turn markers
    (Gemma 3's, then ``markers``); the 256 byte pieces take most of the vocabulary. Trained on ``text`` (every
    character kept); deterministic."""
    import sentencepiece as spm
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text.splitlines() * 4), model_writer=model,
                                   vocab_size=vocab_size, model_type="bpe", pad_id=0, eos_id=1, bos_id=2, unk_id=3,
                                   pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
                                   byte_fallback=True, split_digits=True, add_dummy_prefix=False,
                                   remove_extra_whitespaces=False, normalization_rule_name="identity",
                                   allow_whitespace_only_pieces=True, num_threads=1, hard_vocab_limit=False,
                                   character_coverage=1.0, minloglevel=2, control_symbols=["<mask>"],
                                   user_defined_symbols=["<start_of_turn>", "<end_of_turn>", *markers])
    return model.getvalue()


def tiny_weights(storage: str, seed: int) -> tuple[bytes, dict[str, torch.Tensor], dict]:
    """The tokenizer (SentencePiece bytes), the tiny weights (text model under ``model.*``, vision tower under
    ``vision_model.*`` and ``multi_modal_projector.*``, ComfyUI's layout) stored as ``storage``, and the header
    config."""
    spm_bytes = train_tiny_spm()
    import sentencepiece as spm
    vocab = spm.SentencePieceProcessor(model_proto=spm_bytes).get_piece_size()
    config = tiny_config(vocab)
    vision_config = tiny_vision_config(vocab, config.hidden_size)
    model = build(config, device="meta")
    with torch.device("meta"):
        vision = GemmaVision(vision_config)
    tensors = store(random_state(model, PREFIX, seed), linear_weight_keys(model, PREFIX), storage)
    tensors.update(store(random_state(vision, "", seed), linear_weight_keys(vision, ""), storage))
    return spm_bytes, tensors, {**TINY_OVERRIDES, **vision_header(vision_config)}


def write_file(path: Path, storage: str = "bf16", seed: int = 0) -> Path:
    """A tiny text-encoder file: weights (``storage``: bf16, fp8 (scaled) or float32), the vision tower and the
    tokenizer."""
    spm_bytes, tensors, header = tiny_weights(storage, seed)
    tensors["spiece_model"] = torch.frombuffer(bytearray(spm_bytes), dtype=torch.uint8).clone()
    return save_atomic(path, tensors, {"config": json.dumps(header)})


def hf_key(key: str) -> str:
    """A ComfyUI-layout key under Gemma3ForConditionalGeneration's Hugging Face names."""
    if key.startswith(PREFIX):
        return HF_PREFIX + key[len(PREFIX):]
    return "vision_tower." + key if key.startswith("vision_model.") else key


def write_sharded_folder(folder: Path, shards: int = 5, seed: int = 0) -> list[Path]:
    """The same tiny Gemma (bf16, same weights, vision tower included) as a Hugging Face folder:
    ``model-0000k-of-0000n.safetensors`` shards under ``language_model.model.*`` / ``vision_tower.vision_model.*``
    / ``multi_modal_projector.*`` keys (the first shard's header carries the tiny config) and the tokenizer as
    ``tokenizer.model`` beside them."""
    spm_bytes, tensors, header = tiny_weights("bf16", seed)
    keys = sorted(tensors)
    per_shard = -(-len(keys) // shards)
    written = []
    for index in range(shards):
        part = {hf_key(key): tensors[key] for key in keys[index * per_shard:(index + 1) * per_shard]}
        metadata = {"format": "pt"} | ({"config": json.dumps(header)} if index == 0 else {})
        written.append(save_atomic(folder / f"model-{index + 1:05d}-of-{shards:05d}.safetensors", part, metadata))
    folder.joinpath("tokenizer.model").write_bytes(spm_bytes)
    return written + [folder / "tokenizer.model"]
