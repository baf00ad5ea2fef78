"""Our LTX-2 transformer forward vs ltx-core 1.0.0's on identical weights and inputs (CPU).

Timings are interleaved (ours, reference, ours, ...) and medians reported, so that load from other processes on
the machine hits both alike. One comparison per compute dtype (``--dtype`` of a run): ``float32`` and
``bfloat16``, where both models hold their weights and compute in that dtype (ours as the loader holds a
checkpoint for it: every tensor in the compute dtype, tokens and text in it, positions and timesteps float32).
``ours_text_cached_s`` is our forward with the text keys/values prepared once (a sampling step after the first).
Ours is set up as the loader sets it up: Linear weights packed for oneDNN (``layers.pack_linears``: bf16, and float32 where oneDNN multiplies it),
element-wise regions on the one-pass C kernels where they build (``fused_norm.native_kernels``). Every
figure comes in wall seconds and in CPU seconds (``*_cpu_*``: steadier on a shared machine), with the load
average at the start and end.
``ratio_floor``: the ratio ours would have if everything but its GEMMs and attention (kernels the reference
calls too, on the same shapes) took no time: the profiled share of those kernels times the ratio.
``elementwise-compile``: our forward with the blocks' element-wise regions compiled (``--compile``) and on the
native C kernels (the default), against eager. ``elementwise-kernels``: each region alone, eager against native.
``attention-query-layout``: the attentions of a 19B block at the stage-1 and stage-2 token counts, with the
queries as a strided view of [B, T, H x d] (as before) and as contiguous [B, H, T, d] (as the native kernels
write them now); keys and values stay views of [B, S, H x d].
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
import torch.nn.functional as F

from ltxgraph_ops.models.elementwise import EAGER, split_heads, use_kernels
from ltxgraph_ops.models.fused_norm import native_kernels
from ltxgraph_ops.models.float32_matmul import float32_matmul
from ltxgraph_ops.models.native_attention import attention_choice
from ltxgraph_ops.models.layers import pack_linears
from ltxgraph_ops.models.transformer import StreamInput
from ltxgraph_ops.models.transformer_tokens import audio_positions, video_positions
from tools.oracle import transformer as oracle
from ltxgraph_ops.tiny import transformer as tiny

THREADS = 2

# mid-size: 2 blocks at width 1024 (video) / 512 (audio), 2304 video + 256 audio tokens, 1024 text tokens
FP32 = {"blocks": 2, "video_heads": 16, "audio_heads": 16, "head_dim": 64, "audio_head_dim": 32,
        "caption": 1024, "frames": 4, "height": 24, "width": 24, "audio_tokens": 256, "text": 1024, "batch": 1,
        "repeats": 5}
# the same size in bf16 (on a CPU without bf16 units the reference's bf16 runs emulated, ~400x slower)
BF16 = dict(FP32)
SIZES = {torch.float32: FP32, torch.bfloat16: BF16}


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


@dataclass
class Timings:
    """Seconds of each repeat of one run: wall clock and the process's CPU time."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def as_loaded(model: torch.nn.Module, dtype: torch.dtype) -> dict:
    """Set ``model`` up as :func:`~ltxgraph_ops.model_files.load_transformer` does on the CPU: Linear weights
    packed for oneDNN (:func:`~ltxgraph_ops.models.layers.packs`) and the element-wise regions on the native kernels where they build. Returns what
    was set, for the figures (with the library float32 products take on this machine and the attention that runs
    in ``dtype``)."""
    kernels = native_kernels() or EAGER
    use_kernels(model, kernels)
    return {"packed_linear_weights": pack_linears(model, dtype), "elementwise_kernels": kernels.name,
            "float32_matmul": float32_matmul().library, "attention": attention_choice(dtype).kernel}


def interleaved(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, Timings]:
    """Seconds of each run, ``repeats`` times, interleaved (a, b, c, a, b, c, ...) so that load from other
    processes hits all alike."""
    times = {name: Timings() for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            times[name].wall.append(time.perf_counter() - wall)
            times[name].cpu.append(time.process_time() - cpu)
    return times


def timing_figures(times: dict[str, Timings], prepared: str) -> dict:
    """Medians of ``ours``, ``reference`` and ours with its text keys/values ``prepared`` (the run's name, e.g.
    ``cached``), wall and CPU, and their ratios to the reference."""
    figures: dict = {}
    for clock, suffix in (("wall", ""), ("cpu", "_cpu")):
        ours, reference, text = (statistics.median(getattr(times[name], clock))
                                 for name in ("ours", "reference", prepared))
        figures.update({f"ours{suffix}_s": round(ours, 4), f"reference{suffix}_s": round(reference, 4),
                        f"ratio{suffix}": round(ours / reference, 3),
                        f"ours_text_{prepared}{suffix}_s": round(text, 4),
                        f"ratio_text_{prepared}{suffix}": round(text / reference, 3)})
    figures.update({"ours_all_s": [round(t, 3) for t in times["ours"].wall],
                    "reference_all_s": [round(t, 3) for t in times["reference"].wall]})
    return figures


# the GEMM and attention kernels: the same library calls (oneDNN / MKL GEMMs, torch's CPU flash attention) on the
# same shapes in ours and in the reference, so no rewrite of our model around them can make them cheaper (our own
# attention kernel, where it runs, is not among them)
SHARED_KERNELS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "mkldnn::_linear_pointwise",
                  "aten::_scaled_dot_product_flash_attention_for_cpu")


