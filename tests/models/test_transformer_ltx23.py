"""LTX-2.3 in the one transformer class: the release layout (manifest), what the header switches on (gated
attention, cross-attention AdaLN, no caption projection), prepared text per sigma, LoRAs on the gates, streaming,
and parity with diffusers 0.42.1 (tools/oracle/diffusers_transformer.py, keys ltx23_* and diffusers_*)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ltxgraph_ops.handles import ModelHandle
from ltxgraph_ops.model_files import checkpoint_version, load_transformer
from ltxgraph_ops.models.transformer import LTXAVTransformer, TransformerConfig
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.tiny.files import write_lora
from ltxgraph_ops.weights.lora import LoraPatch, read_lora
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
from ltxgraph_ops.weights.writing import checkpoint_tensors, header_metadata, save_atomic
from tools import manifest_check
from tools.oracle import diffusers_transformer as oracle
from tools.oracle.transformer import random_state

REFERENCE = Path(__file__).resolve().parent.parent / "data" / "reference"


def test_release_config_is_the_header_data_file() -> None:
    header = json.loads((REFERENCE / "ltx23_22b_config.json").read_text())
    assert tiny.full_config_23() == header["transformer"]


def test_full_size_layout_matches_the_22b_manifest() -> None:
    manifest = json.loads((REFERENCE / "ltx23_22b_manifest.json").read_text())
    shapes = manifest_check.meta_shapes(tiny, "2.3")
    assert manifest_check.compare(shapes, manifest["transformer"]) == {"missing": [], "unexpected": [],
                                                                       "misshapen": []}
    elements = sum(torch.Size(shape).numel() for shape in shapes.values())
    assert elements == manifest["_counts"]["transformer"]["elements"] == 18_988_838_144


def test_manifest_check_covers_2_3(capsys) -> None:
    report = manifest_check.check_all(manifest_check.MANIFESTS["2.3"], "2.3")
    assert manifest_check.is_clean(report["transformer"])
    assert report["transformer"]["module"] == "ltxgraph_ops.tiny.transformer"
    manifest_check.main(["--json", "--version", "2.3"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["transformer"] == {"module": "ltxgraph_ops.tiny.transformer", "missing": 0, "unexpected": 0,
                                      "misshapen": 0}
    assert set(summary) == {"transformer", "connector", "video_vae", "audio_vae", "vocoder"}


def test_header_switches_the_2_3_parts_on() -> None:
    config = TransformerConfig.from_header(tiny.tiny_config_23())
    assert config.modulation_rows == 9 and config.text_follows_sigma
    # audio<->video scale/shift from the stream's own timesteps (ltx-core 1.2.0) for 2.3; 2.0 files unchanged
    assert config.av_modulation_own_timesteps
    assert not TransformerConfig.from_header(tiny.tiny_config()).av_modulation_own_timesteps
    state = LTXAVTransformer(config, device="meta").state_dict()
    assert state["transformer_blocks.0.scale_shift_table"].shape == (9, config.video_dim)
    assert state["transformer_blocks.1.audio_prompt_scale_shift_table"].shape == (2, config.audio_dim)
    assert state["adaln_single.linear.weight"].shape == (9 * config.video_dim, config.video_dim)
    assert state["transformer_blocks.0.audio_to_video_attn.to_gate_logits.weight"].shape == (
        config.audio_num_attention_heads, config.video_dim)
    assert "prompt_adaln_single.linear.weight" in state and not any("caption_projection" in k for k in state)
    static = LTXAVTransformer(TransformerConfig.from_header({**tiny.tiny_config_23(),
                                                             "use_prompt_adaln_single": False}), device="meta")
    assert not static.config.text_follows_sigma and "prompt_adaln_single.linear.weight" not in static.state_dict()


@pytest.fixture(scope="module")
def model_and_inputs():
    model = LTXAVTransformer(TransformerConfig.from_header(tiny.tiny_config_23())).eval()
    model.load_state_dict(random_state(model))
    return model, *oracle.stream_inputs(model.config)


def test_gates_prompt_modulation_and_sigma_change_the_output(model_and_inputs) -> None:
    model, video, audio = model_and_inputs
    with torch.no_grad():
        base = model(video, audio).video
        other_sigma = model(replace(video, sigma=video.sigma * 0.5, noise_mask=video.noise_mask * 2), audio).video
        model.transformer_blocks[0].attn1.to_gate_logits.bias.add_(1.0)
        gated = model(video, audio).video
        model.transformer_blocks[0].attn1.to_gate_logits.bias.sub_(1.0)
    # the same per-token timesteps with another sigma: only the prompt AdaLN and the AV modulation see it
    assert not torch.allclose(base, other_sigma) and not torch.allclose(base, gated)


def test_text_width_is_checked(model_and_inputs) -> None:
    model, video, audio = model_and_inputs
    with pytest.raises(ValueError, match="video text context is 24 wide; .* video width 32"):
        model(replace(video, context=torch.zeros(2, 7, 24)), audio)


def test_prepared_text_holds_for_its_sigma_only(model_and_inputs) -> None:
    model, video, audio = model_and_inputs
    with torch.no_grad():
        expected = model(video, audio)
        prepared = {name: model.prepare_text(name, s.context, s.context_mask, sigma=s.sigma)
                    for name, s in (("video", video), ("audio", audio))}
        cached = model(replace(video, context=prepared["video"], context_mask=None),
                       replace(audio, context=prepared["audio"], context_mask=None))
    assert torch.allclose(cached.video, expected.video, atol=1e-6)
    assert torch.allclose(cached.audio, expected.audio, atol=1e-6)
    with pytest.raises(ValueError, match="needs the step's sigma"):
        model.prepare_text("video", video.context, video.context_mask)
    with pytest.raises(ValueError, match="modulated for sigma .* prepare them per step"):
        model(replace(video, sigma=video.sigma * 0.5, context=prepared["video"], context_mask=None), audio)


def write_tiny_23(path: Path, storage: str = "bf16") -> Path:
    """A transformer-only tiny 2.3 checkpoint (the set's writer picks ``tiny_config_23`` up for the full set)."""
    with torch.device("meta"):
        layout = tiny.build(tiny.tiny_config_23(), device="meta")
    return save_atomic(path, checkpoint_tensors([(layout, tiny.PREFIX)], 0, storage),
                       header_metadata({"transformer": tiny.tiny_config_23()}))


def test_tiny_2_3_transformer_file_is_a_2_3_checkpoint(tmp_path: Path) -> None:
    path = write_tiny_23(tmp_path / "t.safetensors", "fp8")
    assert checkpoint_version(SafetensorsFile(path)) == "2.3"
    assert tiny.TINY_CONFIGS["2.3"] is tiny.tiny_config_23 and tiny.RELEASE_CONFIGS["2.3"] is tiny.full_config_23


def test_streaming_and_loras_on_the_gates(tmp_path: Path) -> None:
    path = write_tiny_23(tmp_path / "ltx-2.3-tiny.safetensors")
    resident, streamed = load_transformer(path), load_transformer(path, streamed=True)
    lora = read_lora(write_lora(tmp_path / "lora.safetensors", resident, 2, 3, {}), resident)
    assert any("to_gate_logits" in name for name in lora.layers)
    video, audio = oracle.stream_inputs(resident.config)
    outs = []
    for model in (resident, streamed):
        with torch.no_grad():
            plain = model(video, audio).video
            with ModelHandle(model, "m").with_patch(LoraPatch(lora, 0.8)).applied() as patched:
                outs.append(patched(video, audio).video)
        assert not torch.allclose(plain, outs[-1])
    assert torch.equal(outs[0], outs[1])


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_parity_with_diffusers(name: str) -> None:
    pytest.importorskip("diffusers")
    error = oracle.CHECKS[name]()
    assert error < 1e-5, f"{name}: max abs error {error:.3e}"


def test_sampling_adapter_prepares_text_per_step(model_and_inputs) -> None:
    from ltxgraph_ops.av_model import LTXAVModel
    from ltxgraph_ops.conditioning import Conditioning
    model = model_and_inputs[0]
    generator = torch.Generator().manual_seed(3)
    cond = Conditioning(torch.randn(1, 6, model.config.video_dim, generator=generator),
                        torch.randn(1, 6, model.config.audio_dim, generator=generator), frame_rate=24.0)
    latents = (torch.randn(1, 128, 2, 2, 3, generator=generator), torch.randn(1, 8, 5, 16, generator=generator))
    cached = LTXAVModel(model, ("video", "audio"), cond)
    plain = LTXAVModel(model, ("video", "audio"), cond, cache_text=False)
    with torch.no_grad():
        for value in (0.8, 0.8, 0.5):          # a repeated pass of one step, then the next step
            sigma = torch.tensor(value)
            steps = (torch.full((1, 1, 1, 1, 1), value), torch.full((1, 1, 1, 1), value))
            for a, b in zip(cached(latents, steps, sigma), plain(latents, steps, sigma)):
                assert torch.allclose(a, b, atol=1e-5)
    assert {key[2] for key in cached._prepared} == {(0.5,)}   # only the current step's text is kept


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
@pytest.mark.usefixtures("native_kernels_everywhere")
def test_parity_with_diffusers_on_the_native_kernels(name: str) -> None:
    """The same checks with the blocks' element-wise regions on the one-pass C kernels, as a loaded model runs."""
    error = oracle.CHECKS[name]()
    assert error <= 1e-5, f"{name}: max abs error {error:.3e}"
