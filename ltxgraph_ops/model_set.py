"""One model version per graph: validation refuses a graph whose nodes read LTX-2 model files of different
versions (a 2.3 transformer checkpoint with a 2.0 checkpoint's VAE, audio VAE or text projection, a
2.0 upscaler, a LoRA made for the other transformer), naming the file, what it is and what would fit.

Each file's version comes from :mod:`ltxgraph_ops.model_version` (headers and keys, no weights read). Files that
do not tell their version (Gemma, media, an upscaler of unknown name) and files that cannot be read (their
loader reports them when the graph runs) are left out.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from ltxgraph import graph_check
from ltxgraph_ops.model_files import checkpoint_version
from ltxgraph_ops.model_version import lora_version, same_layout, upscaler_version
from ltxgraph_ops.weights.safetensors_file import CheckpointError, SafetensorsFile

FOLDER_KINDS = {"checkpoints": "checkpoint", "diffusion_models": "checkpoint", "loras": "LoRA",
                "latent_upscale_models": "latent upscaler"}


@dataclass(frozen=True)
class ModelFile:
    """A model file a node reads, with the LTX-2 version it is made for."""

    node: str
    input: str
    path: Path
    kind: str        # "checkpoint" | "LoRA" | "latent upscaler"
    version: str

    def fits(self, model: "ModelFile") -> bool:
        """Whether this file belongs with checkpoint ``model`` (two checkpoints: the same version exactly)."""
        if self.kind == "checkpoint":
            return self.version == model.version
        return same_layout(self.version, model.version)

    def describe(self) -> str:
        return f"{self.path.name} (node '{self.node}') is an LTX-{self.version} {self.kind}"


def file_version(path: Path, kind: str) -> str | None:
    """The LTX-2 version a ``kind`` file is made for, from its header; None when it does not say or cannot be
    read."""
    try:
        file = SafetensorsFile(path)
        if kind == "checkpoint":
            return checkpoint_version(file) if "transformer" in file.config() else None
        if kind == "LoRA":
            return lora_version(file.entries)
        return upscaler_version(file.config(), path.name)
    except CheckpointError:
        return None


def model_files(nodes: Mapping[str, Any]) -> Iterator[ModelFile]:
    """Every versioned model file the resolved ``nodes`` read, in graph order."""
    for node_id, node in nodes.items():
        for input_name, path in node.files.items():
            kind = FOLDER_KINDS.get(node.spec.input_by_name[input_name].port.file or "")
            version = file_version(path, kind) if kind else None
            if version:
                yield ModelFile(node_id, input_name, path, kind, version)


def fitting_files(folder: Path, model: ModelFile, kind: str, limit: int = 3) -> list[str]:
    """Up to ``limit`` names of ``kind`` files beside the refused one that would fit ``model``."""
    found = []
    for candidate in sorted(folder.glob("*.safetensors")):
        version = file_version(candidate, kind)
        if version and ModelFile("", "", candidate, kind, version).fits(model):
            found.append(candidate.name)
            if len(found) == limit:
                break
    return found


@graph_check
def one_model_version(nodes: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """A problem for every model file whose version does not fit the graph's model: the first checkpoint a
    MODEL comes from (else the first checkpoint)."""
    files = list(model_files(nodes))
    checkpoints = [file for file in files if file.kind == "checkpoint"]
    gives_model = [file for file in checkpoints if "MODEL" in dict(nodes[file.node].spec.outputs).values()]
    model = (gives_model or checkpoints or [None])[0]
    for file in files:
        if model is None or file is model or file.fits(model):
            continue
        fitting = fitting_files(file.path.parent, model, file.kind)
        hint = f"files that fit: {', '.join(fitting)}" if fitting else f"use an LTX-{model.version} {file.kind}"
        yield (file.node, file.input, f"mixed model versions: {file.describe()}, but the model, "
                                      f"{model.describe()}; {hint}")
