"""Regression tests for what the op contract suite found: each was a raw exception (or a value of the wrong type)
where the op should refuse with an InputValueError naming the input."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltxgraph.errors import InputValueError
from ltxgraph.values import Audio, VideoLatent
from ltxgraph_ops.media_audio import pad_audio_to_duration
from ltxgraph_ops.nodes.utility import switch


def test_switch_refuses_values_of_two_types() -> None:
    """The output is typed as on_true: an on_false of another type would reach inputs typed for on_true."""
    image, latent = torch.zeros(1, 8, 8, 3), VideoLatent(torch.zeros(1, 128, 1, 1, 1), None, 1)
    with pytest.raises(InputValueError, match=r"on_false \(Tensor\) and on_true \(VideoLatent\)"):
        switch(False, image, latent)
    with pytest.raises(InputValueError, match=r"on_false \(int\) and on_true \(float\)"):   # found by a CI draw
        switch(False, 13, 0.2)
    with pytest.raises(InputValueError, match=r"on_false \(bool\) and on_true \(int\)"):
        switch(False, True, 3)
    assert switch(False, 2, 3) == 2 and switch(True, 2.0, 3.5) == 3.5


def test_pad_audio_refuses_a_length_from_an_fps_near_zero() -> None:
    """frames / fps with fps 1e-300 overflowed torch's pad (TypeError)."""
    audio = Audio(torch.zeros(1, 2, 10), 16000)
    with pytest.raises(InputValueError, match=r"frames 3 / fps 1e-300 asks for"):
        pad_audio_to_duration(audio, 5.0, 3, 1e-300)


def test_audio_encode_refuses_audio_shorter_than_the_mel_window(tmp_path: Path) -> None:
    """64 samples failed inside the STFT's reflect padding (RuntimeError)."""
    from ltxgraph.testing import TinyModels
    from ltxgraph_ops.audio_ops import ltxv_audio_vae_encode
    audio_vae = TinyModels(tmp_path).handle("AUDIO_VAE")
    with pytest.raises(InputValueError, match="too short to encode"):
        ltxv_audio_vae_encode(Audio(torch.zeros(1, 2, 64), 16000), audio_vae)


def test_basic_scheduler_refuses_a_denoise_near_zero() -> None:
    """denoise 5e-324 made int(steps / denoise) overflow (OverflowError)."""
    from ltxgraph_ops.sampling_ops import basic_scheduler_op
    with pytest.raises(InputValueError, match="denoise 4.94066e-324 with 36 steps"):
        basic_scheduler_op(None, "simple", 36, 5e-324)


def test_text_generation_at_the_edges_of_its_sampling_ranges(tmp_path: Path) -> None:
    """repetition_penalty 0 (the node's minimum) with temperature 0.01 and top_p 0 gave NaN probabilities
    (torch.multinomial RuntimeError); now a seeded draw, equal twice."""
    from ltxgraph.testing import TinyModels
    from ltxgraph_ops.nodes.text import generate_ltx2_prompt
    clip = TinyModels(tmp_path).handle("CLIP")
    edges = dict(max_length=6, temperature=0.01, top_k=1000, top_p=0.0, min_p=1.0, repetition_penalty=0.0,
                 presence_penalty=5.0, seed=3)
    first = generate_ltx2_prompt(clip, "a lighthouse", **edges)
    assert isinstance(first, str) and first == generate_ltx2_prompt(clip, "a lighthouse", **edges)


def test_a_nan_is_refused_where_a_float_has_a_range() -> None:
    """NaN compares false with every bound, so it passed min/max checks (30 ops: cfg, strength, fps, ...); it is
    refused now, as a literal at validation and through a connection at run time."""
    from ltxgraph.errors import ValidationError
    from ltxgraph.executor import Executor
    from ltxgraph.graph import GraphFile
    from ltxgraph.registry import Registry
    from ltxgraph.validate import validate
    registry = Registry.discover()
    cfg = registry.get("CFGGuider").input_by_name["cfg"]
    with pytest.raises(InputValueError, match="input 'cfg': cfg nan is not a number: give one between 0 and 100"):
        Executor._checked_linked(cfg, float("nan"), [])
    graph = GraphFile.model_validate({"ltxgraph": 1, "nodes": {"g": {"op": "CFGGuider", "in": {"cfg": float("nan")}}}})
    with pytest.raises(ValidationError) as refused:
        validate(graph, registry)
    assert [p.message for p in refused.value.problems if p.input == "cfg"] == [
        "cfg nan is not a number: give one between 0 and 100"]


def test_mask_by_time_refuses_a_spatial_mask_per_frame() -> None:
    """A MASK of 9 frames for a latent batch of 1 failed broadcasting into the video mask (RuntimeError)."""
    from ltxgraph.values import AudioLatent, AVLatent
    from ltxgraph_ops.conditioning import Conditioning
    from ltxgraph_ops.temporal_mask import set_audio_video_mask_by_time
    latent = AVLatent(VideoLatent(torch.zeros(1, 128, 3, 3, 2), 24.0, 17), AudioLatent(torch.zeros(1, 8, 4, 16), 25.0, 0.16))
    text = Conditioning(torch.zeros(1, 4, 32), torch.zeros(1, 4, 16), torch.ones(1, 4))
    with pytest.raises(InputValueError, match="spatial_mask holds 9 masks for a latent batch of 1"):
        set_audio_video_mask_by_time(latent, text, text, None, None, None, 0.0, 8.0, spatial_mask=torch.rand(9, 32, 32))
    kept = set_audio_video_mask_by_time(latent, text, text, None, None, None, 0.0, 8.0, spatial_mask=torch.rand(1, 32, 32))
    assert kept[2].video.noise_mask.shape == (1, 1, 3, 3, 2)
