"""Gemma's SentencePiece tokenizer, from the serialized model the ComfyUI text-encoder file embeds (a uint8
``spiece_model`` tensor) or from a ``tokenizer.model`` file: BOS first, no EOS, left padding to a fixed length
(1024 for LTX-2), longer prompts truncated. As in transformers' Gemma tokenizer (what ltx-core uses), a control
piece written in a prompt ("<bos>", "<eos>", "<pad>") is that token, not its characters. Gemma 4 files carry a
Hugging Face tokenizers JSON instead (``tokenizer_json``, no SentencePiece model): :meth:`GemmaTokenizer.from_json`
reads it, its special added tokens taking the control pieces' part."""
from __future__ import annotations

import re

import torch

PAD_ID, EOS_ID, BOS_ID = 0, 1, 2
MAX_LENGTH = 1024


class JsonPieces:
    """The SentencePieceProcessor calls :class:`GemmaTokenizer` makes, answered by a Hugging Face tokenizers JSON:
    text to ids with no special tokens added, ids to text as they are, special added tokens as control pieces."""

    def __init__(self, text: str) -> None:
        from tokenizers import Tokenizer
        self.tokenizer = Tokenizer.from_str(text)
        self.special = {i for i, token in self.tokenizer.get_added_tokens_decoder().items() if token.special}

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def get_piece_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def piece_to_id(self, piece: str) -> int:
        found = self.tokenizer.token_to_id(piece)
        return -1 if found is None else found

    def id_to_piece(self, index: int) -> str | None:
        return self.tokenizer.id_to_token(index) if index >= 0 else None

    def is_control(self, index: int) -> bool:
        return index in self.special

    def is_unknown(self, index: int) -> bool:
        return False


class GemmaTokenizer:
    def __init__(self, model_proto: bytes | None = None, processor: JsonPieces | None = None) -> None:
        """From a serialized SentencePiece model, or a :class:`JsonPieces` (see :meth:`from_json`)."""
        if processor is None:
            import sentencepiece as spm
            processor = spm.SentencePieceProcessor(model_proto=model_proto)
        self.processor = processor
        self.control_ids = {self.processor.id_to_piece(i): i for i in range(self.processor.get_piece_size())
                            if self.processor.is_control(i) or self.processor.is_unknown(i)}
        pieces = sorted(self.control_ids, key=len, reverse=True)
        self.control_pattern = re.compile("(" + "|".join(map(re.escape, pieces)) + ")") if pieces else None

    @classmethod
    def from_json(cls, text: str) -> "GemmaTokenizer":
        """From a Hugging Face tokenizers JSON (a ValueError when it is not one)."""
        try:
            return cls(processor=JsonPieces(text))
        except Exception as exc:            # tokenizers raises its own exception type
            raise ValueError(f"not a Hugging Face tokenizers JSON ({exc})") from None

    @property
    def vocab_size(self) -> int:
        return self.processor.get_piece_size()

    def piece_id(self, piece: str) -> int:
        """The id of a vocabulary piece (e.g. "<end_of_turn>"); a KeyError naming it if the vocabulary lacks it."""
        found = self.processor.piece_to_id(piece)
        if self.processor.id_to_piece(found) != piece:
            raise KeyError(f"the Gemma tokenizer has no piece {piece!r}")
        return found

    strips_prompt = True   # ltx-core strips a prompt's surrounding whitespace (ComfyUI keeps it: a trailing "\n" is a token)

    def tokenize(self, text: str) -> list[int]:
        """BOS followed by the text's pieces (surrounding whitespace stripped; control pieces in it are tokens)."""
        if self.strips_prompt:
            text = text.strip()
        parts = self.control_pattern.split(text) if self.control_pattern else [text]
        tokens = [BOS_ID]
        for part in parts:
            tokens.extend([self.control_ids[part]] if part in self.control_ids else self.processor.encode(part))
        return tokens

    def encode(self, prompts: list[str], max_length: int = MAX_LENGTH) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Prompts -> (ids [B, max_length] left-padded with PAD, mask [B, max_length] 1 = token, tokens each
        prompt lost to truncation)."""
        ids = torch.full((len(prompts), max_length), PAD_ID, dtype=torch.int64)
        mask = torch.zeros(len(prompts), max_length, dtype=torch.int64)
        lost = []
        for row, prompt in enumerate(prompts):
            tokens = self.tokenize(prompt)
            lost.append(max(0, len(tokens) - max_length))
            tokens = tokens[:max_length]
            ids[row, max_length - len(tokens):] = torch.tensor(tokens)
            mask[row, max_length - len(tokens):] = 1
        return ids, mask, lost

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids (special and control tokens dropped)."""
        return self.processor.decode([i for i in ids if i > 3])
