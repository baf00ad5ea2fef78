"""Linear weights held packed in oneDNN's blocked layout: the plain path's output, one copy in memory, plain
weights for export, LoRA deltas still applied, the loader packing bf16 models (``LTXGRAPH_PACKED_WEIGHTS``), and
``Module.to`` / ``float()`` converting a packed model as the plain one, ``copy.deepcopy`` cloning it."""
from __future__ import annotations

import copy
import gc
import os
import subprocess
import sys
import weakref
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ltxgraph_ops.model_files import load_transformer
from ltxgraph_ops.models.float32_matmul import SETTING as FLOAT32_SETTING
from ltxgraph_ops.models.layers import (PACKED_WEIGHTS_SETTING, Linear, LowRankDelta, pack_linears, packing_available,
                                        packs, unpack_linears)
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.tiny.files import write_checkpoint
from tests.models.test_linear_fused import inputs, layer
from tools.oracle import transformer as oracle

needs_onednn = pytest.mark.skipif(not packing_available(torch.bfloat16, "cpu"),
                                  reason="no oneDNN bf16 matmul on this CPU")
needs_onednn_float32 = pytest.mark.skipif(not packing_available(torch.float32, "cpu"), reason="no oneDNN")


@needs_onednn_float32
@pytest.mark.parametrize("library", ["onednn", "blas"])
@pytest.mark.parametrize("shape", [(1, 300, 64), (7, 64), (2, 64), (1, 64), (1, 1, 64)])
def test_packed_float32_gives_the_plain_output(shape: tuple[int, ...], library: str, monkeypatch) -> None:
    """Where oneDNN multiplies float32 (as on AMD CPUs) a packed weight gives the plain one's bits at every row
    count, one row included (taken as two); where the BLAS does (Intel), a packed weight still goes through
    oneDNN: within float32 rounding of the plain output."""
    monkeypatch.setenv(FLOAT32_SETTING, library)
    module, x = layer(64, 96, torch.float32), inputs(shape, torch.float32)
    plain = {activation: module(x, activation=activation) for activation in (None, "gelu_tanh")}
    module.pack()
    assert module.packed and module.weight.shape == (96, 64)
    for activation, want in plain.items():
        got = module(x, activation=activation)
        assert got.shape == want.shape
        if library == "onednn":
            assert torch.equal(got, want), float((got - want).abs().max())
        else:
            assert torch.allclose(got, want, rtol=1e-5, atol=1e-6), float((got - want).abs().max())


@needs_onednn_float32
def test_one_float32_row_is_its_own_row_of_a_larger_product(monkeypatch) -> None:
    """A single row multiplied as two gives that row of any larger product: a sample alone and in a batch agree
    (oneDNN's single-row kernel rounds otherwise, ~1e-6)."""
    monkeypatch.setenv(FLOAT32_SETTING, "onednn")
    module, x = layer(1024, 512, torch.float32), inputs((5, 1024), torch.float32)
    module.pack()
    together = module(x)
    for row in range(len(x)):
        assert torch.equal(module(x[row:row + 1]), together[row:row + 1])


@needs_onednn
@pytest.mark.parametrize("shape", [(1, 300, 64), (2, 33, 64), (1, 64)])
def test_packed_bfloat16_is_the_fused_path_bit_for_bit(shape: tuple[int, ...]) -> None:
    """bf16 already takes oneDNN's matmul: packing only moves the weight's reorder from every call to the load."""
    module, x = layer(64, 96, torch.bfloat16), inputs(shape, torch.bfloat16)
    plain = {activation: module(x, activation=activation) for activation in (None, "gelu_tanh")}
    module.pack()
    for activation, want in plain.items():
        assert torch.equal(module(x, activation=activation), want)


@needs_onednn
def test_packed_layer_takes_other_input_dtypes_and_lora_deltas() -> None:
    module, x = layer(64, 96, torch.bfloat16), inputs((1, 50, 64), torch.bfloat16)
    generator = torch.Generator().manual_seed(3)
    module.deltas.append(LowRankDelta(torch.randn(4, 64, generator=generator),
                                      torch.randn(96, 4, generator=generator), 0.5))
    want, want_float32 = module(x, activation="gelu_tanh"), module(x.float())
    module.pack()
    assert torch.equal(module(x, activation="gelu_tanh"), want)
    assert torch.equal(module(x.float()), want_float32)                  # upcast from the plain layout per call


