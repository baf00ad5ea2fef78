"""Guide ops with a stand-in VAE (causal: first frame alone, then groups of 8; 32x32 average pooling; a fixed
3 -> 128 channel map): where conditioning frames land in the latent, in time (RoPE positions) and in the noise
mask, and that sampling with them runs and keeps them."""
from __future__ import annotations

import pytest
import torch

from ltxgraph.errors import InputValueError
from ltxgraph.values import VideoLatent
from ltxgraph_ops.av_model import LTXAVModel
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.guides import add_guide, crop_guides, get_iclora_parameters, img_to_video_inplace
from ltxgraph_ops.handles import Lazy, ModelHandle
from ltxgraph_ops.models.transformer_tokens import video_positions
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.vae_handle import VideoVAEHandle
from tools.oracle.transformer import random_state


class PoolingVAE:
    """pixels [1, 3, F, H, W] in [-1, 1] -> [1, 128, 1 + (F-1)/8, H/32, W/32]."""

    def __init__(self) -> None:
        self.channels = torch.randn(128, 3, generator=torch.Generator().manual_seed(0))
        self.calls: list[tuple[int, ...]] = []

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(pixels.shape))
        first = pixels[:, :, :1]
        rest = pixels[:, :, 1:].unflatten(2, (-1, 8)).mean(dim=3) if pixels.shape[2] > 1 else first[:, :, :0]
        frames = torch.cat([first, rest], dim=2)
        pooled = torch.nn.functional.avg_pool3d(frames, (1, 32, 32))
        return torch.einsum("oc,bcfhw->bofhw", self.channels, pooled)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@pytest.fixture
def vae() -> VideoVAEHandle:
    return VideoVAEHandle("pooling", Lazy(PoolingVAE, "pooling VAE"))


def frames(count: int, height: int = 64, width: int = 96, seed: int = 1) -> torch.Tensor:
    return torch.rand(count, height, width, 3, generator=torch.Generator().manual_seed(seed))


def empty(latent_frames: int = 4, height: int = 2, width: int = 3) -> VideoLatent:
    return VideoLatent(torch.zeros(1, 128, latent_frames, height, width), 25.0, 8 * (latent_frames - 1) + 1)


COND = Conditioning(torch.zeros(1, 4, tiny.tiny_config()["caption_channels"]),
                    torch.zeros(1, 4, tiny.tiny_config()["caption_channels"]), frame_rate=25.0)


def test_image_to_video_writes_the_first_frame_and_keeps_it(vae) -> None:
    image = frames(1, 100, 120)                              # resized (centre crop) to 96x64
    out = img_to_video_inplace(vae, image, empty(), 0.8)
    expected = vae.model.get().encode(torch.nn.functional.interpolate(
        image[:, 10:90].movedim(-1, 1), size=(64, 96), mode="bilinear").movedim(1, 0)[None] * 2 - 1)
    assert torch.allclose(out.samples[:, :, :1], expected, atol=1e-5)
    assert out.samples[:, :, 1:].abs().sum() == 0
    assert out.noise_mask[0, 0, :, 0, 0].tolist() == pytest.approx([0.2, 1, 1, 1])
    assert img_to_video_inplace(vae, image, empty(), bypass=True).noise_mask is None


def test_image_to_video_with_a_clip_fills_several_frames(vae) -> None:
    out = img_to_video_inplace(vae, frames(12), empty())   # 12 frames -> the first 9 are used: 2 latent frames
    assert out.noise_mask[0, 0, :, 0, 0].tolist() == [0, 0, 1, 1]
    with pytest.raises(InputValueError, match="only 2"):
        img_to_video_inplace(vae, frames(17), empty(2))


