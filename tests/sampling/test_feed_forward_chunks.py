"""The transformer's feed-forward over tokens in chunks planned from the memory budget: the same velocities bit for
bit as all tokens at once (tiny 2.0 and 2.3, resident and streamed), and the chunks the budget plans."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltxgraph.budget import FEED_FORWARD_HIDDEN_WIDTHS, MIN_TOKEN_CHUNK, feed_forward_chunk, plan_token_chunk
from ltxgraph_ops.av_model import LTXAVModel
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.model_files import load_transformer
from ltxgraph_ops.models.transformer_block import FeedForward, feed_forward_chunks
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.tiny.files import write_checkpoint
from tools.oracle.transformer import random_state

VERSIONS = {"2.0": tiny.tiny_config, "2.3": tiny.tiny_config_23}


def conditioning(model, seed: int) -> Conditioning:
    c = model.config
    width = (c.video_dim, c.audio_dim) if c.caption_proj_before_connector else (c.caption_channels,) * 2
    generator = torch.Generator().manual_seed(seed)
    return Conditioning(torch.randn(1, 6, width[0], generator=generator),
                        torch.randn(1, 6, width[1], generator=generator), frame_rate=24.0)


def latents() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(2)           # 2 x 8 x 12 = 192 video tokens, 5 audio tokens
    # (the fewest tokens that a chunk of MIN_TOKEN_CHUNK = 128 splits: two parts of 96)
    return torch.randn(1, 128, 2, 8, 12, generator=generator), torch.randn(1, 8, 5, 16, generator=generator)


def models(version: str, folder: Path) -> dict[str, torch.nn.Module]:
    resident = tiny.build(VERSIONS[version]()).eval()
    resident.load_state_dict(random_state(resident))
    path = write_checkpoint(folder / "t.safetensors", "fp8", 0, [tiny], version=version)
    return {"resident": resident, "streamed": load_transformer(path, streamed=True)}


def whole_and_half_budget(model: torch.nn.Module) -> tuple[LTXAVModel, LTXAVModel]:
    """The model as the sampler sees it, without a budget and with half a pass's estimated activations."""
    whole = LTXAVModel(model, ("video", "audio"), conditioning(model, 1), cache_text=False)
    return whole, LTXAVModel(model, ("video", "audio"), conditioning(model, 1), cache_text=False,
                             activation_budget=whole.pass_activation_bytes(latents()) // 2)


def step(model: LTXAVModel) -> tuple[torch.Tensor, ...]:
    """x0 of one step at sigma 0.7 over :func:`latents`."""
    steps = (torch.full((1, 1, 2, 8, 12), 0.7), torch.full((1, 1, 1, 1), 0.7))
    with torch.no_grad():
        return model(latents(), steps, torch.tensor(0.7))


def hidden_calls(model: torch.nn.Module) -> list[int]:
    """Token rows seen by the first feed-forward's 4x-wide projection (filled while the hook is on)."""
    seen: list[int] = []
    first = next(m for m in model.modules() if isinstance(m, FeedForward))
    first.net[0].register_forward_hook(lambda module, args, out: seen.append(args[0].shape[-2]))
    return seen


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_feed_forward_chunks_planned_from_a_small_budget_give_the_same_velocities(tmp_path: Path,
                                                                                  version: str) -> None:
    for kind, model in models(version, tmp_path).items():
        whole, chunked = whole_and_half_budget(model)
        chunk = chunked.feed_forward_chunk(latents(), 1)
        assert chunk == MIN_TOKEN_CHUNK and whole.feed_forward_chunk(latents(), 1) is None, kind
        seen = hidden_calls(model)
        expected = step(whole)
        assert seen == [192], kind                           # all video tokens at once
        seen.clear()
        got = step(chunked)
        assert seen == [96, 96], kind                        # two parts of 96 tokens
        assert all(torch.equal(a, b) for a, b in zip(got, expected)), kind
        assert all(m.token_chunk is None for m in model.modules() if isinstance(m, FeedForward))


@pytest.mark.parametrize("width, rows, tokens", [(16, 1, 300), (256, 2, 300), (1024, 3, 1000)])
def test_feed_forward_chunks_from_the_minimum_up_match_the_whole(width: int, rows: int, tokens: int) -> None:
    """Bit for bit where the BLAS picks the same kernels for a chunk as for the whole; a multi-threaded BLAS may
    split a chunk's GEMM otherwise (2 threads here, width 1024, 128-row chunks: 3.3e-6 apart on values ~7), so the
    bound is float32 rounding of a width-sized sum."""
    layer = FeedForward(width)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) / width ** 0.5)
    x = torch.randn(rows, tokens, width, generator=generator)
    with torch.no_grad():
        whole = layer(x)
        for chunk in (MIN_TOKEN_CHUNK, 129, 200, 299, tokens - 1, tokens, 10 * tokens):
            with feed_forward_chunks(layer, chunk):
                torch.testing.assert_close(layer(x), whole, rtol=0, atol=1e-5, msg=f"chunk {chunk}")
    assert layer.token_chunk is None


def test_plan_token_chunk_fits_the_budget_in_near_equal_chunks() -> None:
    assert plan_token_chunk(6144, 1000, None) is None                       # no budget
    assert plan_token_chunk(6144, 1000, 6144 * 1000) is None                # everything fits
    assert plan_token_chunk(6144, 1000, 2048 * 1000) == 2048                # three chunks
    assert plan_token_chunk(6144, 1000, 2047 * 1000 + 999) == 2047          # four (near-equal: 1536 each)
    assert plan_token_chunk(6144, 1000, 0) == MIN_TOKEN_CHUNK               # never below the minimum
    assert plan_token_chunk(100, 10, 25, minimum=1) == 2 and plan_token_chunk(7, 3, 20, minimum=1) == 6
    with pytest.raises(ValueError, match="must not be negative"):
        plan_token_chunk(-1, 10, 10)
    # the 19B's stage 2 at 768x512 (6144 tokens, width 4096, float32): 768 MiB of hidden at once, 1 GiB-budget
    # chunks of 2048 tokens
    assert 6144 * FEED_FORWARD_HIDDEN_WIDTHS * 4096 * 4 == 768 * 2**20
    assert feed_forward_chunk(6144, 4096, 1, 4, 256 * 2**20) == 2048
