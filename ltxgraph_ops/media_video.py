"""Video files through PyAV (ComfyUI names): load, take apart, put together, save as MP4 (H.264 + AAC) with the
graph and its parameters embedded, and LTXVPreprocess' compression round trip.

Frames travel as IMAGE [F, H, W, 3] in [0, 1]: loaded videos as 8-bit codes, decoded ones often streamed
(:mod:`ltxgraph.frames`); SaveVideo encodes them chunk by chunk, so no float copy of the clip is made. Audio
travels as AUDIO [1, C, S] float in [-1, 1].
"""
from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Iterator

import av
import numpy as np
import torch

from ltxgraph import Port, op
from ltxgraph.budget import encoder_threads
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.frames import CHUNK_FRAMES, CodedFrames, Frames
from ltxgraph.values import Audio, SavedFile, Video, storable
from ltxgraph_ops.decode_guard import DecodeBudget, open_limited
from ltxgraph_ops.file_checks import output_prefix, video_file
from ltxgraph_ops.models.progress import Counter

AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
METADATA_KEY = "ltxgraph"
AUDIO_KEY = "ltxgraph_audio"      # {"samples": n, "priming": p}: exact audio length of files we write
AAC_PRIMING = 1024                # FFmpeg's AAC encoder starts with one frame of priming samples


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def check_images(images: torch.Tensor | Frames, what: str = "images") -> torch.Tensor | Frames:
    """``images`` if they are an IMAGE [F, H, W, 1, 3 or 4] with F >= 1 and (floats) finite, else
    InputValueError; one float channel is repeated to three (frames are checked per chunk when read)."""
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[-1] not in (1, 3, 4):
        raise InputValueError(f"{what} must be an IMAGE [frames, height, width, 3] with at least one frame, got "
                              f"shape {tuple(images.shape)}")
    if isinstance(images, Frames):
        return images
    if not bool(torch.isfinite(images).all()):
        raise InputValueError(f"{what} contain NaN or infinite values")
    return images if images.shape[-1] != 1 else images.expand(-1, -1, -1, 3)


