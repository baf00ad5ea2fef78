"""Memory a streamed model's blocks take turns in: allocated once per block shape, reused for every block.

A streamed forward used to read each block into fresh tensors and upcast every fp8 weight per call into fresh
float32 slices, so every layer of every step asked the operating system for new pages, which it then zeroed and
faulted in one by one (tens of millions of minor page faults per 19B step) and took back when freed. Here:

- A :class:`~ltxgraph_ops.weights.block_reads.BlockReader` holds one block's tensors as stored (fp8 weights,
  bf16 vectors): the file is read into its slab.
- :class:`ComputeSlot` holds one block's tensors in the compute dtype (float32 or bfloat16): fp8 and int8 weights
  are dequantised into it once per block per forward (scale applied; :mod:`ltxgraph_ops.weights.dequant`), other
  floating tensors converted, integers copied. The block's parameters then *are* these buffers.

Both are keyed by tensor name, shape and dtype, so blocks of one shape share every buffer and a block of another
shape gets its own. After the first block, a forward allocates nothing for weights.
"""
from __future__ import annotations

import torch

from ltxgraph_ops.weights.dequant import dequantize_stored_into
from ltxgraph_ops.weights.fp8 import DequantWorkspace, is_fp8

Tensors = dict[str, torch.Tensor]


class _Buffers:
    """Tensors by (name, shape, dtype), created on first request and then handed out again."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self._tensors: dict[tuple[str, tuple[int, ...], torch.dtype], torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        key = (name, tuple(shape), dtype)
        if key not in self._tensors:
            self._tensors[key] = torch.empty(shape, dtype=dtype, device=self.device)
        return self._tensors[key]

    @property
    def nbytes(self) -> int:
        """Bytes held (for reports and tests)."""
        return sum(t.numel() * t.element_size() for t in self._tensors.values())


class ComputeSlot(_Buffers):
    """One block's tensors in the compute dtype on ``device``."""

    def __init__(self, compute_dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> None:
        super().__init__(device)
        self.compute_dtype = compute_dtype
        self.workspace = DequantWorkspace(device=self.device)

    def converted(self, name: str, tensor: torch.Tensor, scale: torch.Tensor | None = None,
                  nan_free: bool = False, rotation: int = 0) -> torch.Tensor:
        """``tensor`` (times ``scale`` if fp8 or int8; int8 rotated back by its convrot group ``rotation``) in this
        slot's buffer for ``name``: quantised and other floating tensors in the compute dtype, other integer
        tensors in their own dtype."""
        quantized = is_fp8(tensor) or (tensor.dtype == torch.int8 and scale is not None)
        dtype = self.compute_dtype if tensor.is_floating_point() or quantized else tensor.dtype
        buffer = self.get(name, tuple(tensor.shape), dtype)
        if quantized:
            source = tensor.to(self.device)
            return dequantize_stored_into(source, buffer, None if scale is None else scale.to(self.device),
                                          self.workspace, rotation, nan_free=nan_free)
        if scale is not None:
            return buffer.copy_(tensor.to(torch.float32).mul_(scale.reshape(-1, *[1] * (tensor.ndim - 1))))
        return buffer.copy_(tensor)
