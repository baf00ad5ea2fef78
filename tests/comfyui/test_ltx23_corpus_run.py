"""Every LTX-2.3 workflow of ComfyUI's templates (tests/data/comfyui/ltx23) converts, validates and runs end to
end on the tiny models saved under the real file names (sizes shrunk for CI, see corpus_runs); the MP4 each writes
is decoded: its frame count, size and audio track are those the shrunk workflow asks for."""
from __future__ import annotations

import pytest

from ltxgraph import api

from ..conftest import CORPUS
from .corpus_runs import decoded, run_shrunk, single_mp4

TEMPLATES = CORPUS / "ltx23"
# workflow -> (parameter overrides, frames, width, height, frame rate): the video_ltx2_3_* templates set their
# length in seconds ("duration"), cut to 2 s here (2 s x rate + 1, rounded down to 8n + 1 frames)
RUNS = {
    "LTX-2.3_T2V_I2V_Two_Stage_Distilled.json": ({}, 17, 512, 256, 24.0),        # second stage upscales x2
    # the input clip (40 frames of 320 x 180) cut to 8n + 1 frames, its shorter side scaled to 256 and the
    # other (455) rounded down to a multiple of 32
    "LTX-2.3_V2V_ICLoRA_Single_Stage_Distilled.json": ({}, 33, 448, 256, 24.0),
    "video_ltx2_3_flf2v.json": ({"duration": 2}, 49, 256, 128, 25.0),
    "video_ltx2_3_i2v.json": ({"duration": 2}, 49, 256, 128, 25.0),
    "video_ltx2_3_ia2v.json": ({"duration": 2}, 49, 256, 128, 24.0),
    "video_ltx2_3_t2v.json": ({"duration": 2}, 49, 256, 128, 25.0),
}


def test_every_template_is_run() -> None:
    assert sorted(p.name for p in TEMPLATES.glob("*.json")) == sorted(RUNS)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_ltx23_template_runs_end_to_end(world, name: str) -> None:
    overrides, frames, width, height, rate = RUNS[name]
    result = run_shrunk(TEMPLATES / name, world, overrides)
    got_frames, got_width, got_height, got_rate, seconds = decoded(single_mp4(result))
    assert (got_frames, got_width, got_height, got_rate) == (frames, width, height, rate)
    assert seconds >= 0.9 * frames / rate                # the generated audio lasts as long as the video


def test_ia2v_converts_loadaudio_player_and_math_expression_inputs() -> None:
    graph = api.load(TEMPLATES / "video_ltx2_3_ia2v.json")
    # LoadAudio saves [file, null, null]: the null audioUI player keeps its default instead of failing validation
    assert graph.file.nodes["276"].inputs == {"audio": "$load_audio_audio"}
    # ComfyMathExpression's inputs arrive as values.a / values.b (an autogrow group) and stay connected
    frames = graph.file.nodes["340:329"].inputs
    assert (frames["a"], frames["b"]) == ("@340:331.FLOAT", "@340:323.INT")
    assert not [w for w in graph.warnings if "values." in w or "audioUI" in w]
