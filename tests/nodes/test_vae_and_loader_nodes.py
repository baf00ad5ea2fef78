"""LTXVTiledVAEDecode, VAEEncodeAudio, LoraLoader (transformer and Gemma) and LTXVAudioOnlyModel."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.values import Audio, VideoLatent
from ltxgraph_ops.audio_ops import ltxv_audio_vae_encode, ltxv_audio_vae_loader
from ltxgraph_ops.handles import Lazy
from ltxgraph_ops.loaders import unet_loader
from ltxgraph_ops.nodes.loaders import LoraTextEncoder, audio_only_model, lora_loader
from ltxgraph_ops.nodes.text import generate_ltx2_prompt
from ltxgraph.frames import coded
from ltxgraph_ops.nodes.vae import (RowBandBlend, edge_ramp, fitting_tiles, tile_spans, tiled_vae_decode,
                                     vae_encode_audio)
from ltxgraph_ops.vae_ops import vae_decode
from ltxgraph_ops.text_ops import clip_text_encode, ltxav_text_encoder_loader
from ltxgraph_ops.tiny.files import write_tiny_models
from ltxgraph_ops.vae_handle import VideoVAEHandle
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile


class CellVAE:
    """A decoder without reach across cells: channels 0-2 of each latent cell, squashed, fill its 32x32 pixels
    and its 8 frames (the first latent frame one frame), so tiling cannot change the result."""

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        rgb = torch.tanh(latent[:, :3])
        repeats = torch.tensor([1] + [8] * (latent.shape[2] - 1))
        rgb = rgb.repeat_interleave(repeats, dim=2)
        return rgb.repeat_interleave(32, dim=3).repeat_interleave(32, dim=4)


def cell_vae() -> VideoVAEHandle:
    return VideoVAEHandle("cells", Lazy(CellVAE, "cell VAE"))


def test_tile_spans_overlap_and_cover() -> None:
    assert tile_spans(10, 3, 2) == [(0, 4), (2, 6), (4, 10)]
    assert tile_spans(5, 1, 1) == [(0, 5)]
    with pytest.raises(InputValueError, match="do not fit"):
        tile_spans(3, 3, 2)


def test_fitting_tiles_drops_tiles_that_would_not_advance() -> None:
    assert fitting_tiles(10, 3, 2) == 3
    assert fitting_tiles(8, 2, 6) == 2                    # tiles of 7 cells start 1 cell apart
    assert fitting_tiles(4, 2, 6) == 1                    # tiles of 5 cells would start 1 cell before the first
    assert fitting_tiles(3, 3, 2) == 1 and fitting_tiles(4, 6, 1) == 3


def test_tiled_decode_of_a_latent_smaller_than_its_grid_uses_fewer_tiles() -> None:
    # the outpaint example's 2 x 2 tiles overlapping by 6 cells, on a latent 4 cells high and 8 wide
    vae = cell_vae()
    latent = VideoLatent(torch.randn(1, 128, 2, 4, 8, generator=torch.Generator().manual_seed(1)), 25.0, 9)
    steps = []
    tiled = tiled_vae_decode(vae, latent, 2, 2, 6, False,
                             ctx=OpContext("decode", on_step=lambda *a: steps.append(a[1:3])))
    assert torch.allclose(tiled.float(), vae.decode(latent.samples), atol=1e-6)   # held as 8-bit codes
    assert steps == [(1, 2), (2, 2)]                      # one row of two tiles


def test_tiled_decode_equals_plain_decode_and_fixes_the_last_frame() -> None:
    vae = cell_vae()
    latent = VideoLatent(torch.randn(1, 128, 3, 4, 6, generator=torch.Generator().manual_seed(0)), 25.0, 17)
    plain = vae.decode(latent.samples)
    tiled = tiled_vae_decode(vae, latent, 3, 2, 1, False)
    assert tiled.shape == plain.shape == (17, 128, 192, 3)
    assert torch.allclose(tiled.float(), plain, atol=1e-6)                  # held as 8-bit codes
    steps = []
    tiled_vae_decode(vae, latent, 3, 2, 1, False, ctx=OpContext("decode", on_step=lambda *a: steps.append(a[1:3])))
    assert steps == [(i, 6) for i in range(1, 7)]                             # one step per tile
    fixed = tiled_vae_decode(vae, latent, 2, 2, 1, True)
    assert fixed.shape == plain.shape and torch.allclose(fixed.float(), plain, atol=1e-6)


class SmoothVAE:
    """A decoder whose pixels depend on neighbouring cells (bilinear upsampling of the squashed channels 0-2), so
    tile borders differ and the blend sets off-grid values before the 8-bit snap."""

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        rgb = torch.tanh(latent[:, :3] * 2)
        repeats = torch.tensor([1] + [8] * (latent.shape[2] - 1))
        rgb = rgb.repeat_interleave(repeats, dim=2)
        frames = rgb.shape[2]
        flat = rgb.permute(0, 2, 1, 3, 4).reshape(-1, 3, *rgb.shape[3:])
        up = torch.nn.functional.interpolate(flat, scale_factor=32, mode="bilinear", align_corners=False)
        return up.reshape(rgb.shape[0], frames, 3, *up.shape[2:]).permute(0, 2, 1, 3, 4)


def whole_clip_tiled_decode(vae: VideoVAEHandle, latent: torch.Tensor, horizontal_tiles: int, vertical_tiles: int,
                            overlap: int, last_frame_fix: bool) -> torch.Tensor:
    """LTXVTiledVAEDecode as it was before the row-band blend: one float32 accumulator of the whole clip."""
    if last_frame_fix:
        latent = torch.cat([latent, latent[:, :, -1:]], dim=2)
    batch, _, frames, height, width = latent.shape
    t, hs, ws = vae.scale_factors
    out_frames = 1 + (frames - 1) * t
    image = torch.zeros(batch, out_frames, height * hs, width * ws, 3)
    total = torch.zeros(1, 1, height * hs, width * ws, 1)
    rows = tile_spans(height, fitting_tiles(height, vertical_tiles, overlap), overlap)
    cols = tile_spans(width, fitting_tiles(width, horizontal_tiles, overlap), overlap)
    for v, (top, bottom) in enumerate(rows):
        for h, (left, right) in enumerate(cols):
            pixels = vae.decode(latent[:, :, :, top:bottom, left:right])
            pixels = pixels.reshape(batch, out_frames, *pixels.shape[1:])
            weight = (edge_ramp((bottom - top) * hs, overlap * hs, v == 0, v == len(rows) - 1)[:, None]
                      * edge_ramp((right - left) * ws, overlap * ws, h == 0, h == len(cols) - 1)[None, :])
            weight = weight[None, None, :, :, None]
            region = (slice(None), slice(None), slice(top * hs, bottom * hs), slice(left * ws, right * ws))
            image[region] += pixels * weight
            total[region] += weight
    image = image.div_(total + 1e-8).reshape(batch * out_frames, *image.shape[2:])
    return coded(image[:-t] if last_frame_fix else image).data


@pytest.mark.parametrize("shape, tiles", [
    ((1, 128, 3, 4, 6), (3, 2, 1, False)),
    ((1, 128, 2, 8, 5), (2, 3, 3, False)),        # tiles of 4 rows overlapping by 3: three tiles over a pixel
    ((1, 128, 3, 7, 6), (2, 3, 2, True)),
    ((2, 128, 2, 4, 4), (2, 2, 1, True)),
    ((1, 128, 2, 3, 3), (1, 1, 1, False)),
])
def test_tiled_decode_codes_are_bit_identical_to_the_whole_clip_blend(shape, tiles) -> None:
    vae = VideoVAEHandle("smooth", Lazy(SmoothVAE, "smooth VAE"))
    latent = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    banded = tiled_vae_decode(vae, VideoLatent(latent, 25.0, 1 + 8 * (shape[2] - 1)), *tiles)
    assert torch.equal(banded.codes(), whole_clip_tiled_decode(vae, latent, *tiles))


def test_plain_decode_codes_equal_the_snapped_decode() -> None:
    vae = VideoVAEHandle("smooth", Lazy(SmoothVAE, "smooth VAE"))
    latent = torch.randn(2, 128, 3, 2, 3, generator=torch.Generator().manual_seed(3))
    assert torch.equal(vae_decode(VideoLatent(latent, 25.0, 17), vae).codes(), coded(vae.decode(latent)).data)


def test_row_band_blend_holds_float_sums_for_one_band_of_tile_rows() -> None:
    blend = RowBandBlend(frames=4, height=12, width=2, band_rows=6)
    rows = [(0, 5), (3, 9), (7, 12)]
    weight = torch.ones(6, 2)
    for top, bottom in rows:
        blend.add_weight(slice(top, bottom), slice(0, 2), weight[:bottom - top])
    for index, (top, bottom) in enumerate(rows):
        blend.add(torch.full((4, bottom - top, 2, 3), 51, dtype=torch.uint8), slice(top, bottom), slice(0, 2),
                  weight[:bottom - top])
        blend.finish_rows(rows[index + 1][0] if index + 1 < len(rows) else 12)
    assert blend.band.shape == (4, 6, 2, 3)                                # never all 12 rows
    assert torch.equal(blend.codes, torch.full((4, 12, 2, 3), 51, dtype=torch.uint8))
    with pytest.raises(ValueError, match="outside the open band"):
        blend.add(torch.zeros(4, 5, 2, 3, dtype=torch.uint8), slice(3, 8), slice(0, 2), weight[:5])


DECODE_PEAK_CHILD = """
import resource, sys, torch
from ltxgraph.values import VideoLatent
from ltxgraph_ops.handles import Lazy
from ltxgraph_ops.nodes.vae import tiled_vae_decode
from ltxgraph_ops.vae_handle import VideoVAEHandle

