"""Frames: an IMAGE [F, H, W, C] on the 8-bit grid (values ``k / 255``) that is not held as float.

A clip of 241 frames at 1920x1088 is 6 GB as float32 and 1.5 GB as bytes; a file writer needs neither, only a
few frames at a time. So frames travel in one of three forms, all with one interface (their ``shape``, their
uint8 codes in chunks of whole frames, and a float32 copy made only when an op asks for it):

- :class:`CodedFrames`: the uint8 codes in memory (loaded images and videos, resized 8-bit images); the disk
  cache stores the codes as they are.
- :class:`StreamedFrames`: made chunk by chunk when read (a VAE decode feeding a video encoder); nothing holds the
  whole clip, reading twice computes twice, and the disk cache does not store them (they are recomputed from
  their cached inputs).
- an op package's own kind, e.g. frames read back from a video file it wrote (stored as the file's path).

Ops that take IMAGE as a float tensor get one: the executor converts frames for every input whose annotation does
not name :class:`Frames` (:func:`ltxgraph.registry.op`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch

from . import unorm8
from .values import storable

CHUNK_FRAMES = 8
"""Frames per chunk when codes held in memory are read in chunks."""


class Frames:
    """IMAGE [F, H, W, C] frames on the 8-bit grid, readable in chunks. Subclasses give ``shape`` and
    :meth:`chunks`."""

    shape: torch.Size

    def chunks(self) -> Iterator[torch.Tensor]:
        """uint8 codes [n, H, W, C] of consecutive frames, n >= 1, in order, covering all F frames."""
        raise NotImplementedError

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return self.shape[0]

    def codes(self) -> torch.Tensor:
        """All codes, uint8 [F, H, W, C] (F H W C bytes)."""
        out = torch.empty(self.shape, dtype=torch.uint8)
        _fill(out, self.chunks(), lambda chunk: chunk)
        return out

    def float(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The frames as values ``k / 255`` in ``dtype`` [F, H, W, C], converted chunk by chunk (no second
        full-size temporary)."""
        out = torch.empty(self.shape, dtype=dtype)
        _fill(out, self.chunks(), lambda chunk: unorm8.unpack(chunk, dtype))
        return out


def _fill(out: torch.Tensor, chunks: Iterable[torch.Tensor], convert: Callable[[torch.Tensor], torch.Tensor]) -> None:
    done = 0
    for chunk in chunks:
        if chunk.dtype != torch.uint8 or tuple(chunk.shape[1:]) != tuple(out.shape[1:]):
            raise ValueError(f"frames chunk {tuple(chunk.shape)} {chunk.dtype} does not fit frames "
                             f"{tuple(out.shape)} uint8")
        if done + chunk.shape[0] > out.shape[0]:
            raise ValueError(f"frames gave more than the {out.shape[0]} frames they declare")
        out[done:done + chunk.shape[0]] = convert(chunk)
        done += chunk.shape[0]
    if done != out.shape[0]:
        raise ValueError(f"frames gave {done} of the {out.shape[0]} frames they declare")


@storable
@dataclass(frozen=True, eq=False)
class CodedFrames(Frames):
    """Frames held as their uint8 codes [F, H, W, C] (a quarter of float32)."""

    data: torch.Tensor

    def __post_init__(self) -> None:
        if self.data.dtype != torch.uint8 or self.data.ndim != 4:
            raise ValueError(f"coded frames need uint8 [F, H, W, C], got {self.data.dtype} {tuple(self.data.shape)}")

    @property
    def shape(self) -> torch.Size:  # type: ignore[override]
        return self.data.shape

    def chunks(self) -> Iterator[torch.Tensor]:
        for start in range(0, self.data.shape[0], CHUNK_FRAMES):
            yield self.data[start:start + CHUNK_FRAMES]

    def codes(self) -> torch.Tensor:
        return self.data


class StreamedFrames(Frames):
    """Frames made when read: ``produce()`` returns an iterator of uint8 chunks [n, H, W, C] (consecutive
    frames, in order) that together have ``shape``. Nothing is kept between reads."""

    def __init__(self, shape: tuple[int, int, int, int], produce: Callable[[], Iterable[torch.Tensor]]) -> None:
        self.shape = torch.Size(int(n) for n in shape)
        self._produce = produce

    def chunks(self) -> Iterator[torch.Tensor]:
        done = 0
        for chunk in self._produce():
            if chunk.dtype != torch.uint8 or tuple(chunk.shape[1:]) != self.shape[1:]:
                raise ValueError(f"frames chunk {tuple(chunk.shape)} {chunk.dtype} does not fit frames "
                                 f"{self.shape} uint8")
            done += chunk.shape[0]
            yield chunk
        if done != self.shape[0]:
            raise ValueError(f"frames gave {done} of the {self.shape[0]} frames they declare")


def first_frames(frames: Frames, count: int) -> StreamedFrames:
    """The first ``count`` frames of ``frames`` (read from them when read; the rest is never made)."""
    if not 0 < count <= frames.shape[0]:
        raise ValueError(f"cannot take the first {count} of {frames.shape[0]} frames")

    def produce() -> Iterator[torch.Tensor]:
        left = count
        for chunk in frames.chunks():
            yield chunk[:left]
            left -= min(left, chunk.shape[0])
            if not left:
                return

    return StreamedFrames((count, *frames.shape[1:]), produce)


def coded(images: torch.Tensor) -> CodedFrames:
    """IMAGE [F, H, W, C] floats -> their nearest 8-bit codes (``round(255 x)``, clamped to [0, 1]), as frames.
    Values already on the grid are kept exactly; others are snapped, the rounding an 8-bit file applies."""
    codes = torch.empty(images.shape, dtype=torch.uint8)
    for start in range(0, images.shape[0], CHUNK_FRAMES):
        part = images[start:start + CHUNK_FRAMES]
        codes[start:start + CHUNK_FRAMES] = part.to(torch.float32).clamp(0, 1).mul_(unorm8.LEVELS).round_()
    return CodedFrames(codes)


def same_depth(source: torch.Tensor | Frames, result: torch.Tensor) -> torch.Tensor | Frames:
    """An op's float ``result`` made from ``source``: coded to 8 bits when the source was 8-bit frames (so a
    resized 8-bit image stays compact), else as it is."""
    return coded(result) if isinstance(source, Frames) else result


def float_images(images: torch.Tensor | Frames) -> torch.Tensor:
    """An IMAGE as a float tensor: frames converted (values k / 255 in float32), tensors as they are."""
    return images.float() if isinstance(images, Frames) else images
