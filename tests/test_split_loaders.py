"""VAELoader, VAELoaderAudio and CLIPLoader on LTX-2.5's tiny split files: each file's kind read from its header,
the wrong kind refused naming the file, the "with-proj" Gemma 4 file encoding a prompt with its bundled
projection and connectors, the plain Gemma 4 loaded without them."""
from __future__ import annotations

import pytest
import torch

from ltxgraph_ops.split_loaders import (audio_vae_file, clip_loader, has_projection, vae_kind, vae_loader,
                                        vae_loader_audio, video_vae_file)
from ltxgraph_ops.tiny.files import (AUDIO_VAE_25, PROMPT_GEMMA_25, TEXT_ENCODER_WITH_PROJ_25, VIDEO_VAE_25,
                                     write_split_25)


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("split25")
    return {path.name: str(path) for path in write_split_25(folder)}


def test_vae_files_are_told_apart_by_their_header(split) -> None:
    video, audio = split[VIDEO_VAE_25], split[AUDIO_VAE_25]
    assert (vae_kind(video), vae_kind(audio)) == ("video", "audio")
    assert vae_loader(video).latent_channels > 0
    assert vae_loader_audio(audio).latents_per_second == 25.0
    refused = video_vae_file.fn(audio)
    assert AUDIO_VAE_25 in refused and "audio VAE file" in refused and "AUDIO_VAE" in refused
    assert VIDEO_VAE_25 in audio_vae_file.fn(video)


def test_clip_loader_reads_the_bundled_text_path(split) -> None:
    with_proj, plain = split[TEXT_ENCODER_WITH_PROJ_25], split[PROMPT_GEMMA_25]
    assert has_projection(with_proj) and not has_projection(plain)
    assert clip_loader(plain).projector is None
    encoder = clip_loader(with_proj)
    conditioning = encoder.encode(["a cat"])
    assert conditioning.video_context.shape[0] == 1 and torch.isfinite(conditioning.video_context).all()
    assert conditioning.audio_context is not None and torch.isfinite(conditioning.audio_context).all()
    with pytest.raises(Exception, match="no LTX-2 checkpoint for its projection"):
        clip_loader(plain).encode(["a cat"])


def test_streamed_text_encoder_hands_its_buffers_over(split) -> None:
    """Under a budget everything streams: Gemma's block buffers are given back before the connectors run and
    theirs after, so neither model's sit beside the other's; the contexts equal the resident encoder's."""
    from ltxgraph.context import OpContext, RunSettings
    from ltxgraph_ops.weights.streaming import StreamedBlocks
    with_proj = split[TEXT_ENCODER_WITH_PROJ_25]
    streamed = clip_loader(with_proj, ctx=OpContext("t", settings=RunSettings(memory_budget=1)))
    first, again = streamed.encode(["a cat"]), streamed.encode(["a cat"])
    resident = clip_loader(with_proj).encode(["a cat"])
    assert torch.equal(first.video_context, resident.video_context)
    assert torch.equal(again.audio_context, resident.audio_context)
    blocks = [m for model in (streamed.gemma.get(), streamed.projector.get()) for m in model.modules()
              if isinstance(m, StreamedBlocks)]
    assert len(blocks) == 3 and all(b.stored.nbytes == b.computed.nbytes == 0 and b.reads for b in blocks)
