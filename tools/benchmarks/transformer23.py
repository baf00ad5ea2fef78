"""Our LTX-2.3 transformer forward vs diffusers 0.42.1's ``LTX2VideoTransformer3DModel`` on identical weights and
inputs (CPU), at the mid size of :mod:`tools.benchmarks.transformer` with the 2.3 header (gated attention,
cross-attention AdaLN, text already at stream width), once per compute dtype (float32, bfloat16: both models
hold their weights and compute in it; ours holds its Linear weights as the loader does). Timings interleaved,
medians reported in wall and CPU seconds.
``ours_text_prepared_s``: our forward with the text keys/values prepared for the step's sigma (what the guidance
passes of one step after the first reuse).
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import Callable

import torch

from ltxgraph_ops.models.transformer import Perturbations
from ltxgraph_ops.tiny import transformer as tiny
from tools.benchmarks.transformer import (SIZES, THREADS, as_loaded, header, inputs, interleaved,
                                          profile_figures, timing_figures)
from tools.oracle import diffusers_transformer as oracle


@torch.no_grad()
def compare23(size: dict, dtype: torch.dtype) -> dict:
    """Ours against diffusers, both holding their weights and computing in ``dtype``."""
    torch.set_num_threads(THREADS)
    config = header(size, tiny.full_config_23)
    pair = oracle.build_pair(config)
    pair.ours.to(dtype), pair.reference.to(dtype)
    as_run = as_loaded(pair.ours, dtype)
    video, audio = inputs(config, size, dtype)
    prepared = {name: pair.ours.prepare_text(name, s.context, s.context_mask, sigma=s.sigma)
                for name, s in (("video", video), ("audio", audio))}
    prepared_video = replace(video, context=prepared["video"], context_mask=None)
    prepared_audio = replace(audio, context=prepared["audio"], context_mask=None)

    def run_ours():
        return pair.ours(video, audio)

    def run_reference():
        return oracle.reference_velocity(pair, video, audio, Perturbations())

    def run_ours_prepared():
        return pair.ours(prepared_video, prepared_audio)

    out, ref = run_ours(), run_reference()                                # warm-up, and agreement
    run_ours_prepared()
    error = max(oracle.max_error(out.video.float(), ref[0].float()),
                oracle.max_error(out.audio.float(), ref[1].float()))
    load = os.getloadavg()[0]
    times = interleaved({"ours": run_ours, "reference": run_reference, "prepared": run_ours_prepared},
                        size["repeats"])
    figures = timing_figures(times, "prepared")
    return {**figures, "load_average": [round(load, 1), round(os.getloadavg()[0], 1)],
            "max_abs_difference": error, **as_run, "config": dict(size),
            "video_dim": config["cross_attention_dim"], "audio_dim": config["audio_cross_attention_dim"],
            **profile_figures(run_ours, figures["ratio"])}


def transformer23_vs_reference() -> dict:
    """Both compute dtypes, each ours vs diffusers in that dtype."""
    return {"threads": THREADS, "torch": torch.__version__, "reference": "diffusers 0.42.1",
            **{str(dtype).removeprefix("torch."): compare23(size, dtype) for dtype, size in SIZES.items()}}


BENCHMARKS: dict[str, Callable[[], dict]] = {"transformer23-vs-reference": transformer23_vs_reference}
