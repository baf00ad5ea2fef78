"""Side-by-side with the reference on identical seeded weights and inputs (CPU, float32, ``torch.no_grad``, 2
threads): the video VAE decoder and the text path (Gemma 3 + feature projection + video/audio connectors).

Every case runs once as a warm-up (its outputs give the parity figures: max abs difference of ours against the
reference), then the cases are timed in interleaved rounds (ours, reference, ours, ...) and medians reported, so
that load from other processes on the machine hits every case alike.

``vae-decode-vs-reference``: our ``VideoVAE.decode`` vs ltx-core 1.0.0's decoder, both built from the release's
``vae`` header section (528M-parameter decoder) by ``tools.oracle.video_vae.pair``; one decode of a latent
[1, 128, 2, 8, 8] (9 frames of 256 x 256) takes ~12 s a side here. No memory figure: the largest activations are
tens of MB, below what the allocator hands back to the system, so in-process RSS peaks say nothing.

``text-encode-vs-reference``: Gemma 3 (ours: ``GemmaTextModel``; reference: transformers' ``Gemma3TextModel``,
eager attention, as ``tools.oracle.gemma.reference`` builds it) then the projection and both connectors (ours:
``TextProjector``; reference: ltx-core's ``FeatureExtractorV1`` and embeddings connectors, batch 1, additive mask).
A "mid" config: the 12B Gemma's structure at half its width and an eighth of its depth (head_dim 256 and
query_pre_attn_scalar 256, q width above the hidden width, grouped-query heads, 5 sliding layers then a global
one, 12B RoPE settings) and the release connectors at half width (15 heads x 128 = the Gemma width; every other
key is the 19B header's). Gemma and connectors shrink by the same factor (1/4 of the parameters per layer), so
their balance per Gemma layer is the release's. One prompt of 40 tokens left-padded to 1024 (as LTX-2 pads).
Three cases: (a) the reference at the full 1024 tokens (what ltx-core runs); (b) ours at 1024 (the same work);
(c) ours as ``TextEncoderHandle.encode`` runs it: Gemma on the non-padding columns only, positions kept
(``position_offset``), the projector told the padded length. Each case's Gemma and projector stages are timed
apart too. ``c_gemma_one_thread_s`` is case (c)'s Gemma stage with one thread: on 40 tokens its ~300 operators
are small, and when the machine's two cores are busy with other work each two-thread operator waits for the
scheduler to run its second thread (milliseconds each), which one thread does not; ``load_average_1min`` (before
and after the rounds) says how busy the machine was.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable

import torch

THREADS = 2

VAE_LATENT = (1, 128, 2, 8, 8)          # -> 9 frames of 256 x 256
VAE_REPEATS = 3
VAE_SEED = 5

TEXT_LENGTH = 1024                      # LTX-2 pads every prompt (left) to 1024 tokens
PROMPT_TOKENS = 40
TEXT_REPEATS = 3
TEXT_SEED = 31
# the 12B: hidden 3840, intermediate 15360, 48 layers, 16 heads / 8 kv heads of 256, vocabulary 262208 (the
# vocabulary only sizes the embedding table, which a forward merely looks rows up in: kept small here)
GEMMA = {"vocab_size": 8192, "hidden_size": 1920, "intermediate_size": 7680, "num_hidden_layers": 6,
         "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "query_pre_attn_scalar": 256,
         "sliding_window": 1024, "sliding_window_pattern": 6}
CONNECTOR_HEADS = 15                    # x 128 = 1920 (release: 30 x 128 = 3840)


def seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def rounded_median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def cpu_name() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def interleaved(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds of every case over ``repeats`` rounds, cases in turn within a round."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, run in cases.items():
            times[name].append(seconds(run))
    return times


# ---------------------------------------------------------------------------------------------------- VAE decode


@torch.no_grad()
def vae_decode_vs_reference() -> dict:
    from ltxgraph_ops import releases
    from tools.oracle.video_vae import pair
    torch.set_num_threads(THREADS)
    ours, encoder, reference = pair(releases.video_vae_section_20())
    del encoder
    latent = torch.randn(VAE_LATENT, generator=torch.Generator().manual_seed(VAE_SEED))
    cases = {"ours": lambda: ours.decode(latent), "reference": lambda: reference(latent)}
    outputs = {name: run() for name, run in cases.items()}                # warm-up and parity
    load_before = os.getloadavg()[0]
    times = interleaved(cases, VAE_REPEATS)
    ours_m, ref_m = (statistics.median(times[name]) for name in cases)
    return {"config": "releases.video_vae_section_20", "threads": THREADS, "cpu": cpu_name(),
            "torch": torch.__version__,
            "decoder_parameters": sum(p.numel() for p in reference.parameters()),
            "latent_shape": list(latent.shape), "output_shape": list(outputs["ours"].shape),
            "ours_s": round(ours_m, 3), "reference_s": round(ref_m, 3), "ratio": round(ours_m / ref_m, 3),
            "ours_all_s": [round(t, 3) for t in times["ours"]],
            "reference_all_s": [round(t, 3) for t in times["reference"]],
            "max_abs_difference": float((outputs["ours"] - outputs["reference"]).abs().max()),
            "output_max_abs": float(outputs["reference"].abs().max()),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


# --------------------------------------------------------------------------------------------------- text encode


def connector_section() -> dict:
    """The 19B ``transformer`` header section with its connectors as wide as the mid Gemma."""
    from ltxgraph_ops.tiny import transformer
    return {**transformer.full_config(), "caption_channels": GEMMA["hidden_size"],
            "connector_num_attention_heads": CONNECTOR_HEADS}


def gemma_pair():
    """Our Gemma and transformers' on the same seeded weights (norm weights near zero, as trained ones are)."""
    from ltxgraph_ops.models.gemma import GemmaTextModel
    from ltxgraph_ops.models.gemma_config import GemmaConfig
    from ltxgraph_ops.weights.writing import random_state
    from tools.oracle.gemma import reference
    cfg = GemmaConfig(**GEMMA)
    ours = GemmaTextModel(cfg).eval()
    state = random_state(ours, "", TEXT_SEED)
    for key in state:
        if "norm" in key:
            state[key] = state[key] - 1.0
    ours.load_state_dict(state)
    return ours, reference(cfg, state)


