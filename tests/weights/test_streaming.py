"""Block streaming: the same outputs as the resident model, bit for bit, with and without prefetch; weights
released after use; LoRAs survive; the memory budget switches it on."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ltxgraph import api
from ltxgraph.context import RunSettings
from ltxgraph.paths import Folders
from ltxgraph_ops.handles import ModelHandle
from ltxgraph_ops.model_files import is_streamed, load_transformer
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.tiny.files import write_lora
from ltxgraph_ops.weights.lora import LoraPatch, read_lora
from ltxgraph_ops.weights.safetensors_file import CheckpointError
from tools.oracle.transformer import audio_input, video_input


def inputs():
    generator = torch.Generator().manual_seed(0)
    config = tiny.tiny_config()
    return video_input(config, generator), audio_input(config, generator)


@pytest.mark.parametrize("storage", ["fp8", "bf16"])
@pytest.mark.parametrize("prefetch", [True, False])
@pytest.mark.parametrize("reads", ["auto", "direct", "buffered"])
def test_streamed_forward_equals_resident(checkpoints, storage: str, prefetch: bool, reads: str) -> None:
    resident = load_transformer(checkpoints[storage])
    streamed = load_transformer(checkpoints[storage], streamed=True, prefetch=prefetch, reads=reads)
    assert is_streamed(streamed) and not is_streamed(resident)
    assert streamed.transformer_blocks.stored.mode == ("buffered" if reads == "auto" else reads)  # a tiny file
    video, audio = inputs()
    with torch.no_grad():
        a, b = resident(video, audio), streamed(video, audio)
        again = streamed(video, audio)
    assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio) and torch.equal(b.video, again.video)
    assert streamed.transformer_blocks.reads == 2 * len(streamed.transformer_blocks)
    assert all(p.device.type == "meta" for p in streamed.transformer_blocks.parameters())
    assert streamed.patchify_proj.weight.device.type == "cpu"


def test_loras_survive_streaming(checkpoints, tmp_path: Path) -> None:
    resident = load_transformer(checkpoints["fp8"])
    streamed = load_transformer(checkpoints["fp8"], streamed=True)
    lora = read_lora(write_lora(tmp_path / "l.safetensors", resident, 2, 3, {}), resident)
    video, audio = inputs()
    outs = []
    for model in (resident, streamed):
        with ModelHandle(model, "m").with_patch(LoraPatch(lora, 0.8)).applied() as patched, torch.no_grad():
            outs.append(patched(video, audio).video)
    assert torch.equal(outs[0], outs[1])


def test_a_broken_block_is_found_before_streaming_starts(checkpoints, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
    tensors = load_file(str(checkpoints["fp8"]))
    tensors.pop(tiny.PREFIX + "transformer_blocks.1.ff.net.2.weight")
    path = tmp_path / "broken.safetensors"
    save_file(tensors, str(path), metadata=SafetensorsFile(checkpoints["fp8"]).metadata)
    with pytest.raises(CheckpointError, match="transformer_blocks.1.ff.net.2.weight"):
        load_transformer(path, streamed=True)


def test_memory_budget_chooses_streaming(checkpoints, tmp_path: Path) -> None:
    (tmp_path / "diffusion_models").mkdir()
    (tmp_path / "diffusion_models" / "m.safetensors").write_bytes(checkpoints["fp8"].read_bytes())
    graph = tmp_path / "g.yaml"
    graph.write_text("ltxgraph: 1\nnodes:\n  m: {op: UNETLoader, in: {unet_name: m.safetensors}}\n"
                     "outputs:\n  model: '@m.MODEL'\n")
    for budget, expected in ((None, False), (10_000, True), (10**9, False)):
        runner = api.Runner(use_cache=False, folders=Folders(models=(tmp_path,)),
                            settings=RunSettings(memory_budget=budget))
        model = runner.run(api.load(graph)).outputs["model"]
        with model.applied() as transformer:
            assert is_streamed(transformer) is expected


def _block_pointers(blocks) -> list[dict[str, int]]:
    """Storage address of every tensor of each block while the loop holds it (weights in the compute slot)."""
    seen = []
    for block in blocks:
        seen.append({key: t.data_ptr() for key, t in block.state_dict().items()})
        assert all(t.dtype == blocks.compute_dtype for t in block.state_dict().values() if t.is_floating_point())
        assert all(sub.weight_scale is None for sub in block.modules() if hasattr(sub, "weight_scale"))
    return seen


def test_every_block_reuses_the_same_buffers(checkpoints) -> None:
    streamed = load_transformer(checkpoints["fp8"], streamed=True)
    blocks = streamed.transformer_blocks
    first = _block_pointers(blocks)
    held = (blocks.stored.nbytes, blocks.computed.nbytes)
    again = _block_pointers(blocks)
    assert first[0] == first[1] == again[0] == again[1]          # one pool for the block shape, across forwards
    assert (blocks.stored.nbytes, blocks.computed.nbytes) == held
    from ltxgraph_ops.weights.block_reads import ALIGNMENT, MERGE_GAP, plan_ranges
    from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
    file = SafetensorsFile(checkpoints["fp8"])

    def stored(index: int) -> dict:
        return {key: e for key, e in file.entries.items()
                if key.startswith(f"{tiny.PREFIX}transformer_blocks.{index}.") and not key.endswith(".input_scale")}

    spans = [sum(r.stop - r.start for r in plan_ranges(stored(i), file.data_offset)) for i in range(len(blocks))]
    read = stored(0)
    block_0 = [e for key, e in read.items() if not key.endswith(".weight_scale")]
    assert held[0] == max(spans)                                     # the largest block's file ranges, as stored
    assert sum(e.nbytes for e in read.values()) <= held[0] <= (sum(e.nbytes for e in read.values())
                                                               + len(read) * (MERGE_GAP + 2 * ALIGNMENT))
    assert held[1] == sum(math.prod(e.shape) * 4 for e in block_0)   # one block in float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_streamed_block_weights_are_the_dequantised_file_weights(checkpoints, dtype: torch.dtype) -> None:
    resident = load_transformer(checkpoints["fp8"])
    streamed = load_transformer(checkpoints["fp8"], streamed=True, compute_dtype=dtype)
    for index, block in enumerate(streamed.transformer_blocks):
        for name, layer in resident.transformer_blocks[index].named_modules():
            if hasattr(layer, "dequantized_weight") and layer.weight.dtype == torch.float8_e4m3fn:
                want = (layer.weight.float() * layer.weight_scale).to(dtype)
                got = block.get_submodule(name).weight
                as_bits = torch.int32 if dtype == torch.float32 else torch.int16
                assert got.dtype == dtype and torch.equal(got.view(as_bits), want.view(as_bits))


def test_reading_into_a_buffer_of_the_wrong_shape_is_refused(checkpoints) -> None:
    from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
    file = SafetensorsFile(checkpoints["fp8"])
    key = tiny.PREFIX + "transformer_blocks.0.ff.net.2.weight"
    entry = file.entries[key]
    assert torch.equal(file.read(key, torch.empty(entry.shape, dtype=entry.dtype)).view(torch.uint8),
                       file.read(key).view(torch.uint8))
    with pytest.raises(CheckpointError, match="cannot read into"):
        file.read(key, torch.empty(entry.shape[0] + 1, *entry.shape[1:], dtype=entry.dtype))


def test_a_second_pass_inside_a_pass_is_refused(checkpoints) -> None:
    blocks = load_transformer(checkpoints["fp8"], streamed=True).transformer_blocks
    outer = iter(blocks)
    next(outer)
    with pytest.raises(RuntimeError, match="one pass at a time"):
        next(iter(blocks))
    outer.close()
    assert sum(1 for _ in blocks) == len(blocks)                # usable again once the first pass ended


def text_keys_values_made(monkeypatch) -> list[int]:
    """Counts the blocks' text keys/values computations (each reads the text as the block's text attention
    takes it: ``modulated_text``), one entry per computation."""
    from ltxgraph_ops.models.transformer_block import AVBlock
    calls: list[int] = []
    original = AVBlock.modulated_text

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)
    monkeypatch.setattr(AVBlock, "modulated_text", staticmethod(counted))
    return calls


def test_a_text_store_is_filled_by_the_first_streamed_forward_and_read_by_the_next(checkpoints,
                                                                                   monkeypatch) -> None:
    """The streamed model keeps each block's text keys/values as it computes them: the second forward computes
    none, and every forward gives the bits of the forward without a store (and of the resident model with its
    text prepared)."""
    from dataclasses import replace
    from ltxgraph_ops.models.transformer_inputs import TextKeysValuesStore
    streamed = load_transformer(checkpoints["fp8"], streamed=True)
    resident = load_transformer(checkpoints["fp8"])
    video, audio = inputs()
    blocks = len(streamed.transformer_blocks)
    stores = TextKeysValuesStore("video", blocks), TextKeysValuesStore("audio", blocks)
    kept = replace(video, text_store=stores[0]), replace(audio, text_store=stores[1])
    calls = text_keys_values_made(monkeypatch)
    with torch.no_grad():
        plain = streamed(video, audio)
        assert len(calls) == 2 * blocks                                  # video and audio, every block
        first = streamed(*kept)
        assert len(calls) == 4 * blocks and all(store.complete() for store in stores)
        second = streamed(*kept)
        assert len(calls) == 4 * blocks                                  # nothing computed again
        prepared = resident(*(replace(s, context=resident.prepare_text(name, s.context, s.context_mask),
                                      context_mask=None) for name, s in (("video", video), ("audio", audio))))
    for name in ("video", "audio"):
        outputs = [getattr(result, name) for result in (plain, first, second, prepared)]
        assert all(torch.equal(outputs[0], other) for other in outputs[1:]), name
    assert stores[0].nbytes() == 2 * blocks * math.prod(stores[0].keys[0].shape) * 4


def test_a_text_store_of_other_text_or_another_stream_is_refused(checkpoints) -> None:
    from dataclasses import replace
    from ltxgraph_ops.models.transformer_inputs import TextKeysValuesStore
    streamed = load_transformer(checkpoints["fp8"], streamed=True)
    video, audio = inputs()
    blocks = len(streamed.transformer_blocks)
    store = TextKeysValuesStore("video", blocks)
    with torch.no_grad():
        streamed(replace(video, text_store=store), audio)
        with pytest.raises(ValueError, match="text store was built for the video stream"):
            streamed(replace(video, context=video.context[:1], context_mask=video.context_mask[:1],
                             text_store=store), audio)
        with pytest.raises(ValueError, match="text store was built for the video stream"):
            streamed(video, replace(audio, text_store=store))


def test_a_text_store_is_refused_where_the_text_follows_sigma() -> None:
    from dataclasses import replace
    from ltxgraph_ops.models.transformer_inputs import TextKeysValuesStore
    config = tiny.tiny_config_23()
    model = tiny.build(config)
    video = video_input(config, torch.Generator().manual_seed(0))
    store = TextKeysValuesStore("video", len(model.transformer_blocks))
    with pytest.raises(ValueError, match="do not follow sigma"), torch.no_grad():
        model(replace(video, text_store=store), None)


def test_the_sampler_adapter_keeps_a_streamed_models_text_where_it_fits(checkpoints, monkeypatch) -> None:
    """LTXAVModel over a streamed transformer: text keys/values computed in the first step only when they fit
    the activation budget beside the step's activations, every step's x0 the same bits either way."""
    from ltxgraph_ops.av_model import LTXAVModel
    from ltxgraph_ops.conditioning import Conditioning
    streamed = load_transformer(checkpoints["fp8"], streamed=True)
    generator = torch.Generator().manual_seed(1)
    positive = Conditioning(torch.randn(1, 6, 24, generator=generator), torch.randn(1, 6, 24, generator=generator),
                            frame_rate=24.0)
    latents = (torch.randn(1, 128, 2, 2, 3, generator=generator), torch.randn(1, 8, 5, 16, generator=generator))
    blocks = len(streamed.transformer_blocks)
    calls = text_keys_values_made(monkeypatch)

    def two_steps(**settings) -> tuple[list[torch.Tensor], int]:
        model = LTXAVModel(streamed, ("video", "audio"), positive, **settings)
        before = len(calls)
        with torch.no_grad():
            x0s = [x for sigma in (0.9, 0.5) for x in model(latents, (torch.tensor(sigma),) * 2, torch.tensor(sigma))]
        return x0s, len(calls) - before
    plain, plain_calls = two_steps(cache_text=False)
    kept, kept_calls = two_steps()
    activations = LTXAVModel(streamed, ("video", "audio"), positive).pass_activation_bytes(latents)
    tight, tight_calls = two_steps(activation_budget=activations)        # no room for the text beside them
    assert (plain_calls, kept_calls, tight_calls) == (4 * blocks, 2 * blocks, 4 * blocks)
    assert all(torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(plain, kept, tight))


def test_step_benchmarks_read_a_shallow_file_as_the_release_would_be_read(checkpoints) -> None:
    """The step benchmarks' default read mode is the one the release's 48 blocks would get, not the shallow
    file's own (which fits in the page cache where the release does not)."""
    from ltxgraph_ops.model_files import transformer_prefix
    from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
    from tools.benchmarks.real_scale import release_block_bytes
    file = SafetensorsFile(checkpoints["fp8"])
    block = sum(e.nbytes for key, e in file.entries.items()
                if key.startswith(f"{transformer_prefix(file)}transformer_blocks.0."))
    assert block > 0 and release_block_bytes(file) == 48 * block
    assert release_block_bytes(file, release_blocks=3) == 3 * block
