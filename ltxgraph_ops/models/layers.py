"""Building blocks shared by every model: a Linear layer whose weight may stay in a storage dtype (fp8, bf16)
and is upcast to the compute dtype per call, with low-rank (LoRA) deltas applied at compute time.

Keeping the stored weight untouched is what lets a fp8 checkpoint cost its file size in memory, and lets LoRAs
be stacked, re-weighted or removed without re-quantising anything. fp8 weights are converted by
:mod:`ltxgraph_ops.weights.fp8` (several times torch's own conversion, bit-exact with ``w.float() * scale``
rounded to the compute dtype), ComfyUI's int8 (convrot) weights by :mod:`ltxgraph_ops.weights.int8` (the exact
``(q s) H`` rounded once); a loaded model's layers share one set of reused buffers for it
(:func:`share_weight_buffers`), so a forward allocates no weight memory.

A resident weight already in the compute dtype can instead be held *packed* (:func:`pack_linears`): in oneDNN's
blocked matmul layout, reordered once at load and replacing the plain tensor (one copy in memory, as before),
so that no matmul reorders it again per call. ``state_dict()`` gives packed weights back in the plain layout, and
``Module.to`` / ``float()`` / ``bfloat16()`` convert them as plain ones (:meth:`Linear._apply`), and
``copy.deepcopy`` clones them in their packed layout (:meth:`Linear.__deepcopy__`).
"""
from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.float32_matmul import float32_matmul
from ltxgraph_ops.weights.block_buffers import ComputeSlot
from ltxgraph_ops.weights.dequant import dequantize_stored, dequantize_stored_into, is_quantized
from ltxgraph_ops.weights.fp8 import COMPUTE_DTYPES

SHARED_WEIGHT = "linear weight"                # the buffer name every layer of one shape shares

ACTIVATIONS = ("gelu_tanh",)                   # what a Linear may apply to its own output (see :func:`linear`)

# A stored (fp8/bf16) weight larger than this many elements is upcast and multiplied a slice of output rows at a
# time, so a huge layer (the text projection's 3840 x 188160) never needs its whole float32 copy at once.
DEQUANT_CHUNK_ELEMENTS = 1 << 25


PACKED_WEIGHTS_SETTING = "LTXGRAPH_PACKED_WEIGHTS"  # "0": resident Linear weights stay in the plain layout
PACKABLE_DTYPES = (torch.float32, torch.bfloat16)  # what oneDNN's blocked layout holds (:meth:`Linear.pack`)


def packs(dtype: torch.dtype) -> bool:
    """Whether :func:`pack_linears` packs weights held in ``dtype``: bf16, and float32 where oneDNN multiplies
    float32 (:func:`~ltxgraph_ops.models.float32_matmul.float32_matmul`; elsewhere MKL's ``F.linear`` is as fast).
    A packed float32 weight gives the plain one's bits because :func:`linear` multiplies a single row as two
    (BENCHMARKS.md: 4 % off the float32 forward of the mid-size model)."""
    return dtype == torch.bfloat16 or dtype == torch.float32 and float32_matmul().onednn


_CONVERSION = "ltxgraph_conversion"  # on a packed weight Linear._apply converted: (fn, the converted weight)


def packing_available(dtype: torch.dtype, device: torch.device | str) -> bool:
    """Whether a ``dtype`` weight on ``device`` can be held in oneDNN's blocked layout: a CPU with oneDNN (and,
    for bf16, its bf16 matmul), a dtype of :data:`PACKABLE_DTYPES`, not switched off by
    ``LTXGRAPH_PACKED_WEIGHTS=0``."""
    if os.environ.get(PACKED_WEIGHTS_SETTING, "1") == "0" or dtype not in PACKABLE_DTYPES:
        return False
    if torch.device(device).type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    return dtype != torch.bfloat16 or torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _onednn_product(x: torch.Tensor) -> bool:
    """Whether ``x`` takes oneDNN's matmul, with the bias and activation applied in its epilogue: bf16 on a CPU
    with oneDNN's bf16 matmul, float32 on a CPU where oneDNN multiplies float32
    (:func:`~ltxgraph_ops.models.float32_matmul.float32_matmul`)."""
    if x.device.type != "cpu" or x.numel() == 0 or not torch.backends.mkldnn.is_available():
        return False
    if x.dtype == torch.bfloat16:
        return torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return x.dtype == torch.float32 and float32_matmul().onednn


