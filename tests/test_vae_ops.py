"""VAE ops on the tiny checkpoint: CheckpointLoaderSimple's outputs, encode / decode frame counts and sizes, the
tiled decoders against plain decode, upscaling with the VAE's statistics, and clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltxgraph.budget import DecodeTiles, decode_working_bytes, encoder_bytes, encoder_threads
from ltxgraph.context import OpContext, RunSettings
from ltxgraph.errors import InputValueError
from ltxgraph.frames import CodedFrames, StreamedFrames, float_images
from ltxgraph.values import AVLatent, AudioLatent, VideoLatent
from ltxgraph_ops.handles import Lazy
from ltxgraph_ops.tiny.files import UPSCALER, write_checkpoint, write_tiny_models
from ltxgraph_ops.upscale_ops import latent_upscale_model_loader, ltxv_latent_upsampler
from ltxgraph_ops.vae_ops import (checkpoint_loader_simple, spatio_temporal_tiled_decode, vae_decode,
                                  vae_decode_tiled, vae_encode, vae_encode_tiled)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    write_tiny_models(folder)
    return folder


@pytest.fixture(scope="module")
def loaded(models):
    return checkpoint_loader_simple(str(models / "checkpoints" / "ltx-2-19b-dev.safetensors"))


def test_checkpoint_loader_outputs(loaded) -> None:
    model, clip, vae = loaded
    assert clip is None and isinstance(model.transformer, Lazy) and not vae.model.loaded
    mean, std = vae.channel_statistics()
    assert mean.shape == std.shape == (128,) and not vae.model.loaded   # statistics read without the VAE


def test_decoding_reads_only_the_decoder(models) -> None:
    _, _, vae = checkpoint_loader_simple(str(models / "checkpoints" / "ltx-2-19b-dev.safetensors"))
    vae_decode(VideoLatent(torch.randn(1, 128, 2, 2, 3), 25.0, 9), vae)
    parts = vae.model.get().model
    on_meta = {name: any(p.device.type == "meta" for p in getattr(parts, name).parameters())
               for name in ("encoder", "decoder")}
    assert on_meta == {"encoder": True, "decoder": False}
    vae_encode(torch.rand(9, 64, 64, 3), vae)
    assert not any(p.device.type == "meta" for p in parts.encoder.parameters())


def test_encode_decode_frames_and_sizes(loaded) -> None:
    _, _, vae = loaded
    clip = torch.rand(9, 64, 96, 3)
    latent = vae_encode(clip, vae)
    assert latent.samples.shape == (1, 128, 2, 2, 3) and latent.frames == 9
    frames = vae_decode(latent, vae)
    assert isinstance(frames, CodedFrames) and frames.shape == (9, 64, 96, 3)     # held as bytes
    av = AVLatent(latent, AudioLatent(torch.zeros(1, 8, 9, 16), 25.0, 0.36))
    assert torch.equal(vae_decode(av, vae).codes(), frames.codes())


def test_decoded_frames_are_on_the_8bit_grid(loaded) -> None:
    """Decoded frames are what an 8-bit MP4 holds (round(255 x) / 255), so the disk cache keeps them as bytes."""
    from ltxgraph import unorm8
    _, _, vae = loaded
    latent = VideoLatent(torch.randn(1, 128, 2, 2, 3, generator=torch.Generator().manual_seed(2)), 25.0, 9)
    images = vae_decode(latent, vae).float()
    with torch.inference_mode():
        pixels = vae.model.get().decode(latent.samples)                                   # [1, 3, F, H, W]
    continuous = ((pixels.clamp(-1, 1) + 1) / 2)[0].permute(1, 2, 3, 0)
    codes = unorm8.pack(images)
    assert codes is not None and torch.equal(codes, (continuous * 255).round().to(torch.uint8))
    assert (images - continuous).abs().max() <= 0.5 / 255 + 1e-7
    tiled = vae_decode_tiled(latent, vae, tile_size=64, overlap=32, temporal_size=16, temporal_overlap=8)
    assert unorm8.pack(tiled.float()) is not None


@pytest.mark.parametrize("frames, size, words", [(10, (64, 96), "10 frames is not 8n+1 (use 9 or 17)"),
                                                 (9, (60, 96), "96x60 is not a multiple of 32x32 (use 96x32)")])
def test_encode_refuses_bad_shapes(loaded, frames, size, words) -> None:
    with pytest.raises(InputValueError, match=words.replace("(", "\\(").replace(")", "\\)").replace("+", "\\+")):
        vae_encode(torch.rand(frames, *size, 3), loaded[2])


def test_tiled_decoders_cover_the_same_frames(loaded) -> None:
    _, _, vae = loaded
    latent = VideoLatent(torch.randn(1, 128, 4, 3, 4, generator=torch.Generator().manual_seed(1)), 25.0, 25)
    plain = vae_decode(latent, vae).float()
    one_tile = vae_decode_tiled(latent, vae, tile_size=512, overlap=64, temporal_size=64, temporal_overlap=8)
    assert torch.allclose(one_tile.float(), plain, atol=1e-5)            # tiles larger than the latent: one tile
    tiled = vae_decode_tiled(latent, vae, tile_size=64, overlap=32, temporal_size=16, temporal_overlap=8)
    spatio = spatio_temporal_tiled_decode(vae, latent, spatial_tiles=2, spatial_overlap=1, temporal_tile_length=2,
                                          temporal_overlap=1)
    fixed = spatio_temporal_tiled_decode(vae, latent, spatial_tiles=1, temporal_tile_length=16, last_frame_fix=True)
    assert tiled.shape == spatio.shape == fixed.shape == plain.shape == (25, 96, 128, 3)
    assert all(isinstance(f, StreamedFrames) for f in (tiled, spatio, fixed))
    assert all(float_images(f).shape == (25, 96, 128, 3) for f in (tiled, spatio, fixed))
    encoded = vae_encode_tiled(plain, vae, tile_size=64, overlap=32, temporal_size=16, temporal_overlap=8)
    assert encoded.samples.shape == (1, 128, 4, 3, 4)


def test_upsampler_doubles_the_grid_and_keeps_audio(models, loaded) -> None:
    _, _, vae = loaded
    upscaler = latent_upscale_model_loader(str(models / "latent_upscale_models" / UPSCALER))
    video = VideoLatent(torch.randn(1, 128, 2, 2, 3), 25.0, 9, torch.ones(1, 1, 2, 1, 1))
    audio = AudioLatent(torch.zeros(1, 8, 9, 16), 25.0, 0.36)
    out = ltxv_latent_upsampler(AVLatent(video, audio), upscaler, vae)
    assert out.video.samples.shape == (1, 128, 2, 4, 6) and out.video.fps == 25.0 and out.video.frames == 9
    assert out.audio is audio and out.video.noise_mask is None
    with pytest.raises(InputValueError, match="128 channels"):
        ltxv_latent_upsampler(VideoLatent(torch.zeros(1, 4, 2, 2, 2), 25.0, 9), upscaler, vae)


def counting_context() -> tuple[OpContext, list[tuple[str, int, int]]]:
    seen: list[tuple[str, int, int]] = []
    return OpContext("vae", on_step=lambda node, step, total, info: seen.append((info["unit"], step, total))), seen


def test_decoders_and_encoders_report_their_blocks_and_tiles(loaded) -> None:
    _, _, vae = loaded
    latent = VideoLatent(torch.randn(1, 128, 4, 3, 4, generator=torch.Generator().manual_seed(1)), 25.0, 25)
    ctx, seen = counting_context()
    plain = vae_decode(latent, vae, ctx).float()
    blocks = len(vae.model.get().model.decoder.up_blocks)
    assert seen == [("block", i, blocks) for i in range(1, blocks + 1)]
    ctx, seen = counting_context()
    frames = vae_decode_tiled(latent, vae, tile_size=64, overlap=32, temporal_size=16, temporal_overlap=8, ctx=ctx)
    assert seen == []                                            # streamed: tiles are decoded (and counted) when read
    frames.codes()
    # 3 x 4 latent cells in 2-cell tiles overlapping by 1: 2 x 3 tiles; 4 latent frames in 2-frame tiles: 3
    assert seen == [("tile", i, 18) for i in range(1, 19)]
    ctx, seen = counting_context()
    vae_encode_tiled(plain, vae, tile_size=64, overlap=32, temporal_size=16, temporal_overlap=8, ctx=ctx)
    assert seen and seen[-1][1] == seen[-1][2] and {unit for unit, _, _ in seen} == {"tile"}
    ctx, seen = counting_context()
    vae_encode(plain, vae, ctx)
    blocks = len(vae.model.get().model.encoder.down_blocks)
    assert seen == [("block", i, blocks) for i in range(1, blocks + 1)]


def test_streamed_tiled_decode_to_mp4_equals_the_float_path(loaded, tmp_path: Path) -> None:
    """VAEDecodeTiled's frames, decoded chunk by chunk as bytes, are exactly the codes of the whole float decode
    with the same tiles; written to MP4 they give the same file content as the float frames (0 LSB apart)."""
    from ltxgraph_ops.media_video import encode_mp4, read_video
    from ltxgraph_ops.models.tiling import tiled_decode
    from ltxgraph.values import Video
    _, _, vae = loaded
    latent = VideoLatent(torch.randn(1, 128, 5, 3, 4, generator=torch.Generator().manual_seed(4)), 25.0, 33)
    streamed = vae_decode_tiled(latent, vae, tile_size=64, overlap=32, temporal_size=16, temporal_overlap=8)
    whole = vae.decode(latent.samples, lambda model, x, on_tile: tiled_decode(model.decode, x, 2, 1, 2, 1))
    assert torch.equal(streamed.float(), whole)                                       # bit for bit
    encode_mp4(str(tmp_path / "streamed.mp4"), Video(streamed, 25.0), {})
    encode_mp4(str(tmp_path / "float.mp4"), Video(whole, 25.0), {})
    from_codes, from_floats = (read_video(tmp_path / name).images.codes() for name in ("streamed.mp4", "float.mp4"))
    assert from_codes.shape == (33, 96, 128, 3)
    assert (from_codes.int() - from_floats.int()).abs().max() <= 1


def test_a_small_memory_budget_shrinks_the_decode_tiles_and_keeps_the_frames_close(loaded) -> None:
    _, _, vae = loaded
    latent = VideoLatent(torch.randn(1, 128, 5, 3, 4, generator=torch.Generator().manual_seed(5)), 25.0, 33)
    ctx = OpContext("frames", settings=RunSettings(memory_budget=vae.decoder_bytes + 3 * 2**20))
    small = vae_decode_tiled(latent, vae, tile_size=512, overlap=64, temporal_size=64, temporal_overlap=8, ctx=ctx)
    assert ctx.warnings and "made smaller to fit the memory budget" in ctx.warnings[0]
    whole = vae_decode_tiled(latent, vae, tile_size=512, overlap=64, temporal_size=64, temporal_overlap=8)
    assert small.shape == whole.shape == (33, 96, 128, 3)
    assert (small.float() - whole.float()).abs().mean() < 0.25             # tiles see less context


def test_the_decode_plan_counts_the_encoder_that_reads_its_frames(loaded) -> None:
    """The streamed decode runs inside SaveVideo while x264 holds its frames: a budget with room for the decoder's
    weights and the requested tiles, but not for the encoder, makes the tiles smaller."""
    _, _, vae = loaded
    latent = VideoLatent(torch.randn(1, 128, 5, 3, 4, generator=torch.Generator().manual_seed(5)), 25.0, 33)
    requested = DecodeTiles((16, 16), 2, 8, 1)                       # 512 / 64 pixels, 64 / 8 frames
    working = decode_working_bytes(tuple(latent.samples.shape), requested, vae.decode_bytes_per_pixel,
                                   vae.scale_factors)
    encoder = encoder_bytes(128, 96, encoder_threads())                # x264 threads: one per usable CPU
    for budget, shrinks in ((vae.decoder_bytes + working + encoder, False), (vae.decoder_bytes + working, True)):
        ctx = OpContext("frames", settings=RunSettings(memory_budget=budget))
        vae_decode_tiled(latent, vae, tile_size=512, overlap=64, temporal_size=64, temporal_overlap=8, ctx=ctx)
        assert bool(ctx.warnings) == shrinks, (budget, ctx.warnings)