def profile_summary(run: Callable[[], object], top: int = 8) -> tuple[list[dict], float]:
    """Share of our forward's CPU time per operator (self time), largest first, and the share of
    :data:`SHARED_KERNELS` in it."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    shared = sum(e.self_cpu_time_total for e in events if e.key in SHARED_KERNELS)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [{"op": e.key, "share": round(e.self_cpu_time_total / total, 3),
             "self_ms": round(e.self_cpu_time_total / 1000, 1), "calls": e.count} for e in events[:top]], shared / total


def profile_figures(run_ours: Callable[[], object], ratio: float) -> dict:
    """Our forward's profile, the share of :data:`SHARED_KERNELS` in it, and ``ratio_floor``: the ``ratio`` to
    the reference if everything but those kernels took no time at all."""
    summary, shared = profile_summary(run_ours)
    return {"ours_profile": summary, "ours_shared_kernel_share": round(shared, 3),
            "ratio_floor": round(ratio * shared, 3)}


@torch.no_grad()
def compare(size: dict, dtype: torch.dtype, with_profile: bool) -> dict:
    """Time ours against the reference, both holding their weights and computing in ``dtype``."""
    torch.set_num_threads(THREADS)
    config = header(size)
    pair = oracle.build_pair(config)
    ours, reference = pair.ours.to(dtype), pair.reference.to(dtype)
    as_run = as_loaded(ours, dtype)
    video, audio = inputs(config, size, dtype)
    ref_args = (oracle.to_modality(video), oracle.to_modality(audio),
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
    load = os.getloadavg()[0]
    times = interleaved({"ours": run_ours, "reference": run_reference, "cached": run_ours_cached}, size["repeats"])
    figures = {**timing_figures(times, "cached"), "load_average": [round(load, 1), round(os.getloadavg()[0], 1)],
               "text_cache_mib": round((cached_video.context.nbytes() + cached_audio.context.nbytes()) / 2**20, 1),
               "max_abs_difference": error, **as_run, "config": dict(size),
               "video_dim": config["cross_attention_dim"], "audio_dim": config["audio_cross_attention_dim"]}
    return {**figures, **profile_figures(run_ours, figures["ratio"])} if with_profile else figures


def transformer_vs_reference() -> dict:
    """Both compute dtypes, each ours vs ltx-core in that dtype."""
    return {"threads": THREADS, "torch": torch.__version__,
            **{str(dtype).removeprefix("torch."): compare(size, dtype, with_profile=True)
               for dtype, size in SIZES.items()}}


def cpu_seconds(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median CPU seconds (``time.process_time``) of each run, repeats interleaved: on a shared machine the CPU
    time a run takes is steadier than its wall time."""
    return {name: statistics.median(t.cpu) for name, t in interleaved(runs, repeats).items()}


@torch.no_grad()
def compiled_vs_eager(size: dict, dtype: torch.dtype) -> dict:
    """Our forward with the blocks' element-wise regions eager, compiled and native, 1 thread, CPU time."""
    from ltxgraph_ops.models.elementwise import compiled_kernels
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = header(size)
        ours = oracle.build_pair(config).ours.to(dtype)
        video, audio = inputs(config, size, dtype)
        eager = ours(video, audio)
        compiled = compiled_kernels()
        use_kernels(ours, compiled)
        wall, cpu = time.perf_counter(), time.process_time()
        fused = ours(video, audio)                                          # compiles (or loads inductor's cache)
        compile_wall, compile_cpu = time.perf_counter() - wall, time.process_time() - cpu
        error = max(oracle.max_error(fused.video.float(), eager.video.float()),
                    oracle.max_error(fused.audio.float(), eager.audio.float()))

        def run(kernels):
            def forward():
                use_kernels(ours, kernels)
                return ours(video, audio)
            return forward
        runs = {"eager": run(EAGER), "compiled": run(compiled)}
        native = native_kernels()
        if native is not None:
            runs["native"] = run(native)
        medians = cpu_seconds(runs, size["repeats"])
    finally:
        torch.set_num_threads(threads)
    return {"eager_cpu_s": round(medians["eager"], 4), "compiled_cpu_s": round(medians["compiled"], 4),
            "ratio": round(medians["compiled"] / medians["eager"], 3),
            **({"native_cpu_s": round(medians["native"], 4),
                "native_ratio": round(medians["native"] / medians["eager"], 3)} if "native" in medians else {}),
            "max_abs_difference": error,
            "first_call_wall_s": round(compile_wall, 1), "first_call_cpu_s": round(compile_cpu, 1)}