def activated(y: torch.Tensor, activation: str | None) -> torch.Tensor:
    """``activation`` (None or one of :data:`ACTIVATIONS`) applied to a layer's fresh output ``y``, in place (the
    same bits as ``F.gelu``; no second [tokens, out] tensor to allocate and fault in: half the time at 2304 x
    4096 float32)."""
    return y if activation is None else torch.ops.aten.gelu_(y, approximate="tanh")


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
           activation: str | None = None) -> torch.Tensor:
    """``activation(x W^T + b)`` for x [..., in], weight [out, in], bias [out] -> [..., out].

    bfloat16 on a CPU with oneDNN, float32 on a CPU where oneDNN multiplies float32 (an AMD CPU: MKL's float32
    is slower there), and any packed ``weight`` (:func:`pack_linears`): one oneDNN matmul (on a contiguous copy of a strided ``x``) that adds the
    bias and applies GELU to its float32 accumulator before rounding to the output dtype. Otherwise (float32 on
    an Intel CPU, other devices): ``F.linear`` then the activation, as written.
    ``F.linear`` would first fill the output with the bias (a pass over [tokens, out]) and GELU would be a
    separate pass over the bf16-rounded product; fused, the bias gives the same bits as ``F.linear`` and the
    activation is computed before the rounding instead of after it (within bf16 rounding of the two-step result).
    """
    if not (weight.is_mkldnn or _onednn_product(x)):
        return activated(F.linear(x, weight, bias), activation)
    x = x.contiguous()
    algorithm, attribute = ("gelu", "tanh") if activation == "gelu_tanh" else ("none", "")
    if x.dtype == torch.float32 and x.numel() == x.shape[-1]:
        # oneDNN takes another kernel for a single float32 row, whose bits differ with a packed weight and a plain
        # one (~1e-6); as two rows (the second zero) both give the same bits, as for any other row count
        rows = torch.cat([x.reshape(1, -1), x.new_zeros(1, x.shape[-1])])
        y = torch.ops.mkldnn._linear_pointwise(rows, weight, bias, algorithm, [], attribute)
        return y[:1].reshape(*x.shape[:-1], y.shape[-1])
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, algorithm, [], attribute)


