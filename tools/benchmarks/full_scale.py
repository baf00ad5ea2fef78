"""Real scale on this machine: the full-size LTX-2 models (synthetic weights in the real layout and dtypes,
written by tools/make_full.py into $LTXGRAPH_FULL_DIR, default /tmp/ltxgraph-full; missing files are written
first) run through the ops' loaders under a 6 GiB memory budget.

- full-19b-step: one denoising step of the 19B transformer (blocks streamed from disk) on a 256x256, 9-frame
  video latent with 0.36 s of audio and a 128-token prompt.
- full-23-step: the same step with the LTX-2.3 22B transformer (gated attention, text cross-attention AdaLN;
  its text contexts come already projected to the stream widths, 4096 video and 2048 audio).
- gemma-12b-encode: LTXAVTextEncoderLoader's encoder (Gemma 3 12B fp8, layers streamed, token table on disk,
  then the checkpoint's text projection and connectors) encoding one short prompt.
- gemma-12b-encode-long: the same encoder on a prompt of 1024 tokens (nothing to trim: the distilled t2v graph's
  worst case) in the compute dtype (``--dtype``, default bfloat16); a checkpoint of the text connectors alone is
  written for it.
- gemma4-12b-encode: LTX-2.5's text encoder as ComfyUI's CLIPLoader loads it (the bundled "with-proj" file: Gemma 4
  12B fp8, layers streamed, token table on disk, then the bundled 2.5 text projection and connectors) encoding a
  prompt of 1024 tokens (the whole context: no padding to skip), under --memory-budget (default 6 GiB).
- vae-decode-full: the release-size video VAE decoding [1, 128, 2, 8, 8] -> 9 frames of 256x256, plainly and
  in 128-pixel tiles (VAEDecodeTiled); the first decode includes reading the decoder.
- upscale-full: the x2 latent upscaler on [1, 128, 2, 8, 8].
- t2v-upscale-decode-full: the distilled t2v graph's upscale and decode at 768x512, 121 frames, in the compute
  dtype (``--dtype``, default bfloat16): the x2 upscale of the stage-1 latent [1, 128, 16, 8, 12] and the tiled
  decode of [1, 128, 16, 16, 24] with the graph's tiles (512 pixels, 64 overlap), 6 GiB budget (a checkpoint of
  the video VAE alone is written for it).
- vae-tiled-decode-frames: VAEDecodeTiled of 25, 49 and 97 frames at 256x256 with temporal tiles: peak RSS
  grows only by the output buffer.
- memory-vs-depth: the step and the encoding again with 12 and 24 blocks / layers (full widths): peak RSS
  does not grow with the checkpoint.

Each runs in its own subprocess so its peak RSS (VmHWM) is its own; 2 threads; glibc's mmap threshold fixed
as the CLI fixes it (ltxgraph/allocator.py).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
FULL_DIR = Path(os.environ.get("LTXGRAPH_FULL_DIR", "/tmp/ltxgraph-full"))
BUDGET = 6 * 2**30

PRELUDE = """
import json, sys, time, torch
sys.path.insert(0, {root!r})
from ltxgraph.allocator import return_large_frees_to_os
from ltxgraph.context import OpContext, RunSettings
return_large_frees_to_os()             # as the CLI does
torch.set_num_threads({threads})
ctx = OpContext("bench", settings=RunSettings(memory_budget={budget}))
def peak_gib():
    return round([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] / 2**20, 2)
figures = {{}}
"""

STEP = """
from ltxgraph.values import AudioLatent, AVLatent, VideoLatent
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.loaders import model_handle
from ltxgraph_ops.sampling_ops import cfg_guider_op, ksampler_select, random_noise, sampler_custom_advanced
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
start = time.perf_counter()
handle = model_handle(FILES['checkpoint'], ctx)
with handle.applied():
    pass
loaded = time.perf_counter()
g = torch.Generator().manual_seed(0)
section = SafetensorsFile(FILES['checkpoint']).config()['transformer']
if section.get('caption_proj_before_connector'):      # LTX-2.3: the text path projects to the stream widths
    video_text = torch.randn(1, 128, section['cross_attention_dim'], generator=g)
    audio_text = torch.randn(1, 128, section['audio_cross_attention_dim'], generator=g)
