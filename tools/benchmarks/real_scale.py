"""Real token counts on synthetic release-size weights: one step of the distilled text-to-video graph's 19B
(LTX-2.0) or 22B (LTX-2.3) transformer, blocks streamed from disk (the file is beyond any 6 GiB budget), in float32
or bfloat16.

- full-19b-stage1-step: stage 1 of a 768x512, 121-frame video, run at half resolution: 384x256 pixels -> a
  16 x 8 x 12 latent grid (1536 video tokens), its 121 audio latent frames, a 1024-token prompt.
- full-19b-stage2-step: stage 2 at 768x512: 16 x 16 x 24 (6144 video tokens), the same audio and prompt.
- full-22b-stage1-step, full-22b-stage2-step: the same steps with LTX-2.3's 22B transformer (gated attention, text
  cross-attention AdaLN; its text comes already projected to the stream widths).
- fp8-dequant-speed: fp8 -> float32 / bfloat16 conversion, torch's own against ltxgraph_ops.weights.fp8, beside
  a float32 copy of the same size (the memory-bandwidth yardstick), 1 and 2 threads.
- step-page-faults: the stage-1 step's minor page faults under several glibc allocator settings.
- step-kept-heap: the stage-2 step with the CLI's allocator settings and inside ``allocator.kept_heap``, A/B.
- step-huge-pages: a step with the CLI's settings (tensors on transparent huge pages) and without them, A/B.
- gemm-rate-trace: one GEMM of stage 1's shape called 300 times in a row: how its rate drifts over seconds.
- step-block-reads: the stage-1 step with its blocks read through the page cache and past it (``O_DIRECT``), the
  file dropped from the cache before every step, and buffered from a cached file for reference, interleaved.

A step is one forward (the distilled graph runs cfg 1: one forward and an Euler update per step). Each step
benchmark runs in its own interpreter: one unmeasured step (it allocates the block buffers and checks the weights
once), then :data:`ROUNDS` measured steps, each between two probes of the machine's peaks in the step's dtype and
threads (the best of :data:`PEAK_REPEATS` calls each): ``F.linear`` at the step's own dominant GEMM shapes (video
tokens x D x D, x D x 4D, x 4D x D; ``matmul_peak_gflops`` is their FLOP-weighted harmonic mean, the rate the
block's Linear FLOPs would run at) and ``scaled_dot_product_attention`` of the video self-attention
(``attention_gflops``). A step is compared with the better of the two probes around it, because the rate of the
same GEMM on this shared machine drifts by up to 2-3x over seconds (BENCHMARKS.md: the same call repeated); the
figures are those of the round with the median share (``*_rounds``: every round), and ``share_of_best_peak`` puts
that step against the best probe of the whole run. Reported: seconds, matmul FLOPs
(tools/benchmarks/step_flops.py: ``matmul_tflop`` = ``linear_tflop`` + ``attention_tflop``, attention's two
products included), achieved GFLOP/s (all matmul FLOPs over the step's time)
and its share of the GEMM peak, ``seconds_at_peaks`` (Linear FLOPs at the GEMM peak plus attention's at its own)
and its share of the step, minor page faults, CPU user/system seconds, peak RSS, the load average. On a shared
machine the same in CPU time (``*_per_cpu_second``, ``share_of_peak_cpu``: FLOPs per CPU second of the step against
those of the peak calls) is steadier between runs at a similar load (other processes stretch wall seconds more than
CPU seconds); under heavy load neither peak is a yardstick, both are reported with the load average. ``blocks`` <
48 measures that many blocks of a shallower synthetic file and extrapolates to 48 (the output says so, with the
share of the peak of the projected step, round by round; :func:`projected_seconds`): from 3 blocks, the first
block as measured (it carries the step's one-off work before the blocks) + 46 x the mean middle block (computed
while the next block is read, as 46 of the 48 are) + the last block + the time after the blocks; from 2 blocks,
the first + 47 x the second (no read beside it: an under-estimate); from 1 block, 48 x that block, one-off work
included (an over-estimate). Use ``--blocks 3`` for figures of a streamed step. For a model whose text keys/values do not
follow sigma (2.0, 2.5) the measured steps read them from the store the unmeasured first step filled, as the
sampler does for a streamed model (``text_kept``; its FLOPs then leave them and the caption projections out);
their memory (2 x blocks x text tokens x both widths) counts only for the blocks measured. The step benchmarks
add one profiled round (``profiled_step``): the seconds of the GEMM and attention kernels inside the step, the
rate each runs at there against the probes around it, and ``share_ceiling``, the share of the peak the step would
reach if nothing but those kernels took any time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent.parent
RELEASE_BLOCKS = 48
STAGES = {   # latent grid (frames, height, width) of a 768x512, 121-frame video; audio latent frames; text tokens
    "stage1": {"grid": (16, 8, 12), "audio": 121, "text": 1024, "pixels": "384x256"},
    "stage2": {"grid": (16, 16, 24), "audio": 121, "text": 1024, "pixels": "768x512"},
    "small": {"grid": (2, 8, 8), "audio": 9, "text": 128, "pixels": "256x256"},    # full-19b-step's inputs
}
THREADS = 2
PEAK_REPEATS = 4          # timed calls per peak shape (after a warm-up); the best counts
ROUNDS = 3                # measured steps, each between two probes of the peaks (after one unmeasured step)

OTHER_OPS = 10            # the profiled step lists this many of the largest operators outside the shared kernels
CHILD = r"""
import ctypes, json, os, resource, sys, time, torch
ARGS = json.loads({args!r})
OTHER_OPS = {other_ops}
sys.path.insert(0, ARGS["root"])
mallopt = ctypes.CDLL(None).mallopt
if ARGS["malloc"] == "cli" or ARGS["malloc"].startswith("cli+kept"):   # the CLI's settings
    from ltxgraph.allocator import return_large_frees_to_os, use_huge_pages
    use_huge_pages()
    return_large_frees_to_os()
