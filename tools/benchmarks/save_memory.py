"""Peak memory of SaveVideo's path alone: frames as the streamed VAE decode hands them over (uint8 chunks of 8
frames [8, H, W, 3]) plus the audio, into ``encode_mp4`` (H.264 + AAC in MP4), in a fresh child process.

The frames are seeded noise of amplitude ``LTXGRAPH_BENCH_NOISE`` (default 48 levels around grey: about the
bitrate of the tiny models' output, ~1.2 MB per 1080p frame at CRF 18), 25 fps, with a stereo 48 kHz tone as
long as the clip. A thread samples the child's VmRSS and the bytes written to the file every 0.5 s, so a buffer
that grows with the clip shows as RSS rising with frames while the file does not.

Figures per frame count: peak RSS (``ru_maxrss``), RSS and file bytes at each quarter of the frames, seconds,
the file's size. ``python tools/bench.py --only save-memory``; ``LTXGRAPH_BENCH_FRAMES=121,481`` picks the
lengths, ``LTXGRAPH_BENCH_SIZE=1920x1088`` the frame size. One run: ``python tools/benchmarks/save_memory.py 481``.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[2]
FRAMES = (121, 241, 481)
SIZE = "1920x1088"
FPS = 25.0
SAMPLE_SECONDS = 0.5


def resident_bytes() -> int:
    """This process' resident set (VmRSS of /proc/self/status), bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Sampler(threading.Thread):
    """Samples (seconds, RSS bytes, bytes of ``path`` on disk, frames encoded) every ``SAMPLE_SECONDS``."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.frames_done, self.samples = path, 0, []
        self.start_time, self.stopped = time.perf_counter(), threading.Event()

    def sample(self) -> None:
        written = self.path.stat().st_size if self.path.exists() else 0
        self.samples.append((time.perf_counter() - self.start_time, resident_bytes(), written, self.frames_done))

    def run(self) -> None:
        while not self.stopped.wait(SAMPLE_SECONDS):
            self.sample()


def save_once(frames: int, width: int, height: int, noise: int, path: Path) -> dict:
    """Encode ``frames`` noise frames and their audio into ``path``; figures of this process."""
    import resource

    import torch

    from ltxgraph.frames import CHUNK_FRAMES, StreamedFrames
    from ltxgraph.values import Audio, Video
    from ltxgraph_ops.media_video import encode_mp4

    def produce() -> Iterator[torch.Tensor]:
        generator = torch.Generator().manual_seed(7)
        for start in range(0, frames, CHUNK_FRAMES):
            count = min(CHUNK_FRAMES, frames - start)
            offsets = torch.randint(-noise, noise + 1, (count, height, width, 3), generator=generator,
                                    dtype=torch.int16)
            yield (offsets + 128).to(torch.uint8)

    rate = 48000
    t = torch.arange(round(frames / FPS * rate)) / rate
    audio = Audio(torch.stack([torch.sin(2 * math.pi * 440 * t), torch.sin(2 * math.pi * 330 * t)])[None] * 0.3,
                  rate)
    sampler = Sampler(path)
    sampler.start()
    start_rss = resident_bytes()
    encode_mp4(str(path), Video(StreamedFrames((frames, height, width, 3), produce), FPS, audio), {},
               on_frame=lambda done, total: setattr(sampler, "frames_done", done))
    sampler.stopped.set()
    sampler.join()
    sampler.sample()
    gib = 2 ** 30
    trace = os.environ.get("LTXGRAPH_BENCH_TRACE")      # a file for every sample: seconds, RSS, file bytes, frames
    if trace:
        Path(trace).write_text("".join(f"{s:.1f} {r} {w} {n}\n" for s, r, w, n in sampler.samples))
    quarters = {}
    for quarter in (1, 2, 3, 4):
        reached = [s for s in sampler.samples if s[3] >= quarter * frames // 4]
        if reached:
            _, rss, written, _ = reached[0]
            quarters[f"{quarter * 25}%"] = {"rss_gib": round(rss / gib, 3), "file_mb": round(written / 1e6, 1)}
    return {"frames": frames, "size": f"{width}x{height}", "peak_rss_gib": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 3),
            "rss_before_gib": round(start_rss / gib, 3),
            "max_sampled_rss_gib": round(max(s[1] for s in sampler.samples) / gib, 3),
            "at_frames": quarters, "file_mb": round(path.stat().st_size / 1e6, 1),
            "seconds": round(sampler.samples[-1][0], 1)}


def run_child(frames: int, work: Path) -> dict:
    """One save in a fresh child process (so its peak RSS is the save's alone)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(frames), str(work / f"{frames}.mp4")],
                         env=env, capture_output=True, text=True)
    if out.returncode:
        return {"frames": frames, "exit": out.returncode, "stderr_tail": out.stderr[-400:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def save_memory() -> dict:
    frames = [int(n) for n in os.environ.get("LTXGRAPH_BENCH_FRAMES", ",".join(map(str, FRAMES))).split(",")]
    with tempfile.TemporaryDirectory(prefix="save-memory-") as folder:
        runs = [run_child(n, Path(folder)) for n in frames]
    return {"fps": FPS, "noise": int(os.environ.get("LTXGRAPH_BENCH_NOISE", "48")), "runs": runs}


BENCHMARKS = {"save-memory": save_memory}


if __name__ == "__main__":     # one save in this process: python tools/benchmarks/save_memory.py 481 [out.mp4]
    sys.path.insert(0, str(ROOT))
    width, height = (int(n) for n in os.environ.get("LTXGRAPH_BENCH_SIZE", SIZE).split("x"))
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="save-memory-")) / "out.mp4"
    print(json.dumps(save_once(int(sys.argv[1]), width, height, int(os.environ.get("LTXGRAPH_BENCH_NOISE", "48")),
                               target)), flush=True)
