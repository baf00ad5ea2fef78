"""TextGenerateLTX2Prompt with Gemma 4 (LTX-2.5's prompt enhancer) as ComfyUI runs it: the size rule and pixels of
its Gemma 4 tokenizer (hand-computed expectations, and the resize against rows ComfyUI's torchvision call wrote:
ComfyUI is not installable in CI), the Gemma 4 chat and where the image's soft tokens go, the vision encoder found
in the file, and the refusal of a file without one."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from ltxgraph.errors import InputValueError
from ltxgraph_ops.gemma4_image_prompt import (IMAGE_END, IMAGE_SLOT, IMAGE_START, MARKERS, comfyui_gemma4_pixels,
                                              comfyui_target_size, gemma4_chat, gemma4_chat_ids, gemma4_image_chat,
                                              suppressed_ids)
from ltxgraph_ops.gemma_image_prompt import vision_layout
from ltxgraph_ops.models.gemma4_embedder import Gemma4Embedder
from ltxgraph_ops.models.gemma4_vision import Gemma4Vision
from ltxgraph_ops.models.gemma_tokenizer import BOS_ID, GemmaTokenizer
from ltxgraph_ops.nodes.text import generate_ltx2_prompt
from ltxgraph_ops.text_ops import text_encoder_handle
from ltxgraph_ops.textgen_prompts import LTX24_I2V_INSTRUCTIONS, LTX24_T2V_INSTRUCTIONS
from ltxgraph_ops.tiny import gemma4 as tiny
from ltxgraph_ops.tiny.gemma import train_tiny_spm
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("models") / "text_encoders"   # a models folder as ComfyUI's
    return {"vision": str(tiny.write_file(folder / "gemma4_e2b_it.safetensors", "bf16", vision=True)),
            "text_only": str(tiny.write_file(folder / "gemma4_text_only.safetensors", "bf16")),
            "unified": str(tiny.write_file(folder / "gemma4_12b_unified.safetensors", "bf16", embedder=True))}


@pytest.fixture(scope="module")
def tokenizer() -> GemmaTokenizer:
    return GemmaTokenizer(train_tiny_spm(markers=MARKERS))


@pytest.mark.parametrize("size, expected", [
    ((720, 1280), (576, 1056)),     # sqrt(280 x 9 x 256 / (720 x 1280)) = 0.837: 12.5 and 22.3 cells, floored
    ((1000, 1000), (768, 768)),     # 0.803: 16.7 cells a side
    ((2, 2), (768, 768)),           # small images grow to the budget too
    ((576, 1056), (576, 1056)),     # already at its size: 1.030 x 12 and x 22 cells stay 12 and 22
    ((10, 1000), (48, 8016)),       # 8.03: 1.67 and 167.3 cells
    ((1, 5000), (48, 13440)),       # 11.4: 0.24 cells -> one cell high, 5000 x 48 capped at 280 cells wide
])
def test_comfyui_target_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    height, width = comfyui_target_size(*size)
    assert (height, width) == expected
    assert height % 48 == 0 and width % 48 == 0 and (height // 48) * (width // 48) <= 280


def test_pixels_are_truncated_8_bit_codes_and_unchanged_at_their_size() -> None:
    image = torch.rand(576, 1056, 4, generator=torch.Generator().manual_seed(1))
    image[0, 0, :3] = 0.999                                   # 254.7 -> 254: truncated, not rounded
    pixels = comfyui_gemma4_pixels(image)
    assert pixels.shape == (1, 3, 576, 1056)                   # alpha dropped, no resize
    expected = torch.floor(image[..., :3] * 255).movedim(-1, 0)[None] * (1.0 / 255.0)   # ComfyUI's x (1 / 255)
    assert torch.equal(pixels, expected)
    assert (pixels[0, :, 0, 0] * 255).round().tolist() == [254.0] * 3


def test_pixels_resize_to_the_rule_and_keep_a_flat_image_flat() -> None:
    flat = torch.full((2, 30, 40, 3), 0.5)                     # a batch: only the first image is read
    flat[1] = 0.0
    pixels = comfyui_gemma4_pixels(flat)
    assert pixels.shape == (1, 3, *comfyui_target_size(30, 40))
    assert set((pixels * 255).round().unique().tolist()) == {127.0}   # 0.5 x 255 = 127.5 -> 127, kept by the resize


def test_resize_is_torchvisions_as_comfyui_calls_it() -> None:
    """Rows of torchvision 0.28's bicubic antialiased resize of a uint8 image (the call ComfyUI's Gemma 4 tokenizer
    makes; stored in tests/data/reference): equal to the 8-bit level."""
    import json
    from tests.conftest import DATA
    stored = json.loads((DATA / "reference" / "comfyui_gemma4_image_resize_rows.json").read_text())
    image = (torch.rand(3, 37, 53, generator=torch.Generator().manual_seed(1961)) * 255).to(torch.uint8)
    assert comfyui_target_size(37, 53) == tuple(stored["size"])
    # images in [0, 1] whose truncated codes are the stored input's
    pixels = comfyui_gemma4_pixels(((image.float() + 0.5) / 255).movedim(0, -1))
    codes = (pixels[0] * 255).round().to(torch.int64)
    for row, expected in zip(stored["rows"], stored["codes"]):
        assert codes[:, row, :].tolist() == expected


def test_gemma4_chat_layout() -> None:
    assert gemma4_chat("a cat", image=True) == (
        f"<|turn>system\n{LTX24_I2V_INSTRUCTIONS.strip()}<turn|>\n<|turn>user\n<|image><|image|><image|>\n\n"
        "User Raw Input Prompt: a cat.<turn|>\n<|turn>model\n<|channel>final\n")
    assert gemma4_chat("a cat", image=False) == (
        f"<|turn>system\n{LTX24_T2V_INSTRUCTIONS.strip()}<turn|>\n<|turn>user\nuser prompt: a cat<turn|>\n"
        "<|turn>model\n<|channel>final\n")


def test_chat_ids_are_bos_then_the_text_with_each_marker_one_token(tokenizer: GemmaTokenizer) -> None:
    text = "<|turn>user\n<|image><|image|><image|>\n\nhi<turn|>\n"
    ids = gemma4_chat_ids(tokenizer, text)
    marker = tokenizer.piece_id
    assert ids[:2] == [BOS_ID, marker("<|turn>")]
    start = ids.index(marker(IMAGE_START))
    assert ids[start:start + 3] == [marker(IMAGE_START), marker(IMAGE_SLOT), marker(IMAGE_END)]
    assert tokenizer.processor.decode(ids[2:start]) == "user\n" and ids[-2:] == [marker("<turn|>"),
                                                                               *tokenizer.processor.encode("\n")]


@pytest.mark.parametrize("name, model, bidirectional", [
    ("vision", Gemma4Vision, False),        # E2B's vision encoder: causal, like text
    ("unified", Gemma4Embedder, True),      # the 12B's encoder-free embedder: the image's tokens see each other
])
def test_image_chat_puts_one_soft_token_per_cell_in_place_of_the_placeholder(files, name, model,
                                                                             bidirectional) -> None:
    handle = text_encoder_handle(files[name], None, None)
    vision = handle.vision_tower()
    assert isinstance(vision, model)
    image = torch.rand(1, 100, 160, 3, generator=torch.Generator().manual_seed(2))
    ids, images = gemma4_image_chat(handle.tokenizer, vision, "a cat", image)
    height, width = comfyui_target_size(100, 160)
    count = (height // 48) * (width // 48)
    slots = images.slots[0].nonzero()[:, 0]
    assert images.features.shape == (1, count, 24) and len(slots) == count
    assert slots.tolist() == list(range(int(slots[0]), int(slots[0]) + count))        # one run
    assert ids[0, slots[0] - 1] == handle.tokenizer.piece_id(IMAGE_START)
    assert ids[0, slots[-1] + 1] == handle.tokenizer.piece_id(IMAGE_END)
    assert images.bidirectional == bidirectional
    with torch.no_grad():
        torch.testing.assert_close(images.features, vision(comfyui_gemma4_pixels(image)))


def test_the_node_reads_the_image_with_gemma4(files) -> None:
    handle = text_encoder_handle(files["vision"], None, None)
    images = [torch.zeros(1, 96, 96, 3), torch.ones(1, 96, 96, 3)]
    replies = [generate_ltx2_prompt(handle, "a cat", max_length=6, sampling_mode="off", image=image)
               for image in images]
    assert all(isinstance(reply, str) and reply for reply in replies)
    with torch.no_grad():
        features = [handle.vision_tower()(comfyui_gemma4_pixels(image)) for image in images]
    assert float((features[0] - features[1]).abs().max()) > 1e-3


def test_the_vision_layout_of_gemma4_files(files) -> None:
    layout = vision_layout(SafetensorsFile(files["vision"]))
    assert (layout.tower, layout.projector, layout.generation) == ("vision_model.", "multi_modal_projector.", 4)
    assert vision_layout(SafetensorsFile(files["text_only"])) is None


def test_half_a_gemma4_vision_path_is_refused_naming_the_key(files, tmp_path) -> None:
    from safetensors.torch import load_file, save_file
    tensors = load_file(files["vision"])
    del tensors["multi_modal_projector.embedding_projection.weight"]
    path = tmp_path / "half.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(CheckpointError, match="'multi_modal_projector.embedding_projection.weight' is missing"):
        vision_layout(SafetensorsFile(str(path)))


def test_the_encoder_free_embedder_is_found_in_comfyuis_layout(files) -> None:
    layout = vision_layout(SafetensorsFile(files["unified"]))
    assert (layout.tower, layout.projector, layout.generation, layout.encoder_free) == (
        "vision_model.", "multi_modal_projector.", 4, True)
    assert isinstance(text_encoder_handle(files["unified"], None, None).vision_tower(), Gemma4Embedder)


def transformers_layout(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ComfyUI's Gemma 4 12B keys as transformers' Gemma4UnifiedForConditionalGeneration saves them."""
    renamed = {}
    for key, value in tensors.items():
        for comfy, theirs in (("model.", "model.language_model."), ("vision_model.", "model.vision_embedder."),
                              ("multi_modal_projector.", "model.embed_vision.")):
            if key.startswith(comfy):
                key = theirs + key[len(comfy):]
                break
        renamed[key] = value
    return renamed


