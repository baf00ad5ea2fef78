"""VAE values: the LTX-2 video VAE as graphs see it.

IMAGE batches are frames: an IMAGE [F, H, W, C] in [0, 1] is a clip of F frames. ``encode`` maps it to a
normalised latent [1, 128, 1 + (F-1)/8, H/32, W/32]; ``decode`` maps latents back to frames. The model itself
(:mod:`ltxgraph_ops.models.video_vae`) is read from its file on first use.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol

import torch

from ltxgraph import unorm8
from ltxgraph.budget import decoder_bytes_per_pixel
from ltxgraph.frames import CHUNK_FRAMES, StreamedFrames
from ltxgraph.errors import InputValueError
from ltxgraph_ops.handles import Lazy
from ltxgraph_ops.models.progress import Counter

SCALE_FACTORS = (8, 32, 32)  # pixel frames, rows, columns per latent cell (LTX-2's video VAE)


class VideoAutoencoder(Protocol):
    """encode: [B, 3, F, H, W] in [-1, 1] -> latent; decode: latent -> [B, 3, F, H, W] in [-1, 1]. Both may
    take ``on_block``, a ``(done, total)`` callback after each of their blocks (passed only when given)."""

    def encode(self, pixels: torch.Tensor) -> torch.Tensor: ...
    def decode(self, latent: torch.Tensor) -> torch.Tensor: ...


DecodeMethod = Callable[[VideoAutoencoder, torch.Tensor, Counter | None], torch.Tensor]
ChunkedDecodeMethod = Callable[[VideoAutoencoder, torch.Tensor, Counter | None], Iterator[torch.Tensor]]
"""(model, latent [1, C, F, H, W], counter) -> pixels [1, 3, n, H', W'] of consecutive frames, in order."""


def pixel_codes(pixels: torch.Tensor) -> torch.Tensor:
    """Decoder pixels [1, 3, n, H, W] in [-1, 1] -> uint8 IMAGE codes [n, H, W, 3]: ``round(255 (x + 1) / 2)``,
    clamped; the codes of exactly the values :func:`ltxgraph.unorm8.snap` gives."""
    codes = (pixels + 1).div_(2).clamp_(0, 1).mul_(unorm8.LEVELS).round_().to(torch.uint8)
    return codes[0].permute(1, 2, 3, 0).contiguous()


def _each_in_inference_mode(chunks: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
    """Advance ``chunks`` under inference mode without leaving the mode on for the consumer between chunks."""
    iterator = iter(chunks)
    while True:
        with torch.inference_mode():
            chunk = next(iterator, None)
        if chunk is None:
            return
        yield chunk


@dataclass(frozen=True)
class VideoVAEHandle:
    """VAE: a video autoencoder (built on first use) with its scale factors (time, height, width) and latent
    channels. For planning a decode against the memory budget: ``decoder_bytes``, the decoder's weights as
    computed (float32), and ``decode_bytes_per_pixel``, its activations per output pixel-frame
    (:func:`ltxgraph.budget.decoder_bytes_per_pixel`)."""

    source: str
    model: Lazy[VideoAutoencoder]
    latent_channels: int = 128
    scale_factors: tuple[int, int, int] = SCALE_FACTORS
    statistics: Lazy[tuple[torch.Tensor, torch.Tensor]] | None = None
    decoder_bytes: int = 0
    decode_bytes_per_pixel: int = decoder_bytes_per_pixel(128, 4)

    def channel_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel (mean, std) [C] that normalise this VAE's latents (read without loading the VAE when
        the handle knows its file)."""
        if self.statistics is not None:
            return self.statistics.get()
        stats = self.model.get().per_channel_statistics  # type: ignore[attr-defined]
        return getattr(stats, "mean-of-means"), getattr(stats, "std-of-means")

    def encode(self, images: torch.Tensor, on_block: Counter | None = None) -> torch.Tensor:
        """IMAGE [F, H, W, C>=3] in [0, 1] (F = 8n+1, H and W multiples of the spatial factors) -> latent
        [1, 128, 1 + (F-1)/8, H/32, W/32]; ``on_block(done, total)`` after each encoder block."""
        frames, height, width = images.shape[:3]
        t, h, w = self.scale_factors
        if (frames - 1) % t or height % h or width % w:
            raise InputValueError(f"images of {frames} frames at {width}x{height} cannot be encoded: frames must "
                                  f"be {t}n+1 and the size a multiple of {w}x{h}")
        pixels = images[..., :3].float().movedim(-1, 0).unsqueeze(0) * 2 - 1          # [1, 3, F, H, W]
        with torch.inference_mode():
            model = self.model.get()
            return model.encode(pixels) if on_block is None else model.encode(pixels, on_block=on_block)

    def decode(self, latent: torch.Tensor, method: DecodeMethod | None = None,
               on_progress: Counter | None = None) -> torch.Tensor:
        """latent [B, 128, F, H, W] -> IMAGE [B * (8(F-1)+1), 32H, 32W, 3] in [0, 1] (batch items one after
        the other), on the 8-bit grid k/255 that an MP4 or PNG holds (so the disk cache keeps it as bytes).
        ``method(model, latent, on_progress)`` replaces the plain decode (e.g. a tiled one, which
        counts tiles); the plain decode counts decoder blocks with ``on_progress(done, total)``."""
        self._check_latent(latent)
        with torch.inference_mode():
            model = self.model.get()
            if method is not None:
                pixels = method(model, latent.float(), on_progress)
            elif on_progress is not None:
                pixels = model.decode(latent.float(), on_block=on_progress)
            else:
                pixels = model.decode(latent.float())
        images = unorm8.snap((pixels + 1) / 2).permute(0, 2, 3, 4, 1)                 # [B, F, H, W, 3]
        return images.reshape(-1, *images.shape[2:])

    def decode_codes(self, latent: torch.Tensor, on_progress: Counter | None = None) -> torch.Tensor:
        """latent [B, 128, F, H, W] -> uint8 IMAGE codes [B * (8(F-1)+1), 32H, 32W, 3], one plain decode of the
        whole batch: the codes of exactly the values :meth:`decode` gives, converted a few frames at a time (no
        float copy of the clip beside the decoder's own output)."""
        self._check_latent(latent)
        with torch.inference_mode():
            model = self.model.get()
            pixels = model.decode(latent.float()) if on_progress is None else model.decode(latent.float(),
                                                                                           on_block=on_progress)
        batch, _, frames, height, width = pixels.shape
        codes = torch.empty(batch * frames, height, width, 3, dtype=torch.uint8)
        for item in range(batch):
            for start in range(0, frames, CHUNK_FRAMES):
                stop = min(start + CHUNK_FRAMES, frames)
                codes[item * frames + start:item * frames + stop] = pixel_codes(pixels[item:item + 1, :, start:stop])
        return codes

    def decode_frames(self, latent: torch.Tensor, method: ChunkedDecodeMethod,
                      on_progress: Counter | None = None) -> StreamedFrames:
        """latent [B, 128, F, H, W] -> IMAGE frames [B * (8(F-1)+1), 32H, 32W, 3], decoded when read, chunk by
        chunk (``method`` yields consecutive pixel chunks of one batch item), as 8-bit codes: equal to
        :meth:`decode` with the same method's chunks joined, without ever holding the whole clip."""
        self._check_latent(latent)
        batch, _, frames, height, width = latent.shape
        t, h, w = self.scale_factors
        latent = latent.detach().float()

        def produce() -> Iterator[torch.Tensor]:
            model = self.model.get()
            for item in range(batch):
                yield from (pixel_codes(pixels) for pixels in method(model, latent[item:item + 1], on_progress))

        return StreamedFrames((batch * (1 + (frames - 1) * t), height * h, width * w, 3),
                              lambda: _each_in_inference_mode(produce()))

    def _check_latent(self, latent: torch.Tensor) -> None:
        if latent.ndim != 5 or latent.shape[1] != self.latent_channels:
            raise InputValueError(f"a video latent [batch, {self.latent_channels}, frames, height, width] is needed, "
                                  f"got shape {tuple(latent.shape)}")