@needs_onednn
def test_state_dict_gives_plain_weights_and_loading_into_packed_is_refused() -> None:
    module = layer(64, 96, torch.bfloat16)
    plain = module.weight.detach().clone()
    module.pack()
    state = module.state_dict()
    assert not state["weight"].is_mkldnn and torch.equal(state["weight"], plain)
    assert module.state_dict(keep_vars=True)["weight"].shape == (96, 64)
    with pytest.raises(ValueError, match="packed"):
        module.load_state_dict(state)
    unpack_linears(module)
    assert not module.packed and torch.equal(module.weight, plain)
    module.load_state_dict(state)


@needs_onednn
@pytest.mark.parametrize("library", ["onednn", "blas"])
def test_pack_linears_packs_what_packs_says_and_keeps_shared_weights_shared(library: str, monkeypatch) -> None:
    """bf16 always; float32 only where oneDNN multiplies float32 (elsewhere the BLAS is as fast, plain)."""
    monkeypatch.setenv(FLOAT32_SETTING, library)
    first, second = layer(64, 96, torch.bfloat16), layer(64, 96, torch.bfloat16, seed=1)
    other = layer(8, 8, torch.float32)
    second.weight = first.weight                                          # tied
    model = torch.nn.ModuleList([first, second, other])
    assert packs(torch.float32) == (library == "onednn") and packs(torch.bfloat16)
    assert pack_linears(model, torch.float32) == (1 if library == "onednn" else 0)
    assert other.packed == (library == "onednn")
    assert pack_linears(model, torch.bfloat16) == 1
    assert first.packed and second.weight is first.weight
    with pytest.raises(ValueError, match="cannot be packed"):
        layer(8, 8, torch.float16).pack()


RSS_AFTER_PACKING = """
import gc, os, torch
from ltxgraph_ops.models.layers import Linear
def resident():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
module = Linear(4096, 8192, bias=False, dtype=torch.bfloat16)
module.weight.normal_()
gc.collect()
before = resident()
module.pack()
gc.collect()
print(resident() - before)
"""


@needs_onednn
def test_packing_holds_one_copy_of_the_weight() -> None:
    """The plain tensor is released once packed, and packing a 64 MiB weight in a fresh process leaves its
    resident memory where it was."""
    module = layer(64, 96, torch.bfloat16)
    plain = weakref.ref(module.weight)
    module.pack()
    gc.collect()
    assert plain() is None and module.weight.is_mkldnn
    assert not any(isinstance(v, torch.Tensor) for v in vars(module).values())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    grown = int(subprocess.run([sys.executable, "-c", RSS_AFTER_PACKING], env=env, capture_output=True,
                               text=True, check=True).stdout.split()[-1])
    assert grown < 8 * 2**20, f"resident memory grew by {grown / 2**20:.1f} MiB packing a 64 MiB weight"


def bf16_inputs(seed: int = 4) -> tuple:
    config, generator = tiny.tiny_config(), torch.Generator().manual_seed(seed)
    video, audio = oracle.video_input(config, generator), oracle.audio_input(config, generator)
    return (replace(video, latent=video.latent.bfloat16(), context=video.context.bfloat16()),
            replace(audio, latent=audio.latent.bfloat16(), context=audio.context.bfloat16()))


@needs_onednn
def test_loader_packs_a_bf16_model_with_the_same_forward(tmp_path: Path, monkeypatch) -> None:
    path = write_checkpoint(tmp_path / "bf16.safetensors", "bf16", 0, [tiny])
    packed = load_transformer(path, compute_dtype=torch.bfloat16)
    monkeypatch.setenv(PACKED_WEIGHTS_SETTING, "0")
    plain = load_transformer(path, compute_dtype=torch.bfloat16)
    linears = [m for m in packed.modules() if isinstance(m, Linear)]
    assert linears and all(m.packed for m in linears)
    assert not any(m.packed for m in plain.modules() if isinstance(m, Linear))
    video, audio = bf16_inputs()
    with torch.no_grad():
        got, want = packed(video, audio), plain(video, audio)
    assert torch.equal(got.video, want.video) and torch.equal(got.audio, want.audio)
    assert packed.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(packed.state_dict().values(), plain.state_dict().values()))


