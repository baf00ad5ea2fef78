"""How the guidance passes of one step share a forward: as few batched forwards as the memory budget allows.

Every forward of a streamed transformer reads (and converts) every block's weights once, whatever its batch, so
the passes of a step (positive, negative, perturbed, isolated, ...) run as one forward with the passes stacked on
the batch axis, and split into sequential sub-batches only when their activations would not fit the budget.
Pure functions: the decision depends on token counts, widths and the budget only.
"""
from __future__ import annotations

import math

from ltxgraph_ops.models.transformer_inputs import TransformerConfig

# Per token and block, a stream holds about 14 stream widths of activations at the feed-forward's peak: the
# residual, its normalised input, the 4x hidden before and after GELU, the output (11), the RoPE tables (1) and
# the input tokens, timesteps and slack (2). Measured (peak RSS growth of a forward, 1 block, video 4096 tokens x
# 512, audio 128 x 256, 128 text tokens): 114 MiB for 1 row (estimate 115), 342 and 420 MiB for 4 rows in two
# runs (estimate 458: an upper bound at several rows).
WIDTHS_PER_TOKEN = 14


def activation_bytes(config: TransformerConfig, video_tokens: int, audio_tokens: int, text_tokens: int,
                     rows: int = 1, element_bytes: int = 4, guide_attention: bool = False) -> int:
    """Estimated peak activation bytes of one forward over ``rows`` batch rows: per stream ``WIDTHS_PER_TOKEN``
    widths per token, the text keys and values each row reads (2 x text tokens x width), and, with guide
    attention strengths, the [T, T] self-attention bias of the video."""
    per_row = 0
    if config.has_video and video_tokens:
        per_row += (WIDTHS_PER_TOKEN * video_tokens + 2 * text_tokens) * config.video_dim
        per_row += video_tokens * video_tokens if guide_attention else 0
    if config.has_audio and audio_tokens:
        per_row += (WIDTHS_PER_TOKEN * audio_tokens + 2 * text_tokens) * config.audio_dim
    return rows * per_row * element_bytes


def plan_pass_batches(passes: int, bytes_per_pass: int, budget: int | None) -> list[range]:
    """Split ``passes`` guidance passes (indices 0..passes-1, in order) into consecutive sub-batches whose
    activations (``bytes_per_pass`` each) fit ``budget`` bytes: one batch when they all fit or there is no budget,
    else the fewest batches of near-equal size (at least one pass each, even if one alone exceeds the budget)."""
    if passes < 0 or bytes_per_pass < 0:
        raise ValueError(f"passes ({passes}) and bytes per pass ({bytes_per_pass}) must not be negative")
    if passes == 0:
        return []
    fit = passes if budget is None or bytes_per_pass == 0 else max(1, min(passes, budget // bytes_per_pass))
    batches = math.ceil(passes / fit)
    bounds = [round(k * passes / batches) for k in range(batches + 1)]
    return [range(start, stop) for start, stop in zip(bounds, bounds[1:])]
