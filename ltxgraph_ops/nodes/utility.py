"""Utility nodes (ComfyUI names): an if/else switch, SimpleMath+ (from ComfyUI_essentials) and ResolutionSelector
(width and height from an aspect ratio and megapixels), the small helpers LTX-2.3/2.5 workflows wire around their
models. (PreviewAny is the converter's: it drops display-only nodes.)"""
from __future__ import annotations

import math
from typing import Annotated, Any

import torch

from ltxgraph import Port, op
from ltxgraph.errors import InputValueError
from ltxgraph.frames import Frames
from ltxgraph.input_checks import input_check
from ltxgraph.types import PORT_TYPES
from ltxgraph_ops.primitives import compute_expression, expression_problem

ANY = "|".join(sorted(PORT_TYPES))
"""Every port type: the inputs of nodes that pass any value along (ComfyUI's "*")."""


@input_check("switch", presence=("on_false", "on_true"))
def chosen_connected(switch: bool, on_false: Any, on_true: Any) -> str | None:
    """Refuses a switch whose chosen input has no value (is not connected)."""
    if (on_true if switch else on_false) is None:
        return f"switch is {'on' if switch else 'off'} but {'on_true' if switch else 'on_false'} has no value"
    return None


@op("ComfySwitchNode", outputs={"output": "=on_true"}, category="utilities/logic", checks=(chosen_connected,),
    lazy_switch=("switch", "on_false", "on_true"))
def switch(switch: Annotated[bool, Port("BOOLEAN")] = False,
           on_false: Annotated[Any, Port(ANY)] = None,
           on_true: Annotated[Any, Port(ANY)] = None) -> Any:
    """``on_true`` when ``switch`` is on, else ``on_false`` (both inputs must be of one type). Lazy, as ComfyUI's:
    with the switch known before the run, the input not taken (and what only feeds it) is not computed."""
    if on_false is not None and on_true is not None and not _one_kind(on_false, on_true):
        raise InputValueError(f"on_false ({type(on_false).__name__}) and on_true ({type(on_true).__name__}) must be "
                              "values of one type: the output's type is on_true's")
    return on_true if switch else on_false


def _one_kind(a: Any, b: Any) -> bool:
    """Whether two values can travel under one port type (an image as a tensor or as frames). INT, FLOAT and
    BOOLEAN are three types, as in ComfyUI (whose switch matches its inputs' types): an int taken where the output
    is typed as on_true's float would reach inputs typed FLOAT."""
    frames_or_tensor = (torch.Tensor, Frames)
    if isinstance(a, frames_or_tensor) and isinstance(b, frames_or_tensor):
        return True
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        return type(a) is type(b)
    return isinstance(a, type(b)) or isinstance(b, type(a))


Operand = Annotated[Any, Port("INT|FLOAT|BOOLEAN", optional=True, widget=False)]


@input_check("value")
def simple_expression(value: str) -> str | None:
    """Refuses an expression over a, b, c that cannot be computed whatever their values."""
    return expression_problem(value or "0", ("a", "b", "c"))


@op("SimpleMath+", outputs={"INT": "INT", "FLOAT": "FLOAT"}, category="essentials/utilities",
    checks=(simple_expression,))
def simple_math(value: Annotated[str, Port("STRING")] = "",
                a: Operand = None, b: Operand = None, c: Operand = None) -> tuple[int, float]:
    """An arithmetic expression over a, b, c (e.g. "a*32"): INT is the result rounded to the nearest integer
    (halves to even, as Python's round), FLOAT the result itself. Unconnected names are 0."""
    variables = {name: (0 if v is None else v) for name, v in dict(a=a, b=b, c=c).items()}
    result = compute_expression(value or "0", variables)
    if isinstance(result, complex):
        raise InputValueError(f"expression {value!r} gave a complex number")
    return round(result), float(result)


ASPECT_RATIOS = {"1:1 (Square)": (1, 1), "2:3 (Portrait Photo)": (2, 3), "3:2 (Photo)": (3, 2),
                 "3:4 (Portrait Standard)": (3, 4), "4:3 (Standard)": (4, 3),
                 "9:16 (Portrait Widescreen)": (9, 16), "16:9 (Widescreen)": (16, 9), "21:9 (Ultrawide)": (21, 9)}
"""ResolutionSelector's aspect ratio choices (ComfyUI's labels) -> (width, height) ratio."""


@op("ResolutionSelector", outputs={"width": "INT", "height": "INT"}, category="utilities")
def resolution_selector(aspect_ratio: Annotated[str, Port("STRING", choices=tuple(ASPECT_RATIOS))] = "1:1 (Square)",
                        megapixels: Annotated[float, Port("FLOAT", min=0.1, max=16.0)] = 1.0,
                        multiple: Annotated[int, Port("INT", min=8, max=128)] = 8) -> tuple[int, int]:
    """Width and height in pixels of ``megapixels`` (x 1024 * 1024 pixels) at ``aspect_ratio``, each rounded to
    the nearest ``multiple`` (ComfyUI's rounding: half to even). 0.9 at 16:9, multiple 32 -> 1280 x 736."""
    ratio_w, ratio_h = ASPECT_RATIOS[aspect_ratio]
    unit = math.sqrt(megapixels * 1024 * 1024 / (ratio_w * ratio_h))    # pixels per ratio step
    return round(ratio_w * unit / multiple) * multiple, round(ratio_h * unit / multiple) * multiple
