"""All guidance passes of a step in one batched forward: the same predictions as one forward per pass (tiny 2.0
and 2.3, float32, every guider combination), one read of every streamed block per step, and the memory split."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ltxgraph_ops.av_model import LTXAVModel, stack_text
from ltxgraph_ops.conditioning import Conditioning, Guides
from ltxgraph_ops.model_files import load_transformer
from ltxgraph_ops.models.transformer import Perturbations, StackedPerturbations, TransformerConfig
from ltxgraph_ops.models.transformer_tokens import video_positions
from ltxgraph_ops.sampling.denoiser import sample_latents
from ltxgraph_ops.sampling.guiders import GuidanceParams, ModelPass, MultimodalGuider
from ltxgraph_ops.sampling.pass_batches import activation_bytes, plan_pass_batches
from ltxgraph_ops.sampling.samplers import sample_euler
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.tiny.files import write_checkpoint
from tools.oracle.diffusers_transformer import stream_inputs
from tools.oracle.transformer import random_state

TOLERANCE = 1e-5
VERSIONS = {"2.0": tiny.tiny_config, "2.3": tiny.tiny_config_23}


@pytest.fixture(scope="module", params=sorted(VERSIONS))
def transformer(request):
    model = tiny.build(VERSIONS[request.param]()).eval()
    model.load_state_dict(random_state(model))
    return model


def conditioning(model, seed: int, length: int = 6, padded: int = 0, **extra) -> Conditioning:
    """A prompt of ``length`` text tokens, the last ``padded`` of them masked out."""
    c = model.config
    width = (c.video_dim, c.audio_dim) if c.caption_proj_before_connector else (c.caption_channels,) * 2
    generator = torch.Generator().manual_seed(seed)
    mask = None
    if padded:
        mask = torch.ones(2, length)
        mask[:, length - padded:] = 0
    return Conditioning(torch.randn(2, length, width[0], generator=generator),
                        torch.randn(2, length, width[1], generator=generator), context_mask=mask, frame_rate=24.0,
                        **extra)


def latents(frames: int = 2):
    generator = torch.Generator().manual_seed(2)
    return torch.randn(2, 128, frames, 2, 3, generator=generator), torch.randn(2, 8, 5, 16, generator=generator)


def timesteps(sigma: float, frames: int = 2):
    video = torch.full((2, 1, frames, 2, 3), sigma)
    video[:, :, 0] = 0.0                                 # first frame kept (image-to-video)
    return video, torch.full((2, 1, 1, 1), sigma)


def one_pass_at_a_time(adapter: LTXAVModel):
    """The adapter as a model without ``run_passes``: the guider calls it once per pass (the unbatched path)."""
    return lambda latents, steps, sigma, model_pass: adapter(latents, steps, sigma, model_pass)


def count_forwards(adapter: LTXAVModel) -> list[int]:
    """A list that grows by one entry per transformer forward of ``adapter``."""
    forwards: list[int] = []
    adapter.on_block = lambda done, total: forwards.append(done) if done == total else None
    return forwards


def assert_batched_equals_alone(adapter: LTXAVModel, args: tuple, passes: list[ModelPass]) -> list[tuple]:
    """run_passes over ``passes`` equals one call per pass within TOLERANCE; returns the single-pass outputs."""
    with torch.no_grad():
        together = adapter.run_passes(*args, passes)
        alone = [adapter(*args, model_pass) for model_pass in passes]
    for outputs, expected in zip(together, alone, strict=True):
        for a, b in zip(outputs, expected, strict=True):
            assert a.shape == b.shape and (a - b).abs().max() <= TOLERANCE
    return alone


GUIDERS = {
    "cfg": dict(params=[GuidanceParams(cfg=3.0)] * 2),
    "stg": dict(params=[GuidanceParams(stg=1.0, stg_blocks=(1,))] * 2),
    "modality": dict(params=[GuidanceParams(modality=3.0)] * 2),
    "cfg_rescale": dict(params=[GuidanceParams(cfg=4.0, rescale=0.7)] * 2),
    "multimodal": dict(params=[GuidanceParams(cfg=3.0, stg=1.0, modality=3.0, rescale=0.7, stg_blocks=(1,)),
                               GuidanceParams(cfg=7.0, stg=1.0, modality=3.0, rescale=0.7, stg_blocks=(0,))]),
    "video_perturbed_only_no_cross_into_audio": dict(
        params=[GuidanceParams(cfg=2.0, stg=0.5, modality=2.0, stg_blocks=(0, 1))] * 2,
        perturbed_blocks=[(0, 1), None], cross_attention=[True, False]),
}


@pytest.mark.parametrize("cache_text", [False, True])
@pytest.mark.parametrize("guider", sorted(GUIDERS))
def test_batched_guidance_equals_one_forward_per_pass(transformer, guider: str, cache_text: bool) -> None:
    # the negative prompt is longer than the positive one and both are masked: the texts are padded to one length
    positive, negative = conditioning(transformer, 1, 6, padded=2), conditioning(transformer, 5, 9, padded=1)
    adapter = LTXAVModel(transformer, ("video", "audio"), positive, negative, cache_text=cache_text)
    forwards = count_forwards(adapter)
    batched = MultimodalGuider(adapter, **GUIDERS[guider])
    single = MultimodalGuider(one_pass_at_a_time(adapter), **GUIDERS[guider])
    with torch.no_grad():
        for sigma in (0.9, 0.5):
            args = (latents(), timesteps(sigma), torch.tensor(sigma))
            got, expected = batched(*args), single(*args)
            for a, b in zip(got, expected):
                assert a.shape == b.shape and (a - b).abs().max() <= TOLERANCE
            assert not torch.equal(got[0], latents()[0])
    # one forward per call batched, one per pass unbatched
    assert len(forwards) == 2 + 2 * len(batched.passes())


def test_each_pass_of_a_batch_equals_its_own_forward(transformer) -> None:
    adapter = LTXAVModel(transformer, ("video", "audio"), conditioning(transformer, 1),
                         conditioning(transformer, 5, 12), cache_text=False)
    passes = [ModelPass(), ModelPass("negative"), ModelPass(skip_self_attention=((1,), (0,))),
              ModelPass(isolate_modalities=True), ModelPass("negative", no_cross_attention_into=(True, False))]
    alone = assert_batched_equals_alone(adapter, (latents(), timesteps(0.7), torch.tensor(0.7)), passes)
    assert not torch.allclose(alone[0][0], alone[1][0]) and not torch.allclose(alone[0][1], alone[3][1])


def test_bfloat16_compute_batches_too_and_returns_float32(transformer) -> None:
    adapter = LTXAVModel(transformer, ("video", "audio"), conditioning(transformer, 1),
                         conditioning(transformer, 5, 9, padded=1), cache_text=False, compute_dtype=torch.bfloat16)
    args = (latents(), timesteps(0.7), torch.tensor(0.7))
    passes = [ModelPass(), ModelPass("negative"), ModelPass(isolate_modalities=True)]
    with torch.no_grad():
        together = adapter.run_passes(*args, passes)
        alone = [adapter(*args, model_pass) for model_pass in passes]
    for outputs, expected in zip(together, alone):
        for a, b in zip(outputs, expected):
            assert a.dtype == torch.float32 and (a - b).norm() / b.norm() < 2e-2   # bf16 rounding only
    in_float32 = replace(adapter, compute_dtype=torch.float32)
    with torch.no_grad():
        assert not torch.allclose(in_float32(*args)[0], alone[0][0], atol=1e-5)    # bf16 really computed
    assert adapter.pass_activation_bytes(latents()) * 2 == in_float32.pass_activation_bytes(latents())


def test_guides_batch_when_both_prompts_carry_them_and_split_when_they_differ(transformer) -> None:
    positions = video_positions(1, 2, 3, fps=1.0, first_frame=9)
    guides = Guides(positions, token_counts=(6,), strengths=(0.6,), latent_frames=(1,))
    moved = Guides(video_positions(1, 2, 3, fps=1.0, first_frame=17), (6,), (0.6,), (1,))
    args = (latents(frames=3), timesteps(0.8, frames=3), torch.tensor(0.8))
    passes = [ModelPass(), ModelPass("negative"), ModelPass(skip_self_attention=((0,), (0,)))]
    for negative_guides in (guides, moved):
        adapter = LTXAVModel(transformer, ("video", "audio"), conditioning(transformer, 1, guides=guides),
                             conditioning(transformer, 5, guides=negative_guides), cache_text=False)
        forwards = count_forwards(adapter)
        assert_batched_equals_alone(adapter, args, passes)
        assert len(forwards) == (1 if negative_guides is guides else 2) + len(passes)


def test_stacked_perturbations_touch_only_their_rows(transformer) -> None:
    video, audio = stream_inputs(transformer.config)       # batch 2, per-sample sigmas, padded text
    parts = (Perturbations(), Perturbations.stg([0]), Perturbations.isolate_modalities())

    def stacked(s):
        def repeat(t):
            return t.repeat(len(parts), *[1] * (t.ndim - 1))
        return replace(s, latent=repeat(s.latent), positions=repeat(s.positions), context=repeat(s.context),
                       context_mask=repeat(s.context_mask), noise_mask=repeat(s.noise_mask),
                       sigma=repeat(s.sigma.reshape(-1)))
    rows = video.latent.shape[0]
    with torch.no_grad():
        together = transformer(stacked(video), stacked(audio), StackedPerturbations(parts, (rows,) * len(parts)))
        for k, part in enumerate(parts):
            alone = transformer(video, audio, part)
            assert (together.video[k * rows:(k + 1) * rows] - alone.video).abs().max() <= TOLERANCE
            assert (together.audio[k * rows:(k + 1) * rows] - alone.audio).abs().max() <= TOLERANCE
    with pytest.raises(ValueError, match="stacked perturbations 6"):
        StackedPerturbations(parts, (2, 2, 2)).keep("audio_to_video", 0, 4, video.latent)


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_a_streamed_run_reads_every_block_once_per_step(tmp_path: Path, version: str) -> None:
    path = write_checkpoint(tmp_path / "t.safetensors", "fp8", 0, [tiny], version=version)
    streamed = load_transformer(path, streamed=True)
    blocks = streamed.transformer_blocks
    guider_params = GUIDERS["multimodal"]["params"]
    sigmas = torch.tensor([1.0, 0.7, 0.4, 0.0])
    for budget, forwards_per_step in ((None, 1), (1, 4)):
        adapter = LTXAVModel(streamed, ("video", "audio"), conditioning(streamed, 1),
                             conditioning(streamed, 5, 8), cache_text=False, activation_budget=budget)
        guider = MultimodalGuider(adapter, guider_params)
        assert len(guider.passes()) == 4
        reads = []
        start = blocks.reads
        with torch.no_grad():
            sample_latents(sample_euler, guider, latents(), None, latents(), sigmas,
                           callback=lambda info: reads.append(blocks.reads - start))
        per_step = [b - a for a, b in zip([0] + reads, reads)]
        assert per_step == [forwards_per_step * len(blocks)] * (len(sigmas) - 1)


def test_stack_text_pads_the_shorter_prompt_with_a_mask() -> None:
    short, long = torch.ones(2, 3, 4), torch.full((2, 5, 4), 2.0)
    context, mask = stack_text([short, long], [None, None])
    assert context.shape == (4, 5, 4) and torch.equal(context[:2, 3:], torch.zeros(2, 2, 4))
    assert mask.tolist() == [[1, 1, 1, 0, 0]] * 2 + [[1] * 5] * 2
    same, none = stack_text([short, short], [None, None])
    assert same.shape == (4, 3, 4) and none is None


def test_plan_pass_batches_examples() -> None:
    assert plan_pass_batches(4, 100, None) == [range(0, 4)]
    assert plan_pass_batches(4, 100, 400) == [range(0, 4)]
    assert plan_pass_batches(4, 100, 399) == [range(0, 2), range(2, 4)]     # 3 fit: two batches of two
    assert plan_pass_batches(4, 100, 1) == [range(k, k + 1) for k in range(4)]
    assert plan_pass_batches(0, 100, 1) == []
    with pytest.raises(ValueError, match="must not be negative"):
        plan_pass_batches(-1, 100, 1)


@given(passes=st.integers(1, 8), size=st.integers(0, 10**9), budget=st.one_of(st.none(), st.integers(0, 10**10)))
def test_plan_pass_batches_covers_every_pass_within_the_budget(passes: int, size: int, budget: int | None) -> None:
    batches = plan_pass_batches(passes, size, budget)
    assert [i for batch in batches for i in batch] == list(range(passes))
    fit = passes if budget is None or size == 0 else max(1, budget // size)
    assert all(1 <= len(batch) <= fit for batch in batches)
    assert len(batches) == -(-passes // min(fit, passes))                    # as few forwards as fit


def test_activation_estimate_scales_with_rows_tokens_and_guides() -> None:
    config = TransformerConfig.from_header(tiny.full_config())
    one = activation_bytes(config, video_tokens=6144, audio_tokens=121, text_tokens=1024)
    assert activation_bytes(config, 6144, 121, 1024, rows=4) == 4 * one
    assert activation_bytes(config, 6144, 121, 1024, guide_attention=True) == one + 4 * 6144 ** 2
    assert activation_bytes(config, 0, 121, 1024) < one
    # 19B, 6144 video tokens (768x512 pixels, 121 frames), batch 1: about 1.4 GiB per pass in float32
    assert 1.3 * 2 ** 30 < one < 1.5 * 2 ** 30
