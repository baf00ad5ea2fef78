"""The element-wise regions of a transformer block, eager or compiled into fused CPU kernels.

Between its matmuls and attentions a block makes many passes over [B, T, D] activations: the RMS norm of the
AdaLN input and its modulation ``rms(x) * (1 + scale) + shift``; the q/k RMS norms with their weights followed by
the RoPE rotation. Eager torch runs each step as its own pass over memory. :func:`compiled_kernels` hands the very
same functions to ``torch.compile`` (inductor, CPU: a C++ compiler at run time), which fuses each region into one
or two loops. Only these regions are compiled, never a block or the model, so streamed and offloaded weights,
LoRA deltas and perturbations work as before; the functions take only tensors, so one compilation serves every
block of a shape.

:data:`EAGER` is the default everywhere (tests, parity). A compiled region equals the eager one within float32
rounding (it may round intermediates in a different order); in bfloat16 the compiled regions keep their
intermediates in float32, which rounds less often than eager.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ltxgraph_ops.models.rope import rotate


def rms_norm(x: torch.Tensor, eps: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``x / sqrt(mean(x^2) + eps) (* weight)`` over the last dimension. The mean square comes from one
    reduction (vector_norm) instead of materialising ``x^2``; CPU ``F.rms_norm`` is not fused. For a bf16 ``x``
    the reduction accumulates in float32 (torch's reduction kernels) and the [..., 1] statistic is finished in
    float32; asking vector_norm for a float32 result instead would first copy all of x to float32 (measured:
    7 activation-sized copies per block)."""
    inverse = torch.linalg.vector_norm(x, dim=-1, keepdim=True).float()
    inverse = inverse.square_().div_(x.shape[-1]).add_(eps).rsqrt_()
    out = x * inverse.to(x.dtype)
    return out if weight is None else out.mul_(weight.to(x.dtype))


def modulated(x: torch.Tensor, eps: float, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``rms(x) * (1 + scale) + shift``: x [B, T, D], shift and scale broadcastable to it."""
    return torch.addcmul(shift, rms_norm(x, eps), 1 + scale)


def split_heads(x: torch.Tensor, heads: int | None) -> torch.Tensor:
    """x [B, T, inner] as [B, heads, T, inner / heads] (a view); x itself when ``heads`` is None."""
    return x if heads is None else x.unflatten(-1, (heads, -1)).transpose(1, 2)


def normalized(x: torch.Tensor, weight: torch.Tensor | None, eps: float, heads: int | None = None) -> torch.Tensor:
    """``rms(x) * weight``: the q/k norm of attention without RoPE (text attention), x [B, T, inner]; without a
    weight, ``rms(x)`` (the text attention's input in LTX-2.0). ``heads``: the result as [B, heads, T, inner /
    heads] (here a view; a kernel may write it head by head)."""
    return split_heads(rms_norm(x, eps, weight), heads)


def normalized_rotated(x: torch.Tensor, weight: torch.Tensor, eps: float, cos: torch.Tensor,
                       sin: torch.Tensor, heads: int | None = None) -> torch.Tensor:
    """``rope(rms(x) * weight)`` for x [B, T, inner] and a split-layout RoPE table's cos and sin
    ([B, T, H, 1, inner / (2H)], see :class:`~ltxgraph_ops.models.rope.RopeTable`); ``heads`` as in
    :func:`normalized`."""
    return split_heads(rotate(rms_norm(x, eps, weight), cos, sin, split=True), heads)


@dataclass(frozen=True)
class ElementwiseKernels:
    """The functions a block calls for its element-wise regions (same signatures as the eager ones above; with
    ``heads``, any memory layout of [B, heads, T, d])."""

    name: str
    modulated: Callable[..., torch.Tensor]
    normalized: Callable[..., torch.Tensor]
    normalized_rotated: Callable[..., torch.Tensor]


EAGER = ElementwiseKernels("eager", modulated, normalized, normalized_rotated)


def compiled_kernels() -> ElementwiseKernels:
    """The regions compiled by ``torch.compile`` (inductor), for any token count and width (dynamic shapes):
    each compiles once, on its first call, and inductor keeps the compiled code in its on-disk cache, so a
    later process on the same machine loads it instead of compiling."""
    def compiled(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        return torch.compile(function, fullgraph=True, dynamic=True)

    def heads_split(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        return lambda *args, heads=None: split_heads(function(*args), heads)

    return ElementwiseKernels("compiled", compiled(modulated), heads_split(compiled(normalized)),
                              heads_split(compiled(normalized_rotated)))


def use_kernels(model: torch.nn.Module, kernels: ElementwiseKernels) -> None:
    """Make every module of ``model`` that has element-wise regions (blocks, attentions) use ``kernels``."""
    for module in model.modules():
        if hasattr(module, "kernels"):
            module.kernels = kernels
