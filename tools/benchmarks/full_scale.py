"""Real scale on this machine: one denoising step of the full-size 19B transformer (synthetic fp8 weights in
the real layout, written by tools/make_full.py into $LTXGRAPH_FULL_DIR, default /tmp/ltxgraph-full), streamed
from disk under a memory budget, on a 256x256, 9-frame video latent with 0.36 s of audio and a 128-token prompt.

Runs in a subprocess so the peak RSS (VmHWM) is the step's alone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
FULL_DIR = Path(os.environ.get("LTXGRAPH_FULL_DIR", "/tmp/ltxgraph-full"))
BUDGET = 6 * 2**30

STEP = """
import json, sys, time, torch
sys.path.insert(0, {root!r})
from ltxgraph.context import OpContext, RunSettings
from ltxgraph.values import AudioLatent, AVLatent, VideoLatent
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.loaders import model_handle
from ltxgraph_ops.sampling_ops import cfg_guider_op, ksampler_select, random_noise, sampler_custom_advanced
torch.set_num_threads({threads})
start = time.perf_counter()
ctx = OpContext("bench", settings=RunSettings(memory_budget={budget}))
handle = model_handle({path!r}, ctx)
with handle.applied():
    pass
loaded = time.perf_counter()
g = torch.Generator().manual_seed(0)
text = torch.randn(1, 128, 3840, generator=g)
cond = Conditioning(text, text.clone(), torch.ones(1, 128, dtype=torch.int64), frame_rate=25.0)
latent = AVLatent(VideoLatent(torch.zeros(1, 128, 2, 8, 8), 25.0, 9), AudioLatent(torch.zeros(1, 8, 9, 16), 25.0, 0.36))
out, _ = sampler_custom_advanced(random_noise(0), cfg_guider_op(handle, cond, cond, 1.0), ksampler_select("euler"),
                                 torch.tensor([1.0, 0.0]), latent, ctx)
done = time.perf_counter()
peak = [int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0]
print(json.dumps({{"load_seconds": round(loaded - start, 2), "step_seconds": round(done - loaded, 2),
                  "peak_rss_bytes": peak, "peak_rss_gib": round(peak / 2**30, 2),
                  "finite": bool(torch.isfinite(out.video.samples).all() and torch.isfinite(out.audio.samples).all())}}))
"""


def full_19b_step() -> dict:
    sys.path.insert(0, str(ROOT))
    from tools.make_full import FILES, write_component
    path = FULL_DIR / FILES["transformer"]
    if not path.exists():
        write_component("transformer", FULL_DIR)
    code = STEP.format(root=str(ROOT), path=str(path), budget=BUDGET, threads=os.cpu_count() or 1)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {"file_gib": round(path.stat().st_size / 2**30, 2), "memory_budget_gib": BUDGET / 2**30,
            **json.loads(out.stdout.strip().splitlines()[-1])}


BENCHMARKS = {"full-19b-step": full_19b_step}