def test_keyframe_guide_at_the_start_and_at_the_end(vae) -> None:
    pos, neg, out = add_guide(COND, COND, vae, empty(), frames(1), 0, 1.0)
    assert out.samples.shape[2] == 5 and out.frames == 25
    assert torch.equal(pos.guides.positions, video_positions(1, 2, 3, fps=1.0, first_frame=0))
    assert pos.guides.strengths == (1.0,) and neg.guides is pos.guides
    pos, _, out2 = add_guide(pos, neg, vae, out, frames(1, seed=2), -1, 0.6)
    # -1 = the last of the 25 generated pixel frames (24); a single frame keeps the causal fix
    last = pos.guides.positions[:, :, 6:]
    assert torch.equal(last, video_positions(1, 2, 3, fps=1.0, first_frame=24, causal=True))
    assert out2.noise_mask[0, 0, :, 0, 0].tolist() == pytest.approx([1, 1, 1, 1, 0, 0.4])
    assert pos.guides.strengths == (1.0, 0.6) and pos.guides.frames == 2


def test_clip_guide_mid_video_is_encoded_with_a_throwaway_first_frame(vae) -> None:
    pos, _, out = add_guide(COND, COND, vae, empty(5), frames(9), 12, 1.0)
    assert vae.model.get().calls[-1][2] == 9    # the throwaway copy + 8 frames of the clip (8n+1 trimmed)
    assert out.samples.shape[2] == 6                          # one latent frame appended
    # frame_idx 12 rounds down to 9 (8k+1) for clips; no causal fix: latent frame covers pixels 9..17
    assert pos.guides.positions[0, 0, 0].tolist() == [9.0, 17.0]
    with pytest.raises(InputValueError, match="ends after"):
        add_guide(COND, COND, vae, empty(2), frames(17), 0, 1.0)


def test_iclora_downscale_guides_are_dilated_and_only_real_cells_are_tokens(vae) -> None:
    handle = ModelHandle(torch.nn.Identity(), "m", metadata={"reference_downscale_factor": 2})
    params = get_iclora_parameters(handle)
    assert params == {"reference_downscale_factor": 2}
    pos, _, out = add_guide(COND, COND, vae, empty(2, 4, 6), frames(1, 128, 192), 0, 1.0, iclora_parameters=params)
    guide = out.samples[:, :, 2]
    assert guide[:, :, 1::2].abs().sum() == 0 and guide[:, :, ::2, ::2].abs().sum() > 0
    assert pos.guides.tokens == 6 and pos.guides.latent_tokens == 24
    assert pos.guides.positions[0, 1:, 0].tolist() == [[0.0, 64.0], [0.0, 64.0]]   # one token spans 2x2 cells
    with pytest.raises(InputValueError, match="divisible"):
        add_guide(COND, COND, vae, empty(2, 3, 6), frames(1), 0, 1.0, iclora_parameters=params)


def test_sampling_with_guides_keeps_them_and_crop_restores_the_video(vae) -> None:
    from ltxgraph_ops.sampling_ops import cfg_guider_op, ksampler_select, manual_sigmas, random_noise
    from ltxgraph_ops.sampling_ops import sampler_custom_advanced
    transformer = tiny.build(tiny.tiny_config())
    transformer.load_state_dict(random_state(transformer))
    model = ModelHandle(transformer.eval(), "tiny")
    mask = torch.zeros(3, 4, 6)
    mask[:, :, 3:] = 1.0
    pos, neg, latent = add_guide(COND, COND, vae, empty(2, 4, 6), frames(1, 128, 192), 0, 0.5,
                                 attention_mask=mask, iclora_parameters={"reference_downscale_factor": 2})
    assert pos.guides.token_weights.tolist() == [0, 0.5, 1, 0, 0.5, 1]
    out, _ = sampler_custom_advanced(random_noise(3), cfg_guider_op(model, pos, neg, 1.0), ksampler_select("euler"),
                                     manual_sigmas("1.0, 0.5, 0.0"), latent)
    assert torch.equal(out.samples[:, :, 2, 1::2], latent.samples[:, :, 2, 1::2])  # gaps untouched
    assert not torch.equal(out.samples[:, :, :2], latent.samples[:, :, :2])
    _, _, cropped = crop_guides(pos, neg, out)
    assert cropped.samples.shape[2] == 2 and cropped.noise_mask.shape[2] == 2
