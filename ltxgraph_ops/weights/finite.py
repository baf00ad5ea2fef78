"""Whether a float tensor holds NaN or infinity, read off its bits: the check every weight read from a file gets.

A value of an IEEE-like float format is NaN or infinite exactly when its exponent bits are all ones (fp8 e4m3fn,
which has no infinity, is NaN exactly when its exponent and mantissa bits are all ones). Masking everything but
those bits, as integers, leaves values no larger than the mask, and the largest equals the mask exactly when
some value is non-finite. So the check is one masked copy and one maximum per chunk, in the format's own width,
into one reused buffer: ~10x faster than comparing decoded values (``isfinite`` decodes, writes a bool per value,
then reduces), which the first step of a streamed 19B model paid on every block (about 2 s per 400 M fp8 values).
"""
from __future__ import annotations

import torch

# float format -> (the integer type of its width, the bits that are all ones in NaN and infinity and nowhere else)
NON_FINITE_BITS: dict[torch.dtype, tuple[torch.dtype, int]] = {
    torch.float8_e4m3fn: (torch.uint8, 0x7F),
    torch.float8_e5m2: (torch.uint8, 0x7C),
    torch.bfloat16: (torch.int16, 0x7F80),
    torch.float16: (torch.int16, 0x7C00),
    torch.float32: (torch.int32, 0x7F800000),
    torch.float64: (torch.int64, 0x7FF0000000000000),
}
CHUNK = 1 << 22   # values per chunk: the buffer stays small beside the largest weight


def has_non_finite(tensor: torch.Tensor, chunk: int = CHUNK) -> bool:
    """NaN or infinity anywhere in the float ``tensor`` (any shape). Formats without an entry in
    :data:`NON_FINITE_BITS` are decoded and checked with ``isfinite``."""
    flat = tensor.reshape(-1)
    if tensor.dtype not in NON_FINITE_BITS or flat.device.type != "cpu":
        return any(bool((~torch.isfinite(flat[start:start + chunk].float())).any())
                   for start in range(0, flat.numel(), chunk))
    integer, mask = NON_FINITE_BITS[tensor.dtype]
    bits = flat.view(integer)
    masked = torch.empty(min(chunk, bits.numel()), dtype=integer)
    for start in range(0, bits.numel(), chunk):
        part = bits[start:start + chunk]
        out = masked[:part.numel()]
        torch.bitwise_and(part, mask, out=out)
        if int(out.amax()) == mask:
            return True
    return False
