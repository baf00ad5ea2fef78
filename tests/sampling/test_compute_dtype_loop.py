"""bfloat16 compute against float32: a whole distilled audio-video sampling loop (8 Euler steps on the distilled
sigmas, CFG 1) with the tiny LTX-2.0 and LTX-2.3 transformers, loaded from a float32 checkpoint in each compute
dtype (resident and block-streamed). The relative L2 error of the final latents is printed and bounded.

Why the bound: bf16 keeps 8 significant bits, a relative rounding error of at most 2^-9 = 0.2 % per value. Each
prediction of v is a chain of such rounded products and sums, so it lands a few units of that away from
float32; the sampler integrates in float32, and each Euler step is a convex combination of x and the estimate
x0, so the 8 predictions' errors add up weighted by their sigma steps rather than compound. Measured on the tiny
models: 0.39-0.51 % (2.0 and 2.3, video and audio). The bound, 2 %, is 10x the per-value rounding and 4x the
measured error, room for another CPU's summation order, while a loop that diverged (an error growing from step
to step) would leave it; the floor catches a loop that silently stayed in float32.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltxgraph_ops.av_model import LTXAVModel
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.model_files import load_transformer
from ltxgraph_ops.sampling.denoiser import sample_latents
from ltxgraph_ops.sampling.guiders import GuidanceParams, MultimodalGuider
from ltxgraph_ops.sampling.samplers import sample_euler
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.weights.writing import header_metadata, save_atomic
from tools.oracle.transformer import random_state

DISTILLED_SIGMAS = torch.tensor([1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0])
BOUND = 0.02          # relative L2 error of the final latents, bf16 vs float32 (see the module docstring)
FLOOR = 1e-4          # below this, the loop did not compute in bf16 at all


def checkpoint(tmp_path: Path, version: str) -> Path:
    """A float32 tiny transformer checkpoint of ``version`` with O(1) activations (reference init)."""
    config = tiny.TINY_CONFIGS[version]()
    model = tiny.build(config)
    state = random_state(model)
    return save_atomic(tmp_path / f"tiny-{version}.safetensors",
                       {tiny.PREFIX + key: value.contiguous() for key, value in state.items()},
                       header_metadata({"transformer": config}))


def sample(path: Path, dtype: torch.dtype, streamed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    transformer = load_transformer(path, streamed=streamed, compute_dtype=dtype)
    c = transformer.config
    text = torch.Generator().manual_seed(1)
    width_v, width_a = ((c.video_dim, c.audio_dim) if c.caption_proj_before_connector
                        else (c.caption_channels, c.caption_channels))
    conditioning = Conditioning(torch.randn(1, 12, width_v, generator=text),
                                torch.randn(1, 12, width_a, generator=text), frame_rate=25.0)
    start = torch.Generator().manual_seed(2)
    latents = (torch.zeros(1, 128, 3, 4, 6), torch.zeros(1, 8, 13, 16))
    noise = (torch.randn(1, 128, 3, 4, 6, generator=start), torch.randn(1, 8, 13, 16, generator=start))
    model = LTXAVModel(transformer, ("video", "audio"), conditioning, compute_dtype=dtype)
    guider = MultimodalGuider(model, [GuidanceParams(), GuidanceParams()])
    with torch.inference_mode():
        video, audio = sample_latents(sample_euler, guider, latents, None, noise, DISTILLED_SIGMAS)
    assert video.dtype == audio.dtype == torch.float32
    return video, audio


def relative_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("version", ["2.0", "2.3"])
def test_bf16_distilled_av_loop_stays_close_to_float32(tmp_path: Path, version: str) -> None:
    path = checkpoint(tmp_path, version)
    video32, audio32 = sample(path, torch.float32)
    video16, audio16 = sample(path, torch.bfloat16)
    errors = {"video": relative_l2(video16, video32), "audio": relative_l2(audio16, audio32)}
    print(f"\nLTX-{version} distilled AV loop, bf16 vs float32, relative L2 of the final latents: "
          + ", ".join(f"{name} {error:.4%}" for name, error in errors.items()))
    for name, error in errors.items():
        assert FLOOR < error < BOUND, f"{name}: relative L2 error {error:.4%}"
    streamed = sample(path, torch.bfloat16, streamed=True)   # blocks converted as they stream in: same result
    assert torch.equal(streamed[0], video16) and torch.equal(streamed[1], audio16)
