"""Block streaming: the same outputs as the resident model, bit for bit, with and without prefetch; weights
released after use; LoRAs survive; the memory budget switches it on."""
from __future__ import annotations

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
def test_streamed_forward_equals_resident(checkpoints, storage: str, prefetch: bool) -> None:
    resident = load_transformer(checkpoints[storage])
    streamed = load_transformer(checkpoints[storage], streamed=True, prefetch=prefetch)
    assert is_streamed(streamed) and not is_streamed(resident)
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
