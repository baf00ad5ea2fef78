"""Port types: the names values travel under between nodes, and which output may feed which input.

A port type is a name. An input may accept a union, written ``"VIDEO_LATENT|AV_LATENT"``; an output always has
exactly one type. There is no wildcard: an op that accepts several kinds of value lists them.
"""
from __future__ import annotations

SCALAR_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN"})

PORT_TYPES = frozenset({
    "MODEL", "CLIP", "VAE", "AUDIO_VAE", "LATENT_UPSCALE_MODEL", "LORA_INFO", "MODEL_PATCH",
    "CONDITIONING", "GUIDES",
    "VIDEO_LATENT", "AUDIO_LATENT", "AV_LATENT",
    "NOISE", "SIGMAS", "SAMPLER", "GUIDER", "GUIDER_PARAMETERS", "IC_LORA_PARAMETERS",
    "IMAGE", "MASK", "AUDIO", "VIDEO",
}) | SCALAR_TYPES

LATENT = "VIDEO_LATENT|AUDIO_LATENT|AV_LATENT"
"""Any latent: the refinement of ComfyUI's single LATENT type, as an explicit union."""


class PortTypeError(ValueError):
    """A port type string names an unknown type."""


def members(port_type: str) -> frozenset[str]:
    """The type names of a (possibly union) port type: ``"A|B"`` -> {"A", "B"}."""
    names = frozenset(part.strip() for part in port_type.split("|"))
    unknown = sorted(names - PORT_TYPES)
    if unknown:
        raise PortTypeError(f"unknown port type {', '.join(unknown)} (known: {', '.join(sorted(PORT_TYPES))})")
    return names


def accepts(input_type: str, output_type: str) -> bool:
    """Whether an input of ``input_type`` may be connected to an output of ``output_type``."""
    return members(output_type) <= members(input_type)


def is_scalar(port_type: str) -> bool:
    """Scalar types are the ones a literal (and a parameter) can supply."""
    return members(port_type) <= SCALAR_TYPES


def literal_matches(port_type: str, value: object) -> bool:
    """Whether a literal from a graph file is a value of ``port_type`` (an int is a valid FLOAT)."""
    kinds = members(port_type)
    if isinstance(value, bool):
        return "BOOLEAN" in kinds
    if isinstance(value, int):
        return bool(kinds & {"INT", "FLOAT"})
    if isinstance(value, float):
        return "FLOAT" in kinds
    if isinstance(value, str):
        return "STRING" in kinds
    return False
