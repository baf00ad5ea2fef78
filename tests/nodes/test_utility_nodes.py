"""ComfySwitchNode, PreviewAny and SimpleMath+ do exactly what their ComfyUI nodes do."""
from __future__ import annotations

import pytest
import torch

from ltxgraph.errors import InputValueError
from ltxgraph.values import VideoLatent
from ltxgraph_ops.nodes.utility import preview_any, simple_math, switch


def test_switch_picks_the_branch_named_by_the_boolean() -> None:
    assert switch(True, "plain prompt", "enhanced prompt") == "enhanced prompt"
    assert switch(False, "plain prompt", "enhanced prompt") == "plain prompt"


def test_switch_without_the_chosen_value_names_it() -> None:
    with pytest.raises(InputValueError, match="on_true"):
        switch(True, "plain", None)


def test_preview_any_prints_scalars_and_shapes() -> None:
    assert preview_any("a prompt") == "a prompt"
    assert preview_any(3) == "3"
    assert preview_any(True) == "true"
    assert preview_any(torch.zeros(2, 4, 6, 3)) == "tensor of shape [2, 4, 6, 3] (float32)"
    latent = VideoLatent(torch.zeros(1, 128, 2, 3, 4), 25.0, 9)
    assert preview_any(latent) == "video latent of shape [1, 128, 2, 3, 4]"


def test_simple_math_rounds_int_and_keeps_float() -> None:
    assert simple_math("a*32", a=1.0) == (32, 32.0)
    assert simple_math("a / b", a=5, b=2) == (2, 2.5)        # round half to even, as Python
    assert simple_math("a / b", a=7, b=2) == (4, 3.5)
    assert simple_math("a + b + c", a=1) == (1, 1.0)          # unconnected inputs are 0


def test_simple_math_refuses_code() -> None:
    with pytest.raises(InputValueError, match="not allowed"):
        simple_math("__import__('os')", a=1)
