"""How much an input file may decode to (the decompression-bomb guard): pixels per frame, frames, decoded bytes
and seconds of audio. Loaders check a file's declared size against these before decoding anything, and count
while decoding so a header that lies is stopped at the limit, not after.

The defaults fit real LTX-2 inputs with room to spare:
- pixels 8192 x 8192 (67.1 MP): 8K stills (7680 x 4320, 8192 x 4320) and square 8K;
- frames 5000: 200 s at 25 fps, 100 s at 50 fps (LTX-2 generates up to ~20 s);
- bytes 6 GiB decoded (8-bit RGB(A) frames, float32 audio samples): 257 frames of 4K UHD (3840 x 2160 x 3 bytes
  x 257 = 5.96 GiB), about 1000 frames of 1080p;
- audio_seconds 600: a whole song to drive audio-to-video (an LTX-2 clip lasts seconds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from .errors import InvalidInput

SIZE_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
              "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}


@dataclass(frozen=True)
class MediaLimits:
    """Largest input media a loader decodes. pixels: width x height of one frame; frames: frames of one file;
    bytes: all decoded frames (width x height x channels at 8 bits) plus audio (float32 samples x channels);
    audio_seconds: duration of one audio track. 0 turns a limit off."""

    pixels: int = 8192 * 8192
    frames: int = 5000
    bytes: int = 6 * 2**30
    audio_seconds: float = 600.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InvalidInput(f"MediaLimits({item.name}={value!r}): must be 0 (no limit) or a positive number")

    @classmethod
    def parse(cls, text: str, base: "MediaLimits | None" = None) -> "MediaLimits":
        """``"pixels=100M,frames=10000,bytes=16Gi,audio_seconds=3600"`` (any subset; K/M/G are powers of 1000,
        Ki/Mi/Gi/Ti of 1024; 0 or ``none`` turns a limit off) -> limits, unnamed ones from ``base``."""
        names = [f.name for f in fields(cls)]
        changes: dict[str, float | int] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, raw = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in names:
                raise InvalidInput(f"media limit {item!r}: write NAME=VALUE with NAME one of {', '.join(names)}")
            value = _parse_amount(raw.strip())
            if value is None:
                raise InvalidInput(f"media limit {item!r}: {raw.strip()!r} is not a number (e.g. 100M, 16Gi, 0)")
            changes[name] = value if name == "audio_seconds" else int(value)
        return replace(base or cls(), **changes)


def _parse_amount(raw: str) -> float | None:
    if raw.lower() in ("none", "off"):
        return 0.0
    upper = raw.upper().removesuffix("B")
    digits = upper.rstrip("KMGTI")
    unit = upper[len(digits):]
    try:
        value = float(digits) * SIZE_UNITS[unit]
    except (ValueError, KeyError):
        return None
    return value if math.isfinite(value) and value >= 0 else None