class CellVAE:
    def decode(self, latent):
        rgb = torch.tanh(latent[:, :3]).repeat_interleave(torch.tensor([1] + [8] * (latent.shape[2] - 1)), dim=2)
        return rgb.repeat_interleave(32, dim=3).repeat_interleave(32, dim=4)

latent = torch.randn(1, 128, 13, 19, 7)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
frames = tiled_vae_decode(VideoVAEHandle("cells", Lazy(CellVAE, "cells")), VideoLatent(latent, 25.0, 97), 6, 6, 1,
                          False)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
print("GROWTH", grown, "FLOAT_CLIP", frames.codes().numel() * 4)
"""


def test_tiled_decode_never_holds_the_clip_in_float32() -> None:
    """97 frames of 608 x 224 in 6 x 6 tiles: the whole-clip accumulator alone was the clip in float32 (159 MB),
    plus its 8-bit codes; now the peak grows by the codes (a quarter of it), one row of tiles' float sums (4 of
    19 latent rows) and one tile's decode: measured 0.61-0.69 of the float clip."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", DECODE_PEAK_CHILD], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    growth, float_clip = int(words[words.index("GROWTH") + 1]), int(words[words.index("FLOAT_CLIP") + 1])
    assert growth < 0.8 * float_clip, (f"peak grew by {growth / 2**20:.0f} MB, the float clip is "
                                       f"{float_clip / 2**20:.0f} MB")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    write_tiny_models(folder)
    return folder


