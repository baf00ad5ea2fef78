"""OpenEXR still images, written (OpenEXR 2 file layout, single part, scanlines, no compression): linear-light RGB
as half or single floats, channels named B, G, R (the order EXR stores them, alphabetical, as OpenCV writes them).
"""
from __future__ import annotations

import struct

import numpy as np
import torch

MAGIC = 20000630
VERSION = 2                    # single-part scanline file, no flags
HALF, FLOAT = 1, 2             # EXR pixel types
CHANNELS = ("B", "G", "R")     # stored order; index into RGB
RGB_INDEX = {"R": 0, "G": 1, "B": 2}


def _attribute(name: str, kind: str, value: bytes) -> bytes:
    return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(value)) + value


def _channel_list(pixel_type: int) -> bytes:
    entries = b"".join(name.encode() + b"\0" + struct.pack("<iB3xii", pixel_type, 0, 1, 1) for name in CHANNELS)
    return entries + b"\0"


def exr_bytes(rgb: torch.Tensor, half: bool = True) -> bytes:
    """A whole EXR file of one linear RGB image [H, W, 3] (float, any range), as half or 32-bit floats."""
    height, width = rgb.shape[:2]
    pixel_type, dtype = (HALF, "<f2") if half else (FLOAT, "<f4")
    box = struct.pack("<iiii", 0, 0, width - 1, height - 1)
    header = b"".join([
        _attribute("channels", "chlist", _channel_list(pixel_type)),
        _attribute("compression", "compression", b"\0"),
        _attribute("dataWindow", "box2i", box),
        _attribute("displayWindow", "box2i", box),
        _attribute("lineOrder", "lineOrder", b"\0"),
        _attribute("pixelAspectRatio", "float", struct.pack("<f", 1.0)),
        _attribute("screenWindowCenter", "v2f", struct.pack("<ff", 0.0, 0.0)),
        _attribute("screenWindowWidth", "float", struct.pack("<f", 1.0)),
    ]) + b"\0"
    planes = rgb.detach().float().cpu().numpy().astype(dtype)
    # one chunk per scanline: its y, its byte count, then each channel's row in stored order
    lines = np.stack([planes[:, :, RGB_INDEX[name]] for name in CHANNELS], axis=1)     # [H, 3, W]
    row_bytes = lines[0].nbytes
    start = 8 + len(header) + 8 * height
    offsets = struct.pack(f"<{height}Q", *(start + y * (8 + row_bytes) for y in range(height)))
    chunks = b"".join(struct.pack("<ii", y, row_bytes) + lines[y].tobytes() for y in range(height))
    return struct.pack("<ii", MAGIC, VERSION) + header + offsets + chunks
