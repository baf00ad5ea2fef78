"""Parity of the LTX-2.5 duration head with diffusers 0.42.1 (``LTX2DurationHead``) on identical tiny weights:
seconds for video and audio text together, each alone, a batch of three with different text lengths; and the frame
count ltxgraph proposes (``frames_for_seconds``) against diffusers' ``predict_num_frames`` over a grid of durations
and bounds (its error is the largest frame-count difference). float32, CPU.

Layout bridged here (a fact of the two codes): the checkpoint (ltx-core's ``nn.MultiheadAttention``) stacks the
pooler's query, key and value projections in ``cross_attn.in_proj_{weight,bias}``; diffusers holds them as
``to_q`` / ``to_k`` / ``to_v`` and the output projection as ``to_out`` (its ``mlp_hidden`` width is the config
field ``mlp_hidden_dim``).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from ltxgraph_ops.models.duration_head import DurationHead, DurationHeadConfig, frames_for_seconds  # noqa: E402
from ltxgraph_ops.tiny import duration_head as tiny  # noqa: E402
from tools.oracle.guard import compared  # noqa: E402
from tools.oracle.transformer import random_state  # noqa: E402

SEED = 31
POOLER = "attention_pooler."


def diffusers_name_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoint-layout state -> diffusers' names (stacked in_proj split into q, k, v)."""
    converted = {}
    for key, value in state.items():
        if key.startswith(POOLER + "cross_attn.in_proj_"):
            kind = key.rsplit("_", 1)[-1]                         # "weight" | "bias"
            for name, part in zip(("to_q", "to_k", "to_v"), value.chunk(3)):
                converted[f"{POOLER}{name}.{kind}"] = part
        else:
            converted[key.replace(POOLER + "cross_attn.out_proj.", POOLER + "to_out.")] = value
    return converted


def build_pair(header: dict) -> tuple[DurationHead, torch.nn.Module]:
    from diffusers.pipelines.ltx2.duration_head import LTX2DurationHead
    c = DurationHeadConfig.from_header(header)
    ours = DurationHead(c)
    state = random_state(ours, SEED)
    ours.load_state_dict(state, strict=True)
    reference = LTX2DurationHead(video_cross_attention_dim=c.video_dim, audio_cross_attention_dim=c.audio_dim,
                                 pooler_hidden_dim=c.pooler_hidden_dim, num_queries=c.num_queries,
                                 num_pooler_heads=c.num_pooler_heads, mlp_hidden_dim=c.mlp_hidden)
    reference.load_state_dict(diffusers_name_state(state), strict=True)
    return ours.eval(), reference.float().eval()


@torch.no_grad()
def seconds_parity() -> float:
    ours, reference = build_pair(tiny.tiny_header())
    generator = torch.Generator().manual_seed(SEED + 1)
    c = ours.config
    video = torch.randn(3, 7, c.video_dim, generator=generator)
    audio = torch.randn(3, 5, c.audio_dim, generator=generator)
    cases = ((video, audio), (video, None), (None, audio), (video[:1, :4], audio[:1]))
    return compared("duration head", torch.cat([ours(v, a) for v, a in cases]),
                    torch.cat([reference(v, a) for v, a in cases]))


def frame_count_parity() -> float:
    """Largest |ours - diffusers| frame count over durations 0.05 .. 30 s, several rates and bounds (diffusers'
    ``predict_num_frames`` on a head whose forward returns the duration asked; durations float32, as a head's)."""
    from diffusers.pipelines.ltx2.duration_head import LTX2DurationHead

    class Fixed(LTX2DurationHead):
        seconds = 0.0

        def forward(self, video_tokens=None, audio_tokens=None):
            return torch.tensor([self.seconds])
    head, worst = Fixed(8, 8, 4, 1, 1, 4), 0
    for frame_rate in (24.0, 25.0, 30.0, 8.0):
        for low, high in ((1.0, 20.0), (0.5, 2.0), (2.0, 2.1), (1.0, 1.05)):
            for seconds in [float(torch.tensor(0.05 * k)) for k in range(1, 601)]:   # as a head returns them
                ours = frames_for_seconds(seconds, frame_rate, low, high)
                if (ours - 1) % 8:
                    raise AssertionError(f"{ours} frames is not 8n+1 ({seconds} s, {frame_rate} fps)")
                head.seconds = seconds
                theirs = head.predict_num_frames(torch.zeros(1, 1, 8), frame_rate=frame_rate,
                                                 temporal_compression_ratio=8, min_seconds=low, max_seconds=high)
                worst = max(worst, abs(ours - int(theirs)))
    return float(worst)


CHECKS: dict[str, Callable[[], float]] = {
    "ltx25_duration_head": seconds_parity,
    "ltx25_duration_head_frames": frame_count_parity,
}
