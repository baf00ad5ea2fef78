"""Decompression bombs for ltxgraph's media loaders, and a runner that feeds each to ``ltxgraph run`` and reports
peak RSS and time.

Each bomb is a small file declaring a huge decode: a PNG of 16000 x 16000 zero pixels (zlib), a JPEG and a WebP
whose headers were patched to 16000 x 16000, an MP4 (and a raw H.264 stream, which declares no frame count) of
black 1024 x 1024 frames at the lowest bitrate, an MP4 of 6000 small frames, and a WAV whose header declares
hours (a sparse file: its size is real, its disk use is not).

    python tools/bombs.py [--media-limits bytes=256Mi] [--keep DIR]
"""
from __future__ import annotations

import argparse
import io
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

ZERO_BLOCK = 1 << 20


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zlib_zeros(size: int) -> bytes:
    """A zlib stream of ``size`` zero bytes, built from one compressed 1 MiB block repeated (each block ends in
    a full flush, so every block after the first compresses to the same bytes)."""
    blocks, rest = divmod(size, ZERO_BLOCK)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(ZERO_BLOCK)
    first = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH) if blocks else b""
    repeated = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH) if blocks > 1 else b""
    tail = deflate.compress(bytes(rest)) + deflate.flush()
    checksum = 1
    for _ in range(blocks):
        checksum = zlib.adler32(block, checksum)
    checksum = zlib.adler32(bytes(rest), checksum)
    return b"\x78\xda" + first + repeated * max(0, blocks - 1) + tail + struct.pack(">I", checksum)


def png_bomb(width: int = 16000, height: int = 16000) -> bytes:
    """A valid greyscale PNG of width x height zero pixels (16000 x 16000: 256 MB of pixels in ~250 KB)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib_zeros(height * (1 + width))             # each row: filter byte 0, then zeros
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def _tiny_still(format_name: str, codec: str, pix_fmt: str) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=format_name) as container:
        stream = container.add_stream(codec, rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, pix_fmt
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24").reformat(format=pix_fmt)
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return buffer.getvalue()


def jpeg_bomb(width: int = 16000, height: int = 16000) -> bytes:
    """A 16 x 16 baseline JPEG whose frame header (SOF0) declares width x height."""
    data = bytearray(_tiny_still("image2pipe", "mjpeg", "yuvj420p"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_bomb(width: int = 16000, height: int = 16000) -> bytes:
    """A 16 x 16 lossy WebP whose VP8 key frame header declares width x height (14 bits each: up to 16383)."""
    data = bytearray(_tiny_still("webp", "libwebp", "yuv420p"))
    start = data.index(b"\x9d\x01\x2a")                    # VP8 key frame start code, then the sizes
    data[start + 3:start + 7] = struct.pack("<HH", width, height)
    return bytes(data)


def video_bomb(path: Path, width: int = 1024, height: int = 1024, frames: int = 200) -> None:
    """``frames`` black frames of width x height, H.264 at the lowest quality; the container comes from the
    suffix (.mp4 declares its frame count, .h264 declares none)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "51", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        black = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        black = black.reformat(format="yuv420p")
        for _ in range(frames):
            for packet in stream.encode(black):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def wav_bomb(path: Path, seconds: float = 3 * 3600, rate: int = 48000, channels: int = 2) -> None:
    """A 16-bit PCM WAV declaring ``seconds`` of audio; its data are a hole in a sparse file (zeros on read)."""
    data_bytes = round(seconds * rate) * channels * 2
    if data_bytes + 36 >= 2**32:
        raise ValueError(f"{seconds} s at {rate} Hz x {channels} does not fit a WAV's 4 GiB")
    header = (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
              + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
              + b"data" + struct.pack("<I", data_bytes))
    with open(path, "wb") as file:
        file.write(header)
        file.truncate(len(header) + data_bytes)


LOADERS = {".png": ("LoadImage", "image", "IMAGE"), ".jpg": ("LoadImage", "image", "IMAGE"),
           ".webp": ("LoadImage", "image", "IMAGE"), ".mp4": ("LoadVideo", "file", "VIDEO"),
           ".h264": ("LoadVideo", "file", "VIDEO"), ".wav": ("LoadAudio", "audio", "AUDIO")}


def load_graph(file_name: str) -> str:
    """A graph (YAML) that loads ``file_name`` from the input folder with the loader its suffix calls for."""
    op_name, input_name, output = LOADERS[Path(file_name).suffix]
    return (f"ltxgraph: 1\nname: load {file_name}\nnodes:\n  load:\n    op: {op_name}\n"
            f"    in: {{{input_name}: {file_name}}}\noutputs:\n  media: \"@load.{output}\"\n")


def make_all(folder: Path) -> list[Path]:
    """Every bomb written into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    stills = {"bomb.png": png_bomb(), "bomb.jpg": jpeg_bomb(), "bomb.webp": webp_bomb()}
    for name, data in stills.items():
        (folder / name).write_bytes(data)
    video_bomb(folder / "bomb.mp4")
    video_bomb(folder / "bomb.h264")
    video_bomb(folder / "frames.mp4", width=64, height=64, frames=6000)
    wav_bomb(folder / "bomb.wav")
    return [folder / name for name in (*stills, "bomb.mp4", "bomb.h264", "frames.mp4", "bomb.wav")]


@dataclass
class Outcome:
    file: Path
    exit_code: int
    peak_rss_bytes: int
    seconds: float
    message: str


def run_bomb(path: Path, extra_args: list[str], env: dict[str, str] | None = None) -> Outcome:
    """``ltxgraph run`` (this checkout's code) on a graph loading ``path``, in a child process whose peak RSS
    and wall time are measured."""
    graph = path.with_name(path.name + ".yaml")
    graph.write_text(load_graph(path.name))
    command = [sys.executable, "-m", "ltxgraph.cli", "run", str(graph), "--input-dir", str(path.parent),
               "--out", str(path.parent / "out"), "--no-cache", "--quiet", *extra_args]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert child.stderr is not None
    stderr = child.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    message = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return Outcome(path, child.returncode, usage.ru_maxrss * 1024, seconds, message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media-limits", help="passed on to ltxgraph run (e.g. bytes=256Mi)")
    parser.add_argument("--keep", type=Path, help="write the bombs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    extra = ["--media-limits", args.media_limits] if args.media_limits else []
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        print(f"{'file':<11} {'size':>9} {'exit':>4} {'peak RSS':>9} {'time':>6}  message")
        for path in make_all(folder):
            outcome = run_bomb(path, extra, env)
            size = os.stat(path).st_blocks * 512
            print(f"{path.name:<11} {size / 1024:>7.0f}KB {outcome.exit_code:>4} "
                  f"{outcome.peak_rss_bytes / 2**20:>7.0f}MB {outcome.seconds:>5.1f}s  {outcome.message[:160]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
