"""The synthetic full-size writer (tools/make_full.py, used by the real-scale benchmarks), proven at tiny scale
for both model versions (2.0 19B, 2.3 22B): the files it writes have the tiny model set's keys, shapes, stored
filter values and header, load through the ops' loaders strictly, and give finite outputs; the full-size 2.3
header is the release's; a failed write leaves no file."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from ltxgraph.context import OpContext, RunSettings
from ltxgraph_ops.audio_ops import ltxv_audio_vae_decode, ltxv_audio_vae_loader, ltxv_empty_latent_audio
from ltxgraph_ops.loaders import model_handle
from ltxgraph_ops.text_ops import text_encoder_handle
from ltxgraph_ops.tiny.files import write_checkpoint
from ltxgraph_ops.vae_ops import video_vae_handle
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
from ltxgraph_ops.weights.writing import SyntheticPart, synthetic_plan, write_synthetic
from ltxgraph.values import AudioLatent
from tools.make_full import RELEASE_FILES, checkpoint_parts, write_component
from tools.oracle.transformer import audio_input, video_input

REFERENCE = Path(__file__).resolve().parent.parent / "data" / "reference"


@pytest.fixture(scope="module", params=sorted(v for v, files in RELEASE_FILES.items() if "checkpoint" in files))
def written(request, tmp_path_factory) -> tuple[str, dict[str, Path]]:
    """(model version, component -> path) of a tiny synthetic set of that version."""
    out = tmp_path_factory.mktemp(f"synthetic-{request.param}")
    files = {component: write_component(component, out, seed=3, scale="tiny", version=request.param)
             for component in RELEASE_FILES[request.param]}
    return request.param, files


def test_checkpoint_has_the_tiny_sets_layout(written, tmp_path: Path) -> None:
    version, files = written
    assert files["checkpoint"].relative_to(files["checkpoint"].parent.parent) == RELEASE_FILES[version]["checkpoint"]
    synthetic = SafetensorsFile(files["checkpoint"])
    reference = SafetensorsFile(write_checkpoint(tmp_path / "ref.safetensors", "bf16", version=version))
    scales = {key for key in synthetic.entries if key.endswith(".weight_scale")}
    assert synthetic.entries.keys() - scales == reference.entries.keys()
    for key, entry in reference.entries.items():
        assert synthetic.entries[key].shape == entry.shape, key
        fp8 = key[: -len("weight")] + "weight_scale" in scales
        assert synthetic.entries[key].dtype == (torch.float8_e4m3fn if fp8 else entry.dtype), key
    # only the transformer's Linear weights are fp8 (as in the fp8 release); the text connectors stay 16-bit
    assert scales and all(key.startswith("model.diffusion_model.") and "embeddings_connector" not in key
                          for key in scales)
    # stored non-learned tensors (anti-aliasing filters, 2.3's STFT and mel bases) hold their real values
    filters = [key for key in reference.entries if key.endswith(".filter") or "mel_stft" in key]
    assert bool(filters) == (version == "2.3")
    for key in filters:
        assert torch.equal(synthetic.read(key), reference.read(key)), key
    assert synthetic.config() == reference.config()


def test_synthetic_files_load_and_run(written) -> None:
    version, files = written
    ctx = OpContext("synthetic", settings=RunSettings(memory_budget=1))   # everything streamed
    text = text_encoder_handle(str(files["gemma"]), str(files["checkpoint"]), ctx)
    cond = text.encode(["A lighthouse at dusk"])
    config = SafetensorsFile(files["checkpoint"]).config()["transformer"]
    # 2.0: contexts at Gemma's width (the transformer projects them); 2.3: at each stream's width
    widths = ((config["cross_attention_dim"], config["audio_cross_attention_dim"]) if version == "2.3"
              else (config["caption_channels"],) * 2)
    assert (cond.video_context.shape[-1], cond.audio_context.shape[-1]) == widths
    assert torch.isfinite(cond.video_context).all() and torch.isfinite(cond.audio_context).all()

    handle = model_handle(str(files["checkpoint"]), ctx)
    generator = torch.Generator().manual_seed(0)
    batch = video_input(config, generator).latent.shape[0]
    mask = cond.context_mask.expand(batch, -1)
    video = dataclasses.replace(video_input(config, generator), context=cond.video_context.expand(batch, -1, -1),
                                context_mask=mask)
    audio = dataclasses.replace(audio_input(config, generator), context=cond.audio_context.expand(batch, -1, -1),
                                context_mask=mask)
    with handle.applied() as model, torch.no_grad():
        out = model(video, audio)
    assert out.video.shape == video.latent.shape and out.audio.shape == audio.latent.shape
    assert torch.isfinite(out.video).all() and torch.isfinite(out.audio).all()

    vae = video_vae_handle(str(files["checkpoint"]), ctx)
    frames = vae.decode(torch.randn(1, 128, 2, 2, 2, generator=generator))
    assert frames.shape == (9, 64, 64, 3) and torch.isfinite(frames).all()

    audio_vae = ltxv_audio_vae_loader(str(files["checkpoint"]), ctx)
    latent = ltxv_empty_latent_audio(audio_vae, frames_number=9, frame_rate=25)
    noisy = AudioLatent(torch.randn(latent.samples.shape, generator=generator), latent.latents_per_second,
                        latent.seconds)
    sound = ltxv_audio_vae_decode(noisy, audio_vae, ctx)
    assert sound.sample_rate == (48000 if version == "2.3" else 24000)
    assert torch.isfinite(sound.waveform).all()
    assert SafetensorsFile(files["upscaler"]).config()["mid_channels"] == 32


def test_full_size_23_header_is_the_releases() -> None:
    """The 22B file's header sections equal the published header of ltx-2.3-22b-dev.safetensors, except that our
    audio VAE section also states the audio preprocessing the loaders read (rate, stereo: the 19B header's)."""
    _, metadata, fixed = checkpoint_parts("full", version="2.3")
    ours = json.loads(metadata["config"])
    release = json.loads((REFERENCE / "ltx23_22b_config.json").read_text())
    assert ours["audio_vae"]["preprocessing"].pop("audio")["sampling_rate"] == 16000
    assert ours == release
    assert fixed and all(key.startswith("vocoder.") and value.dtype == torch.bfloat16 for key, value in fixed.items())


def test_full_size_23_layout_is_the_release_manifests() -> None:
    """Every tensor of the 22B release (ltx23_22b_manifest.json, the bf16 file) is planned with its shape; the
    transformer's Linear weights (as the 19B writer: every one) as float8_e4m3fn with a float32 ``weight_scale``
    (the fp8 file), all else bf16."""
    parts, _, _ = checkpoint_parts("full", version="2.3")
    plan = {name: (dtype, list(shape)) for name, dtype, shape in synthetic_plan(parts)}
    manifest = json.loads((REFERENCE / "ltx23_22b_manifest.json").read_text())
    release = {key: shape for component in ("transformer", "connector", "video_vae", "audio_vae", "vocoder")
               for key, (shape, _) in manifest[component].items()}
    scales = {key for key in plan if key.endswith(".weight_scale")}
    assert plan.keys() - scales == release.keys()
    assert len(scales) > 1000 and all(plan[key] == (torch.float32, []) for key in scales)
    for key, shape in release.items():
        fp8 = key[: -len("weight")] + "weight_scale" in scales
        assert plan[key] == (torch.float8_e4m3fn if fp8 else torch.bfloat16, shape), key
        assert not fp8 or (key.startswith("model.diffusion_model.") and "embeddings_connector" not in key), key


def test_clashing_parts_leave_no_file(tmp_path: Path) -> None:
    with torch.device("meta"):
        layer = torch.nn.Linear(2, 2)
    path = tmp_path / "clash.safetensors"
    with pytest.raises(ValueError, match="share keys"):
        write_synthetic(path, [SyntheticPart(layer, "a."), SyntheticPart(layer, "a.")], {})
    assert list(tmp_path.iterdir()) == []


def test_synthetic_25_text_encoder_is_a_bundled_gemma4_that_encodes(tmp_path: Path) -> None:
    """make_full --version 2.5 writes LTX-2.5's text encoder in the bundled layout CLIPLoader reads: Gemma 4 (fp8
    Linear weights with scales), the 2.5 text projection and connectors for its hidden states, the header."""
    from ltxgraph_ops.gemma_generation import gemma_generation
    from ltxgraph_ops.split_loaders import clip_loader
    path = write_component("gemma", tmp_path, seed=3, scale="tiny", version="2.5")
    assert path.relative_to(tmp_path) == RELEASE_FILES["2.5"]["gemma"]
    file = SafetensorsFile(path)
    assert gemma_generation(file) == 4 and file.entries["model.layers.0.mlp.up_proj.weight"].dtype == torch.float8_e4m3fn
    assert "text_embedding_projection.video_aggregate_embed.bias" in file.entries
    conditioning = clip_loader(str(path)).encode(["a lighthouse at dusk"])
    assert torch.isfinite(conditioning.video_context).all() and torch.isfinite(conditioning.audio_context).all()


def test_full_size_gemma4_is_12b_with_the_25_text_path() -> None:
    from ltxgraph_ops.models.gemma import GemmaTextModel
    from ltxgraph_ops.tiny import connector, gemma4
    from ltxgraph_ops.tiny.transformer import full_config_25
    with torch.device("meta"):
        gemma = GemmaTextModel(gemma4.full_config())
        text_path = connector.build(full_config_25(), device="meta", states=gemma4.FULL_LAYERS + 1)
    assert 11.8e9 < sum(p.numel() for p in gemma.parameters()) < 12.0e9
    projection = dict(text_path.named_parameters())["text_embedding_projection.video_aggregate_embed.weight"]
    assert tuple(projection.shape) == (4096, 3840 * 49)


def test_a_checkpoint_of_some_components_holds_those_alone(tmp_path: Path) -> None:
    """``only=("video_vae",)``: the video VAE's tensors and its header section, nothing of the other components;
    the VAE loads from it and decodes."""
    path = write_component("checkpoint", tmp_path, seed=3, scale="tiny", only=("video_vae",))
    file = SafetensorsFile(path)
    assert set(file.config()) == {"vae"}
    assert file.entries and all(key.startswith("vae.") for key in file.entries)
    vae = video_vae_handle(str(path), OpContext("vae", settings=RunSettings()))
    assert torch.isfinite(vae.model.get().decode(torch.randn(1, vae.latent_channels, 1, 2, 2))).all()
