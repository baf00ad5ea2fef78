"""Per-step latent previews: the current clean estimate of a video latent as a small RGB picture.

LTX-2 publishes no latent-to-RGB factors, so the projection is the latent's own first three principal
components (over channels), each stretched to [0, 255]: it shows structure and motion, not true colours.
Latent frames are laid side by side, each cell drawn as ``scale`` x ``scale`` pixels.
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import torch


def preview_rgb(latent: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """Video latent [B, C, F, H, W] (first item shown) -> uint8 RGB [H * scale, F * W * scale, 3]."""
    item = latent[0].float()
    channels, frames, height, width = item.shape
    points = item.reshape(channels, -1)
    centred = points - points.mean(dim=1, keepdim=True)
    basis = torch.linalg.svd(centred @ centred.T / max(1, points.shape[1] - 1))[0][:, :3]   # [C, 3]
    if basis.shape[1] < 3:
        basis = torch.nn.functional.pad(basis, (0, 3 - basis.shape[1]))
    projected = basis.T @ centred                                                           # [3, N]
    low, high = projected.amin(dim=1, keepdim=True), projected.amax(dim=1, keepdim=True)
    unit = (projected - low) / (high - low).clamp_min(1e-8)
    image = unit.reshape(3, frames, height, width).permute(2, 1, 3, 0).reshape(height, frames * width, 3)
    image = image.repeat_interleave(scale, dim=0).repeat_interleave(scale, dim=1)
    return (image * 255).round().to(torch.uint8)


def png_bytes(rgb: torch.Tensor) -> bytes:
    """uint8 [H, W, 3] -> a PNG file (8-bit RGB, no filtering)."""
    height, width, _ = rgb.shape
    rows = torch.cat([torch.zeros(height, 1, dtype=torch.uint8), rgb.reshape(height, width * 3)], dim=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.contiguous().numpy().tobytes(), 6)) + chunk(b"IEND", b""))


def write_preview(folder: Path, name: str, latent: torch.Tensor) -> Path:
    """Write the preview of ``latent`` as ``folder/name`` (atomically: readers never see half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    tmp.write_bytes(png_bytes(preview_rgb(latent)))
    os.replace(tmp, path)
    return path
