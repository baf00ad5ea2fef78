"""Float values on the 8-bit grid: exactly ``k / 255`` for an integer k in 0..255 ("unorm8").

Display images (IMAGE [F, H, W, C] float in [0, 1]) that were read from 8-bit files, or decoded and snapped to
8 bits (an MP4 or PNG holds 8 bits anyway), are exactly such values. They can be held as one byte each instead
of four, and rebuilt bit for bit: :func:`pack` gives the codes only after checking that :func:`unpack` returns
the very same bits, so storing them is exact by construction.
"""
from __future__ import annotations

import torch

LEVELS = 255
CHUNK_ELEMENTS = 2**22  # packed and checked in chunks: bounded scratch memory, early exit for non-grid data


def unpack(codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 codes -> floats ``k / 255`` in ``dtype`` (computed in float32, then converted)."""
    return (codes.to(torch.float32) / LEVELS).to(dtype)


def snap(values: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] -> the nearest grid values ``round(255 x) / 255`` in float32 (the rounding an 8-bit
    encoder applies; outside [0, 1] clamped); a new tensor, bit for bit what :func:`unpack` gives."""
    return values.to(torch.float32).clamp(0, 1).mul_(LEVELS).round_().div_(LEVELS)


def pack(values: torch.Tensor) -> torch.Tensor | None:
    """The uint8 codes of a floating tensor whose every element has exactly the bits of ``unpack(k, dtype)``
    (so no negative zero, NaN, infinity or value outside [0, 1]), else None."""
    if not values.is_floating_point() or values.numel() == 0:
        return None
    bits = _SAME_SIZE_INTEGER[values.element_size()]
    flat = values.detach().reshape(-1)
    codes = torch.empty(flat.shape, dtype=torch.uint8, device=flat.device)
    for start in range(0, flat.numel(), CHUNK_ELEMENTS):
        part = flat[start:start + CHUNK_ELEMENTS]
        # any code unpacks into [+0, 1], so a value off the grid (or out of range) can never match its bits
        chunk_codes = (part.to(torch.float32) * LEVELS).round_().to(torch.uint8)
        if not torch.equal(unpack(chunk_codes, values.dtype).view(bits), part.view(bits)):
            return None
        codes[start:start + CHUNK_ELEMENTS] = chunk_codes
    return codes.reshape(values.shape)


_SAME_SIZE_INTEGER = {2: torch.int16, 4: torch.int32, 8: torch.int64}
