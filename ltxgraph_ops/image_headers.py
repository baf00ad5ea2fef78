"""The width and height an image file declares, read from its first bytes without decoding a pixel: PNG (IHDR),
JPEG (the SOF marker), WebP (VP8 / VP8L / VP8X) and GIF (logical screen). Other formats: None (FFmpeg's own
pixel limit then guards the decode)."""
from __future__ import annotations

import struct
from pathlib import Path

HEADER_BYTES = 1 << 16
JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}       # TEM and RSTn carry no length


def declared_image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) in pixels from the header of a PNG, JPEG, WebP or GIF file; None for other formats or a
    header too damaged to read."""
    with open(path, "rb") as file:
        head = file.read(HEADER_BYTES)
    for reader in (_png, _gif, _webp, _jpeg):
        size = reader(head)
        if size is not None:
            return size
    return None


def _png(head: bytes) -> tuple[int, int] | None:
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR" or len(head) < 24:
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _gif(head: bytes) -> tuple[int, int] | None:
    if head[:6] not in (b"GIF87a", b"GIF89a") or len(head) < 10:
        return None
    width, height = struct.unpack("<HH", head[6:10])
    return width, height


def _webp(head: bytes) -> tuple[int, int] | None:
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP" or len(head) < 30:
        return None
    kind, body = head[12:16], head[20:]
    if kind == b"VP8X":                              # canvas size minus one, 24-bit little-endian
        return 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
    if kind == b"VP8L" and body[:1] == b"\x2f":      # 14-bit sizes minus one after the signature byte
        bits = int.from_bytes(body[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if kind == b"VP8 " and body[3:6] == b"\x9d\x01\x2a":   # key frame start code, then 14-bit sizes
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _jpeg(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:                           # fill byte
            at += 1
            continue
        if marker in JPEG_STANDALONE:
            at += 2
            continue
        length = struct.unpack(">H", head[at + 2:at + 4])[0]
        if marker in JPEG_SOF and at + 9 <= len(head):
            height, width = struct.unpack(">HH", head[at + 5:at + 9])
            return width, height
        at += 2 + length
    return None
