"""Every ComfyUI workflow of the corpus converts, validates and runs end to end on the tiny models saved under
the real file names, each writing a playable MP4. Sizes are shrunk for CI (widths to 256, heights to 128,
frame counts to 17: the workflows' own numbers would take minutes on tiny models); nothing else is changed.
The depth workflow needs Lotus (a Stable Diffusion depth estimator, not part of LTX-2): it must convert to one
clear report of the two nodes ltxgraph lacks."""
from __future__ import annotations

from pathlib import Path

import av
import pytest
import torch

from ltxgraph import api
from ltxgraph.comfyui import ConversionError
from ltxgraph.paths import Folders
from ltxgraph.values import Audio, Video
from ltxgraph_ops.media_video import encode_mp4
from ltxgraph_ops.sampling.preview import png_bytes
from ltxgraph_ops.tiny.files import write_tiny_models

from ..conftest import CORPUS


RUNNABLE = ["video_ltx2_t2v.json", "video_ltx2_t2v_distilled.json", "video_ltx2_i2v.json",
            "video_ltx2_i2v_distilled.json", "video_ltx2_i2v_lora.json", "video_ltx2_canny_to_video.json"]
WIDTHS, HEIGHTS = {1280, 1920, 1536, 1024, 960, 768}, {720, 1080, 704, 576, 544, 512}


def shrink(value):
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    if value in WIDTHS:
        return 256
    if value in HEIGHTS:
        return 128
    if value >= 49 and (value - 1) % 8 == 0:          # frame counts (8n+1)
        return 17
    return value


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    write_tiny_models(root / "models")
    inputs = root / "input"
    inputs.mkdir()
    y, x = torch.meshgrid(torch.linspace(0, 1, 180), torch.linspace(0, 1, 320), indexing="ij")
    still = (torch.stack([x, y, (x + y) / 2], -1) * 255).round().to(torch.uint8)
    frames = torch.stack([torch.stack([x, y, (x * y + t / 40) % 1], -1) for t in range(40)])
    t = torch.arange(round(40 / 24 * 24000)) / 24000
    audio = Audio(torch.stack([torch.sin(2 * torch.pi * 330 * t)] * 2)[None] * 0.3, 24000)
    for name in ("ltx_2_canny_1st_frame.png", "freckled_curly_girl.png", "snow_bike_jump_crew.png",
                 "puppy_with_blue_bandana.png", "minimalist_sky_view_lounge.png", "example.png"):
        (inputs / name).write_bytes(png_bytes(still))
    for name in ("squirrel_in_flower_garden.mp4", "minimalist_sky_view_lounge.mp4"):
        encode_mp4(str(inputs / name), Video(frames, 24.0, audio), {})
    return {"root": root, "models": root / "models", "input": inputs}


@pytest.mark.parametrize("name", RUNNABLE)
def test_corpus_workflow_runs_end_to_end(world, name: str) -> None:
    graph = api.load(CORPUS / name)
    for node in graph.file.nodes.values():
        node.inputs.update({key: shrink(value) for key, value in node.inputs.items()
                            if key in ("value", "width", "height", "length", "frames_number", "longer_size",
                                       "largest_size")})
    runner = api.Runner(use_cache=False, folders=Folders(models=(world["models"],), input=world["input"],
                                                         output=world["root"] / "out" / name))
    result = runner.run(graph)
    videos = [Path(p) for p in result.report.files if p.endswith(".mp4")]
    assert videos, f"{name} wrote no video"
    with av.open(str(videos[0])) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.frames >= 9
        assert container.streams.audio and container.streams.audio[0].codec_context.name == "aac"


def test_depth_workflow_reports_what_it_lacks() -> None:
    with pytest.raises(ConversionError) as info:
        api.load(CORPUS / "video_ltx2_depth_to_video.json")
    text = str(info.value)
    assert "2 node(s)" in text and "LotusConditioning" in text and "VAELoader" in text
