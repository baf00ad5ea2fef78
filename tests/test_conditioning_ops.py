from __future__ import annotations

import torch

from ltxgraph.values import VideoLatent
from ltxgraph_ops.conditioning import Conditioning, Guides, conditioning_zero_out, ltxv_conditioning
from ltxgraph_ops.guides import crop_guides
from ltxgraph_ops.models.transformer_tokens import video_positions


def test_frame_rate_reaches_both_prompts_and_zero_out_keeps_shapes() -> None:
    cond = Conditioning(torch.randn(1, 4, 8), torch.randn(1, 4, 8))
    positive, negative = ltxv_conditioning(cond, conditioning_zero_out(cond), 24.0)
    assert positive.frame_rate == negative.frame_rate == 24.0
    assert torch.equal(negative.video_context, torch.zeros(1, 4, 8)) and negative.audio_context.shape == (1, 4, 8)


def test_crop_guides_restores_the_generated_latent_and_clears_guides() -> None:
    generated = torch.randn(1, 4, 3, 2, 2)
    guide = torch.randn(1, 4, 1, 2, 2)
    mask = torch.cat([torch.ones(1, 1, 3, 1, 1), torch.zeros(1, 1, 1, 1, 1)], dim=2)
    guides = Guides(video_positions(1, 2, 2, fps=1.0, first_frame=9), (4,), (1.0,), (1,))
    cond = Conditioning(torch.randn(1, 4, 8), guides=guides)
    latent = VideoLatent(torch.cat([generated, guide], dim=2), 25.0, 25, mask)
    positive, negative, cropped = crop_guides(cond, cond, latent)
    assert torch.equal(cropped.samples, generated) and torch.equal(cropped.noise_mask, torch.ones(1, 1, 3, 1, 1))
    assert cropped.frames == 17 and positive.guides is None and negative.guides is None
    assert crop_guides(positive, negative, cropped)[2] is cropped  # nothing left to crop
