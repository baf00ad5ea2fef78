"""Decompression bombs (made here by tools/bombs.py) are refused by ``ltxgraph run`` with exit 2, a message that
names the node and the file, and bounded memory: each run happens in a child process that reports how far its
peak RSS rose during the run (a decoded bomb would add from 629 MB to several GB)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from ltxgraph import MediaLimits
from ltxgraph.context import OpContext, RunSettings
from ltxgraph.errors import InvalidInput
from ltxgraph_ops.decode_guard import DecodeBudget, MediaTooLarge
from ltxgraph_ops.image_headers import declared_image_size
from ltxgraph_ops.media_audio import read_audio
from ltxgraph_ops.media_image import read_image
from ltxgraph_ops.media_video import read_video
from tools.bombs import jpeg_bomb, load_graph, png_bomb, video_bomb, wav_bomb, webp_bomb

REPO = Path(__file__).resolve().parents[2]
MB = 2**20
HEADER_GROWTH = 80 * MB          # what a refused run may add to the peak (no frame decoded)

CHILD = """
import resource, sys
from ltxgraph.cli import main
from ltxgraph.registry import Registry
Registry.discover()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(sys.argv[1:])
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(f"GROWTH {grown * 1024} EXIT {code}")
sys.exit(code)
"""


def run_child(folder: Path, file_name: str, *extra: str) -> tuple[int, int, str, list[Path]]:
    """(exit code, bytes the peak RSS grew by, stderr, files under out/) of ``ltxgraph run`` loading
    ``file_name`` from ``folder``."""
    (folder / "g.yaml").write_text(load_graph(file_name))
    env = {**os.environ, "PYTHONPATH": str(REPO), "LTXGRAPH_CACHE_DIR": str(folder / "cache"),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, "run", "g.yaml", "--input-dir", ".", "--out", "out",
                           "--no-cache", "--quiet", *extra], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=300)
    words = done.stdout.split()
    growth, code = int(words[words.index("GROWTH") + 1]), int(words[words.index("EXIT") + 1])
    assert done.returncode == code
    written = [p for p in (folder / "out").rglob("*")] if (folder / "out").exists() else []
    return code, growth, done.stderr, written


@pytest.mark.parametrize("name, make", [("bomb.png", png_bomb), ("bomb.jpg", jpeg_bomb), ("bomb.webp", webp_bomb)])
def test_still_image_bombs_are_refused_before_decoding(tmp_path: Path, name: str, make) -> None:
    (tmp_path / name).write_bytes(make())
    assert (tmp_path / name).stat().st_size < 300_000
    code, growth, stderr, written = run_child(tmp_path, name)
    assert code == 2, stderr
    assert f"node 'load' (LoadImage)" in stderr and name in stderr
    assert "declares 16000x16000 pixels" in stderr and "--media-limits pixels=" in stderr
    assert "Traceback" not in stderr and not written
    assert growth < HEADER_GROWTH, f"peak RSS grew by {growth / MB:.0f} MB"


def test_mp4_bomb_is_refused_by_its_declared_size(tmp_path: Path) -> None:
    video_bomb(tmp_path / "bomb.mp4")                       # 1024 x 1024 x 200 frames in ~12 KB
    assert (tmp_path / "bomb.mp4").stat().st_size < 50_000
    code, growth, stderr, written = run_child(tmp_path, "bomb.mp4", "--media-limits", "bytes=256Mi")
    assert code == 2, stderr
    assert "node 'load' (LoadVideo)" in stderr and "bomb.mp4" in stderr
    assert "declares 200 frames of 1024x1024" in stderr and "--media-limits bytes=" in stderr
    assert not written and growth < HEADER_GROWTH, f"peak RSS grew by {growth / MB:.0f} MB"
    with pytest.raises(MediaTooLarge, match=r"declares 200 frames, over the limit of 100 \(frames"):
        read_video(tmp_path / "bomb.mp4", DecodeBudget(str(tmp_path / "bomb.mp4"), MediaLimits(frames=100)))


def test_a_stream_declaring_no_size_stops_decoding_at_the_limit(tmp_path: Path) -> None:
    video_bomb(tmp_path / "bomb.h264")                      # a raw H.264 stream declares no frame count
    limit = 64 * MB
    code, growth, stderr, written = run_child(tmp_path, "bomb.h264", "--media-limits", f"bytes={limit}")
    assert code == 2, stderr
    assert "node 'load' (LoadVideo)" in stderr and "bomb.h264" in stderr and "decoding stopped" in stderr
    assert not written
    assert growth < limit + HEADER_GROWTH, f"peak RSS grew by {growth / MB:.0f} MB (all frames: 629 MB)"


def test_wav_declaring_hours_is_refused_before_decoding(tmp_path: Path) -> None:
    wav_bomb(tmp_path / "bomb.wav")                         # 3 h of 48 kHz stereo: 2 GB, sparse on disk
    code, growth, stderr, written = run_child(tmp_path, "bomb.wav")
    assert code == 2, stderr
    assert "node 'load' (LoadAudio)" in stderr and "declares 10800.0 s of audio" in stderr
    assert not written and growth < HEADER_GROWTH, f"peak RSS grew by {growth / MB:.0f} MB"


def test_raised_limits_let_a_file_through(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    path.write_bytes(png_bomb(64, 48))
    strict = DecodeBudget(str(path), MediaLimits(pixels=1000))
    with pytest.raises(MediaTooLarge, match=r"declares 64x48 pixels.*MediaLimits\(pixels=\.\.\.\)"):
        read_image(str(path), strict)
    images, _ = read_image(str(path), DecodeBudget(str(path), MediaLimits(pixels=64 * 48)))
    assert images.shape == (1, 48, 64, 3) and float(images.float().abs().max()) == 0.0


def test_a_result_cached_under_raised_limits_is_not_served_under_lower_ones(tmp_path: Path) -> None:
    """The media limits a run applies are part of the cache key of the nodes that read input files (and so of
    their downstream cone): the disk cache holds what a file decoded to under raised limits, and a later run with
    lower limits decodes it again and refuses it, rather than being served a result it would refuse."""
    from ltxgraph.cli import main

    (tmp_path / "small.png").write_bytes(png_bomb(64, 48))     # 3072 pixels
    (tmp_path / "g.yaml").write_text(
        "ltxgraph: 1\nname: load and measure\nnodes:\n  load: {op: LoadImage, in: {image: small.png}}\n"
        "  size: {op: GetImageSize, in: {image: '@load.IMAGE'}}\noutputs:\n  width: '@size.width'\n")

    def run(limits: str | None) -> tuple[int, dict]:
        report = tmp_path / "report.json"
        report.unlink(missing_ok=True)
        extra = ["--media-limits", limits] if limits else []
        code = main(["run", str(tmp_path / "g.yaml"), "--input-dir", str(tmp_path), "--out", str(tmp_path / "out"),
                     "--cache-dir", str(tmp_path / "cache"), "--quiet", "--report", str(report), *extra])
        data = json.loads(report.read_text())
        return code, {node["id"]: node["status"] for node in data["nodes"]}

    assert run("pixels=4000") == (0, {"load": "executed", "size": "executed"})
    assert run("pixels=4000") == (0, {"load": "unused", "size": "cached"})
    assert run("pixels=1000") == (2, {"load": "failed", "size": "skipped"})         # not served from the cache
    assert run(None) == (0, {"load": "executed", "size": "executed"})                 # the defaults: a key of its own
    assert run("frames=0, pixels=1000") == (2, {"load": "failed", "size": "skipped"})
    assert run("pixels=4000") == (0, {"load": "unused", "size": "cached"})


def test_op_context_carries_the_run_limits(tmp_path: Path) -> None:
    wav_bomb(tmp_path / "a.wav", seconds=2.0, rate=8000, channels=1)
    ctx = OpContext("load", settings=RunSettings(media_limits=MediaLimits(audio_seconds=1.5)))
    with pytest.raises(MediaTooLarge, match="declares 2.0 s of audio, over the limit of 1.5 s"):
        read_audio(str(tmp_path / "a.wav"), DecodeBudget.for_file(tmp_path / "a.wav", ctx))
    audio = read_audio(str(tmp_path / "a.wav"), DecodeBudget.for_file(tmp_path / "a.wav", None))
    assert audio.waveform.shape == (1, 1, 16000) and audio.sample_rate == 8000


def test_audio_bytes_count_against_the_limit(tmp_path: Path) -> None:
    wav_bomb(tmp_path / "a.wav", seconds=2.0, rate=8000, channels=2)      # 2 x 16000 float32 samples: 128 KB
    budget = DecodeBudget(str(tmp_path / "a.wav"), MediaLimits(bytes=100_000, audio_seconds=0))
    with pytest.raises(MediaTooLarge, match=r"declares 2.0 s of 2-channel audio at 8000 Hz \(128.0 KB decoded\)"):
        read_audio(str(tmp_path / "a.wav"), budget)


def test_video_frames_are_counted_while_decoding(tmp_path: Path) -> None:
    video_bomb(tmp_path / "v.h264", width=64, height=64, frames=10)
    with pytest.raises(MediaTooLarge, match="holds more than 4 frames"):
        read_video(tmp_path / "v.h264", DecodeBudget(str(tmp_path / "v.h264"), MediaLimits(frames=4)))
    video = read_video(tmp_path / "v.h264")
    assert video.images.shape == (10, 64, 64, 3) and video.audio is None


def _still(path: Path, codec: str, pix_fmt: str, width: int, height: int, **options: str) -> None:
    formats = {"libwebp": "webp", "gif": "gif"}
    with av.open(str(path), "w", format=formats.get(codec, "image2")) as container:
        stream = container.add_stream(codec, rate=1, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        rgb = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)


@pytest.mark.parametrize("suffix, codec, pix_fmt, options", [
    (".png", "png", "rgb24", {}), (".jpg", "mjpeg", "yuvj420p", {}),
    (".webp", "libwebp", "yuv420p", {}), (".webp", "libwebp", "bgra", {"lossless": "1"})])
def test_declared_image_size_matches_the_decoded_size(tmp_path: Path, suffix, codec, pix_fmt, options) -> None:
    path = tmp_path / f"still{suffix}"
    _still(path, codec, pix_fmt, 70, 38, **options)
    images, _ = read_image(str(path))
    assert declared_image_size(path) == (images.shape[2], images.shape[1]) == (70, 38)


def test_ffmpeg_guards_formats_whose_header_ltxgraph_does_not_read(tmp_path: Path) -> None:
    _still(tmp_path / "a.tiff", "tiff", "rgb24", 64, 48)
    assert declared_image_size(tmp_path / "a.tiff") is None
    with pytest.raises(MediaTooLarge, match="a.tiff: has frames FFmpeg would not size within the pixel limit"):
        read_image(str(tmp_path / "a.tiff"), DecodeBudget(str(tmp_path / "a.tiff"), MediaLimits(pixels=1000)))
    assert read_image(str(tmp_path / "a.tiff"))[0].shape == (1, 48, 64, 3)
    video_bomb(tmp_path / "v.mp4", width=64, height=48, frames=2)
    with pytest.raises(MediaTooLarge, match="v.mp4: declares 64x48 pixels per frame"):
        read_video(tmp_path / "v.mp4", DecodeBudget(str(tmp_path / "v.mp4"), MediaLimits(pixels=1000)))


def test_declared_gif_size_is_its_logical_screen(tmp_path: Path) -> None:
    (tmp_path / "a.gif").write_bytes(b"GIF89a" + (700).to_bytes(2, "little") + (380).to_bytes(2, "little") + bytes(8))
    assert declared_image_size(tmp_path / "a.gif") == (700, 380)
    (tmp_path / "b.tif").write_bytes(b"II*\x00" + bytes(60))
    assert declared_image_size(tmp_path / "b.tif") is None


def test_media_limits_parse_names_units_and_errors() -> None:
    limits = MediaLimits.parse("pixels=100M, frames=10000,bytes=16Gi,audio_seconds=90.5")
    assert limits == MediaLimits(pixels=100_000_000, frames=10000, bytes=16 * 2**30, audio_seconds=90.5)
    assert MediaLimits.parse("bytes=none").bytes == 0 and MediaLimits.parse("").pixels == 8192 * 8192
    with pytest.raises(InvalidInput, match="NAME one of pixels, frames, bytes, audio_seconds"):
        MediaLimits.parse("width=10")
    with pytest.raises(InvalidInput, match="is not a number"):
        MediaLimits.parse("bytes=lots")
    with pytest.raises(InvalidInput, match=r"MediaLimits\(frames=-1\): must be 0 \(no limit\) or a positive"):
        MediaLimits(frames=-1)


def test_default_limits_fit_real_inputs() -> None:
    limits = MediaLimits()
    assert limits.pixels >= 7680 * 4320 and limits.pixels >= 8192 * 4320           # 8K stills
    assert limits.bytes >= 257 * 3840 * 2160 * 3                                   # 4K UHD x 257 frames
    assert limits.frames >= 20 * 50 and limits.audio_seconds >= 300                # 20 s at 50 fps; a song
    assert limits.bytes <= 8 * 2**30                                               # bounded on a 24 GiB machine
