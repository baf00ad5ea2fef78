"""Utility nodes (ComfyUI names): an if/else switch, a text preview of any value, and SimpleMath+ (from
ComfyUI_essentials), the small helpers LTX-2.3 workflows wire around their models."""
from __future__ import annotations

from typing import Annotated, Any

import torch

from ltxgraph import Port, op
from ltxgraph.errors import InputValueError
from ltxgraph.types import PORT_TYPES
from ltxgraph.values import AudioLatent, AVLatent, VideoLatent
from ltxgraph_ops.primitives import compute_expression

ANY = "|".join(sorted(PORT_TYPES))
"""Every port type: the inputs of nodes that pass any value along (ComfyUI's "*")."""


@op("ComfySwitchNode", outputs={"output": "=on_true"}, category="utilities/logic")
def switch(switch: Annotated[bool, Port("BOOLEAN")] = False,
           on_false: Annotated[Any, Port(ANY)] = None,
           on_true: Annotated[Any, Port(ANY)] = None) -> Any:
    """``on_true`` when ``switch`` is on, else ``on_false`` (both inputs must be of one type)."""
    chosen = on_true if switch else on_false
    if chosen is None:
        raise InputValueError(f"switch is {'on' if switch else 'off'} but {'on_true' if switch else 'on_false'} "
                              "has no value")
    return chosen


def describe_value(value: Any) -> str:
    """A short text for any value: scalars as ComfyUI prints them, tensors and latents by shape."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {list(value.shape)} ({str(value.dtype).removeprefix('torch.')})"
    if isinstance(value, AVLatent):
        return f"audio-video latent: {describe_value(value.video)}; {describe_value(value.audio)}"
    if isinstance(value, (VideoLatent, AudioLatent)):
        kind = "video" if isinstance(value, VideoLatent) else "audio"
        return f"{kind} latent of shape {list(value.samples.shape)}"
    return type(value).__name__


@op("PreviewAny", outputs={"STRING": "STRING"}, category="utilities", output_node=True)
def preview_any(source: Annotated[Any, Port(ANY)]) -> str:
    """The value as text (a string as it is; numbers printed; tensors and latents by shape)."""
    return describe_value(source)


Operand = Annotated[Any, Port("INT|FLOAT|BOOLEAN", optional=True, widget=False)]


@op("SimpleMath+", outputs={"INT": "INT", "FLOAT": "FLOAT"}, category="essentials/utilities")
def simple_math(value: Annotated[str, Port("STRING")] = "",
                a: Operand = None, b: Operand = None, c: Operand = None) -> tuple[int, float]:
    """An arithmetic expression over a, b, c (e.g. "a*32"): INT is the result rounded to the nearest integer
    (halves to even, as Python's round), FLOAT the result itself. Unconnected names are 0."""
    variables = {name: (0 if v is None else v) for name, v in dict(a=a, b=b, c=c).items()}
    result = compute_expression(value or "0", variables)
    if isinstance(result, complex):
        raise InputValueError(f"expression {value!r} gave a complex number")
    return round(result), float(result)
