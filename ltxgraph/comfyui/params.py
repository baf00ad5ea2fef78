"""Graph parameters for a converted workflow: the values a user of the workflow sets (seeds, prompts, sizes,
frame counts and rates, steps, cfg, LoRA strengths, input file names, and every value the author put in a
primitive node or promoted out of a subgraph) become ``params``, so ``--set name=value`` works on a workflow as
on a shipped graph.

Names come from what the user sees in ComfyUI: the node's title ("Positive Prompt" -> ``positive_prompt``),
followed by the input name when the node exposes several values (but the one the title names); for a primitive node or a promoted subgraph
widget, its title or label; else the node type and the input name (``random_noise_noise_seed``). A name two
places would share gets each place's node id appended. Names depend only on the workflow, so they are stable.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from ..graph import value_has_type
from ..registry import InputSpec, OpSpec

# Input names that are user-facing wherever they appear.
USER_INPUTS = frozenset({"seed", "noise_seed", "width", "height", "length", "frames_number", "frame_rate", "fps",
                         "steps", "cfg"})
PARAM_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")


@dataclass(frozen=True)
class Setting:
    """One literal input of a converted node that may become a parameter."""

    node: str
    input: str
    value: Any
    port_type: str
    title: str | None
    node_type: str
    origin: str | None = None
    label: str | None = None


def is_user_facing(spec: OpSpec, input_spec: InputSpec) -> bool:
    """Whether a literal of this input is something a user of the workflow sets."""
    port = input_spec.port
    lora_strength = input_spec.name.startswith("strength") and any(i.port.file == "loras" for i in spec.inputs)
    return (input_spec.name in USER_INPUTS or port.multiline or port.file == "input" or lora_strength
            or spec.category == "utilities/primitive")


def snake_name(text: str, camel: bool = False) -> str:
    """``"Frame Rate (Int)"`` -> ``"frame_rate_int"``; with ``camel`` (type names) ``"LTXVScheduler"`` ->
    ``"ltxv_scheduler"``; "" when nothing usable is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    if camel:
        ascii_text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", ascii_text)
    name = re.sub(r"[^A-Za-z0-9]+", "_", ascii_text).strip("_").lower()
    return f"_{name}" if name[:1].isdigit() else name


def param_type(port_type: str, value: Any) -> str | None:
    """The parameter type for a value of ``port_type``, or None when a parameter cannot carry it."""
    for kind in port_type.split("|"):
        if kind in PARAM_TYPES and value_has_type(value, kind):
            return kind
    return None


def expose(nodes: dict[str, dict[str, Any]], settings: list[Setting]) -> dict[str, dict[str, Any]]:
    """Turn ``settings`` into parameters: each used input of ``nodes`` (graph-dict nodes) becomes ``$name``;
    returns the ``params`` mapping (type, default, description naming the node and input)."""
    groups: dict[str, list[Setting]] = {}
    for setting in settings:
        groups.setdefault(setting.origin or f"{setting.node}.{setting.input}", []).append(setting)
    for key, members in list(groups.items()):
        kinds = {param_type(m.port_type, m.value) for m in members}
        if None in kinds or len(kinds) > 1 or len({repr(m.value) for m in members}) > 1:
            del groups[key]  # a value no parameter carries, or one origin feeding different types: left literal
    per_node = {}
    for members in groups.values():
        for member in members:
            per_node[member.node] = per_node.get(member.node, 0) + 1
    names = {key: base_name(members, per_node) for key, members in groups.items()}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    params: dict[str, dict[str, Any]] = {}
    for key, members in groups.items():
        name = names[key]
        if counts[name] > 1:
            name = f"{name}_{re.sub(r'[^A-Za-z0-9_]', '_', members[0].node)}"
        first = members[0]
        params[name] = {"type": param_type(first.port_type, first.value), "default": first.value,
                        "description": ", ".join(f"{m.node}.{m.input} ({m.node_type})" for m in members)}
        for member in members:
            nodes[member.node]["in"][member.input] = f"${name}"
    return dict(sorted(params.items()))


def base_name(members: list[Setting], per_node: dict[str, int]) -> str:
    """The name before de-duplication (see the module docstring)."""
    first = members[0]
    if first.origin is not None:
        if len(members) == 1 and first.title and snake_name(first.title):
            return snake_name(first.title)
        return snake_name(first.label or "") or f"{snake_name(first.node_type, camel=True)}_{first.input}"
    title = snake_name(first.title or "")
    if title:
        return title if per_node[first.node] == 1 or title == first.input else f"{title}_{first.input}"
    return f"{snake_name(first.node_type, camel=True)}_{first.input}"
