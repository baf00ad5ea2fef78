"""LTX-2 transformer: layout vs the 19B manifest, config parsing, token layout and positions, guidance hooks,
and parity with ltx-core (tools/oracle/transformer.py)."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from ltxgraph_ops.models.rope import frequency_ladder, rope_table
from ltxgraph_ops.models.transformer import (LTXAVTransformer, Perturbations, StreamInput, TransformerConfig, denoised,
                                            read_text_span)
from ltxgraph_ops.models.transformer_tokens import (audio_latent, audio_positions, audio_tokens,
                                                    guide_attention_mask, video_latent, video_positions,
                                                    video_tokens)
from tests.conftest import REFERENCE
from tools import manifest_check
from tools.oracle import transformer as oracle
from ltxgraph_ops.tiny import transformer as tiny

# ------------------------------------------------------------------------------------------- layout


def test_full_size_transformer_matches_manifest_keys_and_shapes() -> None:
    manifest = json.loads((REFERENCE / "ltx2_19b_manifest.json").read_text())
    differences = manifest_check.compare(manifest_check.meta_shapes(tiny), manifest["transformer"])
    assert differences == {"missing": [], "unexpected": [], "misshapen": []}


def test_full_size_transformer_has_19b_parameters() -> None:
    with torch.device("meta"):
        model = tiny.build(tiny.full_config(), device="meta")
    assert sum(t.numel() for t in model.state_dict().values()) == 18_876_174_592


def test_manifest_check_discovers_transformer_module() -> None:
    names = {module.MANIFEST_COMPONENT for module in manifest_check.tiny_modules()}
    assert "transformer" in names


def test_manifest_check_reports_differences_and_fails(tmp_path, capsys) -> None:
    manifest = json.loads((REFERENCE / "ltx2_19b_manifest.json").read_text())
    component = dict(manifest["transformer"])
    component.pop("model.diffusion_model.proj_out.bias")
    component["model.diffusion_model.extra"] = [[1], "float32"]
    component["model.diffusion_model.proj_out.weight"] = [[128, 4095], "float32"]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({**manifest, "transformer": component}))
    assert manifest_check.main(["--json", "--manifest", str(path)]) == 1
    counts = json.loads(capsys.readouterr().out)["transformer"]
    assert (counts["missing"], counts["unexpected"], counts["misshapen"]) == (1, 1, 1)


def test_tiny_module_contract() -> None:
    assert (tiny.COMPONENT, tiny.PREFIX, tiny.SECTION, tiny.MANIFEST_COMPONENT) == (
        "transformer", "model.diffusion_model.", "transformer", "transformer")
    model = tiny.build(tiny.tiny_config())
    assert len(model.transformer_blocks) == tiny.tiny_config()["num_layers"]
    assert "transformer_blocks.1.audio_to_video_attn.to_out.0.weight" in model.state_dict()


# ------------------------------------------------------------------------------------------- config


def test_config_reads_release_header_values() -> None:
    config = TransformerConfig.from_header(tiny.full_config())
    assert config.rope_type == "split" and config.frequencies_precision == "float64"
    assert config.av_ca_timestep_scale_multiplier == 1000.0
    assert config.positional_embedding_max_pos == (20, 2048, 2048)
    assert (config.video_dim, config.audio_dim, config.num_layers) == (4096, 2048, 48)


def test_config_rejects_inconsistent_text_width() -> None:
    with pytest.raises(ValueError, match="cross_attention_dim"):
        TransformerConfig.from_header({**tiny.tiny_config(), "cross_attention_dim": 48})


def test_stream_missing_from_model_is_an_error() -> None:
    model = LTXAVTransformer(TransformerConfig.from_header(tiny.tiny_config(), has_audio=False))
    generator = torch.Generator().manual_seed(0)
    audio = oracle.audio_input(tiny.tiny_config(), generator)
    with pytest.raises(ValueError, match="no audio stream"):
        model(None, audio)


# ------------------------------------------------------------------------------------------- tokens, positions


def test_token_layout_round_trips() -> None:
    video = torch.randn(2, 5, 3, 4, 6)
    tokens = video_tokens(video)
    assert tokens.shape == (2, 3 * 4 * 6, 5)
    assert torch.equal(tokens[:, 1 * 24 + 2 * 6 + 3], video[:, :, 1, 2, 3])
    assert torch.equal(video_latent(tokens, 3, 4, 6), video)
    audio = torch.randn(2, 8, 7, 16)
    tokens = audio_tokens(audio)
    assert tokens.shape == (2, 7, 128)
    assert torch.equal(tokens[:, 4, 16 * 2 + 5], audio[:, 2, 4, 5])
    assert torch.equal(audio_latent(tokens, 8), audio)


def test_video_positions_pixels_seconds_and_causal_first_frame() -> None:
    positions = video_positions(3, 2, 2, fps=25.0)                   # [1, 3, 12, 2]
    assert positions.shape == (1, 3, 12, 2)
    times = positions[0, 0, ::4]                                     # one token per latent frame
    assert torch.allclose(times, torch.tensor([[0, 1], [1, 9], [9, 17]]) / 25.0)
    assert positions[0, 1, 2].tolist() == [32.0, 64.0]               # row 1 spans pixels 32..64
    assert positions[0, 2, 1].tolist() == [32.0, 64.0]
    guide = video_positions(1, 2, 2, fps=25.0, first_frame=17)
    assert torch.allclose(guide[0, 0, 0], torch.tensor([17.0, 25.0]) / 25.0)


def test_audio_positions_in_seconds() -> None:
    positions = audio_positions(4)[0, 0]
    expected = [[max(4 * i - 3, 0) * 0.01, max(4 * i + 1, 0) * 0.01] for i in range(4)]
    assert torch.allclose(positions, torch.tensor(expected))


def test_guide_attention_mask_blocks() -> None:
    weights = guide_attention_mask(3, [2, 1], [0.5, 0.2])[0]
    assert weights[:3, :3].eq(1).all() and weights[3:5, 3:5].eq(1).all() and weights[5, 5] == 1
    assert weights[0, 3] == 0.5 and weights[4, 1] == 0.5 and weights[2, 5] == 0.2 and weights[5, 0] == 0.2
    assert weights[3, 5] == 0 and weights[5, 4] == 0


def test_float64_frequency_ladder_is_rounded_double_precision() -> None:
    ladder = frequency_ladder(10000.0, 3, 4096, float64=True)
    exact = np.power(10000.0, np.linspace(0, 1, 4096 // 6)) * math.pi / 2
    assert torch.equal(ladder, torch.tensor(exact, dtype=torch.float32))
    assert not torch.equal(ladder, frequency_ladder(10000.0, 3, 4096, float64=False))


@pytest.mark.parametrize("split", [True, False])
def test_rope_rotation_preserves_norm_and_relative_angle(split: bool) -> None:
    positions = video_positions(2, 2, 2, fps=24.0)
    table = rope_table(positions, (20, 2048, 2048), dim=32, heads=2, theta=10000.0, split=split,
                       float64_ladder=True)
    x = torch.randn(1, 8, 32)
    rotated = table.rotate(x)
    assert torch.allclose(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert not torch.allclose(rotated, x)


# ------------------------------------------------------------------------------------------- behaviour


@pytest.fixture(scope="module")
def tiny_setup():
    config = tiny.tiny_config()
    model = LTXAVTransformer(TransformerConfig.from_header(config))
    model.load_state_dict(oracle.random_state(model))
    generator = torch.Generator().manual_seed(7)
    return model, oracle.video_input(config, generator), oracle.audio_input(config, generator)


@torch.no_grad()
def test_perturbations_change_only_the_perturbed_samples(tiny_setup) -> None:
    model, video, audio = tiny_setup
    plain = model(video, audio)
    for perturbation in (Perturbations.stg([1]), Perturbations.isolate_modalities(),
                         Perturbations(skip_audio_self_attention="all")):
        changed = model(video, audio, perturbation)
        assert (changed.video - plain.video).abs().max() > 1e-3 or (changed.audio - plain.audio).abs().max() > 1e-3
        partial = model(video, audio, replace(perturbation, samples=torch.tensor([False, True])))
        assert torch.allclose(partial.video[0], plain.video[0], atol=1e-6)
        assert torch.allclose(partial.video[1], changed.video[1], atol=1e-6)
        assert torch.allclose(partial.audio[1], changed.audio[1], atol=1e-6)


@torch.no_grad()
def test_padded_text_tokens_are_ignored(tiny_setup) -> None:
    model, video, audio = tiny_setup
    plain = model(video, audio)
    noisy_padding = video.context.clone()
    noisy_padding[0, -2:] += 5.0                                     # sample 0 pads its last 2 tokens
    changed = model(replace(video, context=noisy_padding), audio)
    assert torch.allclose(changed.video, plain.video, atol=1e-6)
    unmasked = model(replace(video, context=noisy_padding, context_mask=None), audio)
    assert (unmasked.video - plain.video).abs().max() > 1e-3


@torch.no_grad()
@pytest.mark.parametrize("padding", ["right", "left"])
def test_padding_every_row_ignores_is_left_out_exactly(tiny_setup, padding: str) -> None:
    model, video, audio = tiny_setup
    tokens = video.context.shape[1]
    kept = slice(0, tokens - 3) if padding == "right" else slice(3, tokens)
    mask = torch.zeros(2, tokens, dtype=torch.int64)
    mask[:, kept] = 1
    mask[1, kept.start] = 0                                          # a padded column row 0 still reads
    assert read_text_span(mask) == kept
    padded = model(replace(video, context_mask=mask), audio)
    inner = replace(video, context=video.context[:, kept], context_mask=mask[:, kept])
    assert torch.allclose(model(inner, audio).video, padded.video, atol=1e-6, rtol=0)
    prepared = model.prepare_text("video", video.context, mask)
    cached = model(replace(video, context=prepared, context_mask=None), audio)
    assert torch.allclose(cached.video, padded.video, atol=1e-6, rtol=0)
    assert read_text_span(torch.ones(2, tokens)) is None
    mask[0] = 0                                                      # a row reading nothing: keep all keys
    assert read_text_span(mask) is None


@torch.no_grad()
def test_noise_mask_and_attention_weights_matter(tiny_setup) -> None:
    model, video, audio = tiny_setup
    plain = model(video, audio)
    assert (model(replace(video, noise_mask=None), audio).video - plain.video).abs().max() > 1e-3
    tokens = video.latent.shape[1]
    weights = guide_attention_mask(tokens - 6, [6], [0.3], batch=2)
    assert (model(replace(video, attention_mask=weights), audio).video - plain.video).abs().max() > 1e-3


@torch.no_grad()
def test_denoised_uses_per_token_timesteps(tiny_setup) -> None:
    _, video, _ = tiny_setup
    velocity = torch.randn_like(video.latent)
    x0 = denoised(video, velocity)
    kept = video.noise_mask == 0
    assert torch.equal(x0[kept], video.latent[kept])
    expected = video.latent[1, -1] - velocity[1, -1] * 0.5 * 0.4
    assert torch.allclose(x0[1, -1], expected)


@torch.no_grad()
def test_block_by_block_run_equals_forward(tiny_setup) -> None:
    model, video, audio = tiny_setup
    v, a = model.prepare(video, audio)
    for index in range(len(model.transformer_blocks)):
        v, a = model.run_block(index, v, a)
    stepwise = model.output(v, a)
    whole = model(video, audio)
    assert torch.equal(stepwise.video, whole.video) and torch.equal(stepwise.audio, whole.audio)


@torch.no_grad()
def test_prepared_text_equals_uncached_forward(tiny_setup) -> None:
    model, video, audio = tiny_setup
    plain = model(video, audio, Perturbations.stg([0]))
    text_v = model.prepare_text("video", video.context, video.context_mask)
    text_a = model.prepare_text("audio", audio.context, audio.context_mask)
    assert len(text_v.keys) == len(model.transformer_blocks) and text_v.keys[0].shape == (2, 7, 32)
    assert text_v.nbytes() == 2 * 2 * 2 * 7 * 32 * 4
    cached = model(replace(video, context=text_v, context_mask=None),
                   replace(audio, context=text_a, context_mask=None), Perturbations.stg([0]))
    assert torch.allclose(cached.video, plain.video, atol=1e-6, rtol=0)
    assert torch.allclose(cached.audio, plain.audio, atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        model(replace(video, context=text_a, context_mask=None), audio)          # wrong stream
    with pytest.raises(ValueError):
        model(replace(video, context=text_v), audio)                             # mask given twice


def test_stream_input_scalar_sigma_broadcasts() -> None:
    stream = StreamInput(latent=torch.zeros(2, 3, 4), sigma=torch.tensor(0.5), positions=torch.zeros(2, 1, 3, 2),
                         context=torch.zeros(2, 1, 4))
    assert torch.equal(stream.timesteps(), torch.full((2, 3), 0.5))


# ------------------------------------------------------------------------------------------- parity


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_parity_with_ltx_core(name: str) -> None:
    error = oracle.CHECKS[name]()
    assert error <= 1e-5, f"{name}: max abs error {error:.3e}"


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
@pytest.mark.usefixtures("native_kernels_everywhere")
def test_parity_with_ltx_core_on_the_native_kernels(name: str) -> None:
    """The same checks with the blocks' element-wise regions on the one-pass C kernels, as a loaded model runs."""
    error = oracle.CHECKS[name]()
    assert error <= 1e-5, f"{name}: max abs error {error:.3e}"
