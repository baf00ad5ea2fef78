"""ComfyUI-LTXVideo's LTX-2.3 example workflows (tests/data/comfyui/ltxvideo23) that convert also run end to end on
the tiny models (sizes shrunk for CI, see corpus_runs): the video ones write an MP4 decoded here, the
text-to-audio one previews an audio clip as long as the video it stands in for."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ..conftest import CORPUS
from .corpus_runs import decoded, run_shrunk, single_mp4

EXAMPLES = CORPUS / "ltxvideo23"
# workflow -> (frames, width, height, frame rate) of the MP4 it writes
VIDEO_RUNS = {
    "LTX-2.3_T2V_I2V_Two_Stage_Distilled.json": (17, 512, 256, 24.0),
    # the IC-LoRA examples take the input clip (40 frames of 320 x 180), its shorter side scaled to 256
    "LTX-2.3_ICLoRA_Motion_Track_Distilled.json": (17, 448, 256, 24.0),     # (it also saves the drawn tracks)
    "LTX-2.3_V2V_ICLoRA_Single_Stage_Distilled.json": (33, 448, 256, 24.0),  # the clip cut to 8n + 1 frames
    "LTX-2.3_ICLoRA_Ingredients_Single_Stage_Distilled.json": (17, 448, 256, 24.0),   # from one still
    # its clip is encoded as it is (41 frames of 256 x 128) and rendered at twice its size
    "LTX-2.3_ICLoRA_Pixel_Spatial_Upscaler_Distilled.json": (41, 512, 256, 24.0),
    # sized by its Canny edges, detected with the shorter side at 256 (shrunk from 512): 455 x 256, then multiples of 64
    "LTX-2.3_ICLoRA_Union_Control_Distilled.json": (33, 448, 256, 24.0),
    # reference-voice tokens (LTXVSetAudioRefTokens) on the prompts of both stages; lipdub: stage 1 at the shrunk
    # 256 x 128, stage 2 upscaled x2, its stage-1 audio frozen there; inpaint / outpaint: the clip's audio frozen
    "LTX-2.3_ICLoRA_Lipdub_Two_Stage_Distilled.json": (33, 512, 256, 24.0),
    "LTX-2.3_ICLoRA_Inpaint_Two_Stage_Distilled.json": (33, 448, 256, 24.0),
    # the 448 x 256 clip fitted into the shrunk 256 x 128 target canvas: its final latent is 4 cells high, fewer
    # than the 2 x 2 tiles overlapping by 6 cells of its LTXVTiledVAEDecode need (decoded in one row of tiles)
    "LTX-2.3_ICLoRA_Outpaint_Two_Stage_Distilled.json": (33, 256, 128, 24.0),
}


@pytest.mark.parametrize("name", sorted(VIDEO_RUNS))
def test_ltxvideo23_example_runs_end_to_end(world, name: str) -> None:
    frames, width, height, rate = VIDEO_RUNS[name]
    video = single_mp4(run_shrunk(EXAMPLES / name, world), "output")
    got_frames, got_width, got_height, got_rate, seconds = decoded(video)
    assert (got_frames, got_width, got_height, got_rate) == (frames, width, height, rate)
    assert seconds >= 0.9 * frames / rate


def test_hdr_example_writes_its_video_and_one_exr_per_frame(world) -> None:
    # its clip (40 frames of 320 x 180) scaled to 320 x 160, cut to 33 frames; CreateVideo at 30 fps
    result = run_shrunk(EXAMPLES / "LTX-2.3_ICLoRA_HDR_Distilled.json", world)
    assert decoded(single_mp4(result, "output"))[:4] == (33, 320, 160, 30.0)
    frames = sorted(Path(p) for p in result.report.files if p.endswith(".exr"))
    assert [p.name for p in frames] == [f"frame_{i:05d}.exr" for i in range(33)]
    assert all(p.parent.parts[-2:] == ("output", "hdr_exr3") for p in frames)
    header = 313                                              # magic, version and the 8 attributes
    lines = 160 * (8 + 8 + 3 * 320 * 2)                       # offset, y, size, half B G R rows of 320 pixels
    assert frames[0].stat().st_size == header + lines


def test_text_to_audio_example_previews_audio_as_long_as_comfyui_decodes_it(world) -> None:
    # number_of_frames (161) is shrunk to 17 at 24 fps: ceil(17 / 24 * 25) = 18 audio latent frames, decoded as
    # ComfyUI does to 4 * 18 - 3 = 69 mel frames of 480 samples at 48 kHz (0.69 s for a 0.71 s video)
    result = run_shrunk(EXAMPLES / "LTX-2.3_T2A_Single_Stage_Distilled.json", world, outputs={"audio": "@9012.audio"})
    audio = result.outputs["audio"]
    assert audio.sample_rate == 48000 and audio.waveform.shape == (1, 2, (4 * 18 - 3) * 480)
    assert torch.isfinite(audio.waveform).all() and audio.waveform.abs().max() > 0
