"""The LTX-2.5 diffusion video decoder: neighbourhood attention against its definition, config from the header,
a tiny file through the VAE ops, tiling, and parity with diffusers 0.42.1."""
from __future__ import annotations

import itertools

import pytest
import torch

from ltxgraph_ops.models.diffusion_decoder import DecodeTiling, DiffusionDecoderConfig, tile_intervals
from ltxgraph_ops.models.neighbourhood_attention import neighbourhood_attention
from ltxgraph_ops.tiny import diffusion_decoder as tiny


def _dense_reference(q, k, v, kernel):
    """Attention over the full grid with NATTEN's window written out cell by cell."""
    _, frames, height, width, heads, dim = q.shape
    grid = (frames, height, width)
    cells = list(itertools.product(*(range(n) for n in grid)))
    mask = torch.zeros(len(cells), len(cells), dtype=torch.bool)
    for i, query in enumerate(cells):
        for j, key in enumerate(cells):
            inside = True
            for axis in range(3):
                size = min(kernel[axis], grid[axis])
                start = min(max(query[axis] - size // 2, 0), grid[axis] - size)
                inside &= start <= key[axis] < start + size
            mask[i, j] = inside
    flat = [x.reshape(x.shape[0], -1, heads, dim).transpose(1, 2) for x in (q, k, v)]
    out = torch.nn.functional.scaled_dot_product_attention(*flat, attn_mask=mask, scale=1.0)
    return out.transpose(1, 2).reshape(q.shape)


@pytest.mark.parametrize("budget", [1 << 24, 300])
def test_neighbourhood_attention_matches_the_window_definition(budget):
    generator = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 4, 5, 6, 2, 8, generator=generator) for _ in range(3))
    kernel = (3, 3, 7)   # W kernel larger than the grid: clamped to it
    expected = _dense_reference(q, k, v, kernel)
    got = neighbourhood_attention(q, k, v, kernel, budget=budget)
    assert (got - expected).abs().max() < 1e-5


def test_config_from_header_derives_compression_and_refuses_a_contradiction():
    cfg = DiffusionDecoderConfig.from_header(tiny.full_config())
    assert cfg.scale_factors == (8, 32, 32)
    assert cfg.stage5_kernel == (11, 11, 11) and cfg.model_output_type == "x0"
    section = tiny.full_config()
    section["spatial_compression_ratio"] = 64
    with pytest.raises(ValueError, match="spatial_compression_ratio 64"):
        DiffusionDecoderConfig.from_header(section)


def test_tile_intervals_merge_a_short_remnant():
    assert tile_intervals(10, 5, 3, 2) == [(0, 5), (3, 8), (6, 10)]
    assert tile_intervals(10, 5, 4, 3) == [(0, 5), (4, 10)]
    assert tile_intervals(4, 5, 3, 2) == [(0, 4)]


def test_tiny_file_decodes_through_the_vae_handle(tmp_path):
    from ltxgraph_ops.vae_ops import video_vae_handle
    path = tiny.write(tmp_path / tiny.TINY_FILE)
    vae = video_vae_handle(str(path), None)
    assert vae.scale_factors == (8, 32, 32)
    latent = torch.randn(1, 128, 2, 3, 3, generator=torch.Generator().manual_seed(1))
    images = vae.decode(latent)
    assert images.shape == (9, 96, 96, 3)
    assert torch.equal(images, vae.decode(latent))            # fixed decode seed: a pure function of the latent
    pixels = torch.rand(9, 64, 64, 3, generator=torch.Generator().manual_seed(2))
    assert vae.encode(pixels).shape == (1, 128, 2, 2, 2)


def test_tiled_decode_yields_every_frame_in_chunks():
    model = tiny.build(tiny.tiny_config()).eval()
    from ltxgraph_ops.weights.writing import random_state
    model.load_state_dict(random_state(model, "", 4))
    latent = torch.randn(1, 128, 4, 3, 3, generator=torch.Generator().manual_seed(5))
    tiling = DecodeTiling(height=64, width=64, frames=10, stride_height=48, stride_width=48, stride_frames=6)
    with torch.no_grad():
        chunks = list(model.decode_chunks(latent, tiling, torch.Generator().manual_seed(0)))
    assert len(chunks) >= 2
    assert torch.cat(chunks, dim=2).shape == (1, 3, 25, 96, 96)


@pytest.mark.oracle
def test_parity_with_diffusers():
    pytest.importorskip("diffusers.models.autoencoders.ltx2_diffusion_decoder")
    from tools.oracle.diffusers_diffusion_decoder import check_decode
    assert check_decode() < 1e-5


@pytest.mark.oracle
def test_full_size_layout_matches_diffusers_key_for_key():
    """The release-size decoder (417 M parameters) on the meta device: every tensor, renamed, has diffusers'
    name and shape."""
    pytest.importorskip("diffusers.models.autoencoders.ltx2_diffusion_decoder")
    from diffusers.models.autoencoders.ltx2_diffusion_decoder import LTX2VideoDiffusionDecoderModel
    from tools.oracle.diffusers_diffusion_decoder import diffusers_config, diffusers_state
    with torch.device("meta"):
        ours = tiny.build(tiny.full_config())
        reference = LTX2VideoDiffusionDecoderModel(**diffusers_config(ours.cfg))
    state = {k: v for k, v in ours.state_dict().items() if not k.startswith("encoder.")}
    ours_shapes = {k: tuple(v.shape) for k, v in diffusers_state(state).items()}
    assert ours_shapes == {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert 4.1e8 < sum(p.numel() for p in ours.decoder.parameters()) < 4.2e8


def test_static_gates_equal_ltx_cores_fold_into_the_linears():
    """A block holding the release's gate vectors computes what ltx-core's load-time fold gives: gate_ctx,
    gate_msa and gate_mlp multiplied into context_proj, attn.proj and mlp.w_down."""
    from ltxgraph_ops.models.diffusion_decoder_blocks import AdaLNZero, DiffusionNABlock
    from ltxgraph_ops.weights.writing import random_state
    gated, plain = DiffusionNABlock(16, (3, 3, 3), 8, 8, static_gates=True), DiffusionNABlock(16, (3, 3, 3), 8, 8)
    state = random_state(gated, "", 6)
    gated.load_state_dict(state)
    folded = {k: v for k, v in state.items() if not k.startswith("gate_")}
    for gate, layer in (("gate_ctx", "context_proj"), ("gate_msa", "attn.proj"), ("gate_mlp", "mlp.w_down")):
        folded[f"{layer}.weight"] = state[f"{layer}.weight"] * state[gate][:, None]
        if f"{layer}.bias" in state:
            folded[f"{layer}.bias"] = state[f"{layer}.bias"] * state[gate]
    plain.load_state_dict(folded)
    generator = torch.Generator().manual_seed(7)
    x, context = torch.randn(1, 3, 4, 4, 16, generator=generator), torch.randn(1, 3, 4, 4, 8, generator=generator)
    modulation = AdaLNZero(16, 12).requires_grad_(False)
    modulation.load_state_dict(random_state(modulation, "", 8))
    shared = modulation(torch.randn(1, 12, generator=generator))
    assert (gated(x, context, shared) - plain(x, context, shared)).abs().max() < 1e-5
