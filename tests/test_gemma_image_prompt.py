"""Image-conditioned prompt enhancement on the tiny Gemma file: the vision tower read from the ComfyUI and the
Hugging Face key layouts, the chat layout with an image, refusals of text-only and incomplete files."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ltxgraph.errors import InputValueError
from ltxgraph_ops.gemma_image_prompt import image_chat_ids
from ltxgraph_ops.models.next_token import TokenSampling
from ltxgraph_ops.text_ops import ltxv_gemma_enhance_prompt, text_encoder_handle
from ltxgraph_ops.tiny import gemma as tiny
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile


@pytest.fixture(scope="module")
def comfy_file(tmp_path_factory) -> Path:
    return tiny.write_file(tmp_path_factory.mktemp("te") / "gemma_3_12B_it.safetensors", "bf16")


def rewritten(source: Path, target: Path, rename) -> Path:
    """A copy of ``source`` with each key renamed by ``rename`` (None drops it), the header kept."""
    tensors = {rename(k): v for k, v in load_file(str(source)).items() if rename(k) is not None}
    save_file(tensors, str(target), metadata=SafetensorsFile(source).metadata)
    return target


def image(seed: int) -> torch.Tensor:
    return torch.rand(48, 64, 3, generator=torch.Generator().manual_seed(seed))


def test_enhancement_looks_at_the_image(comfy_file) -> None:
    clip = text_encoder_handle(str(comfy_file), None, None)
    assert clip.vision is not None and clip.vision.get().config.mm_tokens_per_image == 4
    first = clip.generate_text("a cat on a roof", image(1), max_tokens=12, sampling=None)
    assert first == clip.generate_text("a cat on a roof", image(1)[None], max_tokens=12, sampling=None)
    assert first != clip.generate_text("a cat on a roof", torch.zeros(48, 64, 3), max_tokens=12, sampling=None)
    assert first != clip.generate_text("a cat on a roof", None, max_tokens=12, sampling=None)
    node = ltxv_gemma_enhance_prompt(clip, "a cat on a roof", max_tokens=32, image=image(1)[None], seed=4)
    assert node == ltxv_gemma_enhance_prompt(clip, "a cat on a roof", max_tokens=32, image=image(1)[None], seed=4)
    assert node == clip.generate_text("a cat on a roof", image(1), max_tokens=32, seed=4)


def test_hugging_face_layout_reads_the_same_weights(comfy_file, tmp_path) -> None:
    def hf(key: str) -> str:
        return f"vision_tower.{key}" if key.startswith("vision_model.") else key
    hf_file = rewritten(comfy_file, tmp_path / "model.safetensors", hf)
    comfy = text_encoder_handle(str(comfy_file), None, None)
    other = text_encoder_handle(str(hf_file), None, None)
    pixels = comfy.vision.get().preprocess(image(2))
    assert torch.equal(comfy.vision.get()(pixels), other.vision.get()(pixels))


def test_text_only_file_encodes_but_refuses_an_image(comfy_file, tmp_path) -> None:
    def text_only(key: str) -> str | None:
        return None if key.startswith(("vision_model.", "multi_modal_projector.")) else key
    path = rewritten(comfy_file, tmp_path / "gemma_text_only.safetensors", text_only)
    clip = text_encoder_handle(str(path), None, None)
    assert clip.vision is None and clip.generate_text("a cat", max_tokens=4)
    with pytest.raises(InputValueError, match="gemma_text_only.safetensors: this Gemma file has no vision tower"):
        ltxv_gemma_enhance_prompt(clip, "a cat", image=image(1)[None])
    assert ltxv_gemma_enhance_prompt(clip, "a cat", max_tokens=8, bypass_i2v=True, image=image(1)[None])


def test_incomplete_vision_weights_are_refused(comfy_file, tmp_path) -> None:
    def no_projector(key: str) -> str | None:
        return None if key.startswith("multi_modal_projector.") else key
    path = rewritten(comfy_file, tmp_path / "no_projector.safetensors", no_projector)
    with pytest.raises(CheckpointError, match="no_projector.safetensors: Gemma 3 vision weights are incomplete"):
        text_encoder_handle(str(path), None, None)

    def no_layer(key: str) -> str | None:
        return None if key.startswith("vision_model.encoder.layers.1.mlp.fc2.") else key
    path = rewritten(comfy_file, tmp_path / "no_layer.safetensors", no_layer)
    with pytest.raises(CheckpointError, match="fc2"):
        text_encoder_handle(str(path), None, None)


def test_chat_layout_puts_the_image_before_the_prompt(comfy_file) -> None:
    clip = text_encoder_handle(str(comfy_file), None, None)
    cfg = clip.vision.get().config
    ids = image_chat_ids(clip.tokenizer, cfg, "Describe.", "a cat")
    start = ids.index(cfg.boi_token_id)
    soft = cfg.mm_tokens_per_image
    assert ids[0] == 2 and ids[start + 1:start + 1 + soft] == [cfg.image_token_id] * soft
    assert ids[start + 1 + soft] == cfg.eoi_token_id and ids.count(cfg.image_token_id) == soft
    encode = clip.tokenizer.processor.encode
    assert ids[1:start] == encode("<start_of_turn>user\nDescribe.\n\n\n\n")   # "\n\n" of the image with the text
    after = "\n\nUser Raw Input Prompt: a cat.<end_of_turn>\n<start_of_turn>model\n"
    assert ids[start + 2 + soft:] == encode(after)


def test_presence_penalty_keeps_gemma_from_repeating_its_own_tokens_only(comfy_file) -> None:
    # a near-greedy draw: with a prohibitive presence penalty no token of the reply comes back; the prompt's
    # tokens are not penalized (ComfyUI's generation loop counts the new tokens only): the first token is greedy's
    clip = text_encoder_handle(str(comfy_file), None, None)
    ids = torch.tensor([clip.tokenizer.tokenize("a cat on a roof, a cat on a roof")])
    gemma = clip.gemma.get()
    greedy = gemma.generate(ids, torch.ones_like(ids), 24, stop_tokens=(-1,))[0].tolist()
    penalized = gemma.generate(ids, torch.ones_like(ids), 24, stop_tokens=(-1,),
                               sampling=TokenSampling(temperature=0.01, presence_penalty=1e4))[0].tolist()
    assert len(set(greedy)) < len(greedy) or set(greedy) & set(ids[0].tolist())     # greedy repeats itself
    assert len(set(penalized)) == len(penalized) == 24 and penalized[0] == greedy[0]


REFERENCE = Path(__file__).resolve().parent / "data" / "reference"


def test_comfyuis_image_pixels_are_followed_bit_for_bit() -> None:
    """TextGenerateLTX2Prompt's image goes to the vision tower as ComfyUI prepares it: area resize to about
    896 x 896 pixels keeping the aspect ratio, bicubic antialiased resize of the shorter side, centre crop, 8-bit
    levels (the fixture: ComfyUI's own functions at the pin, on a wide and a tall batch of two)."""
    from ltxgraph_ops.gemma_image_prompt import comfyui_image_pixels
    from ltxgraph_ops.models.gemma_vision import preprocess_image
    stored = load_file(str(REFERENCE / "comfyui_gemma_image_pixels.safetensors"))
    for name in ("wide", "tall"):
        images, expected = stored[f"{name}.image"], stored[f"{name}.pixels"]
        assert torch.equal(comfyui_image_pixels(images, 32), expected)
        assert (preprocess_image(images, 32) - expected).abs().max() > 0.5     # ltx-core's square resize is not it


def test_text_generate_ltx2_prompt_sends_comfyuis_image_chat(comfy_file) -> None:
    """ComfyUI's image chat: the image-to-video instructions, ``user\\n`` + ``\\n<image_soft_token>\\n\\n`` before
    the raw prompt, the placeholder one token when padding to 1024, then holding every image's soft tokens (no
    <start_of_image> / <end_of_image>), attended causally."""
    from ltxgraph_ops.models.gemma_tokenizer import BOS_ID, MAX_LENGTH, PAD_ID
    from ltxgraph_ops.nodes.text import comfyui_chat_ids, comfyui_image_chat, ltx2_chat
    from ltxgraph_ops.textgen_prompts import I2V_INSTRUCTIONS
    clip = text_encoder_handle(str(comfy_file), None, None)
    cfg, encode = clip.vision.get().config, clip.tokenizer.processor.encode
    end = clip.tokenizer.piece_id("<end_of_turn>")
    batch = torch.stack([image(1), image(2)])
    ids, images = comfyui_image_chat(clip, "a cat", batch)
    soft = 2 * cfg.mm_tokens_per_image
    one_token = comfyui_chat_ids(clip.tokenizer, ltx2_chat("a cat", I2V_INSTRUCTIONS, image=True), cfg.image_token_id)
    assert len(one_token) >= MAX_LENGTH and one_token.count(cfg.image_token_id) == 1     # (the tiny vocabulary:
    assert ids.shape == (1, len(one_token) - 1 + soft) and not images.bidirectional    # longer than 1024, no pads)
    assert images.features.shape[:2] == (2, cfg.mm_tokens_per_image) and int(images.slots.sum()) == soft
    at = int(images.slots[0].nonzero()[0])
    row = ids[0].tolist()
    assert row[at:at + soft] == [cfg.image_token_id] * soft and bool(images.slots[0, at:at + soft].all())
    placeholder = one_token.index(cfg.image_token_id)                  # nothing else added around the image
    assert row[:at] == one_token[:placeholder] and row[at + soft:] == one_token[placeholder + 1:]
    before = encode("\n<start_of_turn>user\n\n")
    assert row[at - len(before):at] == before
    assert row[at + soft:] == [*encode("\n\nUser Raw Input Prompt: a cat."), end, *encode("\n<start_of_turn>model\n")]
    system = encode(f"system\n{I2V_INSTRUCTIONS.strip()}")
    first = row.index(BOS_ID)
    assert set(row[:first]) <= {PAD_ID} and row[first + 1:first + 1 + len(system)] == system
    short = comfyui_chat_ids(clip.tokenizer, ltx2_chat("a cat", "Describe.", image=True), cfg.image_token_id)
    assert len(short) == MAX_LENGTH and short.count(cfg.image_token_id) == 1 and short[0] == PAD_ID
