"""Every op of the registry keeps the contracts the cache relies on (ltxgraph.testing.contracts), on drawn valid
inputs: inputs never modified, equal outputs for equal inputs, outputs of the declared types; values outside its
ports' constraints are refused naming the input; the geometry laws hold where they apply. The ``long`` marker
draws many more inputs per op."""
from __future__ import annotations

import os
import tempfile
from typing import Annotated, Any

import pytest
import torch

from ltxgraph import Port, op
from ltxgraph.cli import main
from ltxgraph.registry import Registry
from ltxgraph.values import AudioLatent, Video, VideoLatent
from ltxgraph.executor import Executor
from ltxgraph.testing import (FITS, LAWS, ContractError, InputStrategies, check_op, check_ops, exemption_summary,
                              exemptions)

REGISTRY = Registry.discover()
EXAMPLES = int(os.environ.get("LTXGRAPH_CONTRACT_EXAMPLES", "3"))
LONG_EXAMPLES = 60
NOT_DRAWN: dict[str, str] = {  # op -> why its inputs cannot be drawn yet (the suite reports these)
}
EXEMPT = {  # (op, law) the built-in ops declare themselves exempt from: a new exemption is reviewed here
    *((guide, law) for guide in ("LTXVAddGuide", "LTXAddVideoICLoRAGuide", "LTXAddVideoICLoRAGuideAdvanced")
      for law in ("latent_frames", "pixel_cells")),
    ("LTXVImgToVideoInplace", "pixel_cells"), ("LTXVImgToVideoConditionOnly", "pixel_cells"),
    ("LTXVLoopingSampler", "pixel_cells"),   # keyframe images are guides fitted to the latent (add_guide)
}
KNOWN_BREAKS: dict[str, str] = {  # op -> the break the suite found and that is not fixed yet (strict xfail: fixing it fails here)
}


def _check(name: str, strategies: InputStrategies, examples: int) -> None:
    report = check_op(REGISTRY.get(name), strategies, examples)
    if name in NOT_DRAWN:
        assert report.not_drawn, f"{name} is listed as not drawn ({NOT_DRAWN[name]}) but can be drawn now"
        return
    assert report.not_drawn is None, f"{name}: {report.not_drawn}; add a strategy or list it in NOT_DRAWN"
    assert report.checked >= 1, f"{name} refused every one of {report.drawn} drawn inputs"
    if name in FITS:                                        # related inputs drawn to agree: nothing to refuse
        assert report.checked == report.drawn, f"{name} refused {report.drawn - report.checked} of " \
                                               f"{report.drawn} inputs drawn by its fit (ltxgraph/testing/fits.py)"


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


def test_the_exemption_report_is_what_the_ops_declare() -> None:
    reported = exemptions(REGISTRY)
    assert {(name, law) for law, ops in reported.items() for name in ops} == EXEMPT
    assert all(reported[law][spec.name] == why for spec in REGISTRY for law, why in spec.exempt.items())
    summary = exemption_summary(REGISTRY)
    assert all(f"  {name}: {spec.exempt[law]}" in summary for name, law in EXEMPT if (spec := REGISTRY.get(name)))
    print("\nop contract exemptions (tests/contracts):\n" + summary)


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


@op("LosesFrames", outputs={"LATENT": "VIDEO_LATENT"})
def loses_frames(latent: Annotated[VideoLatent, Port("VIDEO_LATENT")]) -> VideoLatent:
    return VideoLatent(latent.samples, latent.fps, latent.frames + 1)


@op("ForgetsFps", outputs={"VIDEO": "VIDEO"})
def forgets_fps(video: Annotated[Video, Port("VIDEO")]) -> Video:
    return Video(video.images, video.fps + 1.0)


@op("EncodesAtOtherScale", outputs={"LATENT": "VIDEO_LATENT"})
def encodes_at_other_scale(vae: Annotated[Any, Port("VAE")], pixels: Annotated[torch.Tensor, Port("IMAGE")]
                           ) -> VideoLatent:
    frames, height, width = pixels.shape[:3]
    return VideoLatent(torch.zeros(1, 128, (frames - 1) // 8 + 1, height // 16, width // 16), None, frames)


@op("ShortAudioLatent", outputs={"LATENT": "AUDIO_LATENT"})
def short_audio_latent(seconds: Annotated[float, Port("FLOAT", min=1.0, max=2.0)]) -> AudioLatent:
    return AudioLatent(torch.zeros(1, 8, int(seconds * 25) - 1, 16), 25.0, seconds)


@op("ProposesAnyLength", outputs={"num_frames": "INT"})
def proposes_any_length(seconds: Annotated[float, Port("FLOAT", min=1.0, max=2.0)]) -> int:
    return round(seconds * 24)


@pytest.mark.parametrize("fn, law", [(mutates_input, "inputs_unchanged"), (draws_unseeded_noise, "same_outputs"),
                                     (returns_wrong_type, "output_types"), (loses_frames, "latent_frames"),
                                     (forgets_fps, "fps_kept"), (encodes_at_other_scale, "pixel_cells"),
                                     (short_audio_latent, "audio_steps"), (proposes_any_length, "frame_count")])
def test_breaking_a_law_is_reported_with_the_op_and_the_law(fn, law: str, tmp_path) -> None:
    registry = Registry([fn.__ltxgraph_op__])
    with pytest.raises(ContractError, match=f"op {fn.__ltxgraph_op__.name} breaks {law}"):
        check_ops(registry, examples=3, folder=tmp_path)


def test_an_engine_accepting_an_out_of_range_value_is_caught(tmp_path, monkeypatch) -> None:
    """The refusal law goes through the executor's check of linked values: one that lets values through fails."""
    monkeypatch.setattr(Executor, "_checked_linked", staticmethod(lambda spec, value, warnings: value))
    with pytest.raises(ContractError, match=r"op ReturnsWrongType breaks refuses_invalid: input 'value' \((min|max)\)"):
        check_ops(Registry([returns_wrong_type.__ltxgraph_op__]), examples=3, folder=tmp_path)


def test_an_exempt_op_is_reported_with_its_reason(tmp_path) -> None:
    [report] = check_ops(Registry([draws_unseeded_noise_exempt.__ltxgraph_op__]), examples=3, folder=tmp_path)
    assert report.exempt == {"same_outputs": "a test op that adds fresh noise on purpose"}
    assert "same_outputs" not in report.laws and report.checked >= 1


def test_checking_without_a_folder_leaves_no_scratch_files(tmp_path, monkeypatch) -> None:
    """``ops --check`` writes its tiny models into a scratch folder that is removed when the check ends."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    check_ops(Registry([draws_unseeded_noise_exempt.__ltxgraph_op__]), examples=2)
    assert list(tmp_path.iterdir()) == []


def test_ops_check_draws_the_looping_samplers_related_inputs_by_its_fit(capsys) -> None:
    """``ltxgraph ops --check`` draws a fitted op's related inputs to agree (ltxgraph/testing/fits.py), as this suite
    does: the looping sampler accepts every draw (drawn independently, it refused 754 of 757 to check 3)."""
    assert main(["ops", "LTXVLoopingSampler", "--check", "ltxgraph_ops.looping_sampler", "--examples", "2"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("LTXVLoopingSampler:"))
    assert line.startswith("LTXVLoopingSampler: ok on 2 of 2 drawn inputs (")
    assert "; related inputs drawn to agree" in line
