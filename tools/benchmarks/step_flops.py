"""Matmul FLOPs of one transformer forward, counted from the architecture (2 * m * n * k per matrix product:
every Linear layer and the two products of each attention), for the achieved-GFLOP/s figures of the real-scale
benchmarks. ``total`` includes attention's two products (Q K^T and the weighted sum of V); ``linear_total`` is
the Linear layers alone. Element-wise work (norms, RoPE, GELU, softmax) is left out. tests/tools checks the count
against torch's own FLOP counter on the tiny model.
"""
from __future__ import annotations

from dataclasses import dataclass

from ltxgraph_ops.models.transformer import TransformerConfig

TIMESTEP_CHANNELS = 256     # sinusoidal timestep embedding width fed to every AdaLN-single


@dataclass(frozen=True)
class Tokens:
    """Token counts of one forward: video and audio latent tokens, text tokens (per stream, after padding)."""

    video: int
    audio: int
    text: int
    batch: int = 1
    text_kept: bool = False     # the text keys/values (and caption projections) kept from an earlier forward


def linear(tokens: int, inputs: int, outputs: int) -> int:
    return 2 * tokens * inputs * outputs


def _attention(queries: int, keys: int, query_dim: int, context_dim: int, heads: int, head_dim: int,
              gated: bool = False, products: bool = True, keys_made: bool = True) -> int:
    """Projections q, k, v (``keys_made``: k and v too), out (and the gate logits), then (``products``) Q K^T
    and the weighted sum of V."""
    inner = heads * head_dim
    projections = (linear(queries, query_dim, inner) + (2 * linear(keys, context_dim, inner) if keys_made else 0)
                   + linear(queries, inner, query_dim) + (linear(queries, query_dim, heads) if gated else 0))
    return projections + (2 * (2 * queries * keys * inner) if products else 0)


def feed_forward(tokens: int, dim: int) -> int:
    return linear(tokens, dim, 4 * dim) + linear(tokens, 4 * dim, dim)


def block_flops(c: TransformerConfig, t: Tokens, products: bool = True) -> int:
    """One transformer block: per stream self-attention, text cross-attention, feed-forward; then both
    audio<->video cross-attentions (audio heads); per sample. ``products``: with the attention products (False:
    the Linear layers alone)."""
    flops = 0

    def attention(*args, keys_made: bool = True) -> int:
        return _attention(*args, gated=c.apply_gated_attention, products=products, keys_made=keys_made)

    if c.has_video:
        flops += attention(t.video, t.video, c.video_dim, c.video_dim, c.num_attention_heads, c.attention_head_dim)
        flops += attention(t.video, t.text, c.video_dim, c.cross_attention_dim, c.num_attention_heads,
                           c.attention_head_dim, keys_made=not t.text_kept)
        flops += feed_forward(t.video, c.video_dim)
    if c.has_audio:
        flops += attention(t.audio, t.audio, c.audio_dim, c.audio_dim, c.audio_num_attention_heads,
                           c.audio_attention_head_dim)
        flops += attention(t.audio, t.text, c.audio_dim, c.audio_cross_attention_dim, c.audio_num_attention_heads,
                           c.audio_attention_head_dim, keys_made=not t.text_kept)
        flops += feed_forward(t.audio, c.audio_dim)
    if c.has_video and c.has_audio:
        heads, head_dim = c.audio_num_attention_heads, c.audio_attention_head_dim
        flops += attention(t.video, t.audio, c.video_dim, c.audio_dim, heads, head_dim)   # audio -> video
        flops += attention(t.audio, t.video, c.audio_dim, c.video_dim, heads, head_dim)   # video -> audio
    return flops * t.batch


def adaln(dim: int, rows: int) -> int:
    """AdaLN-single for one sample's sigma (the model embeds each sample's sigma once and scales the result per
    token): 256 -> D, D -> D, then D -> rows * D."""
    return linear(1, TIMESTEP_CHANNELS, dim) + linear(1, dim, dim) + linear(1, dim, rows * dim)


def outside_flops(c: TransformerConfig, t: Tokens) -> int:
    """Everything but the blocks: patchify, caption projections, the AdaLN-single embedders (stream modulation,
    the prompt's when the text follows sigma, and the four audio<->video ones), output heads."""
    flops = 0
    streams = []
    if c.has_video:
        streams.append((t.video, c.video_dim, c.in_channels, c.out_channels))
    if c.has_audio:
        streams.append((t.audio, c.audio_dim, c.audio_in_channels, c.audio_out_channels))
    for tokens, dim, channels_in, channels_out in streams:
        flops += linear(tokens, channels_in, dim) + linear(tokens, dim, channels_out)
        if not (c.caption_proj_before_connector or t.text_kept):
            flops += linear(t.text, c.caption_channels, dim) + linear(t.text, dim, dim)
        flops += adaln(dim, c.modulation_rows) + (adaln(dim, 2) if c.text_follows_sigma else 0)
    if c.has_video and c.has_audio:
        flops += adaln(c.video_dim, 4) + adaln(c.audio_dim, 4) + adaln(c.video_dim, 1) + adaln(c.audio_dim, 1)
    return flops * t.batch


def dominant_gemms(c: TransformerConfig, t: Tokens) -> list[tuple[tuple[int, int, int], int]]:
    """The GEMM shapes (tokens, inputs, outputs) that carry most of a block's Linear FLOPs, those of the video
    stream (the audio's when there is no video), each with its FLOPs per block: the D x D projections (q, k, v,
    out of self-attention; q, out of text attention), the feed-forward's D -> 4D and 4D -> D."""
    tokens, dim = (t.video, c.video_dim) if c.has_video else (t.audio, c.audio_dim)
    return [((tokens, dim, dim), 6 * linear(tokens, dim, dim)), ((tokens, dim, 4 * dim), linear(tokens, dim, 4 * dim)),
            ((tokens, 4 * dim, dim), linear(tokens, 4 * dim, dim))]


def forward_flops(c: TransformerConfig, t: Tokens, blocks: int | None = None) -> dict[str, int]:
    """{'per_block', 'outside', 'total', 'linear_total'} for a forward through ``blocks`` blocks (default: the
    config's); ``linear_total`` leaves out the attention products."""
    per_block, outside = block_flops(c, t), outside_flops(c, t)
    count = c.num_layers if blocks is None else blocks
    return {"per_block": per_block, "outside": outside, "total": outside + count * per_block,
            "linear_total": outside + count * block_flops(c, t, products=False)}
