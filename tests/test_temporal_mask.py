"""LTXVSetAudioVideoMaskByTime: index rules, independent audio / video edits, a range clamped to the latent (as
ComfyUI-LTXVideo's node); LTXVExtendAVLatentByTime: extension past the end."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ltxgraph.errors import InputValueError
from ltxgraph.values import AudioLatent, AVLatent, VideoLatent
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.temporal_mask import (blend_coefficients, extend_av_latent_by_time, set_audio_video_mask_by_time,
                                       video_range)

COND = Conditioning(torch.zeros(1, 2, 4))


def av(frames: int = 13, audio_frames: int = 97, fps: float = 24.0) -> AVLatent:
    video = VideoLatent(torch.randn(1, 128, frames, 2, 3), fps, 8 * (frames - 1) + 1)
    audio = AudioLatent(torch.randn(1, 8, audio_frames, 16), 25.0, (8 * (frames - 1) + 1) / fps)
    return AVLatent(video, audio)


def run(latent: AVLatent, **kw):
    return set_audio_video_mask_by_time(latent, COND, COND, None, None, None, **kw)


def test_video_range_follows_the_latent_frame_starts() -> None:
    # latent frames start at pixel 0, 1, 9, 17, ...: 1 s..2 s at 24 fps = pixels 24..48
    assert video_range(1.0, 2.0, 24.0, 13) == (4, 6)    # first start >= 24 is 25 (frame 4); 41 <= 48 < 49
    assert video_range(0.0, 100.0, 24.0, 13) == (0, 13)


def test_edit_in_the_middle_keeps_the_rest_and_audio_independently() -> None:
    latent = av()
    _, _, out, coeffs, pixel = run(latent, start_time=1.0, end_time=2.0, mask_audio=False)
    mask = out.video.noise_mask[0, 0, :, 0, 0]
    assert mask.tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert torch.equal(out.audio.noise_mask, torch.zeros(1, 1, 97, 1))       # audio untouched
    assert torch.equal(out.video.samples, latent.video.samples)
    assert coeffs[4:7] == (1.0, 1.0, 1.0) and coeffs[1:4] == pytest.approx([1 / 3, 2 / 3, 1.0])
    starts = [0] + list(range(1, 97, 8))
    assert pixel == pytest.approx(np.interp(np.arange(97), starts, coeffs).tolist())


def test_audio_only_edit() -> None:
    _, _, out, _, _ = run(av(), start_time=0.5, end_time=1.0, mask_video=False)
    assert out.video.noise_mask.sum() == 0
    audio = out.audio.noise_mask[0, 0, :, 0]
    assert audio.nonzero().flatten().tolist() == list(range(12, 26))          # round(12.5)=12 .. round(25)


def test_an_end_past_the_input_is_clamped_as_comfyui_does() -> None:
    latent = av(frames=4, audio_frames=26)                                     # 25 pixel frames, ~1 s
    _, _, out, _, _ = run(latent, start_time=0.5, end_time=100.0)              # "to the end"
    assert out.video.samples.shape == latent.video.samples.shape and out.video.frames == 25
    assert out.audio.samples.shape == latent.audio.samples.shape
    assert out.video.noise_mask[0, 0, :, 0, 0].tolist() == [0, 0, 0, 1]     # first start >= pixel 12: frame 3
    assert out.audio.noise_mask[0, 0, :, 0].nonzero().flatten().tolist() == list(range(12, 26))


def test_extension_then_mask_generates_the_new_part() -> None:
    latent = av(frames=4, audio_frames=26)                                     # 25 pixel frames, ~1 s
    _, _, masked, _, _ = run(latent, start_time=1.0, end_time=3.0, mask_init_value_video=0.0)
    out = extend_av_latent_by_time(masked, end_time=3.0, video_fps=24.0)
    assert out.video.samples.shape[2] == 10 and out.video.frames == 73        # 72 frames -> 8n+1 = 73
    assert out.audio.samples.shape[2] == 75 and out.audio.seconds == 3.0
    assert torch.equal(out.video.samples[:, :, :4], latent.video.samples)
    assert out.video.noise_mask[0, 0, 4:, 0, 0].eq(1).all() and out.video.noise_mask[0, 0, :3].eq(0).all()
    assert out.audio.noise_mask[0, 0, 26:, 0].eq(1).all()


def test_spatial_mask_and_init_values() -> None:
    spatial = torch.zeros(64, 96)
    spatial[:, 48:] = 1.0
    _, _, out, _, _ = run(av(), start_time=0.0, end_time=0.5, spatial_mask=spatial, mask_init_value_video=0.25)
    mask = out.video.noise_mask
    assert mask[0, 0, 0, :, 0].tolist() == [0.0, 0.0] and mask[0, 0, 0, :, 2].tolist() == [1.0, 1.0]
    assert mask[0, 0, 5].eq(0.25).all()


def test_bad_ranges() -> None:
    with pytest.raises(InputValueError, match="before start_time"):
        run(av(), start_time=2.0, end_time=1.0)
    with pytest.raises(InputValueError, match="spatial_mask"):
        run(av(), spatial_mask=torch.zeros(1, 1, 2, 2))


def test_blend_single_frame() -> None:
    assert blend_coefficients(0, 0, 1, 3) == ([1.0], [1.0])
