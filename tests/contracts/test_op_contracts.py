"""Every op of the registry keeps the contracts the cache relies on (ltxgraph.testing.contracts), on drawn valid
inputs: inputs never modified, equal outputs for equal inputs, outputs of the declared types. The ``long``
marker draws many more inputs per op."""
from __future__ import annotations

import os
from typing import Annotated

import pytest
import torch

from ltxgraph import Port, op
from ltxgraph.registry import Registry
from ltxgraph.testing import LAWS, ContractError, InputStrategies, TinyModels, check_op, check_ops

REGISTRY = Registry.discover()
EXAMPLES = int(os.environ.get("LTXGRAPH_CONTRACT_EXAMPLES", "3"))
LONG_EXAMPLES = 60
NOT_DRAWN = {  # op -> why its inputs cannot be drawn yet (the suite reports these)
    "LTXVDurationPredictor": "no strategy draws a MODEL_PATCH (a duration head) with LTX-2.5 conditioning",
}
KNOWN_BREAKS = {  # op -> the break the suite found and that is not fixed yet (strict xfail: fixing it fails here)
    "TextGenerateLTX2Prompt": "sampling settings at the edge of their ranges give NaN probabilities "
                              "(torch.multinomial RuntimeError) instead of an InputValueError",
    "LTXVLoopingSampler": "a spatial_overlap as large as the latent's width (7 on 2-3 cells) gives a tensor "
                          "size mismatch (RuntimeError) instead of an InputValueError",
}


@pytest.fixture(scope="session")
def strategies(tmp_path_factory) -> InputStrategies:
    return InputStrategies(REGISTRY, TinyModels(tmp_path_factory.mktemp("contracts")))


def _check(name: str, strategies: InputStrategies, examples: int) -> None:
    report = check_op(REGISTRY.get(name), strategies, examples)
    if name in NOT_DRAWN:
        assert report.not_drawn, f"{name} is listed as not drawn ({NOT_DRAWN[name]}) but can be drawn now"
        return
    assert report.not_drawn is None, f"{name}: {report.not_drawn}; add a strategy or list it in NOT_DRAWN"
    assert report.checked >= 1, f"{name} refused every one of {report.drawn} drawn inputs"


def _cases() -> list:
    return [pytest.param(spec.name, marks=pytest.mark.xfail(reason=KNOWN_BREAKS[spec.name], strict=True))
            if spec.name in KNOWN_BREAKS else spec.name for spec in REGISTRY]


@pytest.mark.parametrize("name", _cases())
def test_op_keeps_its_contracts(name: str, strategies: InputStrategies) -> None:
    _check(name, strategies, EXAMPLES)


@pytest.mark.long
@pytest.mark.parametrize("name", _cases())
def test_op_keeps_its_contracts_long(name: str, strategies: InputStrategies) -> None:
    _check(name, strategies, LONG_EXAMPLES)


def test_exemptions_name_a_law_and_a_reason() -> None:
    exempt = {(spec.name, law): why for spec in REGISTRY for law, why in spec.exempt.items()}
    for (name, law), why in exempt.items():
        assert law in LAWS and why.strip(), f"{name} exempt from {law!r}: {why!r}"


# ops that break each law: the kit must catch them

@op("MutatesInput", outputs={"IMAGE": "IMAGE"})
def mutates_input(image: Annotated[torch.Tensor, Port("IMAGE")]) -> torch.Tensor:
    return image.mul_(0.5)


@op("DrawsUnseededNoise", outputs={"IMAGE": "IMAGE"})
def draws_unseeded_noise(image: Annotated[torch.Tensor, Port("IMAGE")]) -> torch.Tensor:
    return image + torch.rand(image.shape)


@op("ReturnsWrongType", outputs={"MASK": "MASK"})
def returns_wrong_type(value: Annotated[int, Port("INT", min=0, max=4)]) -> str:
    return str(value)


@op("DrawsUnseededNoiseExempt", outputs={"IMAGE": "IMAGE"},
    exempt={"same_outputs": "a test op that adds fresh noise on purpose"})
def draws_unseeded_noise_exempt(image: Annotated[torch.Tensor, Port("IMAGE")]) -> torch.Tensor:
    return image + torch.rand(image.shape)


@pytest.mark.parametrize("fn, law", [(mutates_input, "inputs_unchanged"), (draws_unseeded_noise, "same_outputs"),
                                     (returns_wrong_type, "output_types")])
def test_breaking_a_law_is_reported_with_the_op_and_the_law(fn, law: str, tmp_path) -> None:
    registry = Registry([fn.__ltxgraph_op__])
    with pytest.raises(ContractError, match=f"op {fn.__ltxgraph_op__.name} breaks {law}"):
        check_ops(registry, examples=3, folder=tmp_path)


def test_an_exempt_op_is_reported_with_its_reason(tmp_path) -> None:
    [report] = check_ops(Registry([draws_unseeded_noise_exempt.__ltxgraph_op__]), examples=3, folder=tmp_path)
    assert report.exempt == {"same_outputs": "a test op that adds fresh noise on purpose"}
    assert "same_outputs" not in report.laws and report.checked >= 1