elif ARGS["malloc"] in ("cli-4k", "cli+hugepages"):   # the CLI's threshold without torch's huge pages
    from ltxgraph.allocator import return_large_frees_to_os
    return_large_frees_to_os()
elif ARGS["malloc"] == "heap":                        # no mmap at all, freed memory kept (trim threshold 2 GiB)
    mallopt(-4, 0)
    mallopt(-1, 2**31 - 1)
elif ARGS["malloc"] != "glibc":                       # "<bytes>": mmap threshold fixed there
    mallopt(-3, int(ARGS["malloc"]))
torch.set_num_threads(ARGS["threads"])
dtype = getattr(torch, ARGS["dtype"])
from ltxgraph_ops.models import native_attention

def peak_gib():
    return round([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] / 2**20, 2)

def best_gflops(run, flop, repeats):   # [wall, CPU] GFLOP/s, each the best of ``repeats`` calls after a warm-up
    run()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return [flop / min(wall) / 1e9, flop / min(cpu) / 1e9]

def probe_peaks():    # ({{shape: [wall, CPU]}} of F.linear as the model calls it, [wall, CPU] of attention)
    gemm = {{}}
    for tokens, inputs, outputs in ARGS["gemm_shapes"]:   # x [T, in], w [out, in]
        x, w = torch.randn(tokens, inputs, dtype=dtype), torch.randn(outputs, inputs, dtype=dtype)
        gemm[f"{{tokens}}x{{inputs}}x{{outputs}}"] = best_gflops(
            lambda: torch.nn.functional.linear(x, w), 2 * tokens * inputs * outputs, ARGS["peak_repeats"])
        del x, w
    heads, tokens, head_dim = ARGS["attention_shape"]     # self-attention of the video stream, as the model runs it
    q, k, v = (torch.randn(1, heads, tokens, head_dim, dtype=dtype) for _ in range(3))
    if native_attention.attend(q, k.transpose(1, 2).flatten(2), v.transpose(1, 2).flatten(2), None) is not None:
        k, v = k.transpose(1, 2).flatten(2), v.transpose(1, 2).flatten(2)         # [1, T, H d]
        run_attention = lambda: native_attention.attend(q, k, v, None)
    else:
        run_attention = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v)
    attention = best_gflops(run_attention, 4 * tokens * tokens * heads * head_dim, ARGS["peak_repeats"])
    return gemm, attention

gemm_gflops, attention_gflops = probe_peaks()

from ltxgraph_ops.model_files import load_transformer
from ltxgraph_ops.models.transformer import StreamInput
from ltxgraph_ops.models.transformer_tokens import audio_positions, video_positions
start = time.perf_counter()
extra = {{}} if dtype == torch.float32 else {{"compute_dtype": dtype}}
model = load_transformer(ARGS["checkpoint"], streamed=True, reads=ARGS["reads"], **extra)
del model.transformer_blocks[ARGS["blocks"]:]         # a deeper file than asked for: its first blocks
load_seconds = time.perf_counter() - start
c = model.config
frames, height, width = ARGS["grid"]
g = torch.Generator().manual_seed(0)
def text(stream_width):    # Gemma's channels, or (LTX-2.3: the text path projects) the stream's width
    width = stream_width if c.caption_proj_before_connector else c.caption_channels
    return torch.randn(1, ARGS["text"], width, generator=g).to(dtype)
video = StreamInput(torch.randn(1, frames * height * width, c.in_channels, generator=g).to(dtype), torch.tensor([1.0]),
                    video_positions(frames, height, width, 25.0), text(c.video_dim))
audio = StreamInput(torch.randn(1, ARGS["audio"], c.audio_in_channels, generator=g).to(dtype), torch.tensor([1.0]),
                    audio_positions(ARGS["audio"]), text(c.audio_dim))
if ARGS["text_kept"]:    # as the sampler keeps them: filled by the unmeasured first step, read by the others
    from dataclasses import replace
    from ltxgraph_ops.models.transformer_inputs import TextKeysValuesStore
    blocks = len(model.transformer_blocks)
    video = replace(video, text_store=TextKeysValuesStore("video", blocks))
    audio = replace(audio, text_store=TextKeysValuesStore("audio", blocks))

from ltxgraph.budget import (ATTENTION_CHUNKED_WIDTHS, FEED_FORWARD_HIDDEN_WIDTHS, attention_chunk,
                             chunk_within_forward, feed_forward_chunk)