def _declared_seconds(container: av.container.InputContainer, stream: av.stream.Stream) -> float:
    """The duration a stream's (or else its container's) header declares, 0.0 when it declares none."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration and container.duration > 0 else 0.0


def rgb_chunks(images: torch.Tensor | Frames) -> Iterator[np.ndarray]:
    """RGB uint8 frames [n, H, W, 3] of a checked IMAGE, a few at a time: frames' codes as they come, floats
    rounded to 8 bits (``round(255 x)``) per chunk."""
    if isinstance(images, Frames):
        for chunk in images.chunks():
            yield (chunk[..., :3] if chunk.shape[-1] != 1 else chunk.expand(-1, -1, -1, 3)).numpy()
        return
    for start in range(0, images.shape[0], CHUNK_FRAMES):
        yield to_uint8(images[start:start + CHUNK_FRAMES])


@storable
@dataclass(frozen=True, eq=False)
class VideoFileFrames(Frames):
    """The frames of a video file this run wrote (SaveVideo), read back when read: the disk cache stores the
    path, not the pixels. ``frames``, ``height``, ``width``: the IMAGE shape (an odd size was padded by one
    row or column in the file)."""

    path: str
    frames: int
    height: int
    width: int

    @property
    def shape(self) -> torch.Size:  # type: ignore[override]
        return torch.Size((self.frames, self.height, self.width, 3))

    def chunks(self) -> Iterator[torch.Tensor]:
        try:
            with av.open(self.path) as container:
                batch: list[np.ndarray] = []
                for frame in container.decode(video=0):
                    batch.append(frame.to_ndarray(format="rgb24")[: self.height, : self.width])
                    if len(batch) == CHUNK_FRAMES:
                        yield torch.from_numpy(np.stack(batch))
                        batch = []
                if batch:
                    yield torch.from_numpy(np.stack(batch))
        except (av.FFmpegError, OSError) as exc:
            raise InputValueError(f"{self.path}: cannot be read back as a video ({exc})") from None


def decode_audio(container: av.container.InputContainer, budget: DecodeBudget | None = None) -> Audio | None:
    """The first audio stream as float [1, C, S] at its own rate (None without audio), within ``budget``
    (default: the default media limits)."""
    stream = next((s for s in container.streams if s.type == "audio"), None)
    if stream is None:
        return None
    budget = budget or DecodeBudget.for_file(container.name, None)
    chunks, rate = [], stream.rate or stream.codec_context.sample_rate
    channels = stream.layout.nb_channels if stream.layout else 2
    budget.check_declared_audio(_declared_seconds(container, stream), rate, channels)
    resampler = av.AudioResampler(format="fltp", layout=stream.layout.name if stream.layout else "stereo", rate=rate)
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            budget.add_samples(out.samples, rate, channels)
            chunks.append(out.to_ndarray())
    chunks += [out.to_ndarray() for out in resampler.resample(None)]
    if not chunks:
        return None
    wave = torch.from_numpy(np.concatenate(chunks, axis=1)).float()
    exact = container.metadata.get(AUDIO_KEY)
    if exact:  # a file we wrote: drop the encoder's priming and the padding of its last frame
        info = json.loads(exact)
        wave = wave[:, info["priming"]: info["priming"] + info["samples"]]
    return Audio(wave[None], int(rate))


def read_video(path: str | Path, budget: DecodeBudget | None = None) -> Video:
    """Every frame (RGB) and the audio of a video file, within ``budget`` (default: the default media limits):
    the declared size is checked before decoding, and decoding stops at the limit when the header lies."""
    budget = budget or DecodeBudget.for_file(path, None)
    try:
        with open_limited(budget) as container:
            stream = next((s for s in container.streams if s.type == "video"), None)
            if stream is None:
                raise InputValueError(f"{path}: has no video stream")
            fps = float(stream.average_rate or stream.guessed_rate or 25)
            declared = stream.frames or round(_declared_seconds(container, stream) * fps)
            budget.check_declared_video(stream.codec_context.width, stream.codec_context.height, declared, 3)
            frames = []
            for frame in container.decode(stream):
                budget.add_frame(frame.width, frame.height, 3)
                frames.append(frame.to_ndarray(format="rgb24"))
            audio = None
            if container.streams.audio:     # raw streams (.h264) have none, and cannot seek
                container.seek(0)
                audio = decode_audio(container, budget)
    except (av.FFmpegError, OSError) as exc:
        raise InputValueError(f"{path}: cannot be read as a video ({exc})") from None
    if not frames:
        raise InputValueError(f"{path}: has no frames")
    return Video(CodedFrames(torch.from_numpy(np.stack(frames))), fps, audio)


@op("LoadVideo", outputs={"VIDEO": "VIDEO"}, category="image/video", checks=(video_file,))
def load_video(file: Annotated[str, Port("STRING", file="input", upload=True)], ctx: OpContext = None) -> Video:
    """A video file from the input folder: its frames, frame rate and audio, refused before decoding when
    larger than the run's media limits."""
    return read_video(file, DecodeBudget.for_file(file, ctx))


@op("GetVideoComponents", outputs={"images": "IMAGE", "audio": "AUDIO", "fps": "FLOAT", "bit_depth": "INT"},
    category="image/video")
def get_video_components(video: Annotated[Video, Port("VIDEO")]) -> tuple[torch.Tensor | Frames, Audio, float, int]:
    """Frames, audio (silence of the video's length when it has none), frame rate and bit depth (8)."""
    audio = video.audio
    if audio is None:
        rate = 48000
        audio = Audio(torch.zeros(1, 2, round(video.images.shape[0] / video.fps * rate)), rate)
    return video.images, audio, float(video.fps), 8


@op("CreateVideo", outputs={"VIDEO": "VIDEO"}, category="image/video")
def create_video(images: Annotated[torch.Tensor | Frames, Port("IMAGE")],
                 fps: Annotated[float, Port("FLOAT", min=1.0, max=120.0)] = 30.0,
                 audio: Annotated[Audio | None, Port("AUDIO", optional=True)] = None,
                 bit_depth: Annotated[int | str, Port("INT|STRING", choices=(8, "auto"))] = 8) -> Video:
    """Frames at ``fps`` with optional audio. bit_depth: 8, or "auto" (newer ComfyUI; 8 for sRGB video).
    Frames held as bytes or streamed stay so (nothing is decoded or copied here)."""
    return Video(check_images(images), float(fps), audio)


