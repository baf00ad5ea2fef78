"""Block streaming: a model's repeated blocks stay on disk and are read, used and released one at a time.

:class:`StreamedBlocks` replaces a model's ``nn.ModuleList`` of blocks. Its blocks live on the meta device;
iterating over it (what a forward pass does) reads block i's tensors from the checkpoint (fp8 kept fp8), yields
the block, and releases its weights as soon as the loop asks for block i+1. Every block is read into the same
slab (:mod:`ltxgraph_ops.weights.block_reads`: straight from the disk where the blocks would not stay in the page
cache, through it where they would) and converted into the same compute-dtype buffers
(:mod:`ltxgraph_ops.weights.block_buffers`):
one dequantisation per block per forward, no allocation per block. With ``prefetch`` the next block's tensors
are read on a background thread while the current one computes (file reads release the GIL), so disk and compute
overlap; resident weights are then one block as stored plus one in the compute dtype, plus everything outside
the blocks.

The block modules themselves persist (only their tensors come and go), so patches attached to them, such as
LoRA deltas on Linear layers, survive streaming. The mechanism is device-agnostic: ``device`` is where a
loaded block's tensors are put (a GPU user's block offloading is the same loop).
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator

import torch
from torch import nn

from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.weights.block_buffers import ComputeSlot
from ltxgraph_ops.weights.block_reads import BlockReader, read_mode
from ltxgraph_ops.weights.dequant import dequantize_stored, is_quantized
from ltxgraph_ops.weights.loading import ComponentMatch, _check_finite, _set_tensor, match_component
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile

Tensors = dict[str, torch.Tensor]


class StreamedBlocks(nn.ModuleList):
    """Blocks read from ``file`` under ``prefix`` + ``"<index>."`` when iterated, released after use. A block's
    tensors are read into one reused :class:`BlockReader` slab and installed, converted to ``compute_dtype`` (fp8
    weights dequantised with their scale), into one reused :class:`ComputeSlot`: its Linear layers then hold
    compute-dtype weights and no scale. ``reads``: "direct" (past the page cache), "buffered" (through it), or
    "auto" (:func:`~ltxgraph_ops.weights.block_reads.read_mode` of the blocks' size)."""

    def __init__(self, blocks: nn.ModuleList, file: SafetensorsFile, prefix: str, device: torch.device | str = "cpu",
                 compute_dtype: torch.dtype = torch.float32, prefetch: bool = True,
                 reads: str = "auto") -> None:
        super().__init__(list(blocks))
        self._file, self._prefix, self._device = file, prefix, device
        self._compute_dtype, self._prefetch = compute_dtype, prefetch
        self._matches: list[ComponentMatch] = []
        for index, block in enumerate(blocks):
            release(block)
            self._matches.append(match_component(block, file, f"{prefix}{index}."))
        self._checked: set[int] = set()
        mode = read_mode(weight_bytes(file, prefix)) if reads == "auto" else reads
        self.stored, self.computed = BlockReader(file, mode), ComputeSlot(compute_dtype, device)
        self._active = False
        self.reads = 0  # blocks read so far (for tests and reports)

    @property
    def compute_dtype(self) -> torch.dtype:
        return self._compute_dtype

    def release_buffers(self) -> None:
        """Give the blocks' buffers back (the next pass allocates them again): for a model that runs once and
        then hands over to another, e.g. Gemma before the text connectors."""
        if self._active:
            raise RuntimeError("streamed blocks' buffers released while an iteration is under way")
        self.stored.release()
        self.computed = ComputeSlot(self._compute_dtype, self._device)

    def _read(self, index: int) -> Tensors:
        """Block ``index``'s tensors as stored, in the reader's slab (checked for NaN/Inf the first time)."""
        match = self._matches[index]
        tensors = self.stored.read({**match.tensors,
                                    **{f"{owner}.weight_scale": name for owner, name in match.scales.items()}})
        if index not in self._checked:
            for key, tensor in tensors.items():
                _check_finite(self._file, key, tensor)
            self._checked.add(index)
        self.reads += 1
        return tensors

    def _install(self, index: int, tensors: Tensors) -> nn.Module:
        """Block ``index`` with ``tensors`` converted into the compute slot (Linear weights with their scale
        applied, so the layers compute without one)."""
        block = self[index]
        scaled = {name: sub for name, sub in block.named_modules()
                  if isinstance(sub, Linear) or hasattr(sub, "weight_scale")}
        scales = {key[: -len(".weight_scale")]: tensor.float() for key, tensor in tensors.items()
                  if key.endswith(".weight_scale")}
        for key, tensor in tensors.items():
            if key.endswith(".weight_scale"):
                continue
            owner = key[: -len(".weight")] if key.endswith(".weight") else None
            scale = scales.get(owner) if owner in scaled else None
            rotation = self._matches[index].rotations.get(owner, 0)
            _set_tensor(block, key, self.computed.converted(key, tensor, scale, nan_free=True, rotation=rotation))
        for owner in scaled:
            scaled[owner].weight_scale = None
        return block

    def __iter__(self) -> Iterator[nn.Module]:
        count = len(self)
        if count == 0:
            return
        if self._active:
            raise RuntimeError("streamed blocks iterated again while an iteration is under way: every block "
                               "takes its turn in the same buffers, so one pass at a time")
        self._active = True
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ltxgraph-prefetch") if self._prefetch else None
        pending: Future | None = None
        current: nn.Module | None = None
        try:
            tensors = self._read(0)
            for index in range(count):
                current = self._install(index, tensors)
                del tensors                       # the slab is free again: read the next block into it
                if pool is not None and index + 1 < count:
                    pending = pool.submit(self._read, index + 1)
                yield current
                release(current)
                current = None
                if index + 1 < count:
                    tensors = pending.result() if pending is not None else self._read(index + 1)
                    pending = None
        finally:
            if current is not None:
                release(current)
            if pending is not None:
                pending.cancel()
            if pool is not None:
                pool.shutdown(wait=True)
            self._active = False


def dequantize_linears(module: nn.Module, compute_dtype: torch.dtype) -> None:
    """Replace the fp8 and int8 weights of ``module``'s resident Linear layers by their dequantised values (scale
    and rotation applied) in ``compute_dtype``, once: a streamed model's layers outside its blocks then cost no conversion
    and no fresh memory per call. Layers on the meta device (streamed blocks) are left alone."""
    for layer in module.modules():
        if isinstance(layer, Linear) and is_quantized(layer.weight) and layer.weight.device.type != "meta":
            layer.weight = nn.Parameter(dequantize_stored(layer.weight, compute_dtype, layer.weight_scale,
                                                          layer.weight_rotation), requires_grad=False)
            layer.weight_scale, layer.weight_rotation = None, 0


def release(block: nn.Module) -> None:
    """Put every parameter and persistent buffer of ``block`` back on the meta device (memory returned)."""
    for key, tensor in block.state_dict(keep_vars=True).items():
        if tensor.device.type != "meta":
            _set_tensor(block, key, torch.empty(tensor.shape, dtype=tensor.dtype, device="meta"))


def weight_bytes(file: SafetensorsFile, prefix: str) -> int:
    """Bytes of every tensor under ``prefix`` as stored."""
    return sum(entry.nbytes for key, entry in file.entries.items() if key.startswith(prefix))


def release_stream_buffers(module: nn.Module) -> None:
    """:meth:`StreamedBlocks.release_buffers` of every streamed block list in ``module``."""
    for sub in module.modules():
        if isinstance(sub, StreamedBlocks):
            sub.release_buffers()