else:
    video_text = torch.randn(1, 128, section['caption_channels'], generator=g)
    audio_text = video_text.clone()
cond = Conditioning(video_text, audio_text, torch.ones(1, 128, dtype=torch.int64), frame_rate=25.0)
latent = AVLatent(VideoLatent(torch.zeros(1, 128, 2, 8, 8), 25.0, 9), AudioLatent(torch.zeros(1, 8, 9, 16), 25.0, 0.36))
out, _ = sampler_custom_advanced(random_noise(0), cfg_guider_op(handle, cond, cond, 1.0), ksampler_select("euler"),
                                 torch.tensor([1.0, 0.0]), latent, ctx)
done = time.perf_counter()
figures.update(load_seconds=round(loaded - start, 2), step_seconds=round(done - loaded, 2), peak_rss_gib=peak_gib(),
               finite=bool(torch.isfinite(out.video.samples).all() and torch.isfinite(out.audio.samples).all()))
"""

# after ENCODE_25 or ENCODE_LONG have made ``encoder`` (``start`` -> ``checked``): one prompt that fills all 1024
# tokens, encoded once
LONG_PROMPT = """
words = "A lighthouse stands on a cliff at dusk while waves crash below and seagulls call over the wind. "
prompt = words * 200
ids, mask, lost = encoder.tokenizer.encode([prompt], encoder.max_length)
cond = encoder.encode([prompt])
first = time.perf_counter()
figures.update(check_seconds=round(checked - start, 2), prompt_tokens=int(mask.sum()), tokens_dropped=int(lost[0]),
               context_shape=list(cond.video_context.shape), audio_context_shape=list(cond.audio_context.shape),
               first_encode_seconds=round(first - checked, 2),
               streamed=type(encoder.gemma.get().layers).__name__ == 'StreamedBlocks', peak_rss_gib=peak_gib(),
               finite=bool(torch.isfinite(cond.video_context).all() and torch.isfinite(cond.audio_context).all()))
"""

ENCODE_25 = """
from ltxgraph_ops.split_loaders import clip_loader
start = time.perf_counter()
encoder = clip_loader(FILES['gemma'], ctx=ctx)
checked = time.perf_counter()
""" + LONG_PROMPT

ENCODE = """
from ltxgraph_ops.text_ops import text_encoder_handle
start = time.perf_counter()
encoder = text_encoder_handle(FILES['gemma'], FILES['checkpoint'], ctx)
checked = time.perf_counter()
prompt = "A lighthouse stands on a cliff at dusk while waves crash below and seagulls call over the wind."
cond = encoder.encode([prompt])
first = time.perf_counter()
tokens = int(encoder.tokenizer.encode([prompt], encoder.max_length)[1].sum())
figures.update(check_seconds=round(checked - start, 2), prompt_tokens=tokens,
               context_shape=list(cond.video_context.shape), first_encode_seconds=round(first - checked, 2),
               streamed=type(encoder.gemma.get().layers).__name__ == 'StreamedBlocks', peak_rss_gib=peak_gib(),
               finite=bool(torch.isfinite(cond.video_context).all() and torch.isfinite(cond.audio_context).all()))
again = time.perf_counter()
encoder.encode([prompt + " Seagulls."])
figures.update(second_encode_seconds=round(time.perf_counter() - again, 2), peak_rss_gib=peak_gib())
"""

ENCODE_LONG = """
from dataclasses import replace
from ltxgraph_ops.text_ops import text_encoder_handle
ctx = OpContext("bench", settings=replace(ctx.settings, dtype=DTYPE))
start = time.perf_counter()
encoder = text_encoder_handle(FILES['gemma'], FILES['checkpoint'], ctx)
checked = time.perf_counter()
figures.update(dtype=DTYPE)
""" + LONG_PROMPT

DECODE = """
from ltxgraph.values import VideoLatent
from ltxgraph_ops.vae_ops import vae_decode, vae_decode_tiled, video_vae_handle
vae = video_vae_handle(FILES['checkpoint'], ctx)
latent = VideoLatent(torch.randn(1, 128, 2, 8, 8, generator=torch.Generator().manual_seed(0)), 25.0, 9)
start = time.perf_counter()
vae_decode(latent, vae)
first = time.perf_counter()
plain = vae_decode(latent, vae).float()
mid = time.perf_counter()
figures.update(output_shape=list(plain.shape), first_decode_seconds=round(first - start, 2),
               decode_seconds=round(mid - first, 2), peak_rss_gib_plain=peak_gib())
