"""Attention with its keys made and queries run in chunks planned from the memory budget: the same outputs bit
for bit as all tokens at once (self- and cross-attention, RoPE, biases per key and per query, gates, the STG value mix; the
tiny 2.0 and 2.3 transformers, resident and streamed), and the chunks the budget plans."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltxgraph.budget import ATTENTION_CHUNKED_WIDTHS, MIN_TOKEN_CHUNK, attention_chunk
from ltxgraph_ops.models.attention import Attention, attention_chunks, token_parts
from ltxgraph_ops.models.rope import rope_table
from tests.sampling.test_feed_forward_chunks import latents, models, step, whole_and_half_budget

VERSIONS = ("2.0", "2.3")


@pytest.fixture(autouse=True)
def one_thread():
    """One thread unless a test sets more; the setting comes back after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def seeded(attention: Attention, seed: int) -> Attention:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in attention.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) / parameter.shape[-1] ** 0.5)
    return attention


def test_token_parts_are_near_equal_and_cover_the_tokens() -> None:
    assert token_parts(300, 128) == [slice(0, 100), slice(100, 200), slice(200, 300)]
    assert token_parts(256, 128) == [slice(0, 128), slice(128, 256)]
    assert token_parts(5, 10) == [slice(0, 5)]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("gated", [False, True])
def test_attention_chunks_give_the_same_attention(gated: bool, threads: int) -> None:
    """Bit for bit on one thread; on two, within float32 rounding of a width-sized sum (a chunk's GEMM may be
    split across the threads otherwise than the whole's)."""
    torch.set_num_threads(threads)
    batch, tokens, heads, head_dim = 2, 300, 4, 16
    dim = heads * head_dim
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(batch, tokens, dim, generator=generator)
    text = torch.randn(batch, 40, 24, generator=generator)
    positions = torch.rand(batch, 3, tokens, 1, generator=generator).repeat(1, 1, 1, 2) * 10
    rope = rope_table(positions, [20.0, 64.0, 64.0], dim, heads, 10000.0, split=True, float64_ladder=True)
    key_bias = torch.zeros(batch, 1, 1, tokens)
    key_bias[0, ..., -50:] = -1e9                                           # a padding mask on the keys
    pair_bias = torch.randn(batch, 1, tokens, tokens, generator=generator)  # per query and key (guide attention)
    keep = torch.tensor([1.0, 0.0]).reshape(batch, 1, 1)                    # STG: sample 1 takes the value path
    own = seeded(Attention(dim, dim, heads, head_dim, 1e-6, gated=gated), 4)
    cross = seeded(Attention(dim, 24, heads, head_dim, 1e-6, gated=gated), 5)
    calls = {
        "self": lambda: own(x, q_rope=rope),
        "self, key bias": lambda: own(x, bias=key_bias, q_rope=rope),
        "self, query-key bias": lambda: own(x, bias=pair_bias, q_rope=rope),
        "self, STG mix": lambda: own(x, q_rope=rope, keep_attention=keep),
        "text": lambda: cross(x, text, bias=torch.zeros(batch, 1, 1, 40)),
        "text, cached keys": lambda: cross(x, keys_values=cross.keys_values(text)),
    }
    with torch.no_grad():
        for name, call in calls.items():
            whole = call()
            for chunk in (MIN_TOKEN_CHUNK, 150, 299, tokens, 1000):
                with attention_chunks(own, chunk), attention_chunks(cross, chunk):
                    part = call()
                message = f"{name}, chunk {chunk}: {(part - whole).abs().max()}"
                if threads == 1:
                    assert torch.equal(part, whole), message
                torch.testing.assert_close(part, whole, rtol=0, atol=1e-5, msg=message)
    assert own.token_chunk is None and cross.token_chunk is None


@pytest.mark.parametrize("version", VERSIONS)
def test_attention_chunks_planned_from_a_small_budget_give_the_same_velocities(tmp_path: Path,
                                                                               version: str) -> None:
    for kind, model in models(version, tmp_path).items():
        whole, chunked = whole_and_half_budget(model)
        assert chunked.attention_chunk(latents(), 1) == MIN_TOKEN_CHUNK, kind
        assert whole.attention_chunk(latents(), 1) is None, kind
        first = next(m for m in model.modules() if isinstance(m, Attention))
        seen: list[int] = []                                # token rows seen by its query and key projections
        first.to_q.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[-2]))
        first.to_k.register_forward_hook(lambda module, args, out: seen.append(-args[0].shape[-2]))
        expected = step(whole)
        assert sorted(seen) == [-192, 192], kind            # the video self-attention's keys and queries at once
        seen.clear()
        got = step(chunked)
        assert sorted(seen) == [-96, -96, 96, 96], kind     # two parts of 96 keys, then of 96 queries
        assert all(torch.equal(a, b) for a, b in zip(got, expected)), kind
        assert all(m.token_chunk is None for m in model.modules() if isinstance(m, Attention))


def test_attention_chunk_fits_the_budget() -> None:
    # the 19B's stage 2 at 1920x1088, 121 frames (32,640 tokens, width 4096, float32): 1.5 GiB of per-chunk
    # activations at once; a 512 MiB budget takes them in near-equal chunks of at most 10,922 tokens
    assert 32640 * ATTENTION_CHUNKED_WIDTHS * 4096 * 4 == 1530 * 2**20
    assert attention_chunk(32640, 4096, 1, 4, 512 * 2**20) == 512 * 2**20 // (3 * 4096 * 4)
    assert attention_chunk(32640, 4096, 1, 4, 2 * 2**30) is None
    assert attention_chunk(32640, 4096, 1, 4, None) is None
    assert attention_chunk(32640, 4096, 2, 4, 0) == MIN_TOKEN_CHUNK
