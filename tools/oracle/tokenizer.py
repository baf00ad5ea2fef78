"""Parity of ltxgraph's Gemma tokenizer with the reference's: ltx-core 1.0.0's tokenizer wrapper over transformers'
GemmaTokenizer, both built on the same SentencePiece model (the tiny set's, and a larger one trained here on a
multilingual text), over a corpus of prompts. The check returns the number of ids and mask entries that differ.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from ltxgraph_ops.models.gemma_tokenizer import GemmaTokenizer  # noqa: E402
from ltxgraph_ops.tiny import gemma as tiny  # noqa: E402

MAX_LENGTH = 96

PROMPTS = [
    "A lighthouse stands on a cliff at dusk while waves crash below.",
    "",
    "   ",
    "  leading and trailing spaces  ",
    "double  spaces,\ttabs\tand\nnew lines\n\nhere",
    "Café, naïve façade, jalapeño, Ærøskøbing, Dvořák, Łódź, straße",
    "猫が雨の中で赤い傘を持っている。",
    "一只小狗在雪地里奔跑",
    "고양이가 창밖을 본다",
    "Привет, мир! Ελληνικά γράμματα",
    "emoji 🙂🎬🌧️ and 👩‍👩‍👧 family, flags 🇫🇷",
    "numbers 12345, 3.14159 and 2026-12-01 at 10:30",
    "<start_of_turn>user\nDescribe the scene.<end_of_turn>\n<start_of_turn>model\n",
    "text<start_of_turn>glued<end_of_turn>text",
    "<bos> and <eos> and <pad> written as text",
    "<unk><unk>, <mask> and <bos",
    "symbols: #$%&*()[]{}<>/\\|~^`@ — “quotes” ‘single’ … ½ ©",
    "The camera slowly pushes in on a cheerful puppet. " * 12,
]

MULTILINGUAL_TEXT = "\n".join(PROMPTS[:1] + PROMPTS[5:12] + [tiny.CORPUS])


def reference_tokenizer(model_proto: bytes, folder: Path):
    """ltx-core's tokenizer wrapper over transformers' GemmaTokenizer read from ``folder`` (tokenizer.model and the
    release's tokenizer settings: BOS added, no EOS)."""
    from ltx_core.text_encoders.gemma.tokenizer import LTXVGemmaTokenizer
    (folder / "tokenizer.model").write_bytes(model_proto)
    settings = {"tokenizer_class": "GemmaTokenizer", "add_bos_token": True, "add_eos_token": False}
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    return LTXVGemmaTokenizer(str(folder), max_length=MAX_LENGTH)


def differing_ids(model_proto: bytes, prompts: list[str]) -> int:
    """Ids and mask entries (left-padded to MAX_LENGTH, truncated) that differ between ours and the reference."""
    ours = GemmaTokenizer(model_proto)
    with tempfile.TemporaryDirectory() as folder:
        theirs = reference_tokenizer(model_proto, Path(folder))
        differing = 0
        for prompt in prompts:
            ids, mask, _ = ours.encode([prompt], max_length=MAX_LENGTH)
            pairs = theirs.tokenize_with_weights(prompt)["gemma"]
            differing += sum(int(ours_id) != int(ref_id) for ours_id, (ref_id, _) in zip(ids[0], pairs))
            differing += sum(int(ours_on) != int(ref_on) for ours_on, (_, ref_on) in zip(mask[0], pairs))
            differing += abs(len(pairs) - MAX_LENGTH)
    return differing


def check_gemma_tokenizer_ids() -> int:
    return (differing_ids(tiny.train_tiny_spm(), PROMPTS)
            + differing_ids(tiny.train_tiny_spm(1024, MULTILINGUAL_TEXT), PROMPTS))


CHECKS: dict[str, Callable[[], float]] = {
    "gemma_tokenizer_ids": check_gemma_tokenizer_ids,
}