def _even(images: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: an odd last row / column is repeated."""
    pad_h, pad_w = images.shape[1] % 2, images.shape[2] % 2
    return np.pad(images, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge") if pad_h or pad_w else images


def _audio_frames(audio: Audio, stream_rate: int):
    """AAC-ready planar float frames of 1024 samples (stereo; resampled when the rate is not AAC's)."""
    wave = audio.waveform[0] if audio.waveform.ndim == 3 else audio.waveform
    if wave.shape[0] == 1:
        wave = wave.expand(2, -1)
    elif wave.shape[0] > 2:
        wave = wave[:2]
    data = np.ascontiguousarray(wave.clamp(-1, 1).float().cpu().numpy())
    frame = av.AudioFrame.from_ndarray(data, format="fltp", layout="stereo")
    frame.sample_rate = audio.sample_rate
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=stream_rate, frame_size=1024)
    yield from resampler.resample(frame)
    yield from resampler.resample(None)


def encode_mp4(target, video: Video, metadata: dict[str, str], crf: int = 18,
               on_frame: Counter | None = None, threads: int | None = None) -> None:
    """Write ``video`` as MP4 (H.264 yuv420p, AAC) to ``target`` (a path or a binary file object), its frames
    read and encoded a chunk at a time; ``on_frame(done, total)`` after each video frame is encoded. x264 runs
    ``threads`` threads (default: one per usable CPU, :func:`ltxgraph.budget.encoder_threads`; x264's own "auto"
    would start 1.5 per core, each holding frames: :func:`ltxgraph.budget.encoder_bytes`). The bytes of a file
    depend on it.

    The audio is muxed alongside the video, each AAC frame as soon as the video reaches its start time: the
    muxer interleaves packets by time and holds every packet of one stream until the other stream catches up
    (up to 10 s), so audio muxed after all video would keep 10 s of encoded video in memory (0.2-0.3 GB for the
    tiny models' 1080p noise, tools/benchmarks/save_memory.py)."""
    images = check_images(video.images)
    total, height, width = images.shape[:3]
    options = {"movflags": "use_metadata_tags"}
    with av.open(target, "w", format="mp4", options=options) as container:
        container.metadata.update(metadata)
        stream = container.add_stream("libx264", rate=Fraction(video.fps).limit_denominator(1001),
                                      options={"crf": str(crf), "preset": "medium",
                                               "threads": str(threads or encoder_threads())})
        stream.width, stream.height, stream.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
        audio = _AudioTrack.of(container, video.audio)
        done = 0
        for chunk in rgb_chunks(images):
            for array in _even(chunk):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")))
                done += 1
                if audio is not None:
                    audio.mux_until(done / video.fps)
                if on_frame is not None:
                    on_frame(done, total)
        container.mux(stream.encode())
        if audio is not None:
            audio.mux_until(float("inf"))


@dataclass
class _AudioTrack:
    """The AAC stream of a file being written and its frames, muxed in time order by :meth:`mux_until`."""

    container: av.container.OutputContainer
    stream: av.audio.stream.AudioStream
    frames: list[av.AudioFrame | None]
    muxed: int = 0                  # frames encoded so far
    start_sample: int = 0           # the first sample of frame ``muxed``

    @classmethod
    def of(cls, container: av.container.OutputContainer, audio: Audio | None) -> _AudioTrack | None:
        """An AAC stream for ``audio`` added to ``container`` (None without audio); its exact length goes into
        the file's metadata (the header is written before the first packet)."""
        if audio is None or audio.waveform.shape[-1] == 0:
            return None
        rate = audio.sample_rate if audio.sample_rate in AAC_RATES else 48000
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "stereo"
        frames = list(_audio_frames(audio, rate))
        samples = sum(frame.samples for frame in frames)
        container.metadata[AUDIO_KEY] = json.dumps({"samples": samples, "priming": AAC_PRIMING})
        return cls(container, stream, frames)

    def mux_until(self, seconds: float) -> None:
        """Encode and mux the frames that start before ``seconds``; ``inf`` muxes the rest and flushes."""
        rate = self.stream.rate
        while self.muxed < len(self.frames) and self.start_sample < seconds * rate:
            frame = self.frames[self.muxed]
            self.container.mux(self.stream.encode(frame))
            self.frames[self.muxed] = None           # encoded: its samples are not needed any more
            self.muxed += 1
            self.start_sample += frame.samples
        if seconds == float("inf"):
            self.container.mux(self.stream.encode())


def next_output_name(folder: Path, stem: str, suffix: str) -> str:
    """``stem_00001_.suffix`` with the first counter not used in ``folder`` (ComfyUI's naming)."""
    used = [int(m.group(1)) for p in folder.glob(f"{Path(stem).name}_*_{suffix}")
            if (m := re.fullmatch(re.escape(Path(stem).name) + r"_(\d+)_" + re.escape(suffix), p.name))]
    return f"{stem}_{max(used, default=0) + 1:05d}_{suffix}"


def run_metadata(ctx: OpContext) -> dict[str, str]:
    params = ctx.metadata.get("params", {})
    info = {"graph_name": ctx.metadata.get("graph_name"), "params": params, "graph": ctx.metadata.get("graph")}
    seed = next((v for k, v in params.items() if "seed" in k.lower()), None)
    return {METADATA_KEY: json.dumps(info, default=str), "comment": f"ltxgraph; seed {seed}"}


@op("SaveVideo", outputs={"video": "VIDEO"}, category="image/video", output_node=True, checks=(output_prefix,))
def save_video(video: Annotated[Video, Port("VIDEO")],
               filename_prefix: Annotated[str, Port("STRING")] = "video/ComfyUI",
               format: Annotated[str, Port("STRING", choices=("auto", "mp4"))] = "auto",
               codec: Annotated[str, Port("STRING", choices=("auto", "h264"))] = "auto",
               ctx: OpContext = None) -> tuple[Video, SavedFile]:
    """Write MP4 (H.264 + AAC) into the output folder as ``<prefix>_00001_.mp4`` (next free number), with the
    graph, its parameters and the seed in the file's metadata. The file appears whole or not at all; a prefix
    that leaves the output folder is refused. The ``video`` output is the file as written (its frames read back
    from it when read), so the cache keeps the file's path rather than a copy of the frames."""
    ctx = ctx or OpContext("SaveVideo")
    first = ctx.folders.output_file(f"{filename_prefix}_probe_.mp4")      # validates the prefix, makes folders
    name = next_output_name(first.parent, filename_prefix, ".mp4")
    path = ctx.folders.output_file(name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        encode_mp4(str(tmp), video, run_metadata(ctx), on_frame=ctx.counter("frame"))
        os.replace(tmp, path)
    except av.FFmpegError as exc:
        raise InputValueError(f"cannot encode the video: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    frames, height, width = (int(n) for n in video.images.shape[:3])
    info = {"frames": frames, "fps": video.fps, "width": width, "height": height,
            "audio_seconds": video.audio.seconds if video.audio else 0.0}
    return Video(VideoFileFrames(str(path), frames, height, width), video.fps, video.audio), SavedFile(str(path), info)


def compress_frame(image: np.ndarray, crf: int) -> np.ndarray:
    """One RGB uint8 frame through an H.264 encode / decode at ``crf`` (in memory)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1, options={"crf": str(crf), "preset": "veryfast"})
        stream.height, stream.width = image.shape[:2]
        container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


@op("LTXVPreprocess", outputs={"output_image": "IMAGE"}, category="video/preprocessors")
def ltxv_preprocess(image: Annotated[torch.Tensor, Port("IMAGE")],
                    img_compression: Annotated[int, Port("INT", min=0, max=100)] = 35) -> torch.Tensor:
    """Each image through a real H.264 encode / decode at CRF ``img_compression`` (0 = unchanged), so a still
    image looks like a video frame to the model; sizes are cut to even numbers."""
    image = check_images(image, "image")
    if img_compression == 0:
        return image
    even = image[:, : image.shape[1] // 2 * 2, : image.shape[2] // 2 * 2]
    frames = [compress_frame(array, img_compression) for array in to_uint8(even)]
    return torch.from_numpy(np.stack(frames)).float() / 255.0
