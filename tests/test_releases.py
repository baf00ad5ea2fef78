"""The releases' header sections live in ltxgraph_ops.releases, apart from the tiny test models: every full-size
section builds the keys and shapes of its release manifest with the production model classes, the 2.3 sections are
the 22B header's, the tiny modules shrink these same sections, and no production module imports the tiny package."""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Callable

import pytest
import torch

from ltxgraph_ops import releases
from ltxgraph_ops.models.audio_vae import AudioVAE, AudioVAEConfig
from ltxgraph_ops.models.diffusion_decoder import DiffusionVideoVAE
from ltxgraph_ops.models.upscaler import LatentUpscaler, LatentUpscalerConfig
from ltxgraph_ops.models.video_vae import VideoVAE, VideoVAEConfig
from ltxgraph_ops.models.vocoder_bwe import build_vocoder

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "reference"
MANIFESTS = {"2.0": "ltx2_19b_manifest.json", "2.3": "ltx23_22b_manifest.json"}
# manifest component -> (the release sections by version, checkpoint prefix, production builder)
COMPONENTS: dict[str, tuple[dict[str, Callable[[], dict]], str, Callable[[dict], torch.nn.Module]]] = {
    "video_vae": (releases.VIDEO_VAE_SECTIONS, "vae.", lambda section: VideoVAE(VideoVAEConfig.from_header(section))),
    "audio_vae": (releases.AUDIO_VAE_SECTIONS, "audio_vae.",
                  lambda section: AudioVAE(AudioVAEConfig.from_header(section))),
    "vocoder": (releases.VOCODER_SECTIONS, "vocoder.", build_vocoder),
    "upsampler_x2": ({"2.0": releases.UPSCALER_FILES["ltx-2-spatial-upscaler-x2-1.0.safetensors"]}, "",
                     lambda section: LatentUpscaler(LatentUpscalerConfig.from_header(section))),
}
CASES = [(component, version) for component, (sections, _, _) in COMPONENTS.items() for version in MANIFESTS
         if version in sections]


def meta_shapes(build: Callable[[dict], torch.nn.Module], section: dict, prefix: str) -> dict[str, list[int]]:
    with torch.device("meta"):
        model = build(section)
    return {prefix + key: list(tensor.shape) for key, tensor in model.state_dict().items()}


@pytest.mark.parametrize("component, version", CASES, ids=[f"{c}-{v}" for c, v in CASES])
def test_release_section_builds_its_manifest(component: str, version: str) -> None:
    sections, prefix, build = COMPONENTS[component]
    manifest = json.loads((REFERENCE / MANIFESTS[version]).read_text())[component]
    assert meta_shapes(build, sections[version](), prefix) == {key: value[0] for key, value in manifest.items()}


def test_23_sections_are_the_22b_header_sections() -> None:
    header = json.loads((REFERENCE / "ltx23_22b_config.json").read_text())
    assert releases.VIDEO_VAE_SECTIONS["2.3"]() == header["vae"]
    assert releases.VOCODER_SECTIONS["2.3"]() == header["vocoder"]
    assert releases.TRANSFORMER_SECTIONS["2.3"]() == header["transformer"]
    audio = releases.AUDIO_VAE_SECTIONS["2.3"]()      # reconstructed from 2.0's dump: one more preprocessing entry
    assert audio["model"] == header["audio_vae"]["model"]
    assert {**audio["preprocessing"], "audio": None} == {**header["audio_vae"]["preprocessing"], "audio": None}


def test_25_video_vae_section_is_the_diffusion_vae_on_the_23_encoder() -> None:
    def encoder_shapes(model: torch.nn.Module) -> dict[str, list[int]]:
        return {key: list(tensor.shape) for key, tensor in model.encoder.state_dict().items()}

    with torch.device("meta"):
        diffusion_vae = DiffusionVideoVAE.from_header(releases.VIDEO_VAE_SECTIONS["2.5"]())
        vae_23 = VideoVAE(VideoVAEConfig.from_header(releases.VIDEO_VAE_SECTIONS["2.3"]()))
    assert encoder_shapes(diffusion_vae) == encoder_shapes(vae_23)


def test_sections_are_fresh_dicts() -> None:
    """A caller may shrink a section in place (the tiny modules do) without changing the next caller's."""
    for sections in (releases.VIDEO_VAE_SECTIONS, releases.AUDIO_VAE_SECTIONS, releases.VOCODER_SECTIONS):
        for version, section in sections.items():
            first = section()
            json.loads(json.dumps(first))                                      # header JSON, nothing else
            first.clear()
            assert section(), version


def test_tiny_modules_shrink_the_release_sections() -> None:
    from ltxgraph_ops.tiny import audio_vae, diffusion_decoder, upscaler, video_vae, vocoder
    assert video_vae.RELEASE_CONFIGS == {v: releases.VIDEO_VAE_SECTIONS[v] for v in ("2.0", "2.3")}
    assert diffusion_decoder.full_config_25 is releases.VIDEO_VAE_SECTIONS["2.5"]
    assert audio_vae.RELEASE_CONFIGS is releases.AUDIO_VAE_SECTIONS
    assert vocoder.RELEASE_CONFIGS is releases.VOCODER_SECTIONS
    assert upscaler.RELEASE_FILES is releases.UPSCALER_FILES


def tiny_imports(path: Path) -> list[str]:
    """The ``ltxgraph_ops.tiny`` modules the Python file at ``path`` imports (at any depth of its code)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("ltxgraph_ops.tiny")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] if node.module.startswith("ltxgraph_ops.tiny") else []
            if node.module == "ltxgraph_ops":
                names = [f"ltxgraph_ops.{a.name}" for a in node.names if a.name == "tiny"]
            found += names
    return found


def test_no_production_module_imports_the_tiny_package() -> None:
    """Production code reads release facts from ltxgraph_ops.releases; only the tiny package itself and the
    contract-test kit (ltxgraph.testing, which writes the tiny models) import it."""
    allowed = (ROOT / "ltxgraph_ops" / "tiny", ROOT / "ltxgraph" / "testing")
    modules = [path for package in ("ltxgraph", "ltxgraph_ops") for path in sorted((ROOT / package).rglob("*.py"))
               if not any(path.is_relative_to(folder) for folder in allowed)]
    assert len(modules) > 50
    offenders = {str(path.relative_to(ROOT)): names for path in modules if (names := tiny_imports(path))}
    assert offenders == {}
