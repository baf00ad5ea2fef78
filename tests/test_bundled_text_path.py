"""CLIPLoader on LTX-2.5's bundled ("with-proj") text encoder in the layout ltx-core 1.2.0 packs (see
ltxgraph_ops.bundled_text_path): Gemma 4 under ``model.*`` (or Hugging Face's ``model.language_model.*``) beside
its vision and audio embedders, the projection and connectors under their checkpoint keys, the tokenizer as
``tokenizer_json`` with ``hf_asset__*`` files, the Hugging Face config in ``gemma_config`` and no ``config``
entry. Written here from the tiny with-proj file (same weights), it encodes exactly as that file does."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ltxgraph_ops.bundled_text_path import sizes_from_tensors, text_path_section
from ltxgraph_ops.gemma_image_prompt import vision_layout
from ltxgraph_ops.releases import transformer_section_25
from ltxgraph_ops.split_loaders import clip_file, clip_loader
from ltxgraph_ops.tiny import gemma4 as tiny_gemma4
from ltxgraph_ops.tiny.files import TEXT_ENCODER_WITH_PROJ_25, write_split_25
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile

PROMPTS = ["a lighthouse at dusk", "waves crash below"]
REPO = Path(__file__).resolve().parents[1]
# the section of a packed file read in a fresh process, with the tiny-model modules that process imported
READ_SECTION = """
import json, sys
from ltxgraph_ops.bundled_text_path import text_path_section
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile
section = text_path_section(SafetensorsFile(sys.argv[1]))
print(json.dumps({"section": section, "tiny": sorted(name for name in sys.modules if ".tiny" in name)}))
"""


def as_bytes(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(text.encode()), dtype=torch.uint8).clone()


# where ltx-core 1.2.0's packer puts Gemma 4 12B's language model and its vision / audio embedders: ComfyUI's flat
# layout (its default), Hugging Face's, and the older files that flattened the language model only
LAYOUTS = {"comfy-flat": ("model.", "vision_model.", "multi_modal_projector.", "audio_projector."),
           "hugging-face": ("model.language_model.", "model.vision_embedder.", "model.embed_vision.",
                            "model.embed_audio."),
           "legacy-flat": ("model.", "model.vision_embedder.", "model.embed_vision.", "model.embed_audio.")}


def embedder_stand_ins(text_width: int, layout: str) -> dict[str, torch.Tensor]:
    """A tiny encoder-free image embedder (the 12B's, in ComfyUI's key layout before renaming) and audio
    projector, under ``layout``'s names."""
    _, tower, projector, audio = LAYOUTS[layout]
    config = tiny_gemma4.tiny_embedder_config((5, 6, 7), text_width)
    tensors = {**tiny_gemma4.embedder_tensors(config, 3, "float32"),
               "audio_projector.embedding_projection.weight": torch.zeros(text_width, 640)}
    renames = {"vision_model.": tower, "multi_modal_projector.": projector, "audio_projector.": audio}
    return {next(new + key[len(old):] for old, new in renames.items() if key.startswith(old)): value
            for key, value in tensors.items()}


def packed_like_ltx_core(source: Path, target: Path, layout: str = "comfy-flat") -> Path:
    """``source`` rewritten as ltx-core 1.2.0's packer writes a text-encoder file in ``layout``; its SentencePiece
    model goes to ``tokenizer.model`` beside it; Gemma 4 12B's image embedder and audio projector are tiny
    stand-ins."""
    with safe_open(str(source), "pt") as opened:
        tensors = {key: opened.get_tensor(key) for key in opened.keys()}
        config = json.loads(opened.metadata()["config"])
    tokenizer = tensors.pop("spiece_model")
    language_model = LAYOUTS[layout][0]
    tensors = {(language_model + key[len("model."):]
                if key.startswith("model.") and not key.startswith("model.diffusion_model.") else key): value
               for key, value in tensors.items()}
    tensors.update({"tokenizer_json": as_bytes('{"model": {"type": "BPE"}}'),
                    "hf_asset__tokenizer_config.json": as_bytes("{}"),
                    "hf_asset__processor_config.json": as_bytes("{}")})
    tensors.update(embedder_stand_ins(tensors[f"{language_model}embed_tokens.weight"].shape[1], layout))
    gemma_config = {"model_type": config["model_type"], "text_config": config["text_config"], "gemma_version": "4"}
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target), {"format": "pt", "gemma_config": json.dumps(gemma_config)})
    (target.parent / "tokenizer.model").write_bytes(bytes(tokenizer.tolist()))
    return target


@pytest.fixture(scope="module")
def with_proj(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bundled25")
    return next(path for path in write_split_25(folder) if path.name == TEXT_ENCODER_WITH_PROJ_25)


def encoded(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    conditioning = clip_loader(str(path)).encode(PROMPTS)
    return conditioning.video_context, conditioning.audio_context


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_packed_file_encodes_as_the_file_it_was_packed_from(with_proj, tmp_path, layout) -> None:
    packed = packed_like_ltx_core(with_proj, tmp_path / "te" / with_proj.name, layout)
    assert "config" not in SafetensorsFile(packed).metadata
    assert clip_file.fn(str(packed)) is None                      # CLIPLoader's check accepts it
    video, audio = encoded(packed)
    reference_video, reference_audio = encoded(with_proj)
    assert torch.equal(video, reference_video) and torch.equal(audio, reference_audio)
    layout_found = vision_layout(SafetensorsFile(packed))       # and the 12B's image embedder is read
    assert layout_found.encoder_free and layout_found.tower == LAYOUTS[layout][1]


def test_packed_text_path_sizes_come_from_the_tensors(with_proj, tmp_path) -> None:
    packed = SafetensorsFile(packed_like_ltx_core(with_proj, tmp_path / "te" / with_proj.name))
    own = SafetensorsFile(with_proj).config()["transformer"]
    sizes = sizes_from_tensors(packed)
    assert sizes == {name: own[name] for name in sizes}
    assert sizes["connector_num_layers"] == 2 and sizes["audio_connector_num_attention_heads"] == 2
    section = text_path_section(packed)
    assert section["caption_proj_before_connector"] and section["connector_apply_gated_attention"]


def test_packed_text_path_takes_the_release_section_without_the_tiny_models(with_proj, tmp_path) -> None:
    packed = packed_like_ltx_core(with_proj, tmp_path / "te" / with_proj.name)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", READ_SECTION, str(packed)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout)
    assert read["tiny"] == []                   # release facts come from ltxgraph_ops.releases
    expected = {**transformer_section_25(), **sizes_from_tensors(SafetensorsFile(packed))}
    assert read["section"] == json.loads(json.dumps(expected))
    assert read["section"]["num_layers"] == 48 and read["section"]["ff_bias"] is False


def test_packed_file_without_a_sentencepiece_tokenizer_names_what_it_has(with_proj, tmp_path) -> None:
    packed = packed_like_ltx_core(with_proj, tmp_path / "te" / with_proj.name)
    (packed.parent / "tokenizer.model").unlink()
    with pytest.raises(CheckpointError, match="tokenizer_json.*tokenizer.model"):
        clip_loader(str(packed))