def test_the_encoder_free_embedder_is_read_in_transformers_saved_layout(files, tmp_path) -> None:
    from safetensors.torch import load_file, save_file
    path = tmp_path / "gemma4_12b_hf.safetensors"
    save_file(transformers_layout(load_file(files["unified"])), str(path), SafetensorsFile(files["unified"]).metadata)
    layout = vision_layout(SafetensorsFile(str(path)))
    assert (layout.tower, layout.projector, layout.encoder_free) == ("model.vision_embedder.", "model.embed_vision.",
                                                                     True)
    image = torch.rand(1, 3, 96, 144, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ours = text_encoder_handle(files["unified"], None, None).vision_tower()(image)
        theirs = text_encoder_handle(str(path), None, None).vision_tower()(image)
    assert ours.shape == (1, 6, 24) and torch.equal(ours, theirs)


@pytest.mark.parametrize("dropped, missing", [
    ("multi_modal_projector.embedding_projection.weight", "'multi_modal_projector.embedding_projection.weight'"),
    ("vision_model.patch_dense.weight",
     "'vision_model.patch_embedder.input_proj.weight' or 'vision_model.patch_dense.weight'"),
    ("vision_model.pos_embedding", "'vision_model.pos_embedding'"),
])
def test_half_an_encoder_free_embedder_is_refused_naming_the_key(files, tmp_path, dropped, missing) -> None:
    from safetensors.torch import load_file, save_file
    tensors = load_file(files["unified"])
    del tensors[dropped]
    path = tmp_path / "half_unified.safetensors"
    save_file(tensors, str(path), SafetensorsFile(files["unified"]).metadata)
    with pytest.raises(CheckpointError, match=f"half_unified.safetensors: .*{re.escape(missing)}.* missing"):
        text_encoder_handle(str(path), None, None)


def test_the_node_reads_the_image_with_gemma4_12b(files) -> None:
    """TextGenerateLTX2Prompt with the 12B file and an image: a reply, and the prompt Gemma reads depends on the
    image (its last hidden state before the reply differs between two images)."""
    handle = text_encoder_handle(files["unified"], None, None)
    images = [torch.zeros(1, 96, 96, 3), torch.rand(1, 96, 96, 3, generator=torch.Generator().manual_seed(5))]
    replies = [generate_ltx2_prompt(handle, "a cat", max_length=6, sampling_mode="off", image=image)
               for image in images]
    assert all(isinstance(reply, str) and reply for reply in replies)
    last = []
    with torch.no_grad():
        for image in images:
            ids, tokens = gemma4_image_chat(handle.tokenizer, handle.vision_tower(), "a cat", image)
            last.append(handle.gemma.get()(ids, torch.ones_like(ids), images=tokens)[-1][0, -1])
    assert float((last[0] - last[1]).abs().max()) > 1e-4


def test_a_text_only_gemma4_file_still_enhances_text_and_refuses_an_image(files) -> None:
    handle = text_encoder_handle(files["text_only"], None, None)
    assert generate_ltx2_prompt(handle, "a cat", max_length=4, sampling_mode="off")
    with pytest.raises(InputValueError, match="gemma4_text_only.safetensors: this Gemma file has no vision tower"):
        generate_ltx2_prompt(handle, "a cat", max_length=4, sampling_mode="off", image=torch.rand(1, 64, 64, 3))


GRAPH = """
ltxgraph: 1
name: prompt enhancement with an image
nodes:
  image: {op: LoadImage, in: {image: frame.png}}
  te: {op: CLIPLoader, in: {clip_name: %s, clip_type: ltxv}}
  enhance: {op: %s, in: {clip: "@te.CLIP", image: "@image.IMAGE", prompt: a cat}}
outputs: {text: "@enhance.%s"}
"""


@pytest.mark.parametrize("gemma, op, refusal", [
    ("gemma4_e2b_it.safetensors", "TextGenerateLTX2Prompt", None),
    ("gemma4_12b_unified.safetensors", "TextGenerateLTX2Prompt", None),
    ("gemma4_12b_unified.safetensors", "LTXVGemmaEnhancePrompt",
     "gemma4_12b_unified.safetensors: LTXVGemmaEnhancePrompt lays out an image prompt for Gemma 3"),
    ("gemma4_text_only.safetensors", "TextGenerateLTX2Prompt",
     "gemma4_text_only.safetensors: this Gemma file has no vision tower"),
    ("gemma4_e2b_it.safetensors", "LTXVGemmaEnhancePrompt",
     "gemma4_e2b_it.safetensors: LTXVGemmaEnhancePrompt lays out an image prompt for Gemma 3"),
])
def test_validation_refuses_an_image_the_gemma4_file_cannot_read(files, tmp_path, gemma, op, refusal) -> None:
    from ltxgraph import api
    from ltxgraph.errors import ValidationError
    from ltxgraph.paths import Folders
    from ltxgraph_ops.sampling.preview import png_bytes
    models, inputs = Path(files["vision"]).parent.parent, tmp_path / "input"
    inputs.mkdir()
    (inputs / "frame.png").write_bytes(png_bytes(torch.full((40, 60, 3), 100, dtype=torch.uint8)))
    output = "generated_text" if op == "TextGenerateLTX2Prompt" else "enhanced_prompt"
    graph_path = tmp_path / "graph.yaml"
    graph_path.write_text(GRAPH % (gemma, op, output))
    runner = api.Runner(use_cache=False, folders=Folders(models=(models,), input=inputs,
                                                         output=tmp_path / "out"))
    if refusal is None:
        runner.validate(api.load(graph_path))
        if "12b" in gemma:      # and runs: the graph's one output is Gemma 4 12B's reply about the image
            text = runner.run(api.load(graph_path)).outputs["text"]
            assert isinstance(text, str) and text
        return
    with pytest.raises(ValidationError, match=refusal):
        runner.validate(api.load(graph_path))


def char_tokenizer_json() -> str:
    """A Hugging Face tokenizers JSON in Gemma's id layout (pad 0, eos 1, bos 2, unk 3, mask 4), one token per
    character, the Gemma 4 markers as special added tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models
    chars = sorted(set("".join(map(chr, range(32, 127))) + "\n\u2014\u2013\u2026\u2019"))
    vocab = {piece: i for i, piece in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *chars])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tokenizer.decoder = decoders.Fuse()
    tokenizer.add_special_tokens([AddedToken(piece, special=True) for piece in
                                  ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *MARKERS)])
    return tokenizer.to_str()


def test_a_tokenizers_json_answers_as_the_sentencepiece_model_does() -> None:
    tokenizer = GemmaTokenizer.from_json(char_tokenizer_json())
    assert tokenizer.piece_id("<|turn>") == tokenizer.processor.get_piece_size() - len(MARKERS)
    ids = gemma4_chat_ids(tokenizer, "<|turn>user\nab<turn|>")
    assert ids == [BOS_ID, tokenizer.piece_id("<|turn>"), *tokenizer.processor.encode("user\nab"),
                   tokenizer.piece_id("<turn|>")]
    assert tokenizer.tokenize("<eos>ab") == [BOS_ID, 1, *tokenizer.processor.encode("ab")]
    assert tokenizer.decode(tokenizer.processor.encode("a b\n")) == "a b\n"
    with pytest.raises(KeyError, match="<start_of_turn>"):
        tokenizer.piece_id("<start_of_turn>")
    with pytest.raises(ValueError, match="not a Hugging Face tokenizers JSON"):
        GemmaTokenizer.from_json('{"model": {"type": "BPE"}}')


def test_a_gemma4_file_with_its_tokenizer_as_json_runs_the_node(files, tmp_path) -> None:
    """ComfyUI's Gemma 4 files carry ``tokenizer_json`` and no SentencePiece model."""
    from safetensors.torch import load_file, save_file
    tensors = load_file(files["vision"])
    del tensors["spiece_model"]
    tensors["tokenizer_json"] = torch.frombuffer(bytearray(char_tokenizer_json().encode()), dtype=torch.uint8)
    path = tmp_path / "gemma4_e2b_json.safetensors"
    save_file(tensors, str(path), SafetensorsFile(files["vision"]).metadata)
    handle = text_encoder_handle(str(path), None, None)
    reply = generate_ltx2_prompt(handle, "a cat", max_length=5, sampling_mode="off", image=torch.rand(1, 64, 64, 3))
    assert isinstance(reply, str) and reply


def test_gemma4_12b_never_writes_the_tokens_comfyui_suppresses_for_it(files) -> None:
    """ComfyUI's 12B config suppresses <audio|> and <image|> (the tiny vocabulary has the latter); E2B none."""
    unified, e2b = (text_encoder_handle(files[name], None, None) for name in ("unified", "vision"))
    assert suppressed_ids(unified.tokenizer, unified.gemma.get().config) == (unified.tokenizer.piece_id(IMAGE_END),)
    assert suppressed_ids(e2b.tokenizer, e2b.gemma.get().config) == ()
    gemma = unified.gemma.get()
    ids = torch.tensor([gemma4_chat_ids(unified.tokenizer, gemma4_chat("a cat", image=False))])
    free = gemma.generate(ids, torch.ones_like(ids), max_new_tokens=4, stop_tokens=(-1,))
    first = int(free[0, 0])
    held = gemma.generate(ids, torch.ones_like(ids), max_new_tokens=4, stop_tokens=(-1,), suppressed_tokens=(first,))
    assert first not in held[0].tolist()