from ltxgraph_ops.sampling.pass_batches import activation_bytes
from ltxgraph_ops.models.attention import attention_chunks
from ltxgraph_ops.models.transformer_block import feed_forward_chunks
tokens = frames * height * width                      # chunks planned as the sampler's adapter plans them (LTXAVModel)
forward = activation_bytes(c, tokens, ARGS["audio"], ARGS["text"], element_bytes=dtype.itemsize)
token_chunk, attention_token_chunk = (
    chunk_within_forward(plan, tokens, c.video_dim, 1, dtype.itemsize, widths, forward, ARGS["memory_budget"])
    for plan, widths in ((feed_forward_chunk, FEED_FORWARD_HIDDEN_WIDTHS), (attention_chunk, ATTENTION_CHUNKED_WIDTHS)))

from contextlib import nullcontext
from ltxgraph.allocator import kept_heap

def evict_checkpoint():   # "cold": the file out of the page cache, as a checkpoint larger than the memory is
    fd = os.open(ARGS["checkpoint"], os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)

def step():
    marks = []
    if ARGS["cold"]:
        evict_checkpoint()
    before, cpu = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    kept = (kept_heap(int(ARGS["malloc"].split(":")[1]) if ":" in ARGS["malloc"] else None)
            if ARGS["malloc"].startswith("cli+kept") else nullcontext())
    chunks = (feed_forward_chunks(model, token_chunk), attention_chunks(model, attention_token_chunk))
    with torch.no_grad(), chunks[0], chunks[1], kept:
        out = model(video, audio, on_block=lambda done, total: marks.append(time.perf_counter()))
    end = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {{"seconds": end - cpu, "block_seconds": [b - a for a, b in zip([cpu] + marks, marks)],
             "minor_faults": after.ru_minflt - before.ru_minflt, "user_seconds": after.ru_utime - before.ru_utime,
             "system_seconds": after.ru_stime - before.ru_stime,
             "finite": bool(torch.isfinite(out.video).all() and torch.isfinite(out.audio).all())}}

first = step()
rounds = []                                          # probe, step, probe, step, ..., probe: each step between two
for _ in range(ARGS["rounds"]):
    rounds.append({{"step": step(), "gemm_before": gemm_gflops, "attention_before": attention_gflops}})
    gemm_gflops, attention_gflops = probe_peaks()
    rounds[-1].update(gemm_after=gemm_gflops, attention_after=attention_gflops)
profiled = None
if ARGS["profile"]:                                  # one more round, the step profiled: its kernels' own seconds
    from torch.profiler import ProfilerActivity, profile
    from tools.benchmarks.transformer import SHARED_KERNELS
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        profiled = {{"step": step(), "gemm_before": gemm_gflops, "attention_before": attention_gflops}}
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    kernels = (*SHARED_KERNELS, native_attention.PROFILER_NAME)
    profiled["kernel_seconds"] = {{e.key: e.self_cpu_time_total / 1e6 for e in events if e.key in kernels}}
    others = [e for e in events if e.key not in kernels][:OTHER_OPS]
    profiled["other_seconds"] = {{e.key: e.self_cpu_time_total / 1e6 for e in others}}
    gemm_gflops, attention_gflops = probe_peaks()
    profiled.update(gemm_after=gemm_gflops, attention_after=attention_gflops)
print(json.dumps({{"rounds": rounds, "profiled": profiled, "load_seconds": load_seconds,
                  "first": first, "peak_rss_gib": peak_gib(), "blocks": len(model.transformer_blocks),
                  "block_reads": {{"mode": model.transformer_blocks.stored.mode,
                                   "gib": {{kind: round(n / 2**30, 2) for kind, n in
                                           vars(model.transformer_blocks.stored.counts).items()}}}},
                  "feed_forward_token_chunk": token_chunk, "attention_token_chunk": attention_token_chunk,
                  "attention": native_attention.attention_choice(dtype).kernel,
                  "load_average": [round(x, 2) for x in os.getloadavg()]}}))
