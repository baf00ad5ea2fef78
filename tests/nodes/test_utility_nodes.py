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


# the LTX-2.5 template's own table (video_ltx2_5_t2v.json, "Output (multiple=32)" at 16:9)
TEMPLATE_16_9 = {0.2: (608, 352), 0.3: (736, 416), 0.4: (864, 480), 0.5: (960, 544), 0.6: (1056, 608),
                 0.7: (1152, 640), 0.8: (1216, 672), 0.9: (1280, 736), 1.0: (1376, 768), 1.2: (1504, 832),
                 1.5: (1664, 928), 1.8: (1824, 1024), 2.0: (1920, 1088)}


@pytest.mark.parametrize("megapixels", sorted(TEMPLATE_16_9))
def test_resolution_selector_matches_the_ltx25_template_table(megapixels: float) -> None:
    from ltxgraph_ops.nodes.utility import resolution_selector
    assert resolution_selector("16:9 (Widescreen)", megapixels, 32) == TEMPLATE_16_9[megapixels]


def test_resolution_selector_portrait_and_square() -> None:
    from ltxgraph_ops.nodes.utility import resolution_selector
    assert resolution_selector("1:1 (Square)", 1.0, 8) == (1024, 1024)
    assert resolution_selector("9:16 (Portrait Widescreen)", 0.9, 32) == (736, 1280)
    assert resolution_selector("1:1 (Square)", 0.25) == (512, 512)


def test_resolution_selector_refuses_an_unknown_ratio_by_name() -> None:
    from ltxgraph import Registry
    from ltxgraph.registry import check_value
    spec = Registry.discover().get("ResolutionSelector")
    message = check_value(spec.input_by_name["aspect_ratio"], "5:4")
    assert message is not None and "16:9 (Widescreen)" in message
    assert [i.name for i in spec.inputs] == ["aspect_ratio", "megapixels", "multiple"]


LAZY_GRAPH = """
ltxgraph: 1
params:
  enhance: {type: BOOLEAN, default: false}
nodes:
  flag: {op: PrimitiveBoolean, in: {value: $enhance}}
  zero: {op: PrimitiveInt, in: {value: 0}}
  plain: {op: PrimitiveInt, in: {value: 5}}
  broken: {op: ComfyMathExpression, in: {expression: "1 // a", a: "@zero.INT"}}
  chosen: {op: ComfySwitchNode, in: {switch: "@flag.BOOLEAN", on_false: "@plain.INT", on_true: "@broken.INT"}}
outputs:
  value: "@chosen.output"
"""


def test_switch_known_before_the_run_leaves_the_other_branch_out(tmp_path) -> None:
    """As ComfyUI's lazy switch: a parameter (through a primitive node) decides the branch before the run, and the
    branch not taken is not run: its division by zero never happens, until the switch takes it."""
    from ltxgraph import api
    from ltxgraph.errors import LtxGraphError
    path = tmp_path / "lazy.yaml"
    path.write_text(LAZY_GRAPH)
    runner = api.Runner(use_cache=False)
    result = runner.run(api.load(path))
    assert result.outputs["value"] == 5
    assert "broken" not in result.report.executed() and "plain" in result.report.executed()
    with pytest.raises(LtxGraphError, match="broken"):
        runner.run(api.load(path), {"enhance": True})
