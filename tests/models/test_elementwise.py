"""The transformer blocks' element-wise regions compiled by torch.compile equal the eager ones (float32); a run
setting chooses them."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from ltxgraph_ops.model_files import load_transformer
from ltxgraph_ops.models import fused_norm
from ltxgraph_ops.models.elementwise import EAGER, compiled_kernels, use_kernels
from ltxgraph_ops.tiny import transformer as tiny
from ltxgraph_ops.tiny.files import write_checkpoint
from tools.oracle.transformer import audio_input, video_input


def test_eager_kernels_are_the_default_of_every_block_and_attention() -> None:
    model = tiny.build(tiny.tiny_config())
    users = [m for m in model.modules() if hasattr(m, "kernels")]
    assert users and all(m.kernels is EAGER for m in users)


@pytest.mark.slow   # compiling takes 40 s to minutes on a shared 2-core machine
@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile on the CPU needs a C++ compiler")
def test_compiled_regions_equal_eager_within_float32_rounding(tmp_path: Path) -> None:
    model = load_transformer(write_checkpoint(tmp_path / "tiny.safetensors", "float32", 0, [tiny]))
    generator, config = torch.Generator().manual_seed(0), tiny.tiny_config()
    video, audio = video_input(config, generator), audio_input(config, generator)
    with torch.no_grad():
        eager = model(video, audio)
        use_kernels(model, compiled_kernels())
        assert all(m.kernels.name == "compiled" for m in model.modules() if hasattr(m, "kernels"))
        compiled = model(video, audio)
    for want, got in ((eager.video, compiled.video), (eager.audio, compiled.audio)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def test_run_setting_compile_kernels_reaches_the_loaded_transformer(tmp_path: Path) -> None:
    from ltxgraph import api
    from ltxgraph.context import RunSettings
    from ltxgraph.paths import Folders
    (tmp_path / "diffusion_models").mkdir()
    write_checkpoint(tmp_path / "diffusion_models" / "m.safetensors", "fp8", 0, [tiny])
    graph = tmp_path / "g.yaml"
    graph.write_text("ltxgraph: 1\nnodes:\n  m: {op: UNETLoader, in: {unet_name: m.safetensors}}\n"
                     "outputs:\n  model: '@m.MODEL'\n")
    default = "eager" if fused_norm.native_kernels() is None else "native"   # native where a C compiler is
    for compile_kernels, name in ((False, default), (True, "compiled")):
        runner = api.Runner(use_cache=False, folders=Folders(models=(tmp_path,)),
                            settings=RunSettings(compile_kernels=compile_kernels))
        with runner.run(api.load(graph)).outputs["model"].applied() as transformer:   # compiles on first call only
            assert {m.kernels.name for m in transformer.modules() if hasattr(m, "kernels")} == {name}