def checkpoint(models: Path) -> str:
    return str(next((models / "checkpoints").glob("ltx-2-19b-dev*.safetensors")))


def text_encoder(models: Path):
    gemma = next((models / "text_encoders").glob("gemma_3*.safetensors"))      # the 2.0 checkpoint's Gemma 3
    return ltxav_text_encoder_loader(str(gemma), checkpoint(models))


def test_vae_encode_audio_is_the_ltx_audio_encoder(models) -> None:
    audio_vae = ltxv_audio_vae_loader(checkpoint(models))
    audio = Audio(torch.sin(torch.linspace(0, 400, 16000)).expand(1, 2, 16000).clone(), 16000)
    assert torch.equal(vae_encode_audio(audio, audio_vae).samples, ltxv_audio_vae_encode(audio, audio_vae).samples)


def gemma_lora(models: Path, path: Path, prefix: str = "model.") -> Path:
    clip = text_encoder(models)
    layer = clip.gemma.get().layers[0].self_attn.q_proj
    g = torch.Generator().manual_seed(4)
    save_file({f"{prefix}layers.0.self_attn.q_proj.lora_A.weight": torch.randn(2, layer.in_features, generator=g),
               f"{prefix}layers.0.self_attn.q_proj.lora_B.weight": torch.randn(layer.out_features, 2, generator=g)},
              str(path))
    return path


def test_lora_loader_patches_gemma_only_while_it_runs(models, tmp_path) -> None:
    clip = text_encoder(models)
    model = unet_loader(checkpoint(models), ctx=OpContext("UNETLoader"))
    lora = str(gemma_lora(models, tmp_path / "gemma_lora.safetensors", "language_model.model."))
    same_model, patched = lora_loader(model, clip, lora, 1.0, 1.0)
    assert same_model is model and isinstance(patched, LoraTextEncoder)
    base = clip_text_encode("a red boat", clip)
    changed = clip_text_encode("a red boat", patched)
    assert not torch.allclose(base.video_context, changed.video_context)
    assert torch.equal(clip_text_encode("a red boat", clip).video_context, base.video_context)   # detached again
    _, unpatched = lora_loader(model, clip, lora, 1.0, 0.0)
    assert unpatched is clip


