"""Tiny model files and handles for contract tests: the embedded tiny set (:mod:`ltxgraph_ops.tiny`) written
once into a folder, and each model handle loaded once through the loader op that makes it.

Handles come in model sets, one per LTX-2 version (:data:`MODEL_SETS`): every handle of a set is loaded from that
version's files, so an op drawn with a 2.5 MODEL gets 2.5 text conditioning, a 2.5 VAE and the 2.5 duration head,
never a mix a real run would refuse."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltxgraph.context import OpContext
from ltxgraph.paths import Folders

TRANSFORMER_ONLY = "ltx-2-19b-dev-transformer.safetensors"   # diffusion_models/: for UNETLoader


@dataclass(frozen=True)
class ModelSet:
    """The tiny files one model version's handles are loaded from (names in the ComfyUI subfolders)."""

    checkpoint: str                      # checkpoints/: MODEL, VAE, AUDIO_VAE and the text projection
    text_encoder: str                    # text_encoders/: the Gemma this version reads
    upscaler: str                        # latent_upscale_models/
    duration_head: str | None = None     # model_patches/: LTX-2.5's duration head (MODEL_PATCH)

    @property
    def port_types(self) -> frozenset[str]:
        """The model port types this set has a handle for."""
        always = {"MODEL", "CLIP", "VAE", "AUDIO_VAE", "LATENT_UPSCALE_MODEL"}
        return frozenset(always | ({"MODEL_PATCH"} if self.duration_head else set()))


MODEL_SETS = {  # model version -> its files
    "2.0": ModelSet("ltx-2-19b-dev.safetensors", "gemma_3_12B_it.safetensors",
                    "ltx-2-spatial-upscaler-x2-1.0.safetensors"),
    "2.3": ModelSet("ltx-2.3-22b-dev.safetensors", "gemma_3_12B_it.safetensors",
                    "ltx-2.3-spatial-upscaler-x2-1.1.safetensors"),
    "2.5": ModelSet("ltx-2.5-22b-distilled.safetensors", "gemma4-12b-with-proj-ltx-2.5-comfy-int8-convrot.safetensors",
                    "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors", "ltx-2.5-duration-head-bf16.safetensors"),
}
MODEL_TYPES = tuple(sorted(set().union(*(models.port_types for models in MODEL_SETS.values()))))
DEFAULT_SET = "2.0"   # the set an op that reads no model is drawn with, and handle()'s default


@dataclass
class TinyModels:
    """The tiny model folder (ComfyUI layout: checkpoints/, diffusion_models/ (a transformer-only file), loras/,
    text_encoders/, latent_upscale_models/, model_patches/, vae/)
    and an input/output folder for ops that read or write files. Files are written on first use."""

    root: Path
    _written: bool = False
    _handles: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def models(self) -> Path:
        if not self._written:
            from ltxgraph_ops.tiny.files import component, write_checkpoint, write_tiny_models
            write_tiny_models(self.root / "models")
            write_checkpoint(self.root / "models" / "diffusion_models" / TRANSFORMER_ONLY, "bf16",
                             modules=[component("transformer")])
            self._written = True
        return self.root / "models"

    @property
    def input(self) -> Path:
        (self.root / "input").mkdir(parents=True, exist_ok=True)
        return self.root / "input"

    @property
    def output(self) -> Path:
        (self.root / "output").mkdir(parents=True, exist_ok=True)
        return self.root / "output"

    def context(self, op_name: str) -> OpContext:
        """A run context whose folders are this tiny set's."""
        return OpContext(op_name, Folders(models=[self.models], input=self.input, output=self.output))

    def files(self, kind: str) -> list[str]:
        """Absolute paths of the tiny files of models subfolder ``kind`` (e.g. "checkpoints"), sorted."""
        return [str(p) for p in sorted((self.models / kind).glob("*.safetensors"))]

    def handle(self, port_type: str, version: str = DEFAULT_SET) -> Any:
        """The tiny handle of a model port type (one of :data:`MODEL_TYPES`) from the model set of ``version``,
        loaded once."""
        if port_type not in MODEL_SETS[version].port_types:
            raise KeyError(f"the LTX-{version} tiny set has no {port_type} handle")
        if (version, port_type) not in self._handles:
            self._handles[version, port_type] = self._load(port_type, version)
        return self._handles[version, port_type]

    def _load(self, port_type: str, version: str) -> Any:
        from ltxgraph_ops import audio_ops, text_ops, upscale_ops, vae_ops
        from ltxgraph_ops.nodes import duration
        files = MODEL_SETS[version]
        checkpoint = str(self.models / "checkpoints" / files.checkpoint)
        if port_type in ("MODEL", "VAE"):
            model, _, vae = vae_ops.checkpoint_loader_simple(checkpoint, self.context("CheckpointLoaderSimple"))
            self._handles[version, "VAE"] = vae
            return model if port_type == "MODEL" else vae
        if port_type == "CLIP":
            encoder = str(self.models / "text_encoders" / files.text_encoder)
            return text_ops.ltxav_text_encoder_loader(encoder, checkpoint, "cpu", self.context("LTXAVTextEncoderLoader"))
        if port_type == "AUDIO_VAE":
            return audio_ops.ltxv_audio_vae_loader(checkpoint, self.context("LTXVAudioVAELoader"))
        if port_type == "LATENT_UPSCALE_MODEL":
            upscaler = str(self.models / "latent_upscale_models" / files.upscaler)
            return upscale_ops.latent_upscale_model_loader(upscaler, self.context("LatentUpscaleModelLoader"))
        head = str(self.models / "model_patches" / str(files.duration_head))
        return duration.model_patch_loader(head, self.context("ModelPatchLoader"))

    def input_files(self) -> list[str]:
        """Small media files in the input folder for ops that read them: a PNG (32x32), a WAV (0.1 s stereo) and
        an MP4 (9 frames of 32x32 at 24 fps), written on first use."""
        files = [self.input / "tiny.png", self.input / "tiny.wav", self.input / "tiny.mp4"]
        if not all(f.is_file() for f in files):
            _write_media(self.input)
        return [str(f) for f in files]


def _write_media(folder: Path) -> None:
    import wave

    import numpy as np
    import torch
    from PIL import Image

    from ltxgraph.values import Video
    from ltxgraph_ops.media_video import save_video

    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand(9, 32, 32, 3, generator=generator)
    Image.fromarray((pixels[0].numpy() * 255).astype(np.uint8)).save(folder / "tiny.png")
    with wave.open(str(folder / "tiny.wav"), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.sin(np.arange(3200) / 10) * 8000).astype("<i2").tobytes())
    context = OpContext("tiny media", Folders(input=folder, output=folder))
    saved = save_video(Video(pixels, 24.0), "tiny", "mp4", "h264", context)
    Path(saved[-1].path if isinstance(saved, tuple) else saved.path).rename(folder / "tiny.mp4")
