from __future__ import annotations

import importlib.metadata
import json
import sys
import types
from typing import Annotated

import pytest

from ltxgraph import Port, Registry, op
from ltxgraph.registry import OpDeclarationError, OpPackageError, check_value
from ltxgraph.types import PortTypeError, accepts


def test_signature_is_the_contract(registry: Registry) -> None:
    spec = registry.get("MakeTensor")
    assert [i.name for i in spec.inputs] == ["seed", "width"]
    assert spec.inputs[0].required and spec.inputs[1].default == 16
    assert spec.inputs[0].port.control_after_generate
    assert spec.outputs == (("IMAGE", "IMAGE"),)
    assert registry.get("EmptyVideoLatent").context_param == "ctx"
    described = registry.get("EmptyVideoLatent").describe()
    assert described["inputs"][0] == {"name": "length", "type": "INT", "required": False, "default": 9,
                                      "widget": True, "min": 1, "eight_n_plus_one": True}
    json.dumps(described)


def test_declaration_errors() -> None:
    with pytest.raises(OpDeclarationError, match="needs Annotated"):
        @op("Bad")
        def bad(x: int) -> int:
            return x
    with pytest.raises(PortTypeError):
        Port("LATENT")  # ComfyUI's untyped LATENT is refined: say which latent
    with pytest.raises(OpDeclarationError, match="exactly one type"):
        @op("Bad2", outputs={"X": "VIDEO_LATENT|AUDIO_LATENT"})
        def bad2(x: Annotated[int, Port("INT")]) -> int:
            return x


def test_type_compatibility() -> None:
    assert accepts("VIDEO_LATENT|AV_LATENT", "AV_LATENT")
    assert not accepts("VIDEO_LATENT", "AUDIO_LATENT")
    assert not accepts("FLOAT", "INT")


@pytest.mark.parametrize("port, value, message", [
    (Port("INT", min=1), 0, "below the minimum 1"),
    (Port("INT", max=4), 5, "above the maximum 4"),
    (Port("INT", multiple_of=32), 500, "not a multiple of 32: use 480 or 512"),
    (Port("INT", eight_n_plus_one=True), 100, "not 8n+1: use 97 or 105"),
    (Port("STRING", choices=("euler", "lcm")), "eulr", "did you mean 'euler'"),
    (Port("INT", eight_n_plus_one=True, min=1), 121, None),
])
def test_constraint_messages_say_what_to_use(port: Port, value, message) -> None:
    from ltxgraph.registry import InputSpec
    result = check_value(InputSpec("x", port), value)
    assert (result is None) if message is None else (message in result)


def test_duplicate_names_across_modules_are_refused() -> None:
    first, second = types.ModuleType("pkg_a"), types.ModuleType("pkg_b")
    for module in (first, second):
        @op("Same", outputs={"X": "INT"})
        def same(x: Annotated[int, Port("INT")]) -> int:
            return x
        same.__module__ = module.__name__
        module.same = same
    with pytest.raises(OpDeclarationError, match="two ops are named Same"):
        Registry.from_modules(first, second)


def test_entry_point_packages_are_discovered(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = types.ModuleType("third_party_ops")

    @op("ThirdPartyOp", outputs={"X": "INT"})
    def third(x: Annotated[int, Port("INT")]) -> int:
        return x
    third.__module__ = "third_party_ops"
    plugin.third = third
    monkeypatch.setitem(sys.modules, "third_party_ops", plugin)
    entry = importlib.metadata.EntryPoint("thirdparty", "third_party_ops", "ltxgraph.ops")
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [entry] if group == "ltxgraph.ops" else real(group=group))
    assert "ThirdPartyOp" in Registry.discover()


def test_missing_plugin_is_an_invalid_input() -> None:
    with pytest.raises(OpPackageError, match="no_such_module"):
        Registry.from_modules("no_such_module")
