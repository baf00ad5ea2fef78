"""LTX-2.5 duration head: the release key layout, seconds from the connector outputs, the 8n+1 frame count, the
ModelPatchLoader / LTXVDurationPredictor ops, and parity with diffusers 0.42.1 (keys ltx25_duration_head*)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.loaders import model_handle
from ltxgraph_ops.models.duration_head import DurationHead, DurationHeadConfig, frames_for_seconds
from ltxgraph_ops.nodes.duration import duration_head_file, ltxv_duration_predictor, model_patch_loader
from ltxgraph_ops.tiny import duration_head as tiny
from ltxgraph_ops.tiny import transformer
from ltxgraph_ops.tiny.files import write_checkpoint
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
from ltxgraph_ops.weights.writing import checkpoint_tensors, header_metadata, save_atomic
from tools.oracle import duration_head as oracle

# ltx-core 1.2.0's DurationHead state dict (nn.MultiheadAttention layout in the pooler), under duration_head.
RELEASE_KEYS = {"video_input_proj.weight", "video_input_proj.bias", "video_modality_emb", "audio_input_proj.weight",
                "audio_input_proj.bias", "audio_modality_emb", "attention_pooler.query_tokens",
                "attention_pooler.cross_attn.in_proj_weight", "attention_pooler.cross_attn.in_proj_bias",
                "attention_pooler.cross_attn.out_proj.weight", "attention_pooler.cross_attn.out_proj.bias",
                "mlp_hidden.weight", "mlp_hidden.bias", "mlp_out.weight", "mlp_out.bias"}


@pytest.fixture(scope="module")
def head_file(tmp_path_factory) -> Path:
    return tiny.write_file(tmp_path_factory.mktemp("patches") / tiny.RELEASE_FILE)


def test_release_layout_and_widths_from_the_header() -> None:
    config = DurationHeadConfig.from_header({"transformer": {"cross_attention_dim": 4096,
                                                             "audio_cross_attention_dim": 2048}})
    assert config == DurationHeadConfig(4096, 2048, 256, 1, 4, 256)
    with torch.device("meta"):
        state = DurationHead(config, device="meta").state_dict()
    assert set(state) == RELEASE_KEYS
    assert state["attention_pooler.cross_attn.in_proj_weight"].shape == (768, 256)
    assert state["video_input_proj.weight"].shape == (256, 4096)


def test_tiny_file_holds_the_release_keys(head_file: Path) -> None:
    file = SafetensorsFile(head_file)
    assert set(file.entries) == {f"duration_head.{key}" for key in RELEASE_KEYS}
    assert file.config()["duration_head"] == tiny.tiny_config()


@pytest.mark.parametrize("seconds, frame_rate, expected", [
    (2.0, 24.0, 41),      # 48 frames floored onto the grid
    (5.0, 25.0, 121),     # 125 -> 121
    (0.2, 24.0, 25),      # below min_seconds: 24 frames floored to 17 < 24, so the next grid count
    (100.0, 24.0, 473),   # above max_seconds: 480 -> 473
    (3.3, 30.0, 97),
])
def test_frames_for_seconds_on_the_8n_plus_1_grid(seconds: float, frame_rate: float, expected: int) -> None:
    assert frames_for_seconds(seconds, frame_rate) == expected


def test_frames_for_seconds_is_always_8n_plus_1_within_bounds() -> None:
    for frame_rate in (8.0, 24.0, 25.0, 30.0, 60.0):
        for low, high in ((1.0, 20.0), (0.5, 1.0), (2.0, 2.1)):
            for tenth in range(1, 400):
                frames = frames_for_seconds(tenth / 10, frame_rate, low, high)
                assert (frames - 1) % 8 == 0 and frames >= 1
                if any((n - 1) % 8 == 0 for n in range(round(low * frame_rate), round(high * frame_rate) + 1)):
                    assert round(low * frame_rate) <= frames <= round(high * frame_rate)
    assert frames_for_seconds(5.0, 8.0, 1.0, 1.05) == 9   # no grid count in [8, 8]: the nearest
    with pytest.raises(ValueError, match="min_seconds"):
        frames_for_seconds(1.0, 24.0, 3.0, 2.0)


def conditioning(head: DurationHead, tokens: int = 6, mask: torch.Tensor | None = None) -> Conditioning:
    generator = torch.Generator().manual_seed(5)
    return Conditioning(torch.randn(1, tokens, head.config.video_dim, generator=generator),
                        torch.randn(1, tokens, head.config.audio_dim, generator=generator), mask, frame_rate=24.0)


def test_predictor_returns_an_8n_plus_1_count_and_the_raw_seconds(head_file: Path) -> None:
    handle = model_patch_loader(str(head_file))
    head = handle.model.get()
    positive = conditioning(head)
    frames, seconds = ltxv_duration_predictor(None, positive, handle, 24.0, 1.0, 20.0)
    with torch.no_grad():
        expected = float(head(positive.video_context, positive.audio_context)[0])
    assert seconds == pytest.approx(expected) and seconds > 0
    assert frames == frames_for_seconds(seconds, 24.0, 1.0, 20.0) and (frames - 1) % 8 == 0


def test_predictor_leaves_padding_out(head_file: Path) -> None:
    handle = model_patch_loader(str(head_file))
    head = handle.model.get()
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    padded = conditioning(head, mask=mask)
    changed = Conditioning(padded.video_context.clone(), padded.audio_context.clone(), mask, frame_rate=24.0)
    changed.video_context[:, 4:] = 100.0
    first = ltxv_duration_predictor(None, padded, handle)[1]
    assert ltxv_duration_predictor(None, changed, handle)[1] == first
    unpadded = Conditioning(padded.video_context[:, :4], padded.audio_context[:, :4], None, frame_rate=24.0)
    assert ltxv_duration_predictor(None, unpadded, handle)[1] == first


def test_predictor_refuses_text_of_another_width(head_file: Path) -> None:
    handle = model_patch_loader(str(head_file))
    wrong = Conditioning(torch.zeros(1, 3, 24), torch.zeros(1, 3, 16), None, frame_rate=24.0)
    with pytest.raises(InputValueError, match="video text is 24 wide, the duration head reads 32"):
        ltxv_duration_predictor(None, wrong, handle)


def test_model_patch_loader_refuses_other_files_naming_them(tmp_path: Path) -> None:
    from ltxgraph_ops.tiny import upscaler
    from ltxgraph_ops.tiny.files import write_upscalers
    write_upscalers(tmp_path)
    other = tmp_path / next(iter(upscaler.RELEASE_FILES))
    message = duration_head_file.fn(str(other))
    assert message is not None and other.name in message and "not an LTX duration head" in message


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_parity_with_diffusers(name: str) -> None:
    pytest.importorskip("diffusers")
    error = oracle.CHECKS[name]()
    assert error < 1e-5, f"{name}: max abs error {error:.3e}"


def test_predictor_refuses_a_head_of_another_transformer(head_file: Path, tmp_path: Path) -> None:
    handle = model_patch_loader(str(head_file))
    head = handle.model.get()
    model_25 = model_handle(str(write_checkpoint(tmp_path / "25.safetensors", "bf16", 0, [transformer], "2.5")),
                            OpContext("m"))
    assert (ltxv_duration_predictor(model_25, conditioning(head), handle)[0] - 1) % 8 == 0
    wide = {**transformer.tiny_config_25(), "num_attention_heads": 3, "cross_attention_dim": 48}
    with torch.device("meta"):
        layout = transformer.build(wide, device="meta")
    path = save_atomic(tmp_path / "wide.safetensors", checkpoint_tensors([(layout, transformer.PREFIX)], 0, "bf16"),
                       header_metadata({"transformer": wide}))
    with pytest.raises(InputValueError, match="reads text 32 / 16 wide .* takes 48 / 16: a head made for another"):
        ltxv_duration_predictor(model_handle(str(path), OpContext("m")), conditioning(head), handle)


def test_a_head_inside_a_transformer_file_is_read(tmp_path: Path, head_file: Path) -> None:
    """ComfyUI also finds the head under the transformer's prefix (model.diffusion_model.duration_head.*)."""
    file = SafetensorsFile(head_file)
    tensors = {f"model.diffusion_model.{key}": file.read(key) for key in file.entries}
    path = save_atomic(tmp_path / "inside.safetensors", tensors, dict(file.metadata))
    inside, alone = model_patch_loader(str(path)), model_patch_loader(str(head_file))
    positive = conditioning(alone.model.get())
    assert ltxv_duration_predictor(None, positive, inside) == ltxv_duration_predictor(None, positive, alone)