@needs_onednn
def test_streamed_fp8_model_packs_its_resident_layers_only(tmp_path: Path, monkeypatch) -> None:
    """The layers outside the streamed blocks are dequantised once and packed; the blocks' fp8 weights are
    installed plain per forward; the forward is the unpacked one bit for bit."""
    path = write_checkpoint(tmp_path / "fp8.safetensors", "fp8", 0, [tiny])
    packed = load_transformer(path, streamed=True, compute_dtype=torch.bfloat16)
    monkeypatch.setenv(PACKED_WEIGHTS_SETTING, "0")
    plain = load_transformer(path, streamed=True, compute_dtype=torch.bfloat16)
    resident = [m for name, m in packed.named_modules()
                if isinstance(m, Linear) and not name.startswith("transformer_blocks.")]
    assert resident and all(m.packed for m in resident)
    assert not any(m.packed for m in packed.transformer_blocks.modules() if isinstance(m, Linear))
    video, audio = bf16_inputs()
    with torch.no_grad():
        got, want = packed(video, audio), plain(video, audio)
    assert torch.equal(got.video, want.video) and torch.equal(got.audio, want.audio)


@needs_onednn
@pytest.mark.parametrize("convert", [lambda model: model.to(torch.float32), lambda model: model.float()],
                         ids=["to-float32", "float"])
def test_a_packed_model_converts_to_float32_as_the_unpacked_one(tmp_path: Path, monkeypatch, convert) -> None:
    """``Module.to(dtype)`` / ``.float()`` on a loaded, packed bf16 transformer unpacks each weight before torch
    converts it (oneDNN's layout holds only its own dtype): the float32 model is the unpacked model's float32 copy
    bit for bit (packed again where :func:`packs` float32), and still a bf16 model's equal after ``.bfloat16()``."""
    path = write_checkpoint(tmp_path / "bf16.safetensors", "bf16", 0, [tiny])
    packed = load_transformer(path, compute_dtype=torch.bfloat16)
    monkeypatch.setenv(PACKED_WEIGHTS_SETTING, "0")
    plain = load_transformer(path, compute_dtype=torch.bfloat16)
    monkeypatch.delenv(PACKED_WEIGHTS_SETTING)
    assert all(m.packed for m in packed.modules() if isinstance(m, Linear))
    packed, plain = convert(packed), convert(plain)
    linears = [m for m in packed.modules() if isinstance(m, Linear)]
    assert linears and all(m.packed == packs(torch.float32) for m in linears)
    assert all(m.weight.dtype == torch.float32 for m in linears)
    assert all(torch.equal(a, b) for a, b in zip(packed.state_dict().values(), plain.state_dict().values()))
    generator, config = torch.Generator().manual_seed(4), tiny.tiny_config()
    video, audio = oracle.video_input(config, generator), oracle.audio_input(config, generator)
    with torch.no_grad():
        got, want = packed(video, audio), plain(video, audio)
    assert got.video.dtype == torch.float32
    assert torch.equal(got.video, want.video) and torch.equal(got.audio, want.audio)
    back = packed.bfloat16()              # a conversion packs only what it unpacked: a plain float32 weight stays plain
    assert all(m.packed == packs(torch.float32) for m in back.modules() if isinstance(m, Linear))
    with torch.no_grad():
        again, reference = back(*bf16_inputs()), plain.bfloat16()(*bf16_inputs())
    assert torch.equal(again.video, reference.video) and torch.equal(again.audio, reference.audio)


@needs_onednn
def test_a_conversion_that_changes_nothing_keeps_the_weight_packed() -> None:
    module = layer(64, 96, torch.bfloat16)
    module.pack()
    weight = module.weight
    for convert in (lambda m: m.to("cpu"), lambda m: m.bfloat16(), lambda m: m.to(torch.bfloat16), lambda m: m.cpu()):
        assert convert(module) is module and module.weight is weight          # no unpack, no reorder


