"""ComfyUI int8 / int8-convrot weights (ltxgraph_ops/weights/int8.py):

- int8-dequant-speed: G elements/s of int8 [4096, 4096] (per-row scale) -> float32 / bfloat16, plain and convrot
  (group 256), into a reused buffer; beside the fp8 conversion and a float32 copy of the same size (the memory
  yardstick) and the naive float path (``(q.float() * s)`` grouped times H in float32, what comfy-kitchen does).
- int8-block-forward: one block's worth of Linear layers (self-attention q, k, v, out and the 4x feed-forward of a
  ``width``-wide stream) at ``tokens`` tokens, three ways: the loader's path (weights dequantised and rotated back
  into the shared buffers, then the matmul), the activations rotated instead (weights only scaled, same result up
  to float rounding), and float32 weights already resident (the matmul alone).

Wall clock and CPU seconds: the machine may be shared (load average reported).
"""
from __future__ import annotations

import os
import time
from typing import Callable

import torch
import torch.nn.functional as F

THREADS = 1


def _timed(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    run()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - wall) / repeats, (time.process_time() - cpu) / repeats


def dequant_speed(rows: int = 4096, columns: int = 4096, repeats: int = 3) -> dict:
    from ltxgraph_ops.weights.fp8 import DequantWorkspace, dequantize_into
    from ltxgraph_ops.weights.int8 import dequantize_int8_into, hadamard_signs
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(-128, 128, (rows, columns), dtype=torch.int8, generator=generator)
    scale = torch.rand(rows, 1, generator=generator) * 1e-3
    fp8 = torch.randn(rows, columns, generator=generator).to(torch.float8_e4m3fn)
    rotation = hadamard_signs(256) / 16
    source = torch.randn(rows, columns)
    elements = rows * columns
    figures: dict = {"elements": elements, "threads": THREADS}
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        for dtype in (torch.float32, torch.bfloat16):
            name = str(dtype).removeprefix("torch.")
            out, workspace = torch.empty(rows, columns, dtype=dtype), DequantWorkspace()
            cases = {f"int8_{name}": lambda: dequantize_int8_into(codes, out, scale, 0, workspace),
                     f"int8_convrot_{name}": lambda: dequantize_int8_into(codes, out, scale, 256, workspace),
                     f"fp8_{name}": lambda: dequantize_into(fp8, out, None, workspace, nan_free=True)}
            if dtype == torch.float32:
                target = torch.empty_like(source)
                cases["naive_convrot_float32"] = lambda: ((codes.float() * scale).view(-1, 256) @ rotation)
                cases["float32_copy"] = lambda: target.copy_(source)
            for case, run in cases.items():
                wall, cpu = _timed(run, repeats)
                figures[case] = {"gps_wall": round(elements / wall / 1e9, 3),
                                 "gps_per_cpu_second": round(elements / cpu / 1e9, 3)}
    finally:
        torch.set_num_threads(before)
    figures["load_average"] = os.getloadavg()[0]
    return figures


def block_forward(width: int = 2048, tokens: tuple[int, ...] = (256, 2048), repeats: int = 2) -> dict:
    from ltxgraph_ops.models.layers import Linear, SHARED_WEIGHT
    from ltxgraph_ops.weights.block_buffers import ComputeSlot
    from ltxgraph_ops.weights.int8 import dequantize_int8_into, quantize_int8, rotate_groups
    shapes = [(width, width)] * 4 + [(4 * width, width), (width, 4 * width)]
    generator = torch.Generator().manual_seed(0)
    slot = ComputeSlot(torch.float32)
    layers, floats = [], []
    for out_features, in_features in shapes:
        weight = torch.randn(out_features, in_features, generator=generator) / in_features ** 0.5
        layer = Linear(in_features, out_features)
        layer.weight.data, layer.weight_scale = quantize_int8(weight, 256)
        layer.weight_scale, layer.weight_rotation = layer.weight_scale.reshape(-1), 256
        layer.bias.data = torch.zeros(out_features)
        layer.weight_buffers = slot
        layers.append(layer)
        floats.append(layer.dequantized_weight(torch.float32))

    def rotated_activations(x: torch.Tensor) -> None:
        for layer in layers:
            inputs = x if layer.in_features == width else x.repeat(1, 4)
            buffer = slot.get(SHARED_WEIGHT, tuple(layer.weight.shape), torch.float32)
            weight = dequantize_int8_into(layer.weight, buffer, layer.weight_scale, 0, slot.workspace)
            F.linear(rotate_groups(inputs, 256), weight, layer.bias)

    def weights_rotated(x: torch.Tensor) -> None:
        for layer in layers:
            layer(x if layer.in_features == width else x.repeat(1, 4))

    def resident_float(x: torch.Tensor) -> None:
        for layer, weight in zip(layers, floats):
            F.linear(x if layer.in_features == width else x.repeat(1, 4), weight, layer.bias)

    figures: dict = {"width": width, "weight_elements": sum(o * i for o, i in shapes), "threads": THREADS}
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        with torch.no_grad():
            for count in tokens:
                x = torch.randn(count, width, generator=generator)
                for case, run in (("dequantise_weights", weights_rotated), ("rotate_activations", rotated_activations),
                                  ("float32_resident", resident_float)):
                    wall, cpu = _timed(lambda: run(x), repeats)
                    figures[f"{case}_{count}_tokens"] = {"seconds_wall": round(wall, 3), "cpu_seconds": round(cpu, 3)}
                x = torch.randn(3, width, generator=generator)
                same = [layers[0](x), F.linear(rotate_groups(x, 256), dequantize_int8_into(
                    layers[0].weight, torch.empty(width, width), layers[0].weight_scale), layers[0].bias)]
                figures["rotate_activations_max_abs_difference"] = float((same[0] - same[1]).abs().max())
    finally:
        torch.set_num_threads(before)
    figures["load_average"] = os.getloadavg()[0]
    return figures


BENCHMARKS = {"int8-dequant-speed": dequant_speed, "int8-block-forward": block_forward}
