"""Video VAE ops with ComfyUI's names: the checkpoint loader (MODEL, CLIP slot, VAE), encode and decode, plain
and tiled.

Frames: an IMAGE batch is a clip. Encoding needs 8n+1 frames and sizes that are multiples of 32 (anything else is
refused with the sizes to use); decoding gives 8(F-1)+1 frames per latent of F frames. Latents remember their fps
and pixel frame count.
"""
from __future__ import annotations

from typing import Annotated, Any

import torch

from ltxgraph import Port, op
from ltxgraph.budget import (DecodeTiles, decoder_bytes_per_pixel, encoder_bytes, encoder_threads,
                             plan_decode_tiles)
from ltxgraph.context import OpContext, counter_of
from ltxgraph.errors import InputValueError
from ltxgraph.frames import CodedFrames, Frames, StreamedFrames, first_frames
from ltxgraph.input_checks import input_check, refusal
from ltxgraph.values import AVLatent, VideoLatent
from ltxgraph_ops.handles import Lazy, ModelHandle
from ltxgraph_ops.latents import pixel_frames
from ltxgraph_ops.loaders import model_handle
from ltxgraph_ops.model_files import check_kind, component_layout, header_section
from ltxgraph_ops.models.progress import Counter
from ltxgraph_ops.models.tiling import MIN_TILE_CELLS
from ltxgraph_ops.vae_handle import SCALE_FACTORS, VideoVAEHandle
from ltxgraph_ops.weights.loading import load_component, parameters_on_meta
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile

VAE_PREFIX, VAE_SECTION = "vae.", "vae"


def _build_vae(section: dict) -> torch.nn.Module:
    from ltxgraph_ops.models.video_vae import VideoVAE, VideoVAEConfig
    return VideoVAE(VideoVAEConfig.from_header(section))