@dataclass
class LowRankDelta:
    """A LoRA delta ``W += scale * up @ down``: down [rank, in_features], up [out_features, rank]."""

    down: torch.Tensor
    up: torch.Tensor
    scale: float

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Delta of the layer output for input ``x`` [..., in_features] -> [..., out_features]."""
        down = self.down.to(dtype=x.dtype, device=x.device)
        up = self.up.to(dtype=x.dtype, device=x.device)
        return F.linear(F.linear(x, down), up) * self.scale


class Linear(nn.Module):
    """``y = x W^T + b`` with W kept in its storage dtype and dequantised per call.

    State-dict keys are ``weight`` and ``bias`` exactly as in the checkpoint. ``weight_scale`` (a scalar or
    per-row tensor, set by the checkpoint loader for scaled fp8 and int8 files) multiplies the upcast weight;
    ``weight_rotation``: an int8 weight's convrot group size (0: not rotated; :mod:`ltxgraph_ops.weights.int8`).
    ``weight_buffers``: where a quantised weight is dequantised for a call, shared by a model's layers
    (:func:`share_weight_buffers`; None: a new tensor per call).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype),
                                   requires_grad=False)
        self.bias = (nn.Parameter(torch.empty(out_features, device=device, dtype=dtype), requires_grad=False)
                     if bias else None)
        self.weight_scale: torch.Tensor | None = None
        self.weight_rotation = 0
        self.deltas: list[LowRankDelta] = []
        self.weight_buffers: ComputeSlot | None = None

    @property
    def packed(self) -> bool:
        """Whether the weight is held in oneDNN's blocked layout (:meth:`pack`)."""
        return self.weight.is_mkldnn

    def plain_weight(self) -> torch.Tensor:
        """The weight as stored, in the plain [out_features, in_features] layout (a new tensor when packed)."""
        return self.weight.to_dense() if self.packed else self.weight

    def pack(self) -> None:
        """Hold the weight in oneDNN's blocked matmul layout instead of the plain one (same values, one copy).
        Only for an unscaled weight on the CPU in a dtype :func:`packing_available` accepts."""
        if self.packed:
            return
        if self.weight_scale is not None or not packing_available(self.weight.dtype, self.weight.device):
            raise ValueError(f"a {self.weight.dtype} weight on {self.weight.device} "
                             f"{'with a scale ' if self.weight_scale is not None else ''}cannot be packed")
        self.weight = nn.Parameter(torch.ops.mkldnn._reorder_linear_weight(self.weight.detach()),
                                   requires_grad=False)

    def unpack(self) -> None:
        """Back to the plain layout (:meth:`_apply` does it before a change of the weight's dtype or device)."""
        if self.packed:
            self.weight = nn.Parameter(self.weight.to_dense(), requires_grad=False)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> "Linear":
        """``Module.to`` / ``float()`` / ``bfloat16()`` / ``cuda()`` (``fn`` converts each tensor) on a packed weight:
        oneDNN's layout holds no other dtype or device, so a conversion that changes the weight unpacks it first,
        converts the plain weight, and packs it again only where :func:`pack_linears` would (a bf16 unscaled weight
        that :func:`packing_available` accepts). A conversion that leaves the weight as it is keeps it packed.
        Layers tied to one packed weight stay tied: the first one converted leaves its result on the packed
        weight for the others to take."""
        packed = self.weight
        if not self.packed or _leaves_unchanged(fn, packed):
            return super()._apply(fn, recurse)
        converted = getattr(packed, _CONVERSION, None)
        if converted is not None and converted[0] is fn:           # a tied layer converted it in this same call
            self.weight = converted[1]
            return super()._apply(fn, recurse)
        self.unpack()
        super()._apply(fn, recurse)
        weight = self.weight
        if (packs(weight.dtype) and self.weight_scale is None
                and packing_available(weight.dtype, weight.device)):
            self.pack()
        setattr(packed, _CONVERSION, (fn, self.weight))
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> "Linear":
        """``copy.deepcopy``: a packed weight is cloned in its blocked layout (torch's Parameter copy asks for a
        memory format oneDNN's layout does not have), once per copy, so layers tied to it stay tied in the copy;
        everything else is copied as ``nn.Module`` copies it."""
        weight = self.weight
        if weight.is_mkldnn and id(weight) not in memo:
            memo[id(weight)] = nn.Parameter(weight.clone(), requires_grad=weight.requires_grad)
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        clone.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return clone

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.packed and not keep_vars:                       # export and copies see the plain layout
            destination[prefix + "weight"] = self.weight.to_dense()

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any, **kwargs: Any) -> None:
        if self.packed and prefix + "weight" in state_dict:
            raise ValueError(f"Linear '{prefix.rstrip('.')}' holds its weight packed (oneDNN layout): load into "
                             f"the model before packing, or unpack_linears() it first "
                             f"({PACKED_WEIGHTS_SETTING}=0 keeps loaded weights plain)")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def dequantized_weight(self, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
        """The weight in ``dtype`` with its scale (and rotation) applied, in a new tensor: [out_features, in_features]."""
        return converted_weight(self.plain_weight(), self.weight_scale, dtype, device, self.weight_rotation)

    def _shared_buffers(self, x: torch.Tensor) -> ComputeSlot | None:
        """The model's reused weight buffers when they serve this call (a quantised weight, x in their dtype and
        on their device), else None."""
        buffers = self.weight_buffers
        if (buffers is None or not is_quantized(self.weight) or x.dtype != buffers.compute_dtype
                or x.device != buffers.device or self.weight.device != buffers.device):
            return None
        return buffers

    def forward(self, x: torch.Tensor, activation: str | None = None) -> torch.Tensor:
        """x [..., in_features] -> ``activation(x W^T + b + LoRA deltas)`` [..., out_features]; ``activation``:
        None or one of :data:`ACTIVATIONS` (fused into the matmul where :func:`linear` can)."""
        bias = None if self.bias is None else self.bias.to(dtype=x.dtype, device=x.device)
        buffers = self._shared_buffers(x)
        fused = activation if not self.deltas else None        # a LoRA delta is added before the activation
        if self.packed and self.weight.dtype == x.dtype and x.device.type == "cpu":
            y = linear(x, self.weight, bias, fused)
        elif self.weight.dtype == x.dtype or self.weight.numel() <= DEQUANT_CHUNK_ELEMENTS:
            weight = (self.dequantized_weight(x.dtype, x.device) if buffers is None
                      else buffers.converted(SHARED_WEIGHT, self.weight, self.weight_scale, nan_free=True,
                                             rotation=self.weight_rotation))
            y = linear(x, weight, bias, fused)
        else:
            y, fused = self._chunked(x, bias, buffers), None
        for delta in self.deltas:
            y = y + delta.apply(x)
        return y if fused == activation else activated(y, activation)

    def _chunked(self, x: torch.Tensor, bias: torch.Tensor | None, buffers: ComputeSlot | None) -> torch.Tensor:
        """``F.linear`` with the weight upcast one slice of output rows at a time (into one reused slice
        buffer when the model shares its buffers)."""
        rows = max(1, DEQUANT_CHUNK_ELEMENTS // self.in_features)
        y = x.new_empty(*x.shape[:-1], self.out_features)
        scale, stored = self.weight_scale, self.plain_weight()
        for start in range(0, self.out_features, rows):
            stop = min(start + rows, self.out_features)
            rows_scale = scale if scale is None or scale.ndim == 0 else scale[start:stop]
            if buffers is not None:
                slice_buffer = buffers.get(SHARED_WEIGHT + " slice", (rows, self.in_features), x.dtype)
                weight = dequantize_stored_into(stored[start:stop], slice_buffer[: stop - start], rows_scale,
                                                buffers.workspace, self.weight_rotation, nan_free=True)
            else:
                weight = converted_weight(stored[start:stop], rows_scale, x.dtype, x.device,
                                          self.weight_rotation)
            y[..., start:stop] = linear(x, weight, None if bias is None else bias[start:stop])
        return y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, storage={self.weight.dtype}{', packed' if self.packed else ''}, "
                f"loras={len(self.deltas)}")


def _leaves_unchanged(fn: Callable[[torch.Tensor], torch.Tensor], weight: torch.Tensor) -> bool:
    """Whether the tensor conversion ``fn`` of ``Module._apply`` returns a tensor of ``weight``'s dtype and device
    as it is (e.g. ``.to("cpu")`` of a CPU model), tried on an empty tensor of that dtype and device."""
    probe = torch.empty(0, dtype=weight.dtype, device=weight.device)
    return fn(probe) is probe


def converted_weight(weight: torch.Tensor, scale: torch.Tensor | None, dtype: torch.dtype,
                     device: torch.device | None = None, rotation: int = 0) -> torch.Tensor:
    """``weight`` [rows, in] times ``scale`` (None, scalar or [rows]) in ``dtype`` on ``device``, a new tensor;
    fp8 and int8 (rotated back by its convrot group ``rotation``) through
    :func:`~ltxgraph_ops.weights.dequant.dequantize_stored` (bit-exact)."""
    weight = weight.to(device)
    scale = None if scale is None else scale.to(weight.device)
    if is_quantized(weight) and dtype in COMPUTE_DTYPES:
        return dequantize_stored(weight, dtype, scale, rotation)
    weight = weight.to(dtype)
    if scale is None:
        return weight
    scale = scale.to(dtype)
    return weight * (scale if scale.ndim == 0 else scale.reshape(-1, 1))


def share_weight_buffers(model: nn.Module, buffers: ComputeSlot) -> None:
    """Let every Linear of ``model`` dequantise its fp8 or int8 weight into ``buffers`` (one buffer per weight shape,
    reused by every layer of that shape at every call: a layer's weight is only needed during its own matmul).
    For loaders that have refused NaN codes in the weights (the conversion skips its NaN scan)."""
    for layer in model.modules():
        if isinstance(layer, Linear):
            layer.weight_buffers = buffers


def pack_linears(model: nn.Module, dtype: torch.dtype) -> int:
    """Pack (:meth:`Linear.pack`) every resident Linear weight of ``model`` held plain in ``dtype`` without a
    scale, when :func:`packs` ``dtype`` and :func:`packing_available`; others (fp8/int8
    codes, weights upcast per call, meta, other devices) are left as they are. Weights shared by several layers
    stay shared. Returns the number of weights packed."""
    sharing: dict[int, list[Linear]] = {}                   # layers by the weight they hold
    if not packs(dtype):
        return 0
    for layer in model.modules():
        if (isinstance(layer, Linear) and not layer.packed and layer.weight.dtype == dtype
                and layer.weight_scale is None and layer.weight.device.type != "meta"
                and packing_available(dtype, layer.weight.device)):
            sharing.setdefault(id(layer.weight), []).append(layer)
    for first, *others in sharing.values():
        first.pack()                                          # the plain tensor goes once its last layer lets go
        for layer in others:
            layer.weight = first.weight
    return len(sharing)


def unpack_linears(model: nn.Module) -> None:
    """Every packed Linear weight of ``model`` back in the plain layout."""
    for layer in model.modules():
        if isinstance(layer, Linear):
            layer.unpack()


@contextmanager
def layers_set(model: nn.Module, kind: type[nn.Module], attribute: str, value: Any) -> Iterator[None]:
    """Within it, every ``kind`` module of ``model`` has ``attribute`` set to ``value`` (e.g. a token chunk);
    each one's previous value comes back after."""
    layers = [m for m in model.modules() if isinstance(m, kind)]
    before = [getattr(layer, attribute) for layer in layers]
    for layer in layers:
        setattr(layer, attribute, value)
    try:
        yield
    finally:
        for layer, previous in zip(layers, before):
            setattr(layer, attribute, previous)
