"""Reference-voice tokens (ID-LoRA / lipdub, ComfyUI's ``ref_audio``) in the one transformer class: clean tokens at
negative times before the audio, attended by the audio stream, dropped from the output; and parity with
ltx-core 1.2.0, which appends them as a conditioning item (tools/oracle/ltx_core_12_transformer.py)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ltxgraph_ops.models.transformer import LTXAVTransformer, ReferenceTokens, TransformerConfig
from ltxgraph_ops.models.transformer_tokens import audio_positions, reference_audio_positions
from ltxgraph_ops.tiny import transformer as tiny
from tools.oracle.diffusers_transformer import stream_inputs
from tools.oracle.ltx_core_12_transformer import appended_reference, with_reference_voice
from tools.oracle.transformer import random_state

ROOT = Path(__file__).resolve().parents[2]
LTX2_MIRROR = Path("/work/.mirror/Lightricks+LTX-2/repo")


@pytest.fixture(scope="module")
def transformer() -> LTXAVTransformer:
    model = LTXAVTransformer(TransformerConfig.from_header(tiny.tiny_config_23())).eval()
    model.load_state_dict(random_state(model), strict=True)
    return model


def test_reference_positions_end_one_latent_frame_before_zero() -> None:
    positions = reference_audio_positions(6, batch=2)
    own = audio_positions(6, batch=2)
    assert positions.shape == (2, 1, 6, 2)
    assert float(positions[0, 0, -1, 1]) == pytest.approx(-0.04)
    assert torch.allclose(positions - positions[:, :, :1, :1], own - own[:, :, :1, :1])   # same spacing
    assert bool((positions < 0).all())


@torch.no_grad()
def test_no_reference_or_an_empty_one_is_the_plain_forward(transformer) -> None:
    video, audio = stream_inputs(transformer.config)
    plain = transformer(video, audio)
    empty = ReferenceTokens(torch.zeros(1, 0, audio.latent.shape[-1]), reference_audio_positions(0))
    with_empty = transformer(video, replace(audio, reference=empty))
    assert torch.equal(plain.video, with_empty.video) and torch.equal(plain.audio, with_empty.audio)


@torch.no_grad()
def test_reference_equals_clean_tokens_at_their_positions_sliced_off(transformer) -> None:
    # the reference path = the plain path fed the reference as ordinary audio tokens with noise mask 0 at their
    # negative times, placed after the target (ltx-core's order) instead of before it (ComfyUI's)
    video, audio = stream_inputs(transformer.config)
    audio = with_reference_voice(audio)
    ours = transformer(video, audio)
    plain = transformer(video, appended_reference(audio))
    target = audio.latent.shape[1]
    assert ours.audio.shape == audio.latent.shape
    assert (ours.audio - plain.audio[:, :target]).abs().max() < 1e-5
    assert (ours.video - plain.video).abs().max() < 1e-5


@torch.no_grad()
def test_reference_changes_audio_and_video_and_its_times_matter(transformer) -> None:
    video, audio = stream_inputs(transformer.config)
    plain = transformer(video, audio)
    voiced = with_reference_voice(audio)
    ours = transformer(video, voiced)
    assert (ours.audio - plain.audio).abs().max() > 1e-2          # the audio self-attention attends to it
    assert (ours.video - plain.video).abs().max() > 1e-2          # and audio->video attention sees it
    shifted = ReferenceTokens(voiced.reference.tokens, voiced.reference.positions + 10.0)
    moved = transformer(video, replace(audio, reference=shifted))
    assert (moved.audio - ours.audio).abs().max() > 1e-3          # its RoPE positions are its own


@torch.no_grad()
def test_reference_tokens_are_clean_whatever_the_step(transformer) -> None:
    # the velocity of the target does not depend on the reference's noise: it is always at timestep 0
    video, audio = stream_inputs(transformer.config)
    audio = with_reference_voice(audio)
    prepared = audio.sequence()
    count = audio.reference.count
    assert float(prepared[2][:, :count].abs().max()) == 0.0
    assert torch.equal(prepared[2][:, count:], audio.timesteps())


def test_reference_with_a_self_attention_mask_is_refused() -> None:
    _, audio = stream_inputs(TransformerConfig.from_header(tiny.tiny_config_23()))
    weights = torch.ones(audio.latent.shape[0], audio.latent.shape[1], audio.latent.shape[1])
    with pytest.raises(ValueError, match="reference tokens"):
        replace(with_reference_voice(audio), attention_mask=weights)


@pytest.mark.oracle
def test_reference_audio_matches_ltx_core_12_from_the_mirror(tmp_path) -> None:
    """ltx-core 1.2.0 is not installable: read from this machine's git mirror of Lightricks/LTX-2 (skipped where
    there is none, e.g. CI) and run in a subprocess beside ltx-core 1.0.0."""
    if not (LTX2_MIRROR / "HEAD").exists() or shutil.which("git") is None:
        pytest.skip(f"no git mirror of Lightricks/LTX-2 at {LTX2_MIRROR} (ltx-core 1.2.0 is not installable)")
    archive = subprocess.run(["git", "-C", str(LTX2_MIRROR), "archive", "HEAD", "packages/ltx-core/src"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive, check=True)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'packages/ltx-core/src'}{os.pathsep}{ROOT}"}
    run = subprocess.run([sys.executable, "tools/parity.py", "--json", "--only", "ltx_core_12_reference_audio"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    errors = json.loads(run.stdout[run.stdout.index("{"):])
    assert set(errors) == {"ltx23_transformer_ltx_core_12_reference_audio",
                           "ltx23_transformer_ltx_core_12_reference_audio_stg",
                           "ltx25_transformer_ltx_core_12_reference_audio"}
    assert max(errors.values()) < 1e-5