class PartwiseVideoVAE:
    """The checkpoint's video VAE with its encoder and decoder each read on first use: a graph that only
    decodes never holds the encoder (694M of the release's 1.2G parameters, 2.8 GB in float32). Encoder and
    decoder compute in ``dtype`` (weights held in it); pixels and latents come and go in float32."""

    def __init__(self, path: str, device: str | torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.path, self.device, self.dtype = path, device, dtype
        file = SafetensorsFile(path)
        with parameters_on_meta():
            self.model = _build_vae(header_section(file, VAE_SECTION))
        load_component(self.model.per_channel_statistics, file, f"{VAE_PREFIX}per_channel_statistics.",
                       device=device)

    @property
    def per_channel_statistics(self) -> torch.nn.Module:
        return self.model.per_channel_statistics

    def _ensure(self, part: str) -> None:
        module = getattr(self.model, part)
        if any(t.device.type == "meta" for t in module.state_dict().values()):
            load_component(module, SafetensorsFile(self.path), f"{VAE_PREFIX}{part}.", self.dtype,
                           device=self.device)

    def encode(self, pixels: torch.Tensor, on_block: Counter | None = None) -> torch.Tensor:
        self._ensure("encoder")
        return self.model.encode(pixels.to(self.dtype), on_block).float()

    def decode(self, latent: torch.Tensor, on_block: Counter | None = None) -> torch.Tensor:
        self._ensure("decoder")
        return self.model.decode(latent.to(self.dtype), on_block).float()


def vae_statistics(path: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel latent statistics (mean-of-means, std-of-means) of a video VAE file, float32."""
    stats = SafetensorsFile(path)
    return tuple(stats.read(f"{VAE_PREFIX}per_channel_statistics.{name}").float()
                 for name in ("mean-of-means", "std-of-means"))  # type: ignore[return-value]


def video_vae_handle(path: str, ctx: OpContext | None) -> VideoVAEHandle:
    """VAE of an LTX-2 checkpoint: its tensors checked against the header config now, read on first use. An
    LTX-2.5 diffusion VAE (by its header) gets its own model behind the same handle."""
    file = SafetensorsFile(path)
    device = ctx.settings.device if ctx else "cpu"
    dtype = ctx.settings.compute_dtype if ctx else torch.float32
    from ltxgraph_ops.diffusion_vae import diffusion_vae_handle, is_diffusion_vae
    if is_diffusion_vae(file):
        return diffusion_vae_handle(path, device, dtype)
    layout = component_layout(file, _build_vae, VAE_SECTION, VAE_PREFIX)
    config = getattr(layout, "config", None)
    channels = getattr(config, "latent_channels", 128)
    decoder = getattr(layout, "decoder", None)
    return VideoVAEHandle(file.name, Lazy(lambda: PartwiseVideoVAE(path, device, dtype), f"video VAE of {file.name}"),
                          latent_channels=channels, statistics=Lazy(lambda: vae_statistics(path), f"VAE statistics of {file.name}"),
                          scale_factors=getattr(config, "scale_factors", SCALE_FACTORS),
                          decoder_bytes=dtype.itemsize * sum(p.numel() for p in decoder.parameters()) if decoder is not None else 0,
                          decode_bytes_per_pixel=decoder_bytes_per_pixel(getattr(config, "decoder_base_channels", 128),
                                                                         getattr(config, "patch_size", 4)))


@input_check("ckpt_name")
def transformer_checkpoint(ckpt_name: str) -> str | None:
    """Refuses a checkpoint whose header describes no LTX-2 transformer or no video VAE."""
    return refusal(check_kind, ckpt_name, "transformer", VAE_SECTION)


@op("CheckpointLoaderSimple", outputs={"MODEL": "MODEL", "CLIP": "CLIP", "VAE": "VAE"}, category="loaders",
    checks=(transformer_checkpoint,))
def checkpoint_loader_simple(ckpt_name: Annotated[str, Port("STRING", file="checkpoints")],
                             ctx: OpContext = None) -> tuple[ModelHandle, None, VideoVAEHandle]:
    """The transformer (MODEL) and video VAE of an LTX-2 checkpoint. The CLIP slot is empty: LTX-2's text
    encoder is a separate file (LTXAVTextEncoderLoader)."""
    ctx = ctx or OpContext("CheckpointLoaderSimple")
    return model_handle(ckpt_name, ctx), None, video_vae_handle(ckpt_name, ctx)


def _video_part(samples: VideoLatent | AVLatent) -> VideoLatent:
    return samples.video if isinstance(samples, AVLatent) else samples


def _check_pixels(pixels: torch.Tensor, vae: VideoVAEHandle) -> torch.Tensor:
    if pixels.ndim != 4 or pixels.shape[-1] < 3:
        raise InputValueError(f"pixels must be an IMAGE [frames, height, width, channels], got {tuple(pixels.shape)}")
    t, h, w = vae.scale_factors
    frames, height, width = pixels.shape[:3]
    problems = []
    if (frames - 1) % t:
        low = (frames - 1) // t * t + 1
        problems.append(f"{frames} frames is not {t}n+1 (use {low} or {low + t})")
    if height % h or width % w:
        problems.append(f"{width}x{height} is not a multiple of {w}x{h} (use {width // w * w}x{height // h * h})")
    if problems:
        raise InputValueError("cannot encode: " + "; ".join(problems))
    return pixels


@op("VAEEncode", outputs={"LATENT": "VIDEO_LATENT"}, category="latent")
def vae_encode(pixels: Annotated[torch.Tensor, Port("IMAGE")],
               vae: Annotated[VideoVAEHandle, Port("VAE")], ctx: OpContext = None) -> VideoLatent:
    """A clip (IMAGE, 8n+1 frames, multiples of 32) -> its normalised latent; fps is set later by the
    conditioning (None here). Progress: encoder blocks."""
    latent = vae.encode(_check_pixels(pixels, vae), counter_of(ctx, "block"))
    return VideoLatent(latent, None, pixels.shape[0])


@op("VAEDecode", outputs={"IMAGE": "IMAGE"}, category="latent")
def vae_decode(samples: Annotated[Any, Port("VIDEO_LATENT|AV_LATENT")],
               vae: Annotated[VideoVAEHandle, Port("VAE")], ctx: OpContext = None) -> CodedFrames:
    """Video latent (or the video of an AV latent) -> frames (IMAGE [8(F-1)+1, H*32, W*32, 3], held as 8-bit
    codes, converted from the decoder's output a few frames at a time). Progress: decoder blocks."""
    return CodedFrames(vae.decode_codes(_video_part(samples).samples, on_progress=counter_of(ctx, "block")))


def _streamed_tiled_decode(vae: VideoVAEHandle, latent: torch.Tensor, requested: DecodeTiles,
                           ctx: OpContext | None) -> StreamedFrames:
    """Frames of ``latent`` decoded when read, in overlapping tiles (latent units) blended chunk by chunk
    (:func:`tiling.tiled_decode_chunks`): the ``requested`` tiles, made smaller when the run's memory budget
    (less the decoder's weights) cannot hold their working memory. Ramps start at 1/(n+1) like
    ComfyUI-LTXVideo's temporal blend; ltx-core's own tiled decode is ``tiling.ltx_core_tiled_decode`` (ramp
    from 0), which no op uses. The frames are read by their consumer, the H.264 encoder of SaveVideo, while the
    decode runs, so the encoder's memory (:func:`~ltxgraph.budget.encoder_bytes`, at its thread count) is
    counted against the budget with the decoder's weights. Tiles are counted when read."""
    from ltxgraph_ops.models.tiling import tiled_decode_chunks
    _, h, w = vae.scale_factors
    encoder = encoder_bytes(latent.shape[-1] * w, latent.shape[-2] * h, encoder_threads())
    available = ctx.settings.budget.remaining(vae.decoder_bytes + encoder) if ctx is not None else None
    tiles = plan_decode_tiles(tuple(latent.shape), requested, available, vae.decode_bytes_per_pixel,
                              vae.scale_factors)
    if tiles != requested and ctx is not None:
        ctx.warn(f"decode tiles {requested} made smaller to fit the memory budget: {tiles}")

    def method(model, item: torch.Tensor, on_tile: Counter | None):
        return tiled_decode_chunks(model.decode, item, tiles.spatial, tiles.spatial_overlap, tiles.temporal,
                                   tiles.temporal_overlap, vae.scale_factors, on_tile=on_tile)
    return vae.decode_frames(latent, method, counter_of(ctx, "tile"))


@input_check("overlap")
def overlap_below_tile(tile_size: int, overlap: int) -> str | None:
    """Refuses a tile overlap as large as the tile (pixels)."""
    return f"overlap {overlap} must be smaller than tile_size {tile_size}" if overlap >= tile_size else None


@op("VAEDecodeTiled", outputs={"IMAGE": "IMAGE"}, category="_for_testing", checks=(overlap_below_tile,))
def vae_decode_tiled(samples: Annotated[Any, Port("VIDEO_LATENT|AV_LATENT")],
                     vae: Annotated[VideoVAEHandle, Port("VAE")],
                     tile_size: Annotated[int, Port("INT", min=64, max=4096, multiple_of=32)] = 512,
                     overlap: Annotated[int, Port("INT", min=0, max=4096, multiple_of=32)] = 64,
                     temporal_size: Annotated[int, Port("INT", min=8, max=4096)] = 64,
                     temporal_overlap: Annotated[int, Port("INT", min=4, max=4096)] = 8,
                     ctx: OpContext = None) -> StreamedFrames:
    """Decode in overlapping tiles of ``tile_size`` pixels and ``temporal_size`` frames (overlaps in pixels and
    frames), blended so seams do not show; the same frames as VAEDecode with bounded memory: frames are decoded
    when read (e.g. by SaveVideo), a temporal tile at a time, and tiles shrink to fit ``--memory-budget``."""
    t, h, w = vae.scale_factors
    tile, lap = max(2, tile_size // w), overlap // w
    if lap >= tile:
        raise InputValueError(f"overlap {overlap} must be smaller than tile_size {tile_size}")
    frames, frames_lap = max(2, temporal_size // t), max(0, temporal_overlap // t)
    if frames_lap >= frames:
        frames_lap = frames - 1
    return _streamed_tiled_decode(vae, _video_part(samples).samples, DecodeTiles((tile, tile), lap, frames,
                                                                                 frames_lap), ctx)


@op("LTXVSpatioTemporalTiledVAEDecode", outputs={"image": "IMAGE"}, category="latent")
def spatio_temporal_tiled_decode(
        vae: Annotated[VideoVAEHandle, Port("VAE")],
        latents: Annotated[Any, Port("VIDEO_LATENT|AV_LATENT")],
        spatial_tiles: Annotated[int, Port("INT", min=1, max=8)] = 4,
        spatial_overlap: Annotated[int, Port("INT", min=0, max=8)] = 1,
        temporal_tile_length: Annotated[int, Port("INT", min=2, max=1000)] = 16,
        temporal_overlap: Annotated[int, Port("INT", min=0, max=8)] = 1,
        last_frame_fix: Annotated[bool, Port("BOOLEAN")] = False,
        working_device: Annotated[str, Port("STRING", choices=("cpu", "auto"))] = "auto",
        working_dtype: Annotated[str, Port("STRING", choices=("float16", "float32", "auto"))] = "auto",
        ctx: OpContext = None,
) -> Frames:
    """Decode in ``spatial_tiles`` x ``spatial_tiles`` tiles overlapping by ``spatial_overlap`` latent cells and
    temporal tiles of ``temporal_tile_length`` latent frames overlapping by ``temporal_overlap``. Computation
    is float32 on the run's device (working_device / working_dtype are accepted for compatibility). Frames are
    decoded when read, as VAEDecodeTiled's."""
    latent = _video_part(latents).samples
    if last_frame_fix:  # decode one repeated last frame and drop its pixels: keeps the true last frame sharp
        latent = torch.cat([latent, latent[:, :, -1:]], dim=2)
    _, _, frames, height, width = latent.shape
    tile_h = -(-(height + (spatial_tiles - 1) * spatial_overlap) // spatial_tiles)
    tile_w = -(-(width + (spatial_tiles - 1) * spatial_overlap) // spatial_tiles)
    tile = max(tile_h, tile_w, spatial_overlap + 1, MIN_TILE_CELLS)
    frames_lap = min(temporal_overlap, temporal_tile_length - 1)
    images = _streamed_tiled_decode(vae, latent, DecodeTiles((tile, tile), spatial_overlap, temporal_tile_length,
                                                             frames_lap), ctx)
    return first_frames(images, pixel_frames(frames - 1)) if last_frame_fix else images


@op("VAEEncodeTiled", outputs={"LATENT": "VIDEO_LATENT"}, category="_for_testing")
def vae_encode_tiled(pixels: Annotated[torch.Tensor, Port("IMAGE")],
                     vae: Annotated[VideoVAEHandle, Port("VAE")],
                     tile_size: Annotated[int, Port("INT", min=64, max=4096, multiple_of=32)] = 512,
                     overlap: Annotated[int, Port("INT", min=0, max=4096, multiple_of=32)] = 64,
                     temporal_size: Annotated[int, Port("INT", min=8, max=4096)] = 64,
                     temporal_overlap: Annotated[int, Port("INT", min=4, max=4096)] = 8,
                     ctx: OpContext = None) -> VideoLatent:
    """Encode in overlapping tiles (sizes in pixels and frames), blended in latent space with ramps; counts
    tiles. (ltx-core's tiled encode, which cuts the tiles' edge latents instead, is
    ``tiling.ltx_core_tiled_encode``.)"""
    from ltxgraph_ops.models.tiling import tiled_encode
    _check_pixels(pixels, vae)
    t, h, w = vae.scale_factors
    tile, lap = max(2, tile_size // w), overlap // w
    frames, frames_lap = max(2, temporal_size // t), max(0, min(temporal_overlap // t, temporal_size // t - 1))
    clip = pixels[..., :3].float().movedim(-1, 0).unsqueeze(0) * 2 - 1
    with torch.inference_mode():
        model = vae.model.get()
        latent = tiled_encode(model.encode, clip, tile, lap, frames, frames_lap, on_tile=counter_of(ctx, "tile"))
    return VideoLatent(latent, None, pixels.shape[0])
