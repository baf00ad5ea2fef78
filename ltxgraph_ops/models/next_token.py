"""Choosing the next token of a language model from its logits, as ComfyUI's text generation does: penalties on
tokens already seen (repetition, then presence), temperature, top-k, min-p, top-p, then a seeded draw.

Top-p keeps the likeliest tokens whose cumulative probability (the token itself included) stays within ``top_p``,
and always the likeliest one: the token that crosses ``top_p`` is dropped (Hugging Face's nucleus keeps it).

Every setting of the node's ranges gives a distribution: a repetition penalty of 0 (or one so small that a seen
token's logit divided by it overflows) lifts the seen tokens with positive logits to the largest float32, where
they share the draw (ComfyUI divides by zero there); a logit of 0 stays 0 under any penalty.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TokenSampling:
    """How a token is drawn; the defaults change nothing (plain sampling at temperature 1 over all tokens).
    ``top_k`` 0 is off; ``repetition_penalty`` divides a seen token's positive logit and multiplies a negative
    one; ``presence_penalty`` is subtracted from a seen token's logit."""
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0


def seen_tokens(ids: torch.Tensor, mask: torch.Tensor, vocabulary: int) -> torch.Tensor:
    """Mask [B, V] of the token ids [B, T] where ``mask`` [B, T] is set (padding left out; ids past the
    vocabulary, such as image placeholders, too)."""
    inside = ids < vocabulary
    counts = torch.zeros(ids.shape[0], vocabulary).scatter_add(1, ids * inside, (mask.bool() & inside).float())
    return counts > 0


def penalized(logits: torch.Tensor, seen: torch.Tensor, repetition: float, presence: float) -> torch.Tensor:
    """``logits`` [B, V] with each token of ``seen`` (mask [B, V]) penalized once."""
    if repetition == 1.0 and presence == 0.0:
        return logits
    penalty = torch.where(logits > 0, logits / repetition, logits * repetition) - presence
    return torch.where(seen, penalty, logits)


def min_p_kept(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Mask [B, V] of the tokens whose probability is at least ``min_p`` times the likeliest one's."""
    probabilities = torch.softmax(logits, dim=-1)
    return probabilities >= min_p * probabilities.max(dim=-1, keepdim=True).values


def top_p_kept(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask [B, V] of the likeliest tokens whose cumulative probability (inclusive) is at most ``top_p``, the
    likeliest token always."""
    ordered, order = logits.sort(dim=-1, descending=True)
    keep_sorted = torch.softmax(ordered, dim=-1).cumsum(dim=-1) <= top_p
    keep_sorted[..., 0] = True
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


def filtered_logits(logits: torch.Tensor, seen: torch.Tensor, sampling: TokenSampling) -> torch.Tensor:
    """``logits`` [B, V] after penalties on the ``seen`` tokens (mask [B, V]), temperature and the top-k, min-p
    and top-p filters (removed tokens at -inf): a softmax of the result is the distribution the next token is
    drawn from."""
    x = penalized(logits.float(), seen, sampling.repetition_penalty, sampling.presence_penalty)
    x = (x / sampling.temperature).clamp(max=torch.finfo(x.dtype).max)   # an overflow saturates: no inf - inf
    if 0 < sampling.top_k < x.shape[-1]:
        kth = x.topk(sampling.top_k, dim=-1).values[..., -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    if sampling.min_p > 0.0:
        x = x.masked_fill(~min_p_kept(x, sampling.min_p), float("-inf"))
    if sampling.top_p < 1.0:
        x = x.masked_fill(~top_p_kept(x, sampling.top_p), float("-inf"))
    return x


def next_token(logits: torch.Tensor, seen: torch.Tensor, sampling: TokenSampling | None,
               generator: torch.Generator) -> torch.Tensor:
    """Token ids [B] for ``logits`` [B, V]: the likeliest when ``sampling`` is None (greedy), else drawn with
    ``generator`` after ``filtered_logits``."""
    if sampling is None:
        return logits.argmax(dim=-1)
    probabilities = torch.softmax(filtered_logits(logits, seen, sampling), dim=-1)
    return torch.multinomial(probabilities, 1, generator=generator)[:, 0]
