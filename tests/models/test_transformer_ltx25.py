"""LTX-2.5 in the one transformer class: what its header switches (bias-free feed-forwards, no sigma-driven prompt
AdaLN so text keys/values hold for every step, the keyframe absolute-position embedding), the sampling adapter
marking the first latent frame, the tiny 2.5 file. Parity with diffusers 0.42.1 (keys ltx25_transformer*) runs with
every key of tools/oracle/diffusers_transformer.py in test_transformer_ltx23.py::test_parity_with_diffusers."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ltxgraph_ops.model_files import checkpoint_version
from ltxgraph_ops.models.transformer import LTXAVTransformer, TransformerConfig
from ltxgraph_ops.models.transformer_tokens import first_frame_keyframes_mask
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.tiny.files import write_checkpoint
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
from tools.oracle import diffusers_transformer as oracle
from tools.oracle.transformer import random_state


@pytest.fixture(scope="module")
def model_and_inputs():
    model = LTXAVTransformer(TransformerConfig.from_header(tiny.tiny_config_25())).eval()
    model.load_state_dict(random_state(model))
    return model, *oracle.stream_inputs(model.config, same_timesteps=True)


def test_header_switches_the_2_5_parts_on() -> None:
    config = TransformerConfig.from_header(tiny.tiny_config_25())
    assert not config.ff_bias and not config.audio_ff_bias and config.use_keyframes_abs_pos_embedding
    assert config.modulation_rows == 9 and not config.text_follows_sigma
    state = LTXAVTransformer(config, device="meta").state_dict()
    assert state["keyframes_abs_pos_embedding"].shape == (1, config.video_dim)
    assert "transformer_blocks.0.ff.net.0.proj.weight" in state
    assert not any(key.endswith(("ff.net.0.proj.bias", "ff.net.2.bias")) for key in state)
    assert "transformer_blocks.0.prompt_scale_shift_table" in state          # the static prompt tables stay
    assert not any("prompt_adaln_single" in key for key in state)
    assert "keyframes_abs_pos_embedding" not in LTXAVTransformer(
        TransformerConfig.from_header(tiny.tiny_config_23()), device="meta").state_dict()


def test_release_layout_has_no_feed_forward_biases() -> None:
    full = tiny.RELEASE_CONFIGS["2.5"]()
    with torch.device("meta"):
        state = tiny.build(full, device="meta").state_dict()
        state_23 = tiny.build(tiny.RELEASE_CONFIGS["2.3"](), device="meta").state_dict()
    dropped = set(state_23) - set(state)
    assert dropped == {key for key in state_23 if "ff.net." in key and key.endswith(".bias")
                       or "prompt_adaln_single." in key}
    assert set(state) - set(state_23) == {"keyframes_abs_pos_embedding"}


def test_keyframe_embedding_marks_only_the_masked_tokens(model_and_inputs) -> None:
    model, video, audio = model_and_inputs
    marked = replace(video, keyframes_mask=first_frame_keyframes_mask(2, video.latent.shape[1], 6))
    with torch.no_grad():
        plain, with_marker = model(video, audio).video, model(marked, audio).video
        saved = model.keyframes_abs_pos_embedding.clone()
        model.keyframes_abs_pos_embedding.zero_()       # zero-initialised in the reference: then a no-op
        zeroed = model(marked, audio).video
        model.keyframes_abs_pos_embedding.copy_(saved)
    assert not torch.allclose(plain, with_marker) and torch.equal(plain, zeroed)


def test_prepared_text_holds_for_every_sigma(model_and_inputs) -> None:
    model, video, audio = model_and_inputs
    prepared = {name: model.prepare_text(name, s.context, s.context_mask)
                for name, s in (("video", video), ("audio", audio))}
    assert prepared["video"].sigma is None
    for scale in (1.0, 0.3):
        v, a = replace(video, sigma=video.sigma * scale), replace(audio, sigma=audio.sigma * scale)
        with torch.no_grad():
            expected = model(v, a)
            cached = model(replace(v, context=prepared["video"], context_mask=None),
                           replace(a, context=prepared["audio"], context_mask=None))
        assert torch.allclose(cached.video, expected.video, atol=1e-6)
        assert torch.allclose(cached.audio, expected.audio, atol=1e-6)


def test_sampling_adapter_marks_the_first_latent_frame(model_and_inputs) -> None:
    from ltxgraph_ops.av_model import LTXAVModel
    from ltxgraph_ops.conditioning import Conditioning
    from ltxgraph_ops.models.transformer import StreamInput
    from ltxgraph_ops.models.transformer_tokens import audio_positions, audio_tokens, video_positions, video_tokens
    model = model_and_inputs[0]
    generator = torch.Generator().manual_seed(3)
    cond = Conditioning(torch.randn(1, 6, model.config.video_dim, generator=generator),
                        torch.randn(1, 6, model.config.audio_dim, generator=generator), frame_rate=24.0)
    latents = (torch.randn(1, 128, 2, 2, 3, generator=generator), torch.randn(1, 8, 5, 16, generator=generator))
    sigma = torch.tensor(0.6)
    steps = (torch.full((1, 1, 1, 1, 1), 0.6), torch.full((1, 1, 1, 1), 0.6))
    with torch.no_grad():
        video_x0, _ = LTXAVModel(model, ("video", "audio"), cond)(latents, steps, sigma)
        video = StreamInput(video_tokens(latents[0]), sigma.reshape(1), video_positions(2, 2, 3, 24.0),
                            cond.video_context, keyframes_mask=first_frame_keyframes_mask(1, 12, 6))
        audio = StreamInput(audio_tokens(latents[1]), sigma.reshape(1), audio_positions(5), cond.audio_context)
        velocity = model(video, audio).video
    expected = video_tokens(latents[0]) - velocity * 0.6
    assert torch.allclose(video_tokens(video_x0), expected, atol=1e-5)


def test_tiny_2_5_checkpoint_is_a_2_5_file(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "t.safetensors", "bf16", 0, [tiny], version="2.5")
    assert checkpoint_version(SafetensorsFile(path)) == "2.5"
    assert "model.diffusion_model.keyframes_abs_pos_embedding" in SafetensorsFile(path).keys()
