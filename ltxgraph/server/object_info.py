"""``GET /object_info``: every registered op described as ComfyUI describes a node class, so front ends and
scripts that read ComfyUI's node definitions read ours.

Per op: input {required, optional, hidden} with, per input, [TYPE, options] (a list of choices or of files in
place of TYPE for combos), input_order, output, output_is_list, output_name, name, display_name, description,
python_module, category, output_node. Our refined types are named as ComfyUI names them (the three latent types
are LATENT, AUDIO_VAE is VAE; a union lists its ComfyUI names comma-separated, as ComfyUI's multi-type inputs do).
A file input lists the files found in its folder (the models folders' ``<kind>/`` and roots, or the input
folder), as ComfyUI's combos do.
"""
from __future__ import annotations

from typing import Any

from ..paths import Folders
from ..registry import InputSpec, OpSpec, Registry
from ..types import members

COMFY_TYPES = {"VIDEO_LATENT": "LATENT", "AUDIO_LATENT": "LATENT", "AV_LATENT": "LATENT", "AUDIO_VAE": "VAE"}
MAX_LISTED_FILES = 10_000


def comfy_type(port_type: str) -> str:
    """ComfyUI's name of a port type (a union: its names, comma-separated, in a stable order)."""
    names = sorted({COMFY_TYPES.get(name, name) for name in members(port_type)})
    return ",".join(names)


def files_of(folders: Folders, kind: str) -> list[str]:
    """Names (relative, with '/') of the files a ``kind`` input may name, as :meth:`Folders.find` looks them up:
    ``kind`` "input" -> the input folder; else each models root's ``kind/`` folder and the files directly in the
    root (hidden files left out)."""
    if kind == "input":
        searched = [(folders.input, "**/*")]
    else:
        searched = [(root / kind, "**/*") for root in folders.models] + [(root, "*") for root in folders.models]
    found: set[str] = set()
    for root, pattern in searched:
        if not root.is_dir():
            continue
        for path in root.glob(pattern):
            relative = path.relative_to(root)
            if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                found.add(relative.as_posix())
            if len(found) >= MAX_LISTED_FILES:
                return sorted(found)
    return sorted(found)


def input_entry(spec: InputSpec, folders: Folders) -> list[Any]:
    """ComfyUI's [TYPE or choices, options] of one input."""
    port = spec.port
    options: dict[str, Any] = {}
    if not spec.required and spec.default is not None:
        options["default"] = spec.default
    if port.description:
        options["tooltip"] = port.description
    if port.file:
        if port.upload:
            options["image_upload"] = True
        return [files_of(folders, port.file), options]
    if port.choices is not None:
        return [list(port.choices), options]
    for name in ("min", "max"):
        if getattr(port, name) is not None:
            options[name] = getattr(port, name)
    if port.multiple_of:
        options["step"] = port.multiple_of
    elif port.eight_n_plus_one:
        options["step"] = 8
    if port.multiline:
        options["multiline"] = True
    if port.control_after_generate:
        options["control_after_generate"] = True
    if port.widget is False and port.type in ("INT", "FLOAT", "STRING", "BOOLEAN"):
        options["forceInput"] = True
    return [comfy_type(port.type), options]


def node_info(spec: OpSpec, folders: Folders) -> dict[str, Any]:
    """One op as ComfyUI's ``node_info`` of a node class."""
    required: dict[str, Any] = {}
    optional: dict[str, Any] = {}
    for input_spec in spec.inputs:
        target = optional if _comfy_optional(input_spec) else required
        target[input_spec.port.comfy_name or input_spec.name] = input_entry(input_spec, folders)
    return {
        "input": {"required": required, "optional": optional, "hidden": {}},
        "input_order": {"required": list(required), "optional": list(optional)},
        "output": [comfy_type(port_type) if not port_type.startswith("=") else
                   comfy_type(spec.input_by_name[port_type[1:]].port.type) for _, port_type in spec.outputs],
        "output_is_list": [False] * len(spec.outputs),
        "output_name": [name for name, _ in spec.outputs],
        "name": spec.name,
        "display_name": spec.name,
        "description": spec.description,
        "python_module": getattr(spec.fn, "__module__", "ltxgraph_ops"),
        "category": spec.category or "ltxgraph",
        "output_node": spec.output_node,
    }


def _comfy_optional(spec: InputSpec) -> bool:
    """ComfyUI lists widgets (with their defaults) under "required" unless declared optional; a socket with a
    default may be left unconnected, so it is optional."""
    return spec.port.optional or (not spec.port.is_widget and not spec.required)


def object_info(registry: Registry, folders: Folders, name: str | None = None) -> dict[str, Any]:
    """{op name: node_info} for every op, or only ``name`` ({} when there is no such op)."""
    specs = list(registry) if name is None else [s for s in [registry.get(name)] if s is not None]
    return {spec.name: node_info(spec, folders) for spec in specs}