def test_lora_loader_puts_a_transformer_lora_on_the_model(models) -> None:
    clip = text_encoder(models)
    model = unet_loader(checkpoint(models), ctx=OpContext("UNETLoader"))
    lora = str(models / "loras" / "ltx-2-19b-distilled-lora-384.safetensors")      # a LoRA of this 2.0 model
    patched_model, same_clip = lora_loader(model, clip, lora, 0.5, 1.0)
    assert len(patched_model.patches) == 1 and same_clip is clip


def test_lora_loader_refuses_a_file_that_fits_nothing(models, tmp_path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"unet.block.lora_A.weight": torch.zeros(2, 4), "unet.block.lora_B.weight": torch.zeros(4, 2)},
              str(path))
    with pytest.raises(InputValueError, match="fit neither"):
        lora_loader(unet_loader(checkpoint(models), ctx=OpContext("UNETLoader")), text_encoder(models), str(path), 1.0, 1.0)
    assert SafetensorsFile(path).entries


def test_audio_only_model_marks_the_handle_without_touching_the_original(models) -> None:
    model = unet_loader(checkpoint(models), ctx=OpContext("UNETLoader"))
    audio_only = audio_only_model(model)
    assert audio_only.metadata["audio_only"] is True and "audio_only" not in model.metadata


def test_generate_prompt_is_seeded_and_greedy_when_sampling_is_off(models) -> None:
    clip = text_encoder(models)
    first = generate_ltx2_prompt(clip, "a cat", 6, "on", seed=3)
    assert first == generate_ltx2_prompt(clip, "a cat", 6, "on", seed=3)
    greedy = generate_ltx2_prompt(clip, "a cat", 6, "off")
    assert greedy == generate_ltx2_prompt(clip, "a cat", 6, "off", seed=99)      # seed unused when greedy
    assert isinstance(greedy, str)


def test_generate_prompt_sends_comfyuis_chat_as_comfyuis_tokenizer_cuts_it() -> None:
    """ComfyUI's TextGenerateLTX2Prompt: its system instruction, "user\\nUser Raw Input Prompt: {prompt}." (no blank
    line), the text as it is; cut at <end_of_turn>, so no BOS of its own: the opening <start_of_turn> is dropped
    for BOS, and the whole is left-padded with PAD to 1024 (ids checked against ComfyUI's tokenizer at the pin)."""
    from ltxgraph_ops.models.gemma_tokenizer import GemmaTokenizer
    from ltxgraph_ops.nodes.text import comfyui_chat_ids, ltx2_chat
    from ltxgraph_ops.textgen_prompts import T2V_INSTRUCTIONS
    from ltxgraph_ops.tiny import gemma
    tokenizer = GemmaTokenizer(gemma.train_tiny_spm())
    chat = ltx2_chat(" a cat\n")
    assert chat.startswith("<start_of_turn>system\nYou are a Creative Assistant.") and T2V_INSTRUCTIONS in chat
    assert chat.endswith("<start_of_turn>user\nUser Raw Input Prompt:  a cat\n.<end_of_turn>\n<start_of_turn>model\n")
    ids = comfyui_chat_ids(tokenizer, ltx2_chat("A cat.", "SYS"))
    start, end = tokenizer.piece_id("<start_of_turn>"), tokenizer.piece_id("<end_of_turn>")
    text = [i for i in ids if i != 0]
    assert len(ids) == 1024 and text[0] == 2 and text[1] != start and text.count(start) == 2
    assert text[1:] == tokenizer.processor.encode("<start_of_turn>system\nSYS")[1:] + [end] + \
        tokenizer.processor.encode("\n<start_of_turn>user\nUser Raw Input Prompt: A cat..") + [end] + \
        tokenizer.processor.encode("\n<start_of_turn>model\n")                 # whitespace kept
    # what ComfyUI's tokenizer gave for this chat at the pin (tiny vocabulary, <end_of_turn> at its tiny id 6)
    assert text == [2, 356, 373, 300, 341, 17, 375, 96, 375, 6, 17, 5, 314, 269, 17, 92, 356, 269, 349, 89, 351,
                    365, 349, 379, 352, 368, 364, 357, 349, 87, 355, 299, 368, 357, 377, 349, 374, 272, 277, 370,
                    370, 6, 17, 5, 363, 298, 309, 17]


