"""Media ops through PyAV on real files: MP4 round trip (frames, fps, size, audio, metadata), atomic naming and
refused escapes, images with alpha, Canny, scaling and batches, audio trim and pad, and corrupt inputs."""
from __future__ import annotations

import json
from pathlib import Path

import av
import pytest
import torch

from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError, LtxGraphError
from ltxgraph.frames import CodedFrames
from ltxgraph.paths import Folders
from ltxgraph.values import Audio
from ltxgraph_ops.media_audio import load_audio, pad_audio_to_duration, trim_audio_duration
from ltxgraph_ops.media_image import (canny_op, empty_image, get_image_size, image_from_batch, image_invert,
                                      image_scale, image_scale_by, image_scale_to_max_dimension, load_image,
                                      save_image)
from ltxgraph_ops.media_video import (create_video, get_video_components, load_video, ltxv_preprocess,
                                      save_video)
from ltxgraph_ops.sampling.preview import png_bytes


@pytest.fixture
def ctx(tmp_path: Path) -> OpContext:
    return OpContext("save", folders=Folders(input=tmp_path / "in", output=tmp_path / "out"),
                     metadata={"graph": "ltxgraph: 1", "graph_name": "g.yaml", "params": {"seed": 11}})


def tone(seconds: float, rate: int = 24000) -> Audio:
    t = torch.arange(round(seconds * rate)) / rate
    return Audio(torch.stack([torch.sin(2 * torch.pi * 440 * t), torch.sin(2 * torch.pi * 330 * t)])[None] * 0.3, rate)


def test_mp4_round_trip(ctx: OpContext) -> None:
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 96), indexing="ij")
    frames = torch.stack([torch.stack([x, y, (x + y + t / 17) % 1], dim=-1) for t in range(17)])  # smooth content
    video, saved = save_video(create_video(frames, 24.0, tone(17 / 24)), "clips/t2v", ctx=ctx)
    assert Path(saved.path).name == "t2v_00001_.mp4" and saved.info["frames"] == 17
    _, second = save_video(video, "clips/t2v", ctx=ctx)
    assert Path(second.path).name == "t2v_00002_.mp4"
    with av.open(saved.path) as container:
        kinds = {s.type: s for s in container.streams}
        assert kinds["video"].codec_context.name == "h264" and kinds["audio"].codec_context.name == "aac"
        info = json.loads(container.metadata["ltxgraph"])
        assert info["params"] == {"seed": 11} and info["graph"] == "ltxgraph: 1"
    loaded = load_video(saved.path)
    images, audio, fps, depth = get_video_components(loaded)
    assert images.shape == (17, 64, 96, 3) and fps == 24.0 and depth == 8
    assert abs(audio.seconds - 17 / 24) < 1024 / 24000 + 1e-3          # AAC frames are 1024 samples
    assert (images.float() - frames).abs().mean() < 0.03                # lossy, but the same pictures
    assert not list(Path(saved.path).parent.glob(".*.tmp"))


def test_output_names_cannot_escape(ctx: OpContext) -> None:
    video = create_video(torch.rand(1, 32, 32, 3), 25.0)
    for prefix in ("../escape", "/tmp/escape", "a/../../escape"):
        with pytest.raises(LtxGraphError, match="leaves|outside"):
            save_video(video, prefix, ctx=ctx)


def test_video_without_audio_gives_silence_of_its_length(ctx: OpContext) -> None:
    _, saved = save_video(create_video(torch.rand(10, 32, 32, 3), 20.0), "silent", ctx=ctx)
    _, audio, _, _ = get_video_components(load_video(saved.path))
    assert audio.waveform.abs().max() == 0 and audio.seconds == pytest.approx(0.5)


def test_images_with_alpha_and_saving(ctx: OpContext, tmp_path: Path) -> None:
    rgba = torch.zeros(8, 12, 3, dtype=torch.uint8)
    rgba[:, :6] = 255
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(rgba))
    image, mask = load_image(str(path))
    assert isinstance(image, CodedFrames) and torch.equal(image.codes()[0], rgba)       # held as the file's bytes
    assert image.shape == (1, 8, 12, 3) and mask.shape == (1, 8, 12) and mask.max() == 0
    assert image.float()[0, 0, 0].tolist() == [1, 1, 1] and image.float()[0, 0, 11].tolist() == [0, 0, 0]
    out = save_image(image, "stills/x", ctx=ctx)
    assert out[0] is image and Path(out[1].path).name == "x_00001_.png"
    assert torch.equal(load_image(out[1].path)[0].codes(), image.codes())
    floats = save_image(image.float(), "stills/x", ctx=ctx)                   # the float path writes the same
    assert torch.equal(load_image(floats[1].path)[0].codes(), image.codes())
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(InputValueError, match="bad.png"):
        load_image(str(tmp_path / "bad.png"))