tiled = vae_decode_tiled(latent, vae, tile_size=128, overlap=32, temporal_size=64, temporal_overlap=8).float()
figures.update(tiled_decode_seconds=round(time.perf_counter() - mid, 2), peak_rss_gib=peak_gib(),
               tiled_vs_plain_mean_abs=round(float((tiled - plain).abs().mean()), 4),
               finite=bool(torch.isfinite(plain).all() and torch.isfinite(tiled).all()))
"""

TILED_FRAMES = """
from ltxgraph.values import VideoLatent
from ltxgraph_ops.vae_ops import vae_decode_tiled, video_vae_handle
def rss_gib():
    return round([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS')][0] / 2**20, 2)
vae = video_vae_handle(FILES['checkpoint'], ctx)
vae.model.get().decode(torch.zeros(1, 128, 1, 2, 2))      # reads the decoder
loaded = rss_gib()
latent_frames = 1 + (FRAMES - 1) // 8
latent = VideoLatent(torch.randn(1, 128, latent_frames, 8, 8, generator=torch.Generator().manual_seed(0)), 25.0, FRAMES)
start = time.perf_counter()
frames = vae_decode_tiled(latent, vae, tile_size=256, overlap=64, temporal_size=24, temporal_overlap=8)
codes = frames.codes()                       # streamed: decoded here, held as bytes
figures.update(frames=FRAMES, output_shape=list(codes.shape), output_gib=round(codes.numel() / 2**30, 3),
               seconds=round(time.perf_counter() - start, 1), rss_after_loading_gib=loaded, peak_rss_gib=peak_gib())
"""

T2V_UPSCALE_DECODE = """
from dataclasses import replace
from ltxgraph.values import VideoLatent
from ltxgraph_ops.upscale_ops import latent_upscale_model_loader, ltxv_latent_upsampler
from ltxgraph_ops.vae_ops import vae_decode_tiled, video_vae_handle
ctx = OpContext("bench", settings=replace(ctx.settings, dtype=DTYPE))
vae = video_vae_handle(FILES['checkpoint'], ctx)
upscaler = latent_upscale_model_loader(FILES['upscaler'], ctx)
small = VideoLatent(torch.randn(1, 128, 16, 8, 12, generator=torch.Generator().manual_seed(0)), 25.0, 121)
start = time.perf_counter()
big = ltxv_latent_upsampler(small, upscaler, vae)
upscaled = time.perf_counter()
frames = vae_decode_tiled(big, vae, tile_size=512, overlap=64, temporal_size=4096, temporal_overlap=8, ctx=ctx)
codes = frames.codes()                       # streamed: decoded here, held as 8-bit frames
figures.update(dtype=DTYPE, upscaled_latent=list(big.samples.shape), upscale_seconds=round(upscaled - start, 1),
               frames_shape=list(codes.shape), decode_seconds=round(time.perf_counter() - upscaled, 1),
               peak_rss_gib=peak_gib())
"""

UPSCALE = """
from ltxgraph.values import VideoLatent
from ltxgraph_ops.upscale_ops import latent_upscale_model_loader, ltxv_latent_upsampler
from ltxgraph_ops.vae_ops import video_vae_handle
vae = video_vae_handle(FILES['checkpoint'], ctx)
upscaler = latent_upscale_model_loader(FILES["upscaler"], ctx)
latent = VideoLatent(torch.randn(1, 128, 2, 8, 8, generator=torch.Generator().manual_seed(0)), 25.0, 9)
start = time.perf_counter()
out = ltxv_latent_upsampler(latent, upscaler, vae)
figures.update(output_shape=list(out.samples.shape), upscale_seconds=round(time.perf_counter() - start, 2),
               peak_rss_gib=peak_gib(), finite=bool(torch.isfinite(out.samples).all()))
"""


def run_full(body: str, components: tuple[str, ...], folder: Path = FULL_DIR, depth: int | None = None,
             version: str = "2.0", budget: int = BUDGET, only: tuple[str, ...] | None = None) -> dict:
    """Run ``body`` in a fresh interpreter with FILES (component -> path) set to model ``version``'s files and
    the run's memory ``budget`` (bytes); the files are written first if missing (``only``: a checkpoint of just
    those components, in ``folder``/only-<names>). Threads: $OMP_NUM_THREADS, else every core. Returns the
    figures it reports, with the files' sizes."""
    sys.path.insert(0, str(ROOT))
    from tools.make_full import write_component
    def written(name: str) -> Path:
        if only and name == "checkpoint":
            return write_component(name, folder / f"only-{'-'.join(only)}", depth=depth, version=version, only=only)
        return write_component(name, folder, depth=depth, version=version)

    files = {name: str(written(name)) for name in components}
    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    code = (PRELUDE.format(root=str(ROOT), budget=budget, threads=threads)
            + f"FILES = {files!r}\n" + body + "\nprint(json.dumps(figures))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"benchmark failed:\n{out.stderr[-3000:]}")
    sizes = {f"{name}_file_gib": round(Path(path).stat().st_size / 2**30, 2) for name, path in files.items()}
    return {**sizes, "memory_budget_gib": round(budget / 2**30, 2), "threads": threads, **json.loads(out.stdout.strip().splitlines()[-1])}


def memory_vs_depth(depths: tuple[int, ...] = (12, 24)) -> dict:
    """Peak RSS of the 19B step and the 12B encoding with 12, 24 and 48 (the release) transformer blocks and
    Gemma layers, same widths and inputs: streamed execution holds a block or two, so the peak must not grow
    with depth. The shallower sets are written into FULL_DIR/depth-N and deleted afterwards (disk)."""
    figures: dict = {}
    for depth in (*depths, 48):
        folder = FULL_DIR if depth == 48 else FULL_DIR / f"depth-{depth}"
        try:
            step = run_full(STEP, ("checkpoint",), folder, None if depth == 48 else depth)
            encode = run_full(ENCODE, ("gemma", "checkpoint"), folder, None if depth == 48 else depth)
        finally:
            if depth != 48:
                shutil.rmtree(folder, ignore_errors=True)
        figures[str(depth)] = {"checkpoint_file_gib": step["checkpoint_file_gib"],
                               "gemma_file_gib": encode["gemma_file_gib"],
                               "step_peak_rss_gib": step["peak_rss_gib"], "step_seconds": step["step_seconds"],
                               "encode_peak_rss_gib": encode["peak_rss_gib"],
                               "first_encode_seconds": encode["first_encode_seconds"]}
    return figures


def tiled_decode_frames(frame_counts: tuple[int, ...] = (25, 49, 97)) -> dict:
    """Peak RSS of VAEDecodeTiled (release-size decoder, 256x256, temporal tiles of 24 frames overlapping by 8)
    for growing clips: what grows should be the output buffer only."""
    return {str(n): run_full(f"FRAMES = {n}\n" + TILED_FRAMES, ("checkpoint",)) for n in frame_counts}


BENCHMARKS = {
    "full-19b-step": lambda: run_full(STEP, ("checkpoint",)),
    "full-23-step": lambda: run_full(STEP, ("checkpoint",), version="2.3"),
    "gemma-12b-encode": lambda: run_full(ENCODE, ("gemma", "checkpoint")),
    "gemma-12b-encode-long": lambda dtype="bfloat16": run_full(f"DTYPE = {dtype!r}\n" + ENCODE_LONG, ("gemma", "checkpoint"),
                                                               only=("connector",)),
    "gemma4-12b-encode": lambda memory_budget=BUDGET: run_full(ENCODE_25, ("gemma",), version="2.5",
                                                                budget=memory_budget),
    "vae-decode-full": lambda: run_full(DECODE, ("checkpoint",)),
    "upscale-full": lambda: run_full(UPSCALE, ("checkpoint", "upscaler")),
    "t2v-upscale-decode-full": lambda dtype="bfloat16": run_full(
        f"DTYPE = {dtype!r}\n" + T2V_UPSCALE_DECODE, ("checkpoint", "upscaler"),
        only=("video_vae",)),
    "vae-tiled-decode-frames": tiled_decode_frames,
    "memory-vs-depth": memory_vs_depth,
}