def test_generate_prompt_stops_after_end_of_turn_only_and_seeds_as_comfyui(models) -> None:
    clip = text_encoder(models)
    end = clip.tokenizer.piece_id("<end_of_turn>")
    seen = []
    gemma = clip.gemma.get()
    original = type(gemma).generate

    def recorded(self, ids, mask, *args, **kwargs):
        seen.append((ids, mask, kwargs))
        return original(self, ids, mask, *args, **kwargs)

    type(gemma).generate = recorded
    try:
        generate_ltx2_prompt(clip, "a cat", 3, "on", repetition_penalty=1.3, seed=2 ** 64 - 1)
    finally:
        type(gemma).generate = original
    ids, mask, kwargs = seen[0]
    assert kwargs["stop_tokens"] == (end,) and kwargs["seed"] == 2 ** 64 - 1
    assert ids.shape == mask.shape and ids.shape[1] >= 1024 and bool(mask.all())    # ComfyUI attends to any pads


def test_generate_prompt_looks_at_an_image_ignores_a_video_and_refuses_sound(models) -> None:
    clip = text_encoder(models)                                    # the tiny Gemma carries a vision tower
    frames = torch.rand(3, 32, 32, 3, generator=torch.Generator().manual_seed(0))
    blind = generate_ltx2_prompt(clip, "a cat", 8, "on")          # (sampled, seeded: greedy replies of the tiny
    looked = generate_ltx2_prompt(clip, "a cat", 8, "on", image=frames[:1])     # Gemma are one byte repeated)
    assert looked != blind and looked != generate_ltx2_prompt(clip, "a cat", 8, "on", image=frames[1:2])
    assert generate_ltx2_prompt(clip, "a cat", 8, "on", image=frames[:1], video=frames) == looked
    assert generate_ltx2_prompt(clip, "a cat", 8, "on", video=frames) == blind      # ComfyUI's Gemma 3 ignores it
    with pytest.raises(InputValueError, match="audio"):
        generate_ltx2_prompt(clip, "a cat", 4, audio=Audio(torch.zeros(1, 2, 10), 16000))


def test_generate_prompt_uses_the_clip_lora(models, tmp_path) -> None:
    clip = text_encoder(models)
    lora = str(gemma_lora(models, tmp_path / "gemma_lora.safetensors"))
    _, patched = lora_loader(unet_loader(checkpoint(models), ctx=OpContext("UNETLoader")), clip, lora, 0.0, 50.0)
    plain = clip.tokenizer.tokenize("x")
    assert plain                                           # the tokenizer works on both handles
    ids = torch.tensor([clip.tokenizer.tokenize("a cat")])
    with torch.inference_mode():
        base_logits = clip.gemma.get()(ids, torch.ones_like(ids))
    from ltxgraph_ops.nodes.loaders import applied_gemma
    with torch.inference_mode(), applied_gemma(patched) as gemma:
        patched_states = gemma(ids, torch.ones_like(ids))
    assert not all(torch.equal(a, b) for a, b in zip(base_logits, patched_states))


def test_reference_audio_attaches_voice_tokens_and_identity_guidance(models) -> None:
    from ltxgraph_ops.nodes.guides import IDENTITY_GUIDANCE, reference_audio
    from ..sampling.test_sampling_ops import conditioning
    audio_vae = ltxv_audio_vae_loader(checkpoint(models))
    voice = Audio(torch.sin(torch.linspace(0, 900, 32000)).expand(1, 2, 32000).clone() * 0.5, 16000)
    model = unet_loader(checkpoint(models), ctx=OpContext("UNETLoader"))
    guided, positive, negative = reference_audio(model, conditioning(1), conditioning(2), voice, audio_vae,
                                                 3.0, 0.1, 0.9)
    latent = ltxv_audio_vae_encode(voice, audio_vae).samples                     # [1, C, T, M]
    assert positive.reference_audio.shape == (1, latent.shape[2], latent.shape[1] * latent.shape[3])
    assert torch.equal(positive.reference_audio[0, 1, :latent.shape[3]], latent[0, 0, 1])
    assert negative.reference_audio is positive.reference_audio
    assert guided.metadata[IDENTITY_GUIDANCE] == (3.0, 0.1, 0.9) and IDENTITY_GUIDANCE not in model.metadata
    unguided, _, _ = reference_audio(model, conditioning(1), conditioning(2), voice, audio_vae, 0.0)
    assert unguided is model
    with pytest.raises(InputValueError, match="start_percent"):
        reference_audio(model, conditioning(1), conditioning(2), voice, audio_vae, 3.0, 0.8, 0.2)
