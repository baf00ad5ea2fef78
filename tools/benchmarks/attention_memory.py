"""What one self-attention of the transformer allocates on CPU at stage-2 token counts, and which SDPA kernel runs.

Stage 2 of the 1920x1088 two-stage graph attends over 34 x 60 latent cells per latent frame: 121 frames -> 16
latent frames, 32,640 video tokens. One :class:`Attention` (q/k RMS norms, split RoPE, no gate) runs one forward
on [1, T, D] in a fresh child process per setting (one thread); its peak is VmHWM above the resident set just
before the forward (/proc/self/clear_refs resets the high-water mark; glibc's mmap threshold fixed at 1 MiB as
in the CLI, :mod:`ltxgraph.allocator`), also given in units of ``T x D`` elements
("widths": the input x is 1). Settings: the tiny model's width (2 heads x 16) at 32,640 tokens and the 19B's
(32 x 128) at 4,080 tokens (2 latent frames: at 32,640 one forward is 17 TFLOP, hours on this CPU; the peak per
token does not depend on T, SDPA on CPU being the flash kernel), float32 and bfloat16, without a bias and with
an additive key bias [B, 1, 1, T] (a padding mask), queries at once and in 4 chunks
(:func:`ltxgraph_ops.models.attention.attention_chunks`).

``python tools/bench.py --only attention-memory``.
One setting: ``python tools/benchmarks/attention_memory.py TOKENS HEADS HEAD_DIM DTYPE MASK QUERY_CHUNK``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CELLS = 34 * 60                     # latent cells per latent frame at 1920x1088
SETTINGS = {"tiny": (2, 16, 16 * CELLS), "19b": (32, 128, 2 * CELLS)}   # heads, head dim, tokens


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(tokens: int, heads: int, head_dim: int, dtype_name: str, mask: bool, query_chunk: int | None) -> dict:
    """One forward in this process: peak bytes above the resident set before it, the kernels SDPA ran."""
    import torch
    from torch.profiler import profile

    from ltxgraph.allocator import return_large_frees_to_os
    from ltxgraph_ops.models.attention import Attention, attention_chunks
    from ltxgraph_ops.models.rope import rope_table

    torch.set_num_threads(1)
    return_large_frees_to_os()                                  # as the CLI does: blocks >= 1 MiB are mappings
    dtype = getattr(torch, dtype_name)
    dim = heads * head_dim
    generator = torch.Generator().manual_seed(0)
    attention = Attention(dim, dim, heads, head_dim, 1e-6)
    for parameter in attention.parameters():
        parameter.data = (torch.randn(parameter.shape, generator=generator) * dim ** -0.5).to(dtype)
    x = torch.randn(1, tokens, dim, generator=generator).to(dtype)
    positions = torch.stack([torch.arange(tokens) // 2040, torch.arange(tokens) % 2040 // 60,
                             torch.arange(tokens) % 60], dim=0).float()[None, :, :, None].repeat(1, 1, 1, 2)
    positions[..., 1] += 1
    rope = rope_table(positions, [20.0, 2048.0, 2048.0], dim, heads, 10000.0, True, True, dtype=dtype)
    bias = None
    if mask:
        bias = torch.zeros(1, 1, 1, tokens, dtype=dtype)
        bias[..., -tokens // 8:] = torch.finfo(dtype).min       # the last eighth masked out
    with torch.no_grad(), profile() as trace:                   # which SDPA kernel: a small run, same inputs
        attention(x[:, :256], bias=None if bias is None else bias[..., :256],
                  q_rope=type(rope)(rope.cos[:, :256], rope.sin[:, :256], rope.split))
    kernels = sorted({e.name for e in trace.events() if "attention" in e.name and e.name.startswith("aten::_")})
    Path("/proc/self/clear_refs").write_text("5")               # reset VmHWM to the current resident set
    before = _status("VmRSS")
    start = time.perf_counter()
    with torch.no_grad(), attention_chunks(attention, query_chunk):
        out = attention(x, bias=bias, q_rope=rope)
    seconds = time.perf_counter() - start
    peak = _status("VmHWM") - before
    width_bytes = tokens * dim * dtype.itemsize
    return {"tokens": tokens, "heads": heads, "head_dim": head_dim, "dtype": dtype_name, "bias": mask,
            "query_chunk": query_chunk, "sdpa_kernels": kernels, "peak_above_inputs_gib": round(peak / 2**30, 3),
            "peak_widths": round(peak / width_bytes, 2), "seconds": round(seconds, 2),
            "finite": bool(torch.isfinite(out).all())}


def run_child(*setting: object) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), *map(str, setting)], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        return {"setting": list(map(str, setting)), "exit": out.returncode, "stderr_tail": out.stderr[-400:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def attention_memory() -> dict:
    runs = []
    for width, (heads, head_dim, tokens) in SETTINGS.items():
        for dtype in ("float32", "bfloat16"):
            for mask in (False, True):
                for chunk in (None, tokens // 4):
                    runs.append({"width": width, **run_child(tokens, heads, head_dim, dtype, int(mask), chunk)})
    return {"runs": runs}


BENCHMARKS = {"attention-memory": attention_memory}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    tokens, heads, head_dim, dtype_name, mask, chunk = sys.argv[1:7]
    print(json.dumps(measure(int(tokens), int(heads), int(head_dim), dtype_name, bool(int(mask)),
                             None if chunk == "None" else int(chunk))), flush=True)
