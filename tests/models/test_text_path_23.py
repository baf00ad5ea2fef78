"""The LTX-2.3 ("V2") text path: per-token RMS features, per-stream biased projections, gated connectors at the
transformer's widths; parity with diffusers 0.42.1 and ltx-core (tools/oracle/text23.py, batch of two with
different padding), the release layout against diffusers' at the release config, bad headers refused by field."""
from __future__ import annotations

import pytest
import torch

from ltxgraph_ops.models.attention import Attention
from ltxgraph_ops.models.text_connectors import TextProjector, is_v2_layout, normalise_tokens
from ltxgraph_ops.tiny import connector as tiny
from ltxgraph_ops.weights.writing import random_state
from tools.oracle import text23 as oracle


def seeded(config: dict) -> TextProjector:
    model = tiny.build(config).eval()
    model.load_state_dict(random_state(model, "", 5))
    return model


def test_per_token_features_have_unit_rms_per_layer_and_zero_padding() -> None:
    g = torch.Generator().manual_seed(0)
    states = [torch.randn(2, 5, 6, generator=g) * scale for scale in (1.0, 3.0, 40.0)]
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    features = normalise_tokens(states, mask).view(2, 5, 6, 3)                 # [B, T, H, L], layer fastest
    rms = features.square().mean(dim=2).sqrt()                                 # [B, T, L]
    torch.testing.assert_close(rms[mask.bool()], torch.ones(8, 3), rtol=0, atol=1e-5)
    assert bool((features[0, :2] == 0).all())
    torch.testing.assert_close(features[1, 3, :, 2], states[2][1, 3] / states[2][1, 3].square().mean().sqrt())


def test_gate_scales_each_head_by_twice_its_sigmoid() -> None:
    torch.manual_seed(0)
    plain, gated = Attention(8, 8, 2, 4, 1e-6), Attention(8, 8, 2, 4, 1e-6, gated=True)
    state = {k: torch.randn_like(v) for k, v in plain.state_dict().items()}
    x = torch.randn(1, 3, 8)
    gated.load_state_dict({**state, "to_gate_logits.weight": torch.zeros(2, 8),
                           "to_gate_logits.bias": torch.tensor([0.0, -50.0])})
    head_out = Attention(8, 8, 2, 4, 1e-6)                                      # head 1's output columns zeroed
    first_head = torch.tensor([1.0] * 4 + [0.0] * 4)
    head_out.load_state_dict({**state, "to_out.0.weight": state["to_out.0.weight"] * first_head})
    # gate 2 sigmoid(0) = 1 keeps head 0, 2 sigmoid(-50) ~ 0 silences head 1
    torch.testing.assert_close(gated(x), head_out(x), rtol=0, atol=1e-6)
    assert not torch.allclose(gated(x), plain(x), atol=1e-3)


def test_tiny_23_layout_is_the_release_layout_at_tiny_widths() -> None:
    keys = seeded(tiny.tiny_config_23()).state_dict()
    assert "text_embedding_projection.aggregate_embed.weight" not in keys
    assert keys["text_embedding_projection.video_aggregate_embed.bias"].shape == (32,)
    assert keys["text_embedding_projection.audio_aggregate_embed.weight"].shape == (16, 24 * 3)
    block = "model.diffusion_model.audio_embeddings_connector.transformer_1d_blocks.1.attn1."
    assert keys[block + "to_gate_logits.weight"].shape == (2, 16) and keys[block + "to_q.weight"].shape == (16, 16)


def test_v2_contexts_have_the_transformer_widths_and_leading_padding_skips_nothing() -> None:
    config = {**tiny.tiny_config_23(), "connector_num_learnable_registers": 0}  # padded rows then keep features
    model = seeded(config)
    g = torch.Generator().manual_seed(1)
    states = [torch.randn(2, 12, 24, generator=g) for _ in range(3)]
    mask = torch.ones(2, 12, dtype=torch.int64)
    mask[0, :7], mask[1, :4] = 0, 0
    with torch.no_grad():
        video, audio, out_mask = model(states, mask)
        short = model([s[:, 4:] for s in states], mask[:, 4:], length=12)    # columns 0-3 padding in both
    assert video.shape == (2, 12, 32) and audio.shape == (2, 12, 16) and torch.equal(out_mask, mask)
    torch.testing.assert_close(short[0], video, rtol=0, atol=1e-6)
    torch.testing.assert_close(short[1], audio, rtol=0, atol=1e-6)


def test_partial_or_unknown_v2_configs_and_mismatched_widths_are_refused() -> None:
    assert is_v2_layout(tiny.tiny_config_23()) and not is_v2_layout(tiny.tiny_config())
    partial = {**tiny.tiny_config(), "caption_proj_before_connector": True}
    with pytest.raises(ValueError, match="missing caption_proj_input_norm, caption_projection_first_linear"):
        is_v2_layout(partial)
    with pytest.raises(ValueError, match="caption_projection_first_linear=True"):
        is_v2_layout({**tiny.tiny_config_23(), "caption_projection_first_linear": True})
    with pytest.raises(ValueError, match="audio connector is 8 wide but the audio transformer stream is 16"):
        tiny.build({**tiny.tiny_config_23(), "audio_connector_attention_head_dim": 4}, device="meta")


@pytest.mark.oracle
def test_release_23_layout_matches_diffusers_at_the_release_config() -> None:
    pytest.importorskip("diffusers")
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors

    config = tiny.full_config_23()
    ours = tiny.build(config, device="meta")
    with torch.device("meta"):
        theirs = LTX2TextConnectors(**oracle.diffusers_config(config, tiny.RELEASE_STATES))
    assert ours.states == 49
    shapes = {oracle.diffusers_key(k): list(v.shape) for k, v in ours.state_dict().items()}
    assert shapes == {k: list(v.shape) for k, v in theirs.state_dict().items()}
    assert shapes["video_text_proj_in.weight"] == [4096, 3840 * 49]
    assert shapes["audio_connector.transformer_blocks.7.attn1.to_gate_logits.weight"] == [32, 2048]


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_parity_with_diffusers_and_ltx_core(name: str) -> None:
    pytest.importorskip("diffusers")
    pytest.importorskip("ltx_core")
    assert oracle.CHECKS[name]() <= 1e-5
