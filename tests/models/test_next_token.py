"""Next-token choice (ComfyUI's TextGenerate chain): penalties, temperature, top-k and min-p equal Hugging Face's
logits processors applied in the same order, value for value; top-p keeps the nucleus without its crossing token (Hugging Face keeps
it); draws are seeded."""
from __future__ import annotations

import pytest
import torch

from ltxgraph_ops.models.next_token import (TokenSampling, filtered_logits, next_token, seen_tokens,
                                            top_p_kept)

VOCABULARY = 300


def random_logits(seed: int, rows: int = 4) -> torch.Tensor:
    return 3.0 * torch.randn(rows, VOCABULARY, generator=torch.Generator().manual_seed(seed))


def history(seed: int, rows: int = 4, length: int = 40) -> torch.Tensor:
    """The same token ids [rows, length] for every row (repeats included)."""
    ids = torch.randint(0, VOCABULARY, (1, length), generator=torch.Generator().manual_seed(seed))
    return ids.expand(rows, -1)


def seen_of(ids: torch.Tensor) -> torch.Tensor:
    return seen_tokens(ids, torch.ones_like(ids), VOCABULARY)


@pytest.mark.oracle
@pytest.mark.parametrize("seed", range(5))
def test_chain_without_top_p_equals_transformers_processors(seed: int) -> None:
    logits_process = pytest.importorskip("transformers.generation.logits_process")
    ids = history(seed)
    sampling = TokenSampling(temperature=0.7, top_k=64, min_p=0.05, repetition_penalty=1.3, presence_penalty=0.4)
    presence = logits_process.SequenceBiasLogitsProcessor(
        [[[token], -sampling.presence_penalty] for token in ids[0].unique().tolist()])
    chain = [logits_process.RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty), presence,
             logits_process.TemperatureLogitsWarper(sampling.temperature),
             logits_process.TopKLogitsWarper(sampling.top_k), logits_process.MinPLogitsWarper(sampling.min_p)]
    theirs = random_logits(seed)
    for processor in chain:
        theirs = processor(ids, theirs)
    ours = filtered_logits(random_logits(seed), seen_of(ids), sampling)
    kept = torch.isfinite(ours)
    assert torch.equal(kept, torch.isfinite(theirs)) and 0 < int(kept[0].sum()) < 64
    assert torch.equal(ours, theirs)                                   # the same float32 values, -inf where removed


@pytest.mark.oracle
@pytest.mark.parametrize("top_p", [0.3, 0.8, 0.95])
def test_top_p_is_the_nucleus_without_the_crossing_token(top_p: float) -> None:
    logits_process = pytest.importorskip("transformers.generation.logits_process")
    logits = random_logits(7, rows=8)
    theirs = torch.isfinite(logits_process.TopPLogitsWarper(top_p)(history(7, 8), logits.clone()))
    ours = top_p_kept(logits, top_p)
    probabilities = torch.softmax(logits, -1)
    for row in range(len(logits)):
        extra = (theirs[row] & ~ours[row]).nonzero()[:, 0]
        assert not (ours[row] & ~theirs[row]).any() and len(extra) <= 1
        if len(extra):        # the one Hugging Face adds is the least likely of its nucleus, the one crossing top_p
            assert probabilities[row, extra[0]] == probabilities[row][theirs[row]].min()
            assert probabilities[row][ours[row]].sum() <= top_p < probabilities[row][theirs[row]].sum()


def test_penalties_touch_only_seen_tokens_and_count_each_once() -> None:
    logits = torch.tensor([[2.0, -2.0, 1.0, 0.5]])
    seen = seen_tokens(torch.tensor([[0, 1, 1, 1]]), torch.tensor([[1, 1, 1, 0]]), 4)
    out = filtered_logits(logits, seen, TokenSampling(repetition_penalty=2.0, presence_penalty=0.5))
    assert out.tolist() == [[0.5, -4.5, 1.0, 0.5]]


def test_min_p_and_top_p_always_keep_the_likeliest_token() -> None:
    logits = torch.tensor([[5.0, 4.0, -1.0, -3.0]])
    out = filtered_logits(logits, seen_of(torch.zeros(1, 0, dtype=torch.long)),
                          TokenSampling(top_p=0.01, min_p=0.9))
    assert torch.isfinite(out).tolist() == [[True, False, False, False]]


def test_draws_are_seeded_and_greedy_takes_the_likeliest() -> None:
    logits, seen = random_logits(3), seen_of(history(3))
    sampling = TokenSampling(temperature=0.9, top_k=20, top_p=0.9, min_p=0.02, repetition_penalty=1.1)
    draws = [next_token(logits, seen, sampling, torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(draws[0], draws[1])
    assert torch.isfinite(filtered_logits(logits, seen, sampling).gather(1, draws[0][:, None])).all()
    assert torch.equal(next_token(logits, seen, None, torch.Generator()), logits.argmax(-1))


@pytest.mark.parametrize("repetition", [0.0, 5e-324, 1e-40])
@pytest.mark.parametrize("temperature, top_k, top_p, min_p", [(0.01, 0, 0.0, 0.0), (0.01, 1000, 1.0, 1.0),
                                                              (2.0, 1, 0.5, 0.05)])
def test_a_vanishing_repetition_penalty_draws_among_the_seen_tokens(repetition, temperature, top_k, top_p,
                                                                    min_p) -> None:
    """Found by the contract suite: a penalty of 0 made a seen logit of 0 NaN (0 / 0) and positive ones inf
    (softmax inf - inf = NaN); now the seen positive tokens saturate at the largest float and share the draw."""
    logits, ids = random_logits(3), history(3)
    logits[:, ids[0, 0]] = 0.0
    seen = seen_of(ids)
    sampling = TokenSampling(temperature, top_k, top_p, min_p, repetition, presence_penalty=5.0)
    probabilities = torch.softmax(filtered_logits(logits, seen, sampling), dim=-1)
    assert torch.isfinite(probabilities).all() and torch.allclose(probabilities.sum(-1), torch.ones(4))
    assert bool((probabilities[~(seen & (logits > 0))] == 0).all())
    drawn = next_token(logits, seen, sampling, torch.Generator().manual_seed(0))
    assert bool((seen & (logits > 0)).gather(1, drawn[:, None]).all())
