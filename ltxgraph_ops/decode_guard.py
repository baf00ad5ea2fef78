"""Decoding under :class:`~ltxgraph.media_limits.MediaLimits`: a file is opened with FFmpeg's own pixel limit (so
not even stream probing decodes an oversized frame), its declared size is checked before any decode, and frames
and samples are counted while decoding so a file whose header lies stops at the limit, not after."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.media_limits import MediaLimits
from ltxgraph.wording import API_NAMES
from ltxgraph_ops.image_headers import declared_image_size

AUDIO_SAMPLE_BYTES = 4          # audio is held as float32


class MediaTooLarge(InputValueError):
    """An input file decodes (or declares it would decode) to more than the media limits allow."""


def _amount(value: float, unit: str = "") -> str:
    for size, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= size:
            return f"{value / size:.1f} {prefix}{unit}".rstrip()
    return f"{value:g} {unit}".rstrip()


@dataclass
class DecodeBudget:
    """What one file may still decode: counts frames, bytes and audio seconds against ``limits`` and raises
    :class:`MediaTooLarge` (naming the file, the amount, the limit and the option that raises it) before a frame
    or sample block over the limit is kept."""

    path: str
    limits: MediaLimits
    option: str = API_NAMES.media_limits
    frames: int = 0
    bytes: int = 0
    audio_seconds: float = 0.0

    @classmethod
    def for_file(cls, path: str | Path, ctx: OpContext | None) -> "DecodeBudget":
        if ctx is None:
            return cls(str(path), MediaLimits())
        return cls(str(path), ctx.settings.media_limits, ctx.folders.names.media_limits)

    def refuse(self, what: str, limit_name: str, limit: str) -> MediaTooLarge:
        hint = self.option.format(name=limit_name)
        return MediaTooLarge(f"{self.path}: {what}, over the limit of {limit} ({limit_name}; raise it with {hint})")

    def check_frame_size(self, width: int, height: int, declared: bool = True) -> None:
        limit = self.limits.pixels
        if limit and width * height > limit:
            verb = "declares" if declared else "decodes to"
            raise self.refuse(f"{verb} {width}x{height} pixels per frame ({_amount(width * height, 'P')})",
                              "pixels", _amount(limit, "P"))

    def check_declared_video(self, width: int, height: int, frames: int, channels: int) -> None:
        """Before decoding: ``frames`` (0 = not declared) frames of width x height x channels bytes."""
        self.check_frame_size(width, height)
        if self.limits.frames and frames > self.limits.frames:
            raise self.refuse(f"declares {frames} frames", "frames", str(self.limits.frames))
        total = self.bytes + frames * width * height * channels
        if self.limits.bytes and total > self.limits.bytes:
            raise self.refuse(f"declares {frames} frames of {width}x{height} ({_amount(total, 'B')} decoded)",
                              "bytes", _amount(self.limits.bytes, "B"))

    def add_frame(self, width: int, height: int, channels: int) -> None:
        """Count one decoded frame (call before keeping it)."""
        self.check_frame_size(width, height, declared=False)
        self.frames += 1
        self.bytes += width * height * channels
        if self.limits.frames and self.frames > self.limits.frames:
            raise self.refuse(f"holds more than {self.limits.frames} frames (decoding stopped there)", "frames",
                              str(self.limits.frames))
        if self.limits.bytes and self.bytes > self.limits.bytes:
            raise self.refuse(f"decodes to more than {self.frames - 1} frames of {width}x{height} (decoding stopped "
                              f"there)", "bytes", _amount(self.limits.bytes, "B"))

    def check_declared_audio(self, seconds: float, rate: int, channels: int) -> None:
        """Before decoding: ``seconds`` (0 = not declared) of ``channels`` channels at ``rate`` Hz."""
        limit = self.limits.audio_seconds
        if limit and seconds > limit:
            raise self.refuse(f"declares {seconds:.1f} s of audio", "audio_seconds", f"{limit:g} s")
        total = self.bytes + round(seconds * rate) * channels * AUDIO_SAMPLE_BYTES
        if self.limits.bytes and total > self.limits.bytes:
            raise self.refuse(f"declares {seconds:.1f} s of {channels}-channel audio at {rate} Hz "
                              f"({_amount(total, 'B')} decoded)", "bytes", _amount(self.limits.bytes, "B"))

    def add_samples(self, samples: int, rate: int, channels: int) -> None:
        """Count one decoded block of audio (call before keeping it)."""
        self.audio_seconds += samples / rate
        self.bytes += samples * channels * AUDIO_SAMPLE_BYTES
        limit = self.limits.audio_seconds
        if limit and self.audio_seconds > limit:
            raise self.refuse(f"holds more than {limit:g} s of audio (decoding stopped there)", "audio_seconds",
                              f"{limit:g} s")
        if self.limits.bytes and self.bytes > self.limits.bytes:
            raise self.refuse(f"decodes to more audio than fits (decoding stopped after {self.audio_seconds:.1f} s)",
                              "bytes", _amount(self.limits.bytes, "B"))


def open_limited(budget: DecodeBudget) -> av.container.InputContainer:
    """``budget.path`` opened for decoding with FFmpeg refusing frames over the pixel limit (in stream probing
    and in every decoder); a still image whose header declares too many pixels is refused before FFmpeg sees
    it, and a video stream FFmpeg could not size under the limit is refused too."""
    size = declared_image_size(budget.path)
    if size is not None:
        budget.check_frame_size(*size)
    if not budget.limits.pixels:
        return av.open(budget.path)
    options = {"max_pixels": str(budget.limits.pixels)}
    container = av.open(budget.path, options=options)
    for stream in container.streams.video:
        stream.codec_context.options = dict(options)
        if stream.codec_context.width == 0:
            container.close()
            raise budget.refuse("has frames FFmpeg would not size within the pixel limit (or cannot decode)",
                                "pixels", _amount(budget.limits.pixels, "P"))
    return container