@needs_onednn
def test_tied_packed_weights_stay_tied_through_a_conversion() -> None:
    first, second = layer(64, 96, torch.bfloat16), layer(64, 96, torch.bfloat16, seed=1)
    second.weight = first.weight
    model = torch.nn.ModuleList([first, second])
    plain = first.weight.detach().float()
    pack_linears(model, torch.bfloat16)
    model.to(torch.float32)
    assert second.weight is first.weight and first.packed == packs(torch.float32)
    assert first.weight.dtype == torch.float32 and torch.equal(first.plain_weight(), plain)


@needs_onednn
@pytest.mark.parametrize("switch", ["1", "0"])
def test_a_conversion_to_a_packable_weight_packs_it_again_where_the_switch_allows(monkeypatch, switch: str) -> None:
    """``to_empty`` makes a new bf16 CPU weight: packed again, unless ``LTXGRAPH_PACKED_WEIGHTS=0``."""
    module = layer(64, 96, torch.bfloat16)
    module.pack()
    monkeypatch.setenv(PACKED_WEIGHTS_SETTING, switch)
    module.to_empty(device="cpu")
    assert module.packed == (switch == "1")
    assert module.weight.shape == (96, 64) and module.weight.dtype == torch.bfloat16


@needs_onednn
def test_deepcopy_of_a_packed_layer_holds_its_own_packed_weight_of_the_same_bits() -> None:
    """torch's own Parameter copy asks oneDNN for a memory format its blocked layout does not have; the copy is
    packed, equal bit for bit to the original's plain weight, and outlives the original's packed weight."""
    module, x = layer(64, 96, torch.bfloat16), inputs((1, 50, 64), torch.bfloat16)
    plain, bias = module.weight.detach().clone(), module.bias.detach().clone()
    want = module(x, activation="gelu_tanh")
    module.pack()
    clone = copy.deepcopy(module)
    assert clone.packed and clone.weight is not module.weight and not clone.weight.requires_grad
    original = weakref.ref(module.weight)
    del module
    gc.collect()
    assert original() is None                                              # the copy holds no reference to it
    assert torch.equal(clone.plain_weight(), plain) and torch.equal(clone.bias, bias)
    assert torch.equal(clone(x, activation="gelu_tanh"), want)


@needs_onednn
def test_deepcopy_keeps_tied_packed_weights_tied_in_the_copy() -> None:
    first, second = layer(64, 96, torch.bfloat16), layer(64, 96, torch.bfloat16, seed=1)
    second.weight = first.weight
    plain = first.weight.detach().clone()
    model = torch.nn.ModuleList([first, second, layer(8, 8, torch.float32)])
    pack_linears(model, torch.bfloat16)
    clone = copy.deepcopy(model)
    assert clone[1].weight is clone[0].weight and clone[0].weight is not first.weight
    assert clone[0].packed and torch.equal(clone[0].plain_weight(), plain)
    assert not clone[2].packed and torch.equal(clone[2].weight, model[2].weight)


@needs_onednn
@pytest.mark.parametrize("storage, streamed", [("bf16", False), ("fp8", True)], ids=["bf16", "streamed-fp8"])
def test_deepcopy_of_a_loaded_packed_transformer_gives_the_same_forward(tmp_path: Path, storage: str,
                                                                        streamed: bool) -> None:
    path = write_checkpoint(tmp_path / f"{storage}.safetensors", storage, 0, [tiny])
    packed = load_transformer(path, streamed=streamed, compute_dtype=torch.bfloat16)
    clone = copy.deepcopy(packed)
    linears = [m for m in clone.modules() if isinstance(m, Linear)]
    assert [m.packed for m in linears] == [m.packed for m in packed.modules() if isinstance(m, Linear)]
    assert any(m.packed for m in linears)
    pairs = [(a, b) for a, b in zip(clone.state_dict().values(), packed.state_dict().values()) if not b.is_meta]
    assert pairs and all(torch.equal(a, b) for a, b in pairs)      # a streamed model's blocks are read per call
    video, audio = bf16_inputs()
    with torch.no_grad():
        got, want = clone(video, audio), packed(video, audio)
    assert torch.equal(got.video, want.video) and torch.equal(got.audio, want.audio)
