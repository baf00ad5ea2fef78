"""Running converted ComfyUI workflows on the tiny models in tests: a folder with the tiny set and small input
media under every name the workflows load, and a run with sizes shrunk for CI (widths to 256, heights to 128,
frame counts to 17: the workflows' own numbers would take minutes on tiny models); nothing else is changed."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import av
import torch

from ltxgraph import api
from ltxgraph.graph import parse_input, ParamRef
from ltxgraph.context import RunSettings
from ltxgraph.paths import Folders
from ltxgraph.values import Audio, Video
from ltxgraph_ops.media_video import encode_mp4
from ltxgraph_ops.sampling.preview import png_bytes
from ltxgraph_ops.tiny.files import write_tiny_models

WIDTHS, HEIGHTS = {1280, 1920, 1536, 1024, 960, 768}, {720, 1080, 1088, 704, 576, 544, 512}
SIZE_INPUTS = ("value", "width", "height", "length", "frames_number", "longer_size", "largest_size", "shorter_size",
               "resolution",                       # (CannyEdgePreprocessor's detection size)
               "target_width", "target_height")
STILLS = ("ltx_2_canny_1st_frame.png", "freckled_curly_girl.png", "snow_bike_jump_crew.png",
          "puppy_with_blue_bandana.png", "minimalist_sky_view_lounge.png", "example.png",
          "distilled image.png", "base model image.png", "buildings ff.png", "first_frame (1).png",
          # ComfyUI's LTX-2.3 templates (ltx23/)
          "high_view_classic_car.png", "low_view_classic_car.png", "egyptian_queen.png", "cactus_man.png",
          # ComfyUI's LTX-2.5 templates (ltx25/)
          "neon_cyborg_portrait.png", "robot_hand.png", "robot_hand_energy.png",
          # ComfyUI-LTXVideo's 2.3 examples (ltxvideo23/)
          "motion_track_input.jpg", "ingredients_input.jpg")
CLIPS = ("squirrel_in_flower_garden.mp4", "minimalist_sky_view_lounge.mp4", "buildings.mp4",
         "LTX-2_V2V_00014-audio.mp4", "instant_shave_input.mp4",
         "inpainting_input.mp4", "inpainting_mask_input.mp4", "outpainting_input.mp4", "lipdub_input.mp4",
         "hdr_input_video (1).mp4")
SOUNDS = ("ltx_23_audio.mp3",)
# the V2V detailer encodes its input as it is: 8n+1 frames, sides multiples of 32 (after its scaling to 256)
ENCODABLE_CLIPS = ("video.mp4", "spatial_upscale_4x_input.mp4")    # (the pixel upscaler encodes its clip as it is)


def shrink(value, key: str = ""):
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    if key in ("shorter_size", "resolution") and value in HEIGHTS:   # the 2.3 V2V workflows' tiled decode (2 x 2
        return 256                                     # tiles overlapping by 6 latent cells) needs >= 7 cells a side
    if value in WIDTHS:
        return 256
    if value in HEIGHTS:
        return 128
    if value >= 49 and (value - 1) % 8 == 0:          # frame counts (8n+1)
        return 17
    return value


def write_mp3(path: Path, audio: Audio) -> None:
    """``audio`` ([1, C, S] in [-1, 1]) as an MP3 file (LAME, 128 kb/s)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libmp3lame", rate=audio.sample_rate, layout="stereo")
        stream.bit_rate = 128_000
        samples = audio.waveform[0].T.contiguous().numpy().astype("float32")       # [S, C], interleaved
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="stereo")
        frame.sample_rate = audio.sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def make_world(root: Path) -> dict[str, Path]:
    """The tiny models and every input file the corpus workflows name, under ``root``."""
    write_tiny_models(root / "models")
    inputs = root / "input"
    inputs.mkdir()
    y, x = torch.meshgrid(torch.linspace(0, 1, 180), torch.linspace(0, 1, 320), indexing="ij")
    still = (torch.stack([x, y, (x + y) / 2], -1) * 255).round().to(torch.uint8)
    frames = torch.stack([torch.stack([x, y, (x * y + t / 40) % 1], -1) for t in range(40)])
    t = torch.arange(round(40 / 24 * 24000)) / 24000
    audio = Audio(torch.stack([torch.sin(2 * torch.pi * 330 * t)] * 2)[None] * 0.3, 24000)
    for name in STILLS:
        (inputs / name).write_bytes(png_bytes(still))
    for name in CLIPS:
        encode_mp4(str(inputs / name), Video(frames, 24.0, audio), {})
    for name in SOUNDS:                                    # longer than the clips: 40 frames' worth, twice
        write_mp3(inputs / name, Audio(torch.cat([audio.waveform] * 2, -1), audio.sample_rate))
    encodable = torch.cat([frames, frames[-1:]])[:, 26:154, 32:288]        # 41 frames of 256x128
    for name in ENCODABLE_CLIPS:
        encode_mp4(str(inputs / name), Video(encodable, 24.0, audio), {})
    return {"root": root, "models": root / "models", "input": inputs}


def shrink_graph(graph: api.Graph) -> dict:
    """Shrink ``graph``'s size literals in place; the values of the parameters that set sizes, shrunk."""
    params = {}
    for node in graph.file.nodes.values():
        for key, raw in node.inputs.items():
            if key not in SIZE_INPUTS:
                continue
            value = parse_input(raw)
            if isinstance(value, ParamRef):
                params[value.name] = shrink(graph.file.params[value.name].default, key)
            else:
                node.inputs[key] = shrink(raw, key)
    return params


def run_shrunk(path: Path, world: dict[str, Path], overrides: dict | None = None,
               outputs: dict[str, str] | None = None, settings: RunSettings | None = None,
               edit: Callable[[api.Graph], None] | None = None) -> api.RunResult:
    """Load the workflow, ``edit`` it, shrink its sizes (literals and the parameters that set them), run it on the
    tiny set with ``overrides`` (parameter name -> value) on top; ``outputs`` (name -> "@node.output") are kept as
    results; ``settings``: the runner's (default: the environment's)."""
    graph = api.load(path)
    if edit is not None:
        edit(graph)
    graph.file.outputs.update(outputs or {})
    params = shrink_graph(graph)
    runner = api.Runner(use_cache=False, folders=Folders(models=(world["models"],), input=world["input"],
                                                         output=world["root"] / "out" / path.stem),
                        settings=settings or RunSettings())
    return runner.run(graph, {**params, **(overrides or {})})


def assert_playable_mp4(result: api.RunResult, name: str) -> None:
    videos = [Path(p) for p in result.report.files if p.endswith(".mp4")]
    assert videos, f"{name} wrote no video"
    with av.open(str(videos[0])) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.frames >= 9
        assert container.streams.audio and container.streams.audio[0].codec_context.name == "aac"


def decoded(path: Path) -> tuple[int, int, int, float, float]:
    """Frames, width, height, frame rate of the video stream and seconds of decoded audio."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        size = stream.codec_context.width, stream.codec_context.height
        rate = float(stream.average_rate)
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        seconds = sum(frame.samples for frame in container.decode(audio=0)) / audio.rate
    return frames, *size, rate, seconds


def single_mp4(result: api.RunResult, prefix: str = "") -> Path:
    """The one MP4 the run wrote whose name starts with ``prefix``."""
    videos = [Path(p) for p in result.report.files if p.endswith(".mp4") and Path(p).name.startswith(prefix)]
    assert len(videos) == 1, f"wrote {videos}"
    return videos[0]
