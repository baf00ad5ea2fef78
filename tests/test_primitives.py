from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ltxgraph import load
from ltxgraph.errors import InputValueError
from ltxgraph_ops.primitives import compute_expression, float_to_int, math_expression

REPO_GRAPHS = "graphs"


@pytest.mark.parametrize("expression, expected", [
    ("a + b * 2", 7), ("(a - 1) // 8 + 1", 1), ("ceil(a / b)", 1), ("a if a > b else b", 3),
    ("a % 32 == 0 and not b", False), ("max(a, b, 10) - min(1, 2)", 9), ("2 ** 10", 1024), ("0 < a < 5", True), ("0 < b < 2", False),
])
def test_expressions(expression: str, expected) -> None:
    assert compute_expression(expression, {"a": 1, "b": 3}) == expected


@pytest.mark.parametrize("expression", [
    "__import__('os').system('true')", "a.__class__", "(lambda: 1)()", "[x for x in (1, 2)]", "open('f')",
    "2 ** 100000", "1 / 0", "z + 1", "a +", "'text'", "round(a, ndigits=2)",
])
def test_unsafe_or_bad_expressions_are_refused(expression: str) -> None:
    with pytest.raises(InputValueError):
        compute_expression(expression, {"a": 1})


@given(st.floats(-1e6, 1e6))
def test_float_to_int_rounds_half_away_from_zero(value: float) -> None:
    result = float_to_int(value)
    assert abs(result - value) <= 0.5
    assert float_to_int(2.5) == 3 and float_to_int(-2.5) == -3


def test_math_expression_outputs_all_three_types() -> None:
    assert math_expression("a / 2", a=5) == (2.5, 2, True)


def test_latent_geometry_graph() -> None:
    result = load(f"{REPO_GRAPHS}/latent_geometry.yaml").run(params={"width": 960, "height": 544, "length": 121},
                                                             use_cache=False)
    assert result.outputs == {"valid": True, "latent_frames": 16, "latent_cells_per_frame": 30 * 17,
                              "audio_latent_frames": 121}