def test_canny_finds_a_step_edge() -> None:
    image = torch.zeros(1, 32, 32, 3)
    image[:, :, 16:] = 1.0
    edges = canny_op(image, 0.2, 0.5)[0, :, :, 0]
    columns = edges.sum(dim=0).nonzero().flatten().tolist()
    assert columns and all(14 <= c <= 17 for c in columns) and edges[4:28].sum(dim=1).min() >= 1
    with pytest.raises(InputValueError, match="above"):
        canny_op(image, 0.9, 0.5)


def test_sizes_scaling_and_batches() -> None:
    batch = empty_image(160, 90, 4, 0xFF8000)
    assert batch[0, 0, 0].tolist() == pytest.approx([1.0, 128 / 255, 0.0])
    assert get_image_size(batch) == (160, 90, 4)
    assert image_scale_by(batch, "bilinear", 0.5).shape == (4, 45, 80, 3)
    assert image_scale(batch, "area", 64, 0, "disabled").shape == (4, 36, 64, 3)
    assert image_scale_to_max_dimension(batch, "lanczos", 320).shape == (4, 180, 320, 3)
    assert image_from_batch(torch.arange(5.0).view(5, 1, 1, 1), -2, 5).flatten().tolist() == [3.0, 4.0]
    assert torch.equal(image_invert(image_invert(batch)), batch)


def test_preprocess_is_a_real_compression_round_trip() -> None:
    image = torch.rand(2, 33, 47, 3, generator=torch.Generator().manual_seed(2))
    out = ltxv_preprocess(image, 35)
    assert out.shape == (2, 32, 46, 3) and not torch.equal(out, image[:, :32, :46])
    assert torch.equal(ltxv_preprocess(image, 0), image)


def test_audio_load_trim_and_pad(ctx: OpContext, tmp_path: Path) -> None:
    _, saved = save_video(create_video(torch.rand(25, 32, 32, 3), 25.0, tone(1.0)), "withsound", ctx=ctx)
    audio = load_audio(saved.path)
    assert audio.sample_rate == 24000 and abs(audio.seconds - 1.0) < 0.05
    trimmed = trim_audio_duration(audio, 0.25, 0.5)
    assert trimmed.seconds == pytest.approx(0.5)
    assert trim_audio_duration(audio, -0.1, 60.0).seconds == pytest.approx(0.1)
    padded = pad_audio_to_duration(trimmed, frames=49, fps=24.0)
    assert padded.seconds == pytest.approx(49 / 24, abs=1 / 24000) and padded.waveform[..., -10:].abs().max() == 0
    assert pad_audio_to_duration(audio, 0.5) is audio
    (tmp_path / "noise.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(InputValueError, match="noise.wav"):
        load_audio(str(tmp_path / "noise.wav"))


def test_mp4_is_written_while_encoding_with_audio_interleaved(tmp_path: Path) -> None:
    """Audio is muxed alongside the video: the muxer holds no growing backlog of encoded video (it would keep up
    to 10 s of it waiting for audio muxed at the end), so half way through a 12 s clip the file already holds a
    good part of its bytes, and the frames and audio read back whole."""
    import io

    from ltxgraph.frames import CodedFrames
    from ltxgraph.values import Video
    from ltxgraph_ops.media_video import encode_mp4, read_video
    frames = 300                                                         # 12 s at 25 fps
    codes = torch.randint(0, 256, (frames, 32, 48, 3), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    buffer, written = io.BytesIO(), {}
    encode_mp4(buffer, Video(CodedFrames(codes), 25.0, tone(12.0)), {},
               on_frame=lambda done, total: written.setdefault(done, buffer.getbuffer().nbytes))
    final = buffer.getbuffer().nbytes
    assert written[frames // 2] > final / 4, (written[frames // 2], final)
    path = tmp_path / "clip.mp4"
    path.write_bytes(buffer.getvalue())
    video = read_video(path)
    assert video.images.shape == (frames, 32, 48, 3) and abs(video.audio.seconds - 12.0) < 1e-3


def test_x264_runs_one_thread_per_cpu_whatever_torchs_setting() -> None:
    """SaveVideo's encoder runs one thread per usable CPU (``ltxgraph.budget.encoder_threads``), not x264's "auto"
    (1.5 per core, each holding frames of its own: ``ltxgraph.budget.encoder_bytes``) and not torch's thread
    setting: the bytes depend on x264's threads, and a resumed or cached run must write a fresh run's file."""
    import io

    from ltxgraph.budget import encoder_threads
    from ltxgraph.values import Video
    from ltxgraph_ops.media_video import encode_mp4
    # 256 rows: x264 runs at most one frame thread per two rows of macroblocks
    codes = torch.randint(0, 256, (9, 256, 48, 3), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    before = torch.get_num_threads()
    files = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            buffer = io.BytesIO()
            encode_mp4(buffer, Video(CodedFrames(codes), 25.0), {})
            files.append(buffer.getvalue())
    finally:
        torch.set_num_threads(before)
    assert files[0] == files[1]
    assert f" threads={encoder_threads()} ".encode() in files[0]
