"""VAE nodes of LTX-2.3 workflows (ComfyUI and ComfyUI-LTXVideo names): decoding a video latent in a grid of
overlapping spatial tiles, and VAEEncodeAudio (the core node for the LTX-2 audio VAE)."""
from __future__ import annotations

from typing import Annotated, Any

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph import unorm8
from ltxgraph.frames import CHUNK_FRAMES, CodedFrames
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


class RowBandBlend:
    """Blends the tiles of a grid (rows of tiles in order, each row's tiles in order) into 8-bit frames
    [N, H, W, 3], holding float sums only for a band of ``band_rows`` pixel rows: the rows of the current row of
    tiles. Each pixel gets the same float operations in the same order as one whole-frame accumulator (the sum of
    ``pixels * weight`` over its tiles, divided by the sum of the weights + 1e-8, snapped to 8 bits), so the codes
    are bit for bit that accumulator's; rows leave the band as codes once no later tile covers them
    (:meth:`finish_rows`). ``weight_sum`` [H, W] is the tiles' weights summed in the same order
    (:meth:`add_weight`, for every tile before the first :meth:`add`)."""

    def __init__(self, frames: int, height: int, width: int, band_rows: int) -> None:
        self.codes = torch.empty(frames, height, width, 3, dtype=torch.uint8)
        self.weight_sum = torch.zeros(height, width)
        self.band = torch.zeros(frames, min(band_rows, height), width, 3)   # sums of pixel rows top, top + 1, ...
        self.top = 0

    def add_weight(self, rows: slice, cols: slice, weight: torch.Tensor) -> None:
        self.weight_sum[rows, cols] += weight

    def add(self, pixels: torch.Tensor, rows: slice, cols: slice, weight: torch.Tensor) -> None:
        """Add a tile's 8-bit ``pixels`` [N, h, w, 3] times ``weight`` [h, w] at pixel ``rows`` x ``cols``."""
        if rows.start < self.top or rows.stop - self.top > self.band.shape[1]:
            raise ValueError(f"tile rows {rows.start}..{rows.stop} are outside the open band "
                             f"{self.top}..{self.top + self.band.shape[1]}")
        band_rows = slice(rows.start - self.top, rows.stop - self.top)
        for start in range(0, pixels.shape[0], CHUNK_FRAMES):
            chunk = unorm8.unpack(pixels[start:start + CHUNK_FRAMES])
            self.band[start:start + CHUNK_FRAMES, band_rows, cols] += chunk * weight[:, :, None]

    def finish_rows(self, stop: int) -> None:
        """Rows above ``stop`` get no more tiles: normalise them, keep their 8-bit codes and move the band down."""
        count = stop - self.top
        if count <= 0:
            return
        if count > self.band.shape[1]:
            raise ValueError(f"rows {self.top}..{stop} were never all in the band of {self.band.shape[1]} rows")
        divisor = self.weight_sum[self.top:self.top + count, :, None] + 1e-8
        for start in range(0, self.codes.shape[0], CHUNK_FRAMES):
            finished = self.band[start:start + CHUNK_FRAMES, :count].div(divisor)
            self.codes[start:start + CHUNK_FRAMES, self.top:self.top + count] = (
                finished.clamp_(0, 1).mul_(unorm8.LEVELS).round_())
            carried = self.band[start:start + CHUNK_FRAMES, count:].clone()
            self.band[start:start + CHUNK_FRAMES, :carried.shape[1]] = carried
            self.band[start:start + CHUNK_FRAMES, carried.shape[1]:] = 0
        self.top += count


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
    Computation is float32 on the run's device (working_device / working_dtype are accepted for compatibility).
    Memory: every tile is decoded over all frames (as ComfyUI-LTXVideo's node does) and kept as 8-bit codes;
    float sums are held for the tallest row of tiles only (:class:`RowBandBlend`), never for the whole clip."""
    latent = latents.video.samples if isinstance(latents, AVLatent) else latents.samples
    if last_frame_fix:
        latent = torch.cat([latent, latent[:, :, -1:]], dim=2)
    batch, _, frames, height, width = latent.shape
    time_scale, h_scale, w_scale = vae.scale_factors
    rows = tile_spans(height, fitting_tiles(height, vertical_tiles, overlap), overlap)
    cols = tile_spans(width, fitting_tiles(width, horizontal_tiles, overlap), overlap)
    band_rows = max(bottom - top for top, bottom in rows) * h_scale      # a row of tiles and what it carries over
    blend = RowBandBlend(batch * (1 + (frames - 1) * time_scale), height * h_scale, width * w_scale, band_rows)
    weights = {}
    for v, (top, bottom) in enumerate(rows):
        for h, (left, right) in enumerate(cols):
            down = edge_ramp((bottom - top) * h_scale, overlap * h_scale, v == 0, v == len(rows) - 1)
            across = edge_ramp((right - left) * w_scale, overlap * w_scale, h == 0, h == len(cols) - 1)
            weights[v, h] = down[:, None] * across[None, :]
            blend.add_weight(slice(top * h_scale, bottom * h_scale), slice(left * w_scale, right * w_scale),
                             weights[v, h])
    for v, (top, bottom) in enumerate(rows):
        for h, (left, right) in enumerate(cols):
            pixels = vae.decode_codes(latent[:, :, :, top:bottom, left:right])
            blend.add(pixels, slice(top * h_scale, bottom * h_scale), slice(left * w_scale, right * w_scale),
                      weights[v, h])
            if ctx is not None:
                ctx.step(v * len(cols) + h + 1, len(rows) * len(cols))
        blend.finish_rows(rows[v + 1][0] * h_scale if v + 1 < len(rows) else height * h_scale)
    return CodedFrames(blend.codes[:-time_scale] if last_frame_fix else blend.codes)


@op("VAEEncodeAudio", outputs={"LATENT": "AUDIO_LATENT"}, category="latent/audio")
def vae_encode_audio(audio: Annotated[Audio, Port("AUDIO")],
                     vae: Annotated[AudioVAEHandle, Port("AUDIO_VAE")]) -> AudioLatent:
    """A waveform -> its audio latent with the LTX-2 audio VAE (resampled to the VAE's rate, log-mel,
    encoder), as LTXVAudioVAEEncode."""
    return ltxv_audio_vae_encode(audio, vae)
