"""Peak memory of loading a transformer checkpoint and running one forward on a small input: fp8 file vs its
bf16 twin, ours vs ltx-core's builder (which memory-maps the file, so only a forward shows what it really holds).

Each case runs in a fresh subprocess; the figures are growths of the process's RSS over its RSS just before
loading: after loading, after one forward, and the peak (VmHWM).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

LOAD = """
import json, sys, torch
sys.path.insert(0, {root!r})
def status(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
import ltxgraph_ops.model_files, ltx_core.loader.single_gpu_model_builder
before = status('VmRSS')
if {who!r} == 'ours':
    from ltxgraph_ops.model_files import load_transformer
    model = load_transformer({path!r})
else:
    from ltx_core.loader.single_gpu_model_builder import SingleGPUModelBuilder
    from ltx_core.model.transformer.model_configurator import LTXModelConfigurator, LTXV_MODEL_COMFY_RENAMING_MAP
    model = SingleGPUModelBuilder(model_class_configurator=LTXModelConfigurator, model_path={path!r},
                                  model_sd_ops=LTXV_MODEL_COMFY_RENAMING_MAP).build(device=torch.device('cpu'))
loaded = status('VmRSS') - before
from tools.oracle.transformer import audio_input, video_input, to_modality, to_reference_perturbations
from ltxgraph_ops.models.transformer import Perturbations
config = json.loads({config!r})
generator = torch.Generator().manual_seed(0)
video, audio = video_input(config, generator), audio_input(config, generator)
with torch.no_grad():
    if {who!r} == 'ours':
        model(video, audio)
    else:
        def cast(m):
            return m.__class__(**{{**m.__dict__, 'latent': m.latent.bfloat16(), 'context': m.context.bfloat16()}})
        model(cast(to_modality(video)), cast(to_modality(audio)), to_reference_perturbations(Perturbations(), 2))
print(json.dumps({{'after_load_bytes': loaded, 'after_forward_bytes': status('VmRSS') - before,
                  'peak_bytes': status('VmHWM') - before}}))
"""


def mid_config() -> dict:
    from ltxgraph_ops.tiny import transformer as tiny
    return {**tiny.full_config(), "num_layers": 4, "num_attention_heads": 16, "cross_attention_dim": 2048,
            "audio_num_attention_heads": 16, "audio_cross_attention_dim": 1024}


def measure(path: Path, who: str, config: dict) -> dict:
    code = LOAD.format(root=str(ROOT), who=who, path=str(path), config=json.dumps(config))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_memory(config_name: str) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch

    from ltxgraph_ops.tiny import transformer as tiny
    from ltxgraph_ops.weights.writing import checkpoint_tensors, header_metadata, save_atomic
    config = tiny.tiny_config() if config_name == "tiny" else mid_config()
    results: dict = {"config": config_name}
    with tempfile.TemporaryDirectory() as folder:
        with torch.device("meta"):
            layout = tiny.build(config, device="meta")
        results["parameters"] = sum(p.numel() for p in layout.parameters())
        for storage in ("fp8", "bf16"):
            tensors = checkpoint_tensors([(layout, tiny.PREFIX)], 0, storage)
            path = save_atomic(Path(folder) / f"{storage}.safetensors", tensors,
                               header_metadata({"transformer": config}))
            del tensors
            entry = {"file_bytes": path.stat().st_size, "ours": measure(path, "ours", config)}
            if storage == "bf16":  # ltx-core's fp8 path needs its own quantisation policy; compare on bf16
                entry["ltx_core"] = measure(path, "reference", config)
            results[storage] = entry
    return results


BENCHMARKS = {
    "checkpoint-load-tiny": lambda: load_memory("tiny"),
    "checkpoint-load-mid": lambda: load_memory("mid"),
}
