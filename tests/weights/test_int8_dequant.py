"""ComfyUI's int8 weights (int8_tensorwise, convrot): the rotation is the regular Hadamard matrix ComfyUI uses, the
dequantised weight is the exact value ``(q s) H`` rounded once (bit for bit, float32 and bfloat16, across chunk
boundaries and into a reused workspace), and the comfy-kitchen reference agrees within its own rounding."""
from __future__ import annotations

import pytest
import torch

from ltxgraph_ops.weights.fp8 import DequantWorkspace
from ltxgraph_ops.weights.int8 import (convrot_group, dequantize_int8, dequantize_int8_into, hadamard_signs,
                                       quantize_int8, rotate_groups, rotation_stages)

GROUPS = [4, 16, 64, 256]


def exact(codes: torch.Tensor, scale: torch.Tensor, group: int) -> torch.Tensor:
    """``(q s) H`` in float64 (exact: 8-bit codes times a float32 scale, sums of at most 256 such terms)."""
    values = codes.double() * scale.double().reshape(-1, 1)
    if group:
        values = values.reshape(-1, group) @ (hadamard_signs(group, torch.float64) / 2 ** rotation_stages(group))
    return values.reshape(codes.shape)


def random_codes(rows: int, columns: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(-128, 128, (rows, columns), dtype=torch.int8, generator=generator)
    scale = torch.rand(rows, 1, generator=generator) * 1e-2 + 1e-6
    return codes, scale


@pytest.mark.parametrize("group", GROUPS)
def test_the_rotation_is_a_symmetric_orthogonal_involution(group: int) -> None:
    signs = hadamard_signs(group, torch.float64)
    rotation = signs / 2 ** rotation_stages(group)
    assert torch.equal(signs, signs.T) and set(signs.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(rotation @ rotation, torch.eye(group, dtype=torch.float64))
    x = torch.randn(3, 2 * group, dtype=torch.float64)
    assert torch.allclose(rotate_groups(rotate_groups(x, group), group), x, atol=1e-12)
    # the Kronecker power of the regular 4x4 Hadamard matrix: entry (i, j) is the product over base-4 digits
    digits = [(torch.arange(group) // 4 ** k) % 4 for k in range(rotation_stages(group))]
    base = hadamard_signs(4, torch.float64)
    product = torch.ones(group, group, dtype=torch.float64)
    for d in digits:
        product *= base[d][:, d]
    assert torch.equal(product, signs)


@pytest.mark.parametrize("group", [0, 1, 2, 8, 12, 32, 128, 512])
def test_group_sizes_other_than_powers_of_4_are_refused(group: int) -> None:
    with pytest.raises(ValueError, match="not a power of 4"):
        rotation_stages(group)


def test_the_comfy_quant_entry_is_read_flat_or_nested() -> None:
    assert convrot_group({"format": "int8_tensorwise"}) == 0
    assert convrot_group({"format": "int8_tensorwise", "convrot": True}) == 256
    assert convrot_group({"format": "int8_tensorwise", "convrot": True, "convrot_groupsize": 64}) == 64
    assert convrot_group({"format": "int8_tensorwise", "params": {"convrot": True, "convrot_groupsize": 16}}) == 16
    with pytest.raises(ValueError, match="not an integer"):
        convrot_group({"convrot": True, "convrot_groupsize": "256"})


@pytest.mark.parametrize("group", [0] + GROUPS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dequantisation_is_the_exact_value_rounded_once(group: int, dtype: torch.dtype) -> None:
    codes, scale = random_codes(37, 512)
    want = exact(codes, scale, group).float().to(dtype)
    assert torch.equal(dequantize_int8(codes, dtype, scale, group), want)
    # chunks of a few rows in a reused workspace, a per-row [rows] and a scalar scale
    workspace = DequantWorkspace(chunk_elements=3 * 512 + 5)
    out = torch.empty(codes.shape, dtype=dtype)
    assert torch.equal(dequantize_int8_into(codes, out, scale.reshape(-1), group, workspace), want)
    assert torch.equal(dequantize_int8_into(codes, out, scale[0, 0], group, workspace),
                       exact(codes, scale[:1].expand(37, 1), group).float().to(dtype))


def test_extreme_codes_stay_exact() -> None:
    """All codes -128 under the sign pattern of a row of the rotation: the largest possible sum (128 * 256)."""
    signs = hadamard_signs(256)
    codes = torch.where(signs[:4] > 0, -128, 127).to(torch.int8).repeat(1, 2)
    scale = torch.full((4, 1), 0.37)
    assert torch.equal(dequantize_int8(codes, torch.float32, scale, 256), exact(codes, scale, 256).float())


def test_quantising_and_dequantising_keeps_the_weight() -> None:
    weight = torch.randn(64, 256) / 16
    for group in (0, 256):
        codes, scale = quantize_int8(weight, group)
        assert codes.dtype == torch.int8 and scale.shape == (64, 1) and scale.dtype == torch.float32
        back = dequantize_int8(codes, torch.float32, scale, group)
        # half a code step of the rotated weight, rotated back (an orthogonal map keeps row norms)
        step = scale.reshape(-1) / 2
        assert ((back - weight).norm(dim=1) <= step * 256 ** 0.5 + 1e-6).all()


def test_bad_arguments_are_refused() -> None:
    codes, scale = random_codes(4, 48)
    with pytest.raises(ValueError, match="does not divide 48"):
        dequantize_int8(codes, torch.float32, scale, 64)
    with pytest.raises(ValueError, match="3 scales for a weight of 4 rows"):
        dequantize_int8(codes, torch.float32, scale[:3], 16)
    with pytest.raises(TypeError, match="not int8"):
        dequantize_int8(codes.float(), torch.float32, scale, 16)


@pytest.mark.oracle
def test_comfy_kitchen_reads_the_same_weights() -> None:
    """comfy-kitchen (ComfyUI's quantisation library, CPU eager backend) as the reference of the format: the same
    rotation matrix, the same codes and scales when quantising, a dequantised weight within its own rounding of
    ours (kitchen rounds ``q s`` first, then sums 256 rounded products), and the same plain int8 weights bit for
    bit. Its int8 matmul also quantises the activations per row: within that error of our layer."""
    kitchen = pytest.importorskip("comfy_kitchen")
    from comfy_kitchen.backends.eager import quantization as eager
    from comfy_kitchen.tensor.int8_utils import _build_hadamard
    for group in GROUPS:
        assert torch.equal(_build_hadamard(group), (hadamard_signs(group) / 2 ** rotation_stages(group)))
    weight = torch.randn(96, 512) / 20
    theirs_codes, theirs_scale = eager.quantize_int8_convrot_weight(weight, 256)
    codes, scale = quantize_int8(weight, 256)
    assert (codes.int() - theirs_codes.int()).abs().max() <= 1
    assert (codes == theirs_codes).float().mean() > 0.999
    assert torch.allclose(scale, theirs_scale, rtol=1e-5, atol=0)
    ours = dequantize_int8(theirs_codes, torch.float32, theirs_scale, 256)
    reference = eager.dequantize_int8_convrot_weight(theirs_codes, theirs_scale, 256)
    bound = 256 * 2.0 ** -24 * (theirs_codes.double().abs() * theirs_scale.double()).sum(1, keepdim=True) / 16
    assert ((ours.double() - reference.double()).abs() <= bound).all()
    assert (ours - reference).abs().max() < 1e-6
    plain_codes, plain_scale = eager.quantize_int8_rowwise(weight)
    assert torch.equal(dequantize_int8(plain_codes, torch.float32, plain_scale),
                       eager.dequantize_int8_simple(plain_codes, plain_scale))
    x = torch.randn(5, 512)
    w8a8 = kitchen.int8_linear(x, theirs_codes, theirs_scale, None, torch.float32, convrot=True,
                               convrot_groupsize=256)
    ours_y = x @ ours.T
    assert (w8a8 - ours_y).abs().max() <= 0.02 * ours_y.abs().max()


@pytest.mark.parametrize("shared", [False, True])
def test_an_int8_linear_layer_computes_with_its_dequantised_weight(monkeypatch, shared: bool) -> None:
    """Whole and a slice of output rows at a time (a layer larger than the chunk limit), into fresh tensors or
    the model's shared buffers: always ``x W^T + b`` with W the dequantised weight."""
    from ltxgraph_ops.models import layers
    from ltxgraph_ops.weights.block_buffers import ComputeSlot
    codes, scale = random_codes(40, 64, seed=3)
    layer = layers.Linear(64, 40)
    layer.weight.data, layer.weight_scale, layer.weight_rotation = codes, scale.reshape(-1), 16
    layer.bias.data = torch.randn(40)
    if shared:
        layer.weight_buffers = ComputeSlot(torch.float32)
    x = torch.randn(5, 64)
    want = layers.linear(x, exact(codes, scale, 16).float(), layer.bias)     # F.linear, or oneDNN where it multiplies
    assert torch.equal(layer(x), want)
    monkeypatch.setattr(layers, "DEQUANT_CHUNK_ELEMENTS", 7 * 64)
    assert torch.allclose(layer(x), want, rtol=0, atol=1e-6)


def test_an_int8_token_table_looks_up_and_scores_with_its_dequantised_rows(monkeypatch) -> None:
    """Gemma's token table in int8-convrot: looked-up rows and the tied output head (a few rows at a time) are
    those of the exactly dequantised table."""
    from ltxgraph_ops.models.gemma_layers import Embedding
    codes, scale = random_codes(50, 32, seed=5)
    table = Embedding(50, 32)
    table.weight.data, table.weight_scale, table.weight_rotation = codes, scale.reshape(-1), 16
    monkeypatch.setattr(Embedding, "LOGIT_ROWS", 7)
    values = exact(codes, scale, 16).float()
    ids = torch.tensor([[3, 49, 3], [0, 17, 8]])
    assert torch.equal(table(ids), values[ids])
    hidden = torch.randn(2, 3, 32)
    # float32 rounding only: a product by slices of rows may sum in another order than the whole one
    torch.testing.assert_close(table.logits(hidden), hidden @ values.T, rtol=1e-6, atol=2e-6)
