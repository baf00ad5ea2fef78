"""ComfyUI's int8-convrot weights against comfy-kitchen (0.2.40, its eager CPU backend: the library ComfyUI
quantises and runs these files with).

- int8_convrot_dequantised_weights: a [1024, 2048] weight quantised by comfy-kitchen (rotation by groups of 256,
  per-row scale), dequantised by ltxgraph (the exact ``(q s) H`` rounded once) and by comfy-kitchen (``q s``
  rounded, then a float32 matmul with H): max abs difference, the reference's own rounding.
- int8_convrot_layer_vs_kitchen_w8a8: the layer output ``x W^T + b`` against comfy-kitchen's int8 matmul, which also
  quantises the activations per row: the activation quantisation error ltxgraph does not make (reported, large by
  design).
"""
from __future__ import annotations

from typing import Callable

import torch

from tools.oracle.guard import compared


def _quantised(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from comfy_kitchen.backends.eager import quantization as eager
    weight = torch.randn(1024, 2048, generator=torch.Generator().manual_seed(seed)) / 2048 ** 0.5
    codes, scale = eager.quantize_int8_convrot_weight(weight, 256)
    return weight, codes, scale


def check_dequantised_weights() -> float:
    from comfy_kitchen.backends.eager import quantization as eager

    from ltxgraph_ops.weights.int8 import dequantize_int8
    _, codes, scale = _quantised()
    return compared("int8-convrot weight", dequantize_int8(codes, torch.float32, scale, 256),
                    eager.dequantize_int8_convrot_weight(codes, scale, 256))


def check_layer_against_w8a8() -> float:
    import comfy_kitchen

    from ltxgraph_ops.models.layers import Linear
    _, codes, scale = _quantised()
    layer = Linear(2048, 1024)
    layer.weight.data, layer.weight_scale, layer.weight_rotation = codes, scale.reshape(-1), 256
    layer.bias.data = torch.randn(1024, generator=torch.Generator().manual_seed(1)) * 0.1
    x = torch.randn(16, 2048, generator=torch.Generator().manual_seed(2))
    theirs = comfy_kitchen.int8_linear(x, codes, scale, layer.bias, torch.float32, convrot=True,
                                       convrot_groupsize=256)
    return compared("int8-convrot layer", layer(x), theirs)


CHECKS: dict[str, Callable[[], float]] = {
    "int8_convrot_dequantised_weights": check_dequantised_weights,
    "int8_convrot_layer_vs_kitchen_w8a8": check_layer_against_w8a8,
}
