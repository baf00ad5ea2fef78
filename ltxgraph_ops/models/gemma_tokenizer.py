"""Gemma's SentencePiece tokenizer, from the serialized model the ComfyUI text-encoder file embeds (a uint8
``spiece_model`` tensor) or from a ``tokenizer.model`` file: BOS first, no EOS, left padding to a fixed length
(1024 for LTX-2), longer prompts truncated. As in transformers' Gemma tokenizer (what ltx-core uses), a control
piece written in a prompt ("<bos>", "<eos>", "<pad>") is that token, not its characters."""
from __future__ import annotations

import re

import torch

PAD_ID, EOS_ID, BOS_ID = 0, 1, 2
MAX_LENGTH = 1024


class GemmaTokenizer:
    def __init__(self, model_proto: bytes) -> None:
        import sentencepiece as spm
        self.processor = spm.SentencePieceProcessor(model_proto=model_proto)
        self.control_ids = {self.processor.id_to_piece(i): i for i in range(self.processor.get_piece_size())
                            if self.processor.is_control(i) or self.processor.is_unknown(i)}
        pieces = sorted(self.control_ids, key=len, reverse=True)
        self.control_pattern = re.compile("(" + "|".join(map(re.escape, pieces)) + ")") if pieces else None

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
