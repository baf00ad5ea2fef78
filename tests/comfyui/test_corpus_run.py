"""Every ComfyUI workflow of the corpus converts, validates and runs end to end on the tiny models saved under
the real file names, each writing a playable MP4 (sizes shrunk for CI, see corpus_runs).
The depth workflow needs Lotus (a Stable Diffusion depth estimator, not part of LTX-2): it must convert to one
clear report of the two nodes ltxgraph lacks."""
from __future__ import annotations

import pytest

from ltxgraph import api
from ltxgraph.comfyui import ConversionError

from ..conftest import CORPUS
from .corpus_runs import assert_playable_mp4, run_shrunk

RUNNABLE = ["video_ltx2_t2v.json", "video_ltx2_t2v_distilled.json", "video_ltx2_i2v.json",
            "video_ltx2_i2v_distilled.json", "video_ltx2_i2v_lora.json", "video_ltx2_canny_to_video.json"]


@pytest.mark.parametrize("name", RUNNABLE)
def test_corpus_workflow_runs_end_to_end(world, name: str) -> None:
    assert_playable_mp4(run_shrunk(CORPUS / name, world), name)


def test_depth_workflow_reports_what_it_lacks() -> None:
    with pytest.raises(ConversionError) as info:
        api.load(CORPUS / "video_ltx2_depth_to_video.json")
    text = str(info.value)
    # (its VAELoader, of Lotus's image VAE, is an op now: the file would be refused at validation as no LTX VAE)
    assert "1 node(s)" in text and "LotusConditioning" in text and "VAELoader" not in text.split("\n", 1)[1]