"""


def checkpoint_for(blocks: int, version: str = "2.0") -> Path:
    """The synthetic checkpoint of model ``version`` (2.0: the 19B, 2.3: the 22B) with ``blocks`` blocks (written
    first if missing; tools/make_full.py)."""
    from tools.benchmarks.full_scale import FULL_DIR
    from tools.make_full import write_component
    folder = FULL_DIR if blocks == RELEASE_BLOCKS else FULL_DIR / f"depth-{blocks}"
    return write_component("checkpoint", folder, depth=None if blocks == RELEASE_BLOCKS else blocks,
                           version=version)


def release_block_bytes(file, release_blocks: int = RELEASE_BLOCKS) -> int:
    """Bytes of the release's ``release_blocks`` transformer blocks as stored, from ``file``'s first block (a
    synthetic file of any depth)."""
    from ltxgraph_ops.model_files import transformer_prefix
    from ltxgraph_ops.weights.streaming import weight_bytes
    return release_blocks * weight_bytes(file, f"{transformer_prefix(file)}transformer_blocks.0.")


def linear_peak(gemm: dict[str, list[float]], shapes: list, clock: int) -> float:
    """The rate the Linear FLOPs of a step would run at: the FLOP-weighted harmonic mean of the probed rates
    ``gemm`` ({"TxINxOUT": [wall, CPU] GFLOP/s}) of its ``shapes`` ([((T, IN, OUT), FLOP weight)]); ``clock``: 0
    wall, 1 CPU."""
    return sum(weight for _, weight in shapes) / sum(
        weight / gemm["x".join(map(str, shape))][clock] for shape, weight in shapes)


def best_rates(*rates: list[float]) -> list[float]:
    """The better of several [wall, CPU] rates, clock by clock."""
    return [max(clock) for clock in zip(*rates)]


def projected_seconds(step: dict, release_blocks: int = RELEASE_BLOCKS) -> float:
    """A measured step (``seconds``, ``block_seconds``: each block's seconds, the first including everything
    before it) projected to ``release_blocks`` blocks. The first block counts once as measured (it carries the
    step's one-off work: patch embedding, timestep and caption projections, position tables, and the first
    block's read, which no prefetch hides), and so does the time after the last block. A streamed block computes
    while the next one is read (prefetch), except the last: from 3 blocks on, the blocks in between stand for
    every block but the first and the last, and the last counts once. From 2 blocks: the second block for every
    other block (no read beside it: an under-estimate of a streamed step by that read's share of the cores).
    From 1 block: that block ``release_blocks`` times (the one-off work counted that many times: an
    over-estimate)."""
    first, *later = step["block_seconds"]
    after = step["seconds"] - sum(step["block_seconds"])
    if not later:
        return after + release_blocks * first
    if len(later) == 1:
        return first + (release_blocks - 1) * later[0] + after
    *middle, last = later
    return first + (release_blocks - 2) * sum(middle) / len(middle) + last + after


def paired_rounds(measured: list[dict], shapes: list, flops: dict, release_flops: dict | None = None) -> list[dict]:
    """Each measured step (``step``: seconds, user and system seconds, ``block_seconds``) against the better of
    the probes just before and just after it (``gemm_before``/``gemm_after``: {shape: [wall, CPU]},
    ``attention_before``/``_after``: [wall, CPU] GFLOP/s): its peak, achieved GFLOP/s (``flops``: "total" and
    "linear_total" of the step, :func:`~tools.benchmarks.step_flops.forward_flops`), share of the peak, and share
    of the time its Linear FLOPs and attention would take at their probed rates. With ``release_flops`` (those of
    the release's 48 blocks): the step projected to 48 blocks (:func:`projected_seconds`), its achieved GFLOP/s
    and share of the same peak (``share_48``)."""
    attention_flop = flops["total"] - flops["linear_total"]
    rounds = []
    for pair in measured:
        step = pair["step"]
        gemm = {shape: best_rates(rates, pair["gemm_after"][shape]) for shape, rates in pair["gemm_before"].items()}
        attention = best_rates(pair["attention_before"], pair["attention_after"])
        peak, peak_cpu = linear_peak(gemm, shapes, 0), linear_peak(gemm, shapes, 1)
        cpu_seconds = step["user_seconds"] + step["system_seconds"]
        achieved, achieved_cpu = flops["total"] / step["seconds"] / 1e9, flops["total"] / cpu_seconds / 1e9
        at_peaks = (flops["linear_total"] / peak + attention_flop / attention[0]) / 1e9
        rounds.append({"step": step, "gemm": gemm, "attention": attention, "peak": peak, "peak_cpu": peak_cpu,
                       "achieved": achieved, "achieved_cpu": achieved_cpu, "share": achieved / peak,
                       "share_cpu": achieved_cpu / peak_cpu, "at_peaks": at_peaks,
                       "share_of_peaks": at_peaks / step["seconds"]})
        if release_flops is not None:
            seconds_48 = projected_seconds(step)
            achieved_48 = release_flops["total"] / seconds_48 / 1e9
            rounds[-1].update(seconds_48=seconds_48, achieved_48=achieved_48, share_48=achieved_48 / peak)
    return rounds


def median_round(rounds: list[dict], key: str = "share") -> dict:
    """The round of the median ``key`` (default: the share of the peak; the upper middle one of an even count)."""
    return sorted(rounds, key=lambda r: r[key])[len(rounds) // 2]


ATTENTION_KERNELS = ("aten::_scaled_dot_product_flash_attention_for_cpu", "ltxgraph::native_attention")


def kernel_figures(profiled: dict, shapes: list, flops: dict) -> dict:
    """A profiled step (``step``, probes around it as in :func:`paired_rounds`, ``kernel_seconds``: {op: seconds}
    of the GEMM and attention kernels in it): how much of the step those kernels take, the rate each runs at
    inside the step against its probe, and ``share_ceiling``: the step's share of the peak if nothing but those
    kernels took any time (the most any work outside them could reach)."""
    (pair,) = paired_rounds([profiled], shapes, flops)
    kernels = profiled["kernel_seconds"]
    attention_seconds = sum(kernels.get(name, 0.0) for name in ATTENTION_KERNELS)
    linear_seconds = sum(kernels.values()) - attention_seconds
    attention_flop = flops["total"] - flops["linear_total"]
    linear_rate = flops["linear_total"] / linear_seconds / 1e9
    attention_rate = attention_flop / attention_seconds / 1e9 if attention_seconds else None
    return {"step_seconds": round(profiled["step"]["seconds"], 2), "linear_kernel_seconds": round(linear_seconds, 2),
            "attention_kernel_seconds": round(attention_seconds, 2),
            "kernel_share_of_step": round((linear_seconds + attention_seconds) / profiled["step"]["seconds"], 3),
            "linear_kernel_gflops": round(linear_rate, 1), "matmul_peak_gflops": round(pair["peak"], 1),
            "linear_kernel_share_of_peak": round(linear_rate / pair["peak"], 3),
            "attention_kernel_gflops": None if attention_rate is None else round(attention_rate, 1),
            "attention_probe_gflops": round(pair["attention"][0], 1),
            "share_of_peak": round(pair["share"], 3),
            "share_ceiling": round(flops["total"] / (linear_seconds + attention_seconds) / 1e9 / pair["peak"], 3),
            "largest_other_ops_seconds": {op: round(seconds, 3)
                                          for op, seconds in profiled.get("other_seconds", {}).items()}}


def run_step(stage: str, blocks: int = RELEASE_BLOCKS, dtype: str = "float32", malloc: str = "cli",
             root: Path = ROOT, checkpoint: Path | None = None, memory_budget: int | None = None,
             rounds: int = ROUNDS, version: str = "2.0", text_kept: bool | None = None,
             profile: bool = False, reads: str | None = None, cold: bool = False) -> dict:
    """One streamed step of ``stage`` (see STAGES) through ``blocks`` blocks in ``dtype``, in a fresh interpreter
    running the code under ``root``; ``malloc``: "cli" (the CLI's settings: torch's tensors of 2 MiB or more on
    transparent huge pages, :func:`ltxgraph.allocator.use_huge_pages`, and glibc's mmap threshold fixed at 1
    MiB), "cli-4k" (the threshold alone: the CLI before huge pages), "cli+kept" (the CLI's settings with each step
    inside :func:`ltxgraph.allocator.kept_heap`; "cli+kept:<bytes>": with requests from that size still mapped),
    "cli+hugepages" ("cli-4k" with glibc's transparent-huge-page tunable), "glibc" (glibc's own dynamic
    threshold), "heap" (no mmap, nothing trimmed below 2 GiB) or a threshold in bytes; ``checkpoint``: a
    synthetic file with at least ``blocks`` blocks (its first ``blocks`` run; default: one of exactly ``blocks``);
    ``memory_budget``: bytes
    for the step's activations, from which the feed-forward's and the attention's token chunks are planned as a
    sampler plans them (None: all tokens at once); ``rounds``: measured steps after the unmeasured first, each
    between two probes of the peaks; ``version``: the model of the synthetic file (2.0: 19B, 2.3: 22B);
    ``text_kept``: the measured steps read the text keys/values kept by the first (None: where the sampler keeps
    them, a model whose text does not follow sigma); ``profile``: one more round with the step profiled
    (:func:`kernel_figures`); ``reads``: how the blocks are read, "direct" or "buffered" (default: as the
    release's 48 blocks would be on this machine, :func:`ltxgraph_ops.weights.block_reads.read_mode`, where the
    shallow file alone would fit in the page cache); ``cold``: the checkpoint dropped from the page cache
    before every step, so each block comes from the disk as it does when the release file is larger than the
    memory beside it. Figures of the round with the median share, extrapolated to 48 blocks."""
    from ltxgraph_ops.model_files import transformer_config
    from ltxgraph_ops.weights.block_reads import read_mode
    from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
    from tools.benchmarks.step_flops import Tokens, dominant_gemms, forward_flops
    spec = STAGES[stage]
    checkpoint = checkpoint or checkpoint_for(blocks, version)
    args = {"root": str(root), "checkpoint": str(checkpoint), "grid": spec["grid"], "audio": spec["audio"],
            "text": spec["text"], "dtype": dtype, "malloc": malloc, "threads": THREADS, "blocks": blocks,
            "memory_budget": memory_budget, "peak_repeats": PEAK_REPEATS, "rounds": rounds,
            "profile": profile, "reads": reads, "cold": cold}
    file = SafetensorsFile(checkpoint)
    config = transformer_config(file)
    if reads is None:
        args["reads"] = read_mode(release_block_bytes(file))
    args["text_kept"] = not config.text_follows_sigma if text_kept is None else text_kept   # None: as the sampler
    frames, height, width = spec["grid"]
    tokens = Tokens(frames * height * width, spec["audio"], spec["text"], text_kept=args["text_kept"])
    shapes = dominant_gemms(config, tokens)
    args["gemm_shapes"] = [shape for shape, _ in shapes]
    args["attention_shape"] = (config.num_attention_heads, tokens.video, config.attention_head_dim)
    code = CHILD.format(args=json.dumps(args), other_ops=OTHER_OPS)
    env = {key: value for key, value in os.environ.items() if key != "THP_MEM_ALLOC_ENABLE"}   # the mode decides
    env["OMP_NUM_THREADS"] = str(THREADS)
    if malloc == "cli+hugepages":                     # glibc madvises its mappings for transparent huge pages
        env["GLIBC_TUNABLES"] = "glibc.malloc.hugetlb=1"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"benchmark failed:\n{out.stderr[-3000:]}")
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    flops = forward_flops(config, tokens, blocks=raw["blocks"])
    release_flops = forward_flops(config, tokens, blocks=RELEASE_BLOCKS)
    attention_tflop = flops["total"] - flops["linear_total"]

    rounds = paired_rounds(raw["rounds"], shapes, flops, release_flops)
    middle = median_round(rounds)
    step, achieved, peak = middle["step"], middle["achieved"], middle["peak"]
    every_probe = [r["gemm"] for r in rounds]
    best_peak = linear_peak({shape: best_rates(*(gemm[shape] for gemm in every_probe)) for shape in every_probe[0]},
                            shapes, 0)
    block_time = sum(step["block_seconds"]) / raw["blocks"]
    outside = step["seconds"] - sum(step["block_seconds"])
    scale = RELEASE_BLOCKS / raw["blocks"]
    figures = {
        "stage": stage, "pixels": spec["pixels"], "latent_grid": list(spec["grid"]), "video_tokens": tokens.video,
        "audio_tokens": tokens.audio, "text_tokens": tokens.text, "dtype": dtype, "threads": THREADS,
        "malloc": malloc, "blocks_measured": raw["blocks"], "memory_budget": memory_budget,
        "text_kept": args["text_kept"], "block_reads": raw["block_reads"], "cold_page_cache": cold,
        "feed_forward_token_chunk": raw.get("feed_forward_token_chunk"),
        "attention_token_chunk": raw.get("attention_token_chunk"), "rounds": len(rounds),
        "measured": {"step_seconds": round(step["seconds"], 2), "mean_block_seconds": round(block_time, 2),
                     "block_seconds": [round(b, 3) for b in step["block_seconds"]],
                     "outside_blocks_seconds": round(outside, 2),
                     "first_step_seconds": round(raw["first"]["seconds"], 2),
                     "matmul_tflop": round(flops["total"] / 1e12, 3),
                     "linear_tflop": round(flops["linear_total"] / 1e12, 3),
                     "attention_tflop": round(attention_tflop / 1e12, 3),
                     "achieved_gflops": round(achieved, 1), "matmul_peak_gflops": round(peak, 1),
                     "gemm_peak_gflops": {shape: round(value[0], 1) for shape, value in middle["gemm"].items()},
                     "attention": raw["attention"], "attention_gflops": round(middle["attention"][0], 1),
                     "share_of_peak": round(middle["share"], 3),
                     "share_of_peak_rounds": [round(r["share"], 3) for r in rounds],
                     "step_seconds_rounds": [round(r["step"]["seconds"], 2) for r in rounds],
                     "matmul_peak_gflops_rounds": [round(r["peak"], 1) for r in rounds],
                     "best_matmul_peak_gflops": round(best_peak, 1),
                     "share_of_best_peak": round(achieved / best_peak, 3),
                     "gflops_per_cpu_second": round(middle["achieved_cpu"], 1),
                     "matmul_peak_gflops_per_cpu_second": round(middle["peak_cpu"], 1),
                     "attention_gflops_per_cpu_second": round(middle["attention"][1], 1),
                     "share_of_peak_cpu": round(middle["share_cpu"], 3),
                     "seconds_at_peaks": round(middle["at_peaks"], 2),
                     "share_of_peaks": round(middle["share_of_peaks"], 3),
                     "load_average": raw["load_average"],
                     "minor_faults": step["minor_faults"], "first_step_minor_faults": raw["first"]["minor_faults"],
                     "user_seconds": round(step["user_seconds"], 1), "system_seconds": round(step["system_seconds"], 1),
                     "peak_rss_gib": raw["peak_rss_gib"], "load_seconds": round(raw["load_seconds"], 2),
                     "finite": step["finite"]},
    }
    if raw["profiled"] is not None:
        figures["profiled_step"] = kernel_figures(raw["profiled"], shapes, flops)
    if raw["blocks"] != RELEASE_BLOCKS:
        projected = median_round(rounds, "share_48")
        how = {1: "1 block: 48 x that block (its one-off work before the blocks counted 48 times) + after the blocks",
               2: "first block as measured + 47 x the second (no read of a next block beside it: an under-estimate "
                  "of a streamed step) + after the blocks"}.get(
            raw["blocks"], "first block as measured + 46 x the mean middle block (the next block read beside it) "
                           "+ the last block + after the blocks")
        figures["extrapolated_to_48_blocks"] = {
            "note": f"measured {raw['blocks']} blocks, extrapolated: {how}; the round of the median share",
            "step_seconds": round(projected["seconds_48"], 1), "matmul_tflop": round(release_flops["total"] / 1e12, 2),
            "achieved_gflops": round(projected["achieved_48"], 1),
            "share_of_peak": round(projected["share_48"], 3),
            "share_of_peak_rounds": [round(r["share_48"], 3) for r in rounds],
            "step_seconds_rounds": [round(r["seconds_48"], 1) for r in rounds],
            "minor_faults": round(step["minor_faults"] * scale)}
    return figures


def dequant_speed(elements: int = 4096 * 16384, repeats: int = 3) -> dict:
    """G elements/s of fp8 (e4m3fn, per-tensor scale) -> float32 / bfloat16: torch's ``.to(dtype) * scale``
    against :func:`~ltxgraph_ops.weights.fp8.dequantize_into` into a reused buffer (the compiled one-pass kernel
    and the eager path), and a float32 copy of the same size; wall clock and CPU time (the machine may be shared),
    1 and 2 threads, cases interleaved repeat by repeat. Also the kernel's first-use cost (a build in an empty
    folder, then a load of the built file)."""
    import tempfile

    from ltxgraph_ops.weights import fp8_kernel
    from ltxgraph_ops.weights.fp8 import DequantWorkspace, dequantize_into
    codes = torch.randint(0, 256, (elements // 4096, 4096), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    codes[(codes & 0x7F) == 0x7F] = 0
    weight, scale = codes.view(torch.float8_e4m3fn), torch.tensor(0.0123)
    source = torch.randn(weight.shape)
    figures: dict = {"elements": elements}
    with tempfile.TemporaryDirectory(prefix="ltxgraph-kernel-") as folder:
        saved = os.environ.get("LTXGRAPH_CACHE_DIR")
        os.environ["LTXGRAPH_CACHE_DIR"] = folder
        try:
            fp8_kernel.load_kernel.cache_clear()
            for event in ("kernel_build_seconds", "kernel_load_seconds"):
                start = time.perf_counter()
                figures["kernel_available"] = fp8_kernel.load_kernel() is not None
                figures[event] = round(time.perf_counter() - start, 3)
                fp8_kernel.load_kernel.cache_clear()
        finally:
            os.environ.pop("LTXGRAPH_CACHE_DIR") if saved is None else os.environ.update(LTXGRAPH_CACHE_DIR=saved)
    threads_before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            cases = {}
            for dtype in (torch.float32, torch.bfloat16):
                out, workspace = torch.empty(weight.shape, dtype=dtype), DequantWorkspace()
                name = str(dtype).removeprefix("torch.")
                cases.update({
                    f"torch_to_{name}": lambda dtype=dtype: weight.to(dtype) * scale.to(dtype),
                    f"ltxgraph_{name}": lambda out=out: dequantize_into(weight, out, scale, nan_free=True),
                    f"ltxgraph_eager_{name}": lambda out=out, workspace=workspace: dequantize_into(
                        weight, out, scale, workspace, nan_free=True, compiled=False)})
            copy_target = torch.empty_like(source)
            cases["float32_copy"] = lambda: copy_target.copy_(source)
            wall, cpu = dict.fromkeys(cases, 0.0), dict.fromkeys(cases, 0.0)
            for run in cases.values():
                run()
            for _ in range(repeats):
                for case, run in cases.items():
                    start_wall, start_cpu = time.perf_counter(), time.process_time()
                    run()
                    wall[case] += time.perf_counter() - start_wall
                    cpu[case] += time.process_time() - start_cpu
            for case in cases:
                figures[f"{case}_{threads}t"] = {"gps_wall": round(elements * repeats / wall[case] / 1e9, 2),
                                                 "gps_per_cpu_second": round(elements * repeats / cpu[case] / 1e9,
                                                                             2)}
    finally:
        torch.set_num_threads(threads_before)
    figures["load_average"] = os.getloadavg()[0]
    return figures


def page_faults(blocks: int = 2, dtype: str = "bfloat16", stage: str = "stage1",
                modes: tuple[str, ...] = ("cli", "cli-4k", "cli+kept", "glibc", "33554432", "heap",
                                          "cli+hugepages"),
                rounds: int = 1) -> dict:
    """Minor page faults, CPU seconds and peak RSS of one ``stage`` step (the second of two) under each
    allocator setting of :func:`run_step`, the settings interleaved over ``rounds``: where a streamed step's
    page faults come from once the weights live in reused buffers (the activations: every tensor above the mmap
    threshold is a fresh mapping, zeroed and faulted in page by page, and returned when freed)."""
    figures: dict = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode in modes:
            step = run_step(stage, blocks, dtype, malloc=mode, rounds=1)["measured"]
            figures[mode].append({key: step[key] for key in (
                "minor_faults", "system_seconds", "user_seconds", "step_seconds", "peak_rss_gib", "load_average")})
    return {mode: runs[0] if rounds == 1 else runs for mode, runs in figures.items()}


def huge_pages_step(blocks: int = 1, dtype: str = "bfloat16", stage: str = "stage2", rounds: int = 3) -> dict:
    """A ``stage`` step with the CLI's settings (torch's tensors on transparent huge pages) against the same
    without huge pages ("cli-4k"), interleaved over ``rounds``."""
    return page_faults(blocks, dtype, stage, ("cli", "cli-4k"), rounds=rounds)


def text_kept_step(blocks: int = 2, dtype: str = "bfloat16", stage: str = "stage1", rounds: int = 3) -> dict:
    """A 19B ``stage`` step reading the text keys/values the first step kept (the sampler on a streamed LTX-2.0
    / 2.5 model) against computing them in every step, interleaved over ``rounds``, through ``blocks`` (>= 2)
    blocks: the first block's seconds (the embedding and caption projections before it included) and the mean
    of the later blocks', their ratio per round, the step extrapolated to the release's 48 blocks (first + 47 x
    later), the matmul work of each, peak RSS."""
    figures: dict = {"kept": [], "computed": []}
    for _ in range(rounds):
        for name, kept in (("kept", True), ("computed", False)):
            step = run_step(stage, blocks, dtype, rounds=1, text_kept=kept)["measured"]
            first, *later = step["block_seconds"]
            block = sum(later) / len(later)
            figures[name].append({"first_block_seconds": first, "later_block_seconds": round(block, 3),
                                  "step_seconds_48_blocks": round(first + (RELEASE_BLOCKS - 1) * block, 1),
                                  **{key: step[key] for key in ("matmul_tflop", "user_seconds", "peak_rss_gib",
                                                                "load_average")}})
    figures["later_block_ratio_per_round"] = [round(k["later_block_seconds"] / c["later_block_seconds"], 3)
                                              for k, c in zip(figures["kept"], figures["computed"])]
    figures["step_48_ratio_per_round"] = [round(k["step_seconds_48_blocks"] / c["step_seconds_48_blocks"], 3)
                                          for k, c in zip(figures["kept"], figures["computed"])]
    return figures


def kept_heap_step(blocks: int = 1, dtype: str = "bfloat16") -> dict:
    """The stage-2 step with the CLI's allocator setting against the same inside
    :func:`ltxgraph.allocator.kept_heap`, interleaved, two rounds."""
    return page_faults(blocks, dtype, "stage2", ("cli", "cli+kept"), rounds=2)


def gemm_rate_trace(calls: int = 300, window: int = 30, tokens: int = 1536, width: int = 4096,
                    dtype: str = "bfloat16") -> dict:
    """The same ``F.linear`` ([tokens, width] x [width, width]) called ``calls`` times in a row on
    :data:`THREADS` threads: GFLOP/s of each ``window`` of consecutive calls, and of the slowest and fastest
    single call. How steady one kernel's rate is on this machine over seconds: the yardstick the step benchmarks'
    paired probes answer to."""
    threads_before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        x = torch.randn(tokens, width).to(getattr(torch, dtype))
        w = torch.randn(width, width).to(x.dtype)
        torch.nn.functional.linear(x, w)
        seconds = []
        for _ in range(calls):
            start = time.perf_counter()
            torch.nn.functional.linear(x, w)
            seconds.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads_before)
    flop = 2 * tokens * width * width
    windows = [round(flop * window / sum(seconds[i:i + window]) / 1e9)
               for i in range(0, calls - window + 1, window)]
    return {"shape": f"{tokens}x{width}x{width}", "dtype": dtype, "threads": THREADS,
            "window_gflops": windows, "slowest_call_gflops": round(flop / max(seconds) / 1e9),
            "fastest_call_gflops": round(flop / min(seconds) / 1e9),
            "fastest_over_slowest_window": round(max(windows) / min(windows), 2),
            "seconds": round(sum(seconds), 1), "load_average": [round(x, 2) for x in os.getloadavg()]}


READ_CASES = (("buffered", True), ("direct", True), ("buffered", False))   # (reads, cold page cache)


def block_reads_step(blocks: int = 3, dtype: str = "bfloat16", stage: str = "stage1", pairs: int = 3,
                     cases: tuple[tuple[str, bool], ...] = READ_CASES) -> dict:
    """A streamed step with its blocks read through the page cache and past it (``O_DIRECT``), the checkpoint
    dropped from the cache before every step (as a release file larger than the memory beside it is read), and
    for reference buffered reads of a cached file: the cases interleaved run by run, ``pairs`` times. Per run:
    the step projected to 48 blocks, its share of the peak, the process's CPU seconds and what was read how."""
    def name(reads: str, cold: bool) -> str:
        return f"{reads}_{'cold' if cold else 'cached'}"

    runs: dict[str, list[dict]] = {name(reads, cold): [] for reads, cold in cases}
    for _ in range(pairs):
        for reads, cold in cases:
            figures = run_step(stage, blocks, dtype, rounds=2, reads=reads, cold=cold)
            measured, projected = figures["measured"], figures.get("extrapolated_to_48_blocks", {})
            runs[name(reads, cold)].append({
                "step_seconds_48_blocks": projected.get("step_seconds", measured["step_seconds"]),
                "share_of_peak": projected.get("share_of_peak", measured["share_of_peak"]),
                "block_seconds": measured["block_seconds"], "user_seconds": measured["user_seconds"],
                "system_seconds": measured["system_seconds"], "peak_rss_gib": measured["peak_rss_gib"],
                "read_gib": figures["block_reads"]["gib"], "load_average": measured["load_average"]})
    median = {name: sorted(r["step_seconds_48_blocks"] for r in rows)[len(rows) // 2] for name, rows in runs.items()}
    return {"stage": stage, "blocks_measured": blocks, "dtype": dtype, "pairs": pairs, "runs": runs,
            "median_step_seconds_48_blocks": median}


def stage_step(stage: str, version: str = "2.0"):
    def run(blocks: int = RELEASE_BLOCKS, dtype: str = "float32", memory_budget: int | None = None) -> dict:
        return {"version": version, **run_step(stage, blocks, dtype, memory_budget=memory_budget, version=version,
                                               profile=True)}
    return run


BENCHMARKS = {
    "full-19b-stage1-step": stage_step("stage1"),
    "full-19b-stage2-step": stage_step("stage2"),
    "full-22b-stage1-step": stage_step("stage1", "2.3"),
    "full-22b-stage2-step": stage_step("stage2", "2.3"),
    "fp8-dequant-speed": dequant_speed,
    "step-page-faults": page_faults,
    "step-kept-heap": kept_heap_step,
    "step-huge-pages": huge_pages_step,
    "step-text-kept": text_kept_step,
    "gemm-rate-trace": gemm_rate_trace,
    "step-block-reads": block_reads_step,
}
