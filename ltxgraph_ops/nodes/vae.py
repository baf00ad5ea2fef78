"""VAE nodes of LTX-2.3 workflows (ComfyUI and ComfyUI-LTXVideo names): decoding a video latent in a grid of
overlapping spatial tiles, and VAEEncodeAudio (the core node for the LTX-2 audio VAE)."""
from __future__ import annotations

from typing import Annotated, Any

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.frames import CodedFrames, coded
from ltxgraph.values import Audio, AudioLatent, AVLatent
from ltxgraph_ops.audio_ops import AudioVAEHandle, ltxv_audio_vae_encode
from ltxgraph_ops.vae_handle import VideoVAEHandle


def tile_length(size: int, tiles: int, overlap: int) -> int:
    """Latent cells per tile when ``tiles`` tiles overlapping by ``overlap`` cover ``size`` cells."""
    return (size + (tiles - 1) * overlap) // tiles


def fitting_tiles(size: int, tiles: int, overlap: int) -> int:
    """The most tiles, up to ``tiles``, that cover ``size`` cells overlapping by ``overlap`` while each tile
    still advances past the previous one (tile length > overlap); 1 when none do. A latent smaller than the
    requested grid (e.g. a workflow run at a smaller size) is decoded in fewer, larger tiles."""
    while tiles > 1 and tile_length(size, tiles, overlap) <= overlap:
        tiles -= 1
    return tiles


def tile_spans(size: int, tiles: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) latent cells of ``tiles`` tiles of (size + (tiles-1) overlap) // tiles cells along an axis
    of ``size``, each starting ``overlap`` before the previous one ends; the last runs to the end."""
    length = tile_length(size, tiles, overlap)
    if tiles > 1 and length <= overlap:
        raise InputValueError(f"{tiles} tiles overlapping by {overlap} do not fit {size} latent cells")
    spans = []
    for index in range(tiles):
        start = index * (length - overlap)
        spans.append((start, size if index == tiles - 1 else min(start + length, size)))
    return spans


def edge_ramp(length: int, overlap: int, first: bool, last: bool) -> torch.Tensor:
    """[length] blend weights of a tile along one axis: rising 0 -> 1 over ``overlap`` pixels where a tile
    precedes it, falling 1 -> 0 where one follows, 1 elsewhere."""
    weight = torch.ones(length)
    if overlap > 0 and not first:
        weight[:overlap] *= torch.linspace(0, 1, overlap)
    if overlap > 0 and not last:
        weight[length - overlap:] *= torch.linspace(1, 0, overlap)
    return weight


@op("LTXVTiledVAEDecode", outputs={"image": "IMAGE"}, category="latent")
def tiled_vae_decode(vae: Annotated[VideoVAEHandle, Port("VAE")],
                     latents: Annotated[Any, Port("VIDEO_LATENT|AV_LATENT")],
                     horizontal_tiles: Annotated[int, Port("INT", min=1, max=6)] = 1,
                     vertical_tiles: Annotated[int, Port("INT", min=1, max=6)] = 1,
                     overlap: Annotated[int, Port("INT", min=1, max=8)] = 1,
                     last_frame_fix: Annotated[bool, Port("BOOLEAN")] = False,
                     working_device: Annotated[str, Port("STRING", choices=("cpu", "auto"), optional=True)] = "auto",
                     working_dtype: Annotated[str, Port("STRING", choices=("float16", "float32", "auto"),
                                                        optional=True)] = "auto",
                     ctx: OpContext = None) -> CodedFrames:
    """Decode a video latent as horizontal_tiles x vertical_tiles tiles overlapping by ``overlap`` latent cells,
    blended with linear ramps across each overlap (IMAGE [B * frames, H, W, 3] as 8-bit codes; progress per
    tile); an axis too small for its tiles at that overlap gets fewer tiles (see :func:`fitting_tiles`).
    last_frame_fix: the last latent frame is repeated before decoding and its 8 extra frames dropped.
    Computation is float32 on the run's device (working_device / working_dtype are accepted for compatibility)."""
    latent = latents.video.samples if isinstance(latents, AVLatent) else latents.samples
    if last_frame_fix:
        latent = torch.cat([latent, latent[:, :, -1:]], dim=2)
    batch, _, frames, height, width = latent.shape
    time_scale, h_scale, w_scale = vae.scale_factors
    out_frames = 1 + (frames - 1) * time_scale
    image = torch.zeros(batch, out_frames, height * h_scale, width * w_scale, 3)
    total = torch.zeros(1, 1, height * h_scale, width * w_scale, 1)
    rows = tile_spans(height, fitting_tiles(height, vertical_tiles, overlap), overlap)
    cols = tile_spans(width, fitting_tiles(width, horizontal_tiles, overlap), overlap)
    for v, (top, bottom) in enumerate(rows):
        for h, (left, right) in enumerate(cols):
            pixels = vae.decode(latent[:, :, :, top:bottom, left:right])
            pixels = pixels.reshape(batch, out_frames, *pixels.shape[1:])
            weight = (edge_ramp((bottom - top) * h_scale, overlap * h_scale, v == 0, v == len(rows) - 1)[:, None]
                      * edge_ramp((right - left) * w_scale, overlap * w_scale, h == 0, h == len(cols) - 1)[None, :])
            weight = weight[None, None, :, :, None]
            region = (slice(None), slice(None), slice(top * h_scale, bottom * h_scale),
                      slice(left * w_scale, right * w_scale))
            image[region] += pixels * weight
            total[region] += weight
            if ctx is not None:
                ctx.step(v * len(cols) + h + 1, len(rows) * len(cols))
    image = image.div_(total + 1e-8).reshape(batch * out_frames, *image.shape[2:])
    return coded(image[:-time_scale] if last_frame_fix else image)


@op("VAEEncodeAudio", outputs={"LATENT": "AUDIO_LATENT"}, category="latent/audio")
def vae_encode_audio(audio: Annotated[Audio, Port("AUDIO")],
                     vae: Annotated[AudioVAEHandle, Port("AUDIO_VAE")]) -> AudioLatent:
    """A waveform -> its audio latent with the LTX-2 audio VAE (resampled to the VAE's rate, log-mel,
    encoder), as LTXVAudioVAEEncode."""
    return ltxv_audio_vae_encode(audio, vae)
