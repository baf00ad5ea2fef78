"""Resume at the op level on the tiny transformer: KSampler (ancestral) and LTXVLoopingSampler (several sampling
calls, one checkpoint series each) stopped after a step and run again with the same node key give the
uninterrupted result bit for bit; SamplerCustomAdvanced's denoised output survives a resume after its last step."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltxgraph.context import OpContext
from ltxgraph.resume import NodeCheckpoints
from ltxgraph_ops.nodes.sampling import ksampler
from ltxgraph_ops.sampling_ops import cfg_guider_op, ksampler_select, manual_sigmas, random_noise
from ltxgraph_ops.sampling_ops import sampler_custom_advanced
from tests.test_looping_sampler import COND, model, run as looping_run, vae, video  # noqa: F401 (fixtures)

KEY = "c" * 40


def context(folder: Path, stop_at_step_event: int | None = None) -> OpContext:
    """A context with checkpoints in ``folder``; the run is asked to stop during the n-th sampling step."""
    checkpoints = NodeCheckpoints(folder, KEY)
    seen = []

    def on_step(node, step, total, info):
        if info["unit"] == "step" and "resumed" not in info:
            seen.append(step)
            if len(seen) == stop_at_step_event:
                checkpoints.stop.requested = True

    ctx = OpContext("node", on_step=on_step, cache_key=KEY, checkpoints=checkpoints)
    checkpoints.on_resumed, checkpoints.warn = ctx.resumed, ctx.warn
    return ctx


def test_ksampler_ancestral_resumes_bit_identically(model, tmp_path):  # noqa: F811
    def sample(ctx):
        return ksampler(model, 5, 6, 1.0, "euler_ancestral", "simple", COND, COND, video(3, 2, 3), 1.0, ctx=ctx)

    clean = sample(None)
    with pytest.raises(KeyboardInterrupt):
        sample(context(tmp_path, stop_at_step_event=4))
    ctx = context(tmp_path)
    resumed = sample(ctx)
    assert ctx.resumed_at == (4, 6) and torch.equal(resumed.samples, clean.samples)


def test_looping_sampler_resumes_in_a_later_tile(model, vae, tmp_path):  # noqa: F811
    latents, guide = video(13, 4, 6), video(13, 4, 6, seed=1)
    options = dict(temporal_tile_size=56, temporal_overlap=24, adain_factor=0.5)
    clean = looping_run(model, vae, latents, guide, **options)
    with pytest.raises(KeyboardInterrupt):
        looping_run(model, vae, latents, guide, ctx=context(tmp_path, stop_at_step_event=5), **options)
    files = sorted(p.name for p in tmp_path.glob("*.ckpt"))
    assert files == ["call-000-step-000003.ckpt", "call-001-step-000002.ckpt"]   # 3 steps per tile
    ctx = context(tmp_path)
    resumed = looping_run(model, vae, latents, guide, ctx=ctx, **options)
    assert ctx.resumed_at == (2, 3) and torch.equal(resumed.samples, clean.samples)


def test_denoised_output_survives_a_resume_after_the_last_step(model, tmp_path):  # noqa: F811
    def sample(ctx):
        guider = cfg_guider_op(model, COND, COND, 1.0)
        return sampler_custom_advanced(random_noise(3), guider, ksampler_select("euler"),
                                       manual_sigmas("1.0, 0.7, 0.0"), video(3, 2, 3), ctx=ctx)

    clean, clean_denoised = sample(context(tmp_path))
    ctx = context(tmp_path)       # the node was never stored: its final checkpoint is still there
    out, denoised = sample(ctx)
    assert ctx.resumed_at == (2, 2)
    assert torch.equal(out.samples, clean.samples) and torch.equal(denoised.samples, clean_denoised.samples)