def elementwise_compile() -> dict:
    """Both compute dtypes: the compiled element-wise regions against eager on transformer-vs-reference's
    model (compile time: the first call, in wall seconds; inductor compiles in worker processes)."""
    return {"threads": 1, "load_average": os.getloadavg()[0],
            **{str(dtype).removeprefix("torch."): compiled_vs_eager(size, dtype) for dtype, size in SIZES.items()}}


# [tokens, width, heads]: the mid-size model above, a 768x512 stage-1 and a stage-2 step of the 19B (video stream)
REGION_SHAPES = ((2304, 1024, 16), (1536, 4096, 32), (6144, 4096, 32))


def median_ms(run: Callable[[], object], repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1e3, 3)


@torch.no_grad()
def elementwise_kernels(repeats: int = 15) -> dict:
    """Each element-wise region alone, eager against the native kernel, on 2 threads, at the shapes of
    :data:`REGION_SHAPES` in both dtypes (median ms); a copy of the activation as the memory-bound floor."""
    native = native_kernels()
    if native is None:
        return {"native_kernels": False}
    torch.set_num_threads(THREADS)
    generator, figures = torch.Generator().manual_seed(0), {"threads": THREADS, "load_average": os.getloadavg()[0]}
    for dtype in (torch.float32, torch.bfloat16):
        for tokens, width, heads in REGION_SHAPES:
            def randn(*shape: int) -> torch.Tensor:
                return torch.randn(shape, generator=generator).to(dtype)
            half = width // (2 * heads)
            x, shift, scale, weight = randn(1, tokens, width), randn(1, 1, width), randn(1, 1, width), randn(width)
            cos, sin = randn(1, tokens, heads, 1, half), randn(1, tokens, heads, 1, half)
            row = {"copy_ms": median_ms(x.clone, repeats)}
            for name, kernels in (("eager", EAGER), ("native", native)):
                row[f"modulated_{name}_ms"] = median_ms(lambda: kernels.modulated(x, 1e-6, shift, scale), repeats)
                row[f"q_norm_rope_{name}_ms"] = median_ms(
                    lambda: kernels.normalized_rotated(x, weight, 1e-6, cos, sin), repeats)
            row["q_norm_rope_native_heads_first_ms"] = median_ms(    # written [B, H, T, d], as attention reads
                lambda: native.normalized_rotated(x, weight, 1e-6, cos, sin, heads=heads), repeats)
            figures[f"{str(dtype).removeprefix('torch.')} {tokens}x{width}"] = row
    return figures


ATTENTIONS = {   # a 19B block's attentions: (query tokens, key tokens, heads, head width), stage 1 / stage 2
    "video self 1536": (1536, 1536, 32, 128), "video text 1536": (1536, 1024, 32, 128),
    "audio to video 1536": (1536, 121, 32, 64), "video to audio 1536": (121, 1536, 32, 64),
    "audio self 121": (121, 121, 32, 64), "audio text 121": (121, 1024, 32, 64),
    "video self 6144": (6144, 6144, 32, 128), "video text 6144": (6144, 1024, 32, 128),
}


@torch.no_grad()
def attention_query_layout(repeats: int = 9) -> dict:
    """Median ms of each attention of :data:`ATTENTIONS` in bf16 on 2 threads, queries strided against head-major
    (the same bits: checked here), with GFLOP/s."""
    torch.set_num_threads(THREADS)
    generator, figures = torch.Generator().manual_seed(0), {"threads": THREADS, "load_average": os.getloadavg()[0]}
    for name, (tokens, keys, heads, width) in ATTENTIONS.items():
        def rows(count: int) -> torch.Tensor:      # [1, H, count, d], a view of [1, count, H x d]
            return split_heads(torch.randn(1, count, heads * width, generator=generator).to(torch.bfloat16), heads)
        q, k, v = rows(tokens), rows(keys), rows(keys)
        head_major = q.contiguous()
        strided_ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v), repeats)
        head_major_ms = median_ms(lambda: F.scaled_dot_product_attention(head_major, k, v), repeats)
        same = torch.equal(F.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(head_major, k, v))
        gflop = 4 * tokens * keys * heads * width / 1e9
        figures[name] = {"strided_ms": strided_ms, "head_major_ms": head_major_ms,
                         "ratio": round(head_major_ms / strided_ms, 3), "same_bits": same,
                         "strided_gflops": round(gflop / strided_ms * 1e3),
                         "head_major_gflops": round(gflop / head_major_ms * 1e3)}
    return figures


BENCHMARKS: dict[str, Callable[[], dict]] = {"transformer-vs-reference": transformer_vs_reference,
                                             "elementwise-compile": elementwise_compile,
                                             "elementwise-kernels": elementwise_kernels,
                                             "attention-query-layout": attention_query_layout}