def projector_pair(section: dict, states: int):
    """Our TextProjector and ltx-core's FeatureExtractorV1 + video / audio connectors on the same seeded
    weights (registers rounded to bf16, the dtype ltx-core keeps them in)."""
    from ltx_core.text_encoders.gemma.embeddings_connector import (AudioEmbeddings1DConnectorConfigurator,
                                                                   Embeddings1DConnectorConfigurator)
    from ltx_core.text_encoders.gemma.feature_extractor import FeatureExtractorV1
    from ltxgraph_ops.models.text_connectors import TextProjector
    from ltxgraph_ops.weights.writing import random_state
    ours = TextProjector(section, states).eval()
    state = random_state(ours, "", TEXT_SEED + 1)
    for key in state:
        if key.endswith("learnable_registers"):
            state[key] = state[key].to(torch.bfloat16).float()
    ours.load_state_dict(state)
    connectors = {}
    for name, configurator in (("video", Embeddings1DConnectorConfigurator),
                               ("audio", AudioEmbeddings1DConnectorConfigurator)):
        with torch.device("meta"):
            module = configurator.from_config({"transformer": section})
        module = module.to_empty(device="cpu")
        prefix = f"model.diffusion_model.{name}_embeddings_connector."
        module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        connectors[name] = module.float().eval()
    weight = state["text_embedding_projection.aggregate_embed.weight"]
    aggregate = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    aggregate.load_state_dict({"weight": weight})
    return ours, FeatureExtractorV1(aggregate_embed=aggregate, is_av=True), connectors["video"], connectors["audio"]


def prompt() -> tuple[torch.Tensor, torch.Tensor]:
    """ids and mask [1, 1024]: PROMPT_TOKENS tokens left-padded with the pad id 0."""
    ids = torch.zeros(1, TEXT_LENGTH, dtype=torch.int64)
    mask = torch.zeros(1, TEXT_LENGTH, dtype=torch.int64)
    ids[:, -PROMPT_TOKENS:] = torch.randint(4, GEMMA["vocab_size"], (1, PROMPT_TOKENS),
                                            generator=torch.Generator().manual_seed(TEXT_SEED))
    mask[:, -PROMPT_TOKENS:] = 1
    return ids, mask


