"""Our LTX-2 transformer forward vs ltx-core 1.0.0's on identical weights and inputs (CPU).

Timings are interleaved (ours, reference, ours, ...) and medians reported, so that load from other processes on
the machine hits both alike. float32: both compute in float32. bf16: both hold bfloat16 weights; the reference
also computes in bf16 (emulated on CPUs without bf16 matmul units), ours upcasts per layer and computes in
float32 (the project's policy), so that ratio is not equal arithmetic; ``bf16_weights_bf16_compute`` feeds ours
bf16 inputs, so both compute in bf16 (like for like).
``ours_text_cached_s`` is our forward with the text keys/values prepared once (a sampling step after the first).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Callable

import torch

from ltxgraph_ops.models.transformer import StreamInput
from ltxgraph_ops.models.transformer_tokens import audio_positions, video_positions
from tools.oracle import transformer as oracle
from ltxgraph_ops.tiny import transformer as tiny

THREADS = 2

# mid-size: 2 blocks at width 1024 (video) / 512 (audio), 2304 video + 256 audio tokens, 1024 text tokens
FP32 = {"blocks": 2, "video_heads": 16, "audio_heads": 16, "head_dim": 64, "audio_head_dim": 32,
        "caption": 1024, "frames": 4, "height": 24, "width": 24, "audio_tokens": 256, "text": 1024, "batch": 1,
        "repeats": 5}
# the same size: bf16 matmul was expected to be emulated (~400x slower), but this machine's Xeon has AMX-BF16
# and AVX512-BF16, and the bf16 reference runs in well under a second (see BENCHMARKS.md)
BF16 = dict(FP32)


def header(size: dict, release: Callable[[], dict] = tiny.full_config) -> dict:
    """The ``release`` header section at the benchmark's ``size``."""
    return {**release(), "num_layers": size["blocks"],
            "num_attention_heads": size["video_heads"], "attention_head_dim": size["head_dim"],
            "cross_attention_dim": size["video_heads"] * size["head_dim"],
            "audio_num_attention_heads": size["audio_heads"], "audio_attention_head_dim": size["audio_head_dim"],
            "audio_cross_attention_dim": size["audio_heads"] * size["audio_head_dim"],
            "caption_channels": size["caption"]}


def inputs(config: dict, size: dict, dtype: torch.dtype) -> tuple[StreamInput, StreamInput]:
    generator = torch.Generator().manual_seed(5)
    batch, text_tokens = size["batch"], size["text"]
    frames, height, width = size["frames"], size["height"], size["width"]
    mask = torch.ones(batch, text_tokens, dtype=torch.int64)
    mask[:, text_tokens * 3 // 4:] = 0                                   # a quarter padding, as prompts have

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(dtype)

    def text(stream_dim: int) -> torch.Tensor:   # LTX-2.3 takes text already projected to the stream's width
        channels = stream_dim if config.get("caption_proj_before_connector") else config["caption_channels"]
        return randn(batch, text_tokens, channels)

    video = StreamInput(latent=randn(batch, frames * height * width, config["in_channels"]),
                        sigma=torch.full((batch,), 0.6), positions=video_positions(frames, height, width, 25.0,
                                                                                   batch=batch),
                        context=text(config["cross_attention_dim"]), context_mask=mask)
    audio = StreamInput(latent=randn(batch, size["audio_tokens"], 128), sigma=torch.full((batch,), 0.6),
                        positions=audio_positions(size["audio_tokens"], batch=batch),
                        context=text(config["audio_cross_attention_dim"]), context_mask=mask)
    return video, audio


def seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def interleaved(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each run, ``repeats`` times, interleaved (a, b, c, a, b, c, ...) so that load from other
    processes hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(seconds(run))
    return times


def profile_summary(run: Callable[[], object], top: int = 8) -> list[dict]:
    """Share of our forward's CPU time per operator (self time), largest first."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "share": round(e.self_cpu_time_total / total, 3),
             "self_ms": round(e.self_cpu_time_total / 1000, 1), "calls": e.count} for e in events[:top]]


@torch.no_grad()
def compare(size: dict, weights: torch.dtype, compute: torch.dtype, with_profile: bool) -> dict:
    """Time ours (``weights`` stored, inputs hence computation in ``compute``) against the reference (weights and
    computation in ``weights``)."""
    torch.set_num_threads(THREADS)
    config = header(size)
    pair = oracle.build_pair(config)
    ours, reference = pair.ours, pair.reference
    if weights != torch.float32:
        ours.to(weights)              # stored weights in bf16; computation stays float32 (layers.Linear upcasts)
        reference.to(weights)         # the reference computes in its weight dtype
    video, audio = inputs(config, size, compute)
    ref_video, ref_audio = inputs(config, size, weights)
    ref_args = (oracle.to_modality(ref_video), oracle.to_modality(ref_audio),
                oracle.to_reference_perturbations(oracle.Perturbations(), size["batch"]))

    def run_ours():
        return ours(video, audio)

    def run_reference():
        return reference(*ref_args)

    # a sampling step after the first: text keys/values prepared once per prompt (not timed)
    cached_video = replace(video, context=ours.prepare_text("video", video.context, video.context_mask),
                           context_mask=None)
    cached_audio = replace(audio, context=ours.prepare_text("audio", audio.context, audio.context_mask),
                           context_mask=None)

    def run_ours_cached():
        return ours(cached_video, cached_audio)

    out, ref = run_ours(), run_reference()                                # warm-up, and agreement
    run_ours_cached()
    error = max(oracle.max_error(out.video.float(), ref[0].float()),
                oracle.max_error(out.audio.float(), ref[1].float()))
    times = interleaved({"ours": run_ours, "reference": run_reference, "cached": run_ours_cached}, size["repeats"])
    ours_s, ref_s, cached_s = times["ours"], times["reference"], times["cached"]
    ours_m, ref_m, cached_m = (statistics.median(t) for t in (ours_s, ref_s, cached_s))
    figures = {"ours_s": round(ours_m, 4), "reference_s": round(ref_m, 4), "ratio": round(ours_m / ref_m, 3),
               "ours_text_cached_s": round(cached_m, 4), "ratio_text_cached": round(cached_m / ref_m, 3),
               "text_cache_mib": round((cached_video.context.nbytes() + cached_audio.context.nbytes()) / 2**20, 1),
               "ours_all_s": [round(t, 3) for t in ours_s], "reference_all_s": [round(t, 3) for t in ref_s],
               "max_abs_difference": error, "config": {k: v for k, v in size.items()},
               "video_dim": config["cross_attention_dim"], "audio_dim": config["audio_cross_attention_dim"]}
    if with_profile:
        figures["ours_profile"] = profile_summary(run_ours)
    return figures


def transformer_vs_reference() -> dict:
    return {"threads": THREADS, "torch": torch.__version__,
            "fp32": compare(FP32, torch.float32, torch.float32, with_profile=True),
            "bf16_weights_fp32_compute": compare(BF16, torch.bfloat16, torch.float32, with_profile=False),
            "bf16_weights_bf16_compute": compare(BF16, torch.bfloat16, torch.bfloat16, with_profile=False)}


BENCHMARKS: dict[str, Callable[[], dict]] = {"transformer-vs-reference": transformer_vs_reference}
