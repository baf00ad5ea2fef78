"""Cost of a sampler checkpoint per step at LTX-2's real stage-1 latent size (768x512, 121 frames: video
[1, 128, 16, 16, 24] + audio [1, 8, 121, 16], packed float32): seconds to write one step (encode, write,
rename, drop the previous step), seconds to restore it, and the file's bytes. Synthetic tensors."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from ltxgraph.resume import NodeCheckpoints

VIDEO_SHAPE, AUDIO_SHAPE = (1, 128, 16, 16, 24), (1, 8, 121, 16)
STEPS = 8


def sampler_checkpoint() -> dict:
    generator = torch.Generator().manual_seed(0)
    numel = sum(torch.Size(s).numel() for s in (VIDEO_SHAPE, AUDIO_SHAPE))
    x = torch.randn(1, numel, generator=generator)
    denoised = torch.randn(1, numel, generator=generator)
    with tempfile.TemporaryDirectory() as folder:
        checkpoints = NodeCheckpoints(Path(folder) / "node", "0" * 40)
        call = checkpoints.next_call(STEPS)
        writes = []
        for step in range(1, STEPS + 1):
            started = time.perf_counter()
            call.save(step, x, {"noise": generator}, {"denoised": denoised})
            writes.append(time.perf_counter() - started)
        [path] = list((Path(folder) / "node").iterdir())
        size = path.stat().st_size
        started = time.perf_counter()
        again = NodeCheckpoints(Path(folder) / "node", "0" * 40)     # the rerun's view of the same node
        restored_at, _ = again.next_call(STEPS).restore(x, {"noise": torch.Generator()})
        read_seconds = time.perf_counter() - started
    return {"latent_values": numel, "file_bytes": size, "write_seconds_median": round(statistics.median(writes), 4),
            "write_seconds_max": round(max(writes), 4), "restore_seconds": round(read_seconds, 4),
            "restored_at": restored_at, "write_mb_per_s": round(size / statistics.median(writes) / 1e6, 1)}


BENCHMARKS = {"sampler-checkpoint": sampler_checkpoint}