def text_cases(ids: torch.Tensor, mask: torch.Tensor) -> dict[str, tuple[Callable, Callable]]:
    """Each case as two stages: Gemma (no argument -> hidden states), projector (hidden states -> (video,
    audio))."""
    from ltx_core.text_encoders.gemma.embeddings_processor import convert_to_additive_mask
    gemma, gemma_ref = gemma_pair()
    projector, extractor, video_ref, audio_ref = projector_pair(connector_section(), len(gemma.layers) + 1)
    start = int(mask.any(dim=0).int().argmax())          # as TextEncoderHandle.encode: all-padding columns dropped

    def reference_projector(states):
        features, audio_features = extractor(list(states), mask, padding_side="left")
        additive = convert_to_additive_mask(mask, features.dtype)
        return video_ref(features, additive)[0], audio_ref(audio_features, additive)[0]

    def ours_projector(states, columns=0):
        video, audio, _ = projector(states, mask[:, columns:], length=mask.shape[1])
        return video, audio

    return {
        "reference_full": (lambda: gemma_ref(input_ids=ids, attention_mask=mask, output_hidden_states=True
                                              ).hidden_states, reference_projector),
        "ours_full": (lambda: gemma(ids, mask), ours_projector),
        "ours_trimmed": (lambda: gemma(ids[:, start:], mask[:, start:], position_offset=start),
                         lambda states: ours_projector(states, columns=start)),
    }


def staged(case: tuple[Callable, Callable]) -> tuple[tuple[torch.Tensor, torch.Tensor], float, float]:
    gemma_stage, projector_stage = case
    start = time.perf_counter()
    states = gemma_stage()
    middle = time.perf_counter()
    out = projector_stage(states)
    return out, middle - start, time.perf_counter() - middle


@torch.no_grad()
def text_encode_vs_reference() -> dict:
    torch.set_num_threads(THREADS)
    ids, mask = prompt()
    cases = text_cases(ids, mask)
    outputs = {name: staged(case)[0] for name, case in cases.items()}              # warm-up and parity
    times: dict[str, dict[str, list[float]]] = {name: {"gemma": [], "projector": [], "total": []}
                                                for name in cases}
    one_thread = []
    load_before = os.getloadavg()[0]
    for _ in range(TEXT_REPEATS):
        for name, case in cases.items():
            _, gemma_s, projector_s = staged(case)
            for stage, value in (("gemma", gemma_s), ("projector", projector_s), ("total", gemma_s + projector_s)):
                times[name][stage].append(value)
        torch.set_num_threads(1)
        one_thread.append(seconds(cases["ours_trimmed"][0]))
        torch.set_num_threads(THREADS)
    medians = {name: {f"{stage}_s": rounded_median(values) for stage, values in stages.items()}
               for name, stages in times.items()}
    reference_total = statistics.median(times["reference_full"]["total"])
    ref_video, ref_audio = outputs["reference_full"]
    parity = {}
    for name in ("ours_full", "ours_trimmed"):
        video, audio = outputs[name]
        parity[name] = {"video_max_abs_difference": float((video - ref_video).abs().max()),
                        "audio_max_abs_difference": float((audio - ref_audio).abs().max()),
                        "prompt_video_max_abs_difference":
                            float((video[:, :PROMPT_TOKENS] - ref_video[:, :PROMPT_TOKENS]).abs().max())}
    return {
        "threads": THREADS, "cpu": cpu_name(), "torch": torch.__version__,
        "gemma_config": dict(GEMMA), "connector": {"heads": CONNECTOR_HEADS, "head_dim": 128, "layers": 2,
                                                   "registers": 128, "hidden_states": GEMMA["num_hidden_layers"] + 1},
        "batch": 1, "length": TEXT_LENGTH, "prompt_tokens": PROMPT_TOKENS,
        "context_shape": list(ref_video.shape),
        "a_reference_full": medians["reference_full"],
        "b_ours_full": medians["ours_full"],
        "c_ours_trimmed": medians["ours_trimmed"],
        "c_gemma_one_thread_s": rounded_median(one_thread),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "ratio_b_over_a": round(statistics.median(times["ours_full"]["total"]) / reference_total, 3),
        "ratio_c_over_a": round(statistics.median(times["ours_trimmed"]["total"]) / reference_total, 3),
        "all_total_s": {name: [round(t, 3) for t in stages["total"]] for name, stages in times.items()},
        "parity": parity,
        "context_max_abs": float(ref_video.abs().max()),
    }


BENCHMARKS: dict[str, Callable[[], dict]] = {
    "vae-decode-vs-reference": vae_decode_vs_reference,
    "text-encode-vs-reference": text_encode_vs_reference,
}
