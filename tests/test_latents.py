from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ltxgraph.errors import InputValueError
from ltxgraph.values import AudioLatent, VideoLatent
from ltxgraph_ops.latents import concat_av_latent, empty_ltxv_latent_video, select_latents, separate_av_latent


def test_empty_latent_shape() -> None:
    latent = empty_ltxv_latent_video(width=960, height=544, length=121, batch_size=2)
    assert latent.samples.shape == (2, 128, 16, 17, 30) and latent.frames == 121 and latent.fps is None


@given(frames=st.integers(1, 6), batch=st.integers(1, 2), masked=st.booleans())
def test_concat_then_separate_is_an_exact_round_trip(frames: int, batch: int, masked: bool) -> None:
    mask = torch.rand(batch, 1, frames, 1, 1) if masked else None
    video = VideoLatent(torch.randn(batch, 4, frames, 2, 3), fps=24.0, frames=8 * frames - 7, noise_mask=mask)
    audio = AudioLatent(torch.randn(batch, 8, 5, 16), latents_per_second=25.0, seconds=0.2,
                        noise_mask=torch.zeros(batch, 1, 5, 1))
    back_video, back_audio = separate_av_latent(concat_av_latent(video, audio))
    assert back_video is video and back_audio is audio


@given(count=st.integers(1, 8), data=st.data())
def test_select_latents_takes_exactly_the_range(count: int, data) -> None:
    latent = VideoLatent(torch.arange(count, dtype=torch.float32).view(1, 1, count, 1, 1).expand(1, 2, count, 2, 2),
                         fps=25.0, frames=8 * count - 7, noise_mask=torch.rand(1, 1, count, 1, 1))
    start = data.draw(st.integers(0, count - 1))
    end = data.draw(st.integers(start, count - 1))
    picked = select_latents(latent, start - count if data.draw(st.booleans()) else start, end)
    assert picked.samples[0, 0, :, 0, 0].tolist() == list(range(start, end + 1))
    assert torch.equal(picked.noise_mask, latent.noise_mask[:, :, start:end + 1])
    assert picked.frames == 8 * (end - start) + 1


def test_select_latents_refuses_empty_ranges() -> None:
    latent = VideoLatent(torch.zeros(1, 1, 3, 1, 1), fps=25.0, frames=17)
    with pytest.raises(InputValueError, match="not a range"):
        select_latents(latent, 2, 1)
