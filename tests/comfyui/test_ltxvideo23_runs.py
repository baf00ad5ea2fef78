"""ComfyUI-LTXVideo's LTX-2.3 example workflows (tests/data/comfyui/ltxvideo23) that convert also run end to end on
the tiny models (sizes shrunk for CI, see corpus_runs): the video ones write an MP4 decoded here, the
text-to-audio one previews an audio clip as long as the video it stands in for."""
from __future__ import annotations

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


def test_text_to_audio_example_previews_audio_of_the_video_length(world) -> None:
    # number_of_frames (161) is shrunk to 17 at 24 fps: 17 / 24 s of 48 kHz stereo
    result = run_shrunk(EXAMPLES / "LTX-2.3_T2A_Single_Stage_Distilled.json", world, outputs={"audio": "@9012.audio"})
    audio = result.outputs["audio"]
    assert audio.sample_rate == 48000 and audio.waveform.shape == (1, 2, 17 * 48000 // 24)
    assert torch.isfinite(audio.waveform).all() and audio.waveform.abs().max() > 0
