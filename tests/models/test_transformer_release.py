"""Transformer parity on a release-shaped batch (tools/oracle/transformer_release.py): a 4 x 3 x 5 grid, per-token
timesteps, two keyframe guides and left-padded text, the reference's input built by ltx-core's latent tools."""
from __future__ import annotations

import pytest

from tools.oracle import transformer_release as oracle


def test_the_scenario_is_release_shaped() -> None:
    assert oracle.BATCH == 2 and oracle.HEIGHT != oracle.WIDTH and oracle.FRAMES > 1 and len(oracle.GUIDES) == 2
    mask = oracle.left_padded_text_mask()
    assert bool((mask[:, 0] == 0).all()) and bool((mask[:, -1] == 1).all())
    assert len(set(oracle.video_noise_mask().flatten().tolist())) >= 3   # kept, partial and generated tokens


@pytest.mark.oracle
def test_release_shaped_av_batch2_matches_reference() -> None:
    pytest.importorskip("ltx_core")
    assert oracle.CHECKS["transformer_release_shaped_av_batch2"]() <= 1e-5
