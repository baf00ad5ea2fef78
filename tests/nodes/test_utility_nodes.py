"""ComfySwitchNode and SimpleMath+ do exactly what their ComfyUI nodes do."""
from __future__ import annotations

import pytest

from ltxgraph.errors import InputValueError
from ltxgraph_ops.nodes.utility import simple_math, switch


def test_switch_picks_the_branch_named_by_the_boolean() -> None:
    assert switch(True, "plain prompt", "enhanced prompt") == "enhanced prompt"
    assert switch(False, "plain prompt", "enhanced prompt") == "plain prompt"


def test_switch_without_the_chosen_value_names_it() -> None:
    with pytest.raises(InputValueError, match="on_true"):
        switch(True, "plain", None)


def test_simple_math_rounds_int_and_keeps_float() -> None:
    assert simple_math("a*32", a=1.0) == (32, 32.0)
    assert simple_math("a / b", a=5, b=2) == (2, 2.5)        # round half to even, as Python
    assert simple_math("a / b", a=7, b=2) == (4, 3.5)
    assert simple_math("a + b + c", a=1) == (1, 1.0)          # unconnected inputs are 0


def test_simple_math_refuses_code() -> None:
    with pytest.raises(InputValueError, match="not allowed"):
        simple_math("__import__('os')", a=1)
