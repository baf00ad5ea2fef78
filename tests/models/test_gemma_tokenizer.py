"""Gemma tokenizer: control pieces written in a prompt, and id parity with ltx-core's tokenizer over transformers'
GemmaTokenizer on the same SentencePiece models (tools/oracle/tokenizer.py)."""
from __future__ import annotations

import pytest

from ltxgraph_ops.models.gemma_tokenizer import BOS_ID, EOS_ID, PAD_ID, GemmaTokenizer
from ltxgraph_ops.tiny import gemma as tiny
from tools.oracle import tokenizer as oracle


@pytest.fixture(scope="module")
def tokenizer() -> GemmaTokenizer:
    return GemmaTokenizer(tiny.train_tiny_spm())


def test_control_pieces_in_a_prompt_are_tokens(tokenizer) -> None:
    mask_id = tokenizer.processor.piece_to_id("<mask>")
    tokens = tokenizer.tokenize("a<bos>b <eos><pad> <mask>")
    assert tokens[0] == BOS_ID and tokens.count(BOS_ID) == 2
    assert EOS_ID in tokens and PAD_ID in tokens and mask_id in tokens
    assert tokenizer.tokenize("<bos") == [BOS_ID] + tokenizer.processor.encode("<bos")


def test_turn_markers_and_byte_fallback(tokenizer) -> None:
    start = tokenizer.processor.piece_to_id("<start_of_turn>")
    assert tokenizer.tokenize("<start_of_turn>user")[1] == start
    tokens = tokenizer.tokenize("猫 🙂")
    assert 3 not in tokens and tokenizer.decode(tokens) == "猫 🙂"


@pytest.mark.oracle
def test_ids_equal_the_reference_tokenizer_over_the_corpus() -> None:
    pytest.importorskip("ltx_core")
    assert oracle.check_gemma_tokenizer_ids() == 0
