"""The tiny LTX-2.5 single-file checkpoint carries what ltx-pipelines 1.2.0 reads from a 2.5 single file, each part
in its 2.5 form, read by our loaders from the header: the 2.5 transformer, the text projection and connectors (the
same tensors the "with-proj" Gemma 4 file bundles), the diffusion video VAE (the same tensors as the split VAE
file), 2.3's audio VAE with the 48 kHz BigVGAN + bandwidth-extension vocoder, the duration head, and the
``model_version`` / ``gemma_source_checkpoint`` stamps."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ltxgraph.values import VideoLatent
from ltxgraph_ops.audio_ops import ltxv_audio_vae_loader
from ltxgraph_ops.diffusion_vae import is_diffusion_vae
from ltxgraph_ops.model_files import checkpoint_version
from ltxgraph_ops.nodes.duration import ltxv_duration_predictor, model_patch_loader
from ltxgraph_ops.text_ops import TEXT_PREFIXES, ltxav_text_encoder_loader
from ltxgraph_ops.tiny.files import (CHECKPOINTS_25, GEMMA_VERSION_25, TEXT_ENCODER_WITH_PROJ_25, VIDEO_VAE_25,
                                     write_checkpoint, write_split_25)
from ltxgraph_ops.vae_ops import checkpoint_loader_simple, vae_decode
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile

NAME = "ltx-2.5-22b-distilled.safetensors"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The tiny 2.5 checkpoint and the split files, written as the tiny set writes them (seed offset of the
    distilled weights)."""
    folder = tmp_path_factory.mktemp("ltx25")
    storage, offset = CHECKPOINTS_25[NAME]
    written = [write_checkpoint(folder / "checkpoints" / NAME, storage, offset, version="2.5"), *write_split_25(folder)]
    return {path.name: path for path in written}


def _tensors(file: SafetensorsFile, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {key: file.read(key) for key in file.entries if key.startswith(prefixes)}


def test_the_header_holds_every_25_section_and_the_stamps(files) -> None:
    checkpoint = SafetensorsFile(files[NAME])
    assert set(checkpoint.config()) == {"transformer", "vae", "audio_vae", "vocoder", "duration_head"}
    assert checkpoint_version(checkpoint) == "2.5" and checkpoint.metadata["model_version"] == "2.5"
    assert json.loads(checkpoint.metadata["gemma_source_checkpoint"]) == {"gemma_version": GEMMA_VERSION_25}
    assert {key.split(".")[0] for key in checkpoint.entries} == {
        "model", "text_embedding_projection", "vae", "audio_vae", "vocoder", "duration_head"}


def test_the_video_vae_is_the_diffusion_vae_of_the_split_file(files) -> None:
    checkpoint, split = SafetensorsFile(files[NAME]), SafetensorsFile(files[VIDEO_VAE_25])
    assert is_diffusion_vae(checkpoint)
    ours, theirs = _tensors(checkpoint, ("vae.",)), _tensors(split, ("vae.",))
    assert ours.keys() == theirs.keys() and any(key.startswith("vae.decoder.") for key in ours)
    assert all(torch.equal(ours[key], theirs[key].to(ours[key].dtype)) for key in ours)   # statistics float32 there
    _, _, vae = checkpoint_loader_simple(str(files[NAME]))
    latent = VideoLatent(torch.randn(1, 128, 2, 2, 3, generator=torch.Generator().manual_seed(0)), 24.0, 9)
    assert tuple(vae_decode(latent, vae).shape) == (9, 64, 96, 3)      # 8n+1 frames, 32 pixels per cell


def test_the_text_path_is_the_one_the_with_proj_file_bundles(files) -> None:
    checkpoint, bundled = SafetensorsFile(files[NAME]), SafetensorsFile(files[TEXT_ENCODER_WITH_PROJ_25])
    ours, theirs = _tensors(checkpoint, TEXT_PREFIXES), _tensors(bundled, TEXT_PREFIXES)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[key], theirs[key]) for key in ours)
    clip = ltxav_text_encoder_loader(str(files[TEXT_ENCODER_WITH_PROJ_25]), str(files[NAME]))
    conditioning = clip.encode(["a red fox in the snow"])
    model, _, _ = checkpoint_loader_simple(str(files[NAME]))
    config = model.structure().config
    assert (conditioning.video_context.shape[-1], conditioning.audio_context.shape[-1]) == (config.video_dim,
                                                                                            config.audio_dim)
    head = model_patch_loader(str(files[NAME]))     # the head inside the single file
    frames, seconds = ltxv_duration_predictor(model, conditioning, head, 24.0, 1.0, 20.0)
    assert (frames - 1) % 8 == 0 and seconds > 0


def test_the_audio_path_is_the_48khz_bandwidth_extension(files) -> None:
    audio_vae = ltxv_audio_vae_loader(str(files[NAME]))
    assert audio_vae.vocoder_config.output_sampling_rate == 48000 and audio_vae.latents_per_second == 25.0
