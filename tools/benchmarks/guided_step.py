"""guided-step-batching: one guided denoising step at the 19B widths, streamed, with the four guidance passes of
the multimodal guider (positive, negative, STG, isolated modalities) in one batched forward vs one forward per
pass. The transformer has 4 of the release's 48 blocks (full widths, fp8, synthetic weights, written into
$LTXGRAPH_FULL_DIR/depth-4 and kept); inputs as full-19b-step: 256x256, 9 frames (128 video tokens), 9 audio
frames, 128-token prompts (the negative a different one). Each mode runs in its own process (its own peak RSS);
cpu_seconds (user + system of the process) is the figure to compare on a shared machine.
"""
from __future__ import annotations

from tools.benchmarks.full_scale import BUDGET, FULL_DIR, run_full

DEPTH = 4

GUIDED_STEP = """
from ltxgraph_ops.av_model import LTXAVModel
from ltxgraph_ops.conditioning import Conditioning
from ltxgraph_ops.model_files import load_transformer
from ltxgraph_ops.sampling.guiders import GuidanceParams, MultimodalGuider
transformer = load_transformer(FILES['checkpoint'], streamed=True)
blocks = transformer.transformer_blocks
g = torch.Generator().manual_seed(0)
def prompt():
    text = torch.randn(1, 128, 3840, generator=g)
    return Conditioning(text, text.clone(), torch.ones(1, 128, dtype=torch.int64), frame_rate=25.0)
positive, negative = prompt(), prompt()
latents = (torch.randn(1, 128, 2, 8, 8, generator=g), torch.randn(1, 8, 9, 16, generator=g))
steps = (torch.ones(1, 1, 1, 1, 1), torch.ones(1, 1, 1, 1))
params = [GuidanceParams(cfg=3.0, stg=1.0, modality=3.0, rescale=0.7, stg_blocks=(1,)),
          GuidanceParams(cfg=7.0, stg=1.0, modality=3.0, rescale=0.7, stg_blocks=(1,))]
adapter = LTXAVModel(transformer, ("video", "audio"), positive, negative, cache_text=False,
                     activation_budget=ACTIVATION_BUDGET)
guider = MultimodalGuider(adapter, params)
start, cpu, reads = time.perf_counter(), time.process_time(), blocks.reads
with torch.inference_mode():
    out = guider(latents, steps, torch.tensor(1.0))
figures.update(passes=len(guider.passes()), blocks=len(blocks), block_reads=blocks.reads - reads,
               step_seconds=round(time.perf_counter() - start, 2), cpu_seconds=round(time.process_time() - cpu, 2),
               peak_rss_gib=peak_gib(),
               pass_activation_mib=round(adapter.pass_activation_bytes(latents) / 2**20, 1),
               finite=all(bool(torch.isfinite(x).all()) for x in out))
"""


def guided_step_batching() -> dict:
    """Batched (activation budget = the 6 GiB memory budget) vs one forward per pass (budget 1 byte)."""
    folder = FULL_DIR / f"depth-{DEPTH}"
    return {mode: run_full(f"ACTIVATION_BUDGET = {budget}\n" + GUIDED_STEP, ("checkpoint",), folder, DEPTH)
            for mode, budget in (("batched", BUDGET), ("one_forward_per_pass", 1))}


BENCHMARKS = {"guided-step-batching": guided_step_batching}
