"""Peak memory of the LTX-2.5 diffusion decoder as the clip grows: tiled (stages 4 and 5 per tile, chunks
consumed as they come) against untiled.

A mid-size decoder (the release's five stages, kernels and upsamples; widths 256 ... 32, one block per stage,
32-wide heads, stage-5 kernel 3 x 7 x 7, seeded random weights, float32) decodes 6 x 6 latents (192 x 192 px) of 2, 5, 9
and 17 latent frames (9 to 129 frames), each run in a fresh process that reports its peak RSS (the decode's own, sampled every 5 ms)
and its RSS before the decode (torch and the model; the allocator may reuse memory freed after building). Tiles: 64 x 64 px, 16 frames, 16 px / 4 frames overlap.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
LATENT_FRAMES = (2, 5, 9, 17)
LATENT_SIZE = 6


def section() -> dict:
    from ltxgraph_ops.releases import video_vae_section_25
    config = video_vae_section_25()
    del config["encoder"]   # decoding only: the full-size encoder would dominate the baseline
    config["decoder"].update({"head_dim": 32, "t_emb_dim": 64, "stage_channels": [256, 128, 64, 64, 32],
                              "stage_depths": [1, 1, 1, 1, 1], "stage5_kernel": [3, 7, 7]})
    return config


def _rss_mib() -> float:
    """Resident set size now, MiB (from /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class PeakSampler(threading.Thread):
    """Polls the RSS every few milliseconds until stopped; ``peak`` is the largest seen (MiB)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self._stop_event = _rss_mib(), threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.005):
            self.peak = max(self.peak, _rss_mib())

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return max(self.peak, _rss_mib())


def run_one(frames: int, tiled: bool) -> dict:
    """In this process: build, then decode; peak RSS growth in MiB and seconds."""
    import torch
    from ltxgraph_ops.models.diffusion_decoder import DecodeTiling
    from ltxgraph_ops.tiny.diffusion_decoder import build
    from ltxgraph_ops.weights.writing import random_state
    torch.set_num_threads(1)
    model = build(section()).eval()
    model.load_state_dict(random_state(model, "", 0))
    latent = torch.randn(1, 128, frames, LATENT_SIZE, LATENT_SIZE, generator=torch.Generator().manual_seed(1))
    before = _rss_mib()
    sampler = PeakSampler()
    sampler.start()
    start = time.perf_counter()
    decoded = 0
    with torch.no_grad():
        if tiled:
            tiling = DecodeTiling(height=64, width=64, frames=16, stride_height=48, stride_width=48, stride_frames=12)
            for chunk in model.decode_chunks(latent, tiling, torch.Generator().manual_seed(0)):
                decoded += chunk.shape[2]
        else:
            decoded = model.decode(latent, torch.Generator().manual_seed(0)).shape[2]
    peak = sampler.stop()
    return {"frames": decoded, "peak_rss_mib": round(peak, 1), "rss_before_mib": round(before, 1),
            "seconds": round(time.perf_counter() - start, 1)}


def diffusion_decoder_memory() -> dict:
    figures: dict = {}
    for tiled in (True, False):
        for frames in LATENT_FRAMES:
            output = subprocess.run([sys.executable, __file__, str(frames), str(int(tiled))], cwd=ROOT,
                                    capture_output=True, text=True, check=True).stdout
            figures[f"{'tiled' if tiled else 'untiled'}_latent_frames_{frames}"] = json.loads(output)
    return figures


BENCHMARKS = {"diffusion-decoder-memory": diffusion_decoder_memory}

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(run_one(int(sys.argv[1]), bool(int(sys.argv[2])))))
