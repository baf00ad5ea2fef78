"""Give freed tensor memory back to the operating system.

glibc's malloc serves a request below its mmap threshold from its heap, and after each large block is freed it
raises that threshold (up to 32 MiB). Loading a checkpoint tensor by tensor, or dequantising weights layer by
layer, then leaves gigabytes of freed heap in the process: measured on a 12-block synthetic 19B checkpoint (4.6
GiB of weights), 6.5 GiB resident after loading and a 7.3 GiB peak over one step, against 4.9 and 5.3 GiB with
the threshold fixed at 1 MiB. With a fixed threshold every request of 1 MiB or more is its own mapping,
returned when freed. The CLI sets it; Python API users may call :func:`return_large_frees_to_os` once.
"""
from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3          # glibc's mallopt parameter number
DEFAULT_THRESHOLD = 1 << 20    # bytes


def return_large_frees_to_os(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process. Returns False, changing nothing,
    when the C library is not glibc or the user set ``MALLOC_MMAP_THRESHOLD_`` themselves."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1
