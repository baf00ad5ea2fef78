"""Guiders: the passes they ask for, the combination, per-modality parameters."""
from __future__ import annotations

import torch

from ltxgraph_ops.sampling.guiders import (GuidanceParams, IdentityGuidance, ModelPass, MultimodalGuider,
                                           basic_guider, cfg_guider, combine, rescale_to_std)

OFFSETS = {"positive": 1.0, "negative": 0.25, "perturbed": 0.5, "isolated": 0.75, "without_reference": 0.125}


class RecordingModel:
    """Returns latent * 0 + an offset that identifies the pass; records every pass."""

    def __init__(self):
        self.passes: list[ModelPass] = []

    def __call__(self, latents, timesteps, sigma, model_pass):
        self.passes.append(model_pass)
        if not model_pass.reference:
            role = "without_reference"
        elif model_pass.conditioning == "negative":
            role = "negative"
        elif model_pass.isolate_modalities:
            role = "isolated"
        elif any(blocks is not None for blocks in model_pass.skip_self_attention):
            role = "perturbed"
        else:
            role = "positive"
        return tuple(torch.full_like(latent, OFFSETS[role]) + latent for latent in latents)


def latents():
    return (torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0)),
            torch.randn(2, 5, generator=torch.Generator().manual_seed(1)))


def timesteps():
    return (torch.full((2, 1, 4), 0.5), torch.full((2, 1), 0.5))


def test_cfg_one_runs_only_the_positive_pass():
    model = RecordingModel()
    out = cfg_guider(model, 1.0)(latents(), timesteps(), torch.tensor(0.5))
    assert model.passes == [ModelPass()]
    assert torch.equal(out[0], latents()[0] + 1.0)
    model = RecordingModel()
    basic_guider(model)(latents(), timesteps(), torch.tensor(0.5))
    assert len(model.passes) == 1


def test_cfg_combines_cond_and_uncond():
    model = RecordingModel()
    out = cfg_guider(model, 3.0)(latents(), timesteps(), torch.tensor(0.5))
    assert [p.conditioning for p in model.passes] == ["positive", "negative"]
    cond, uncond = latents()[1] + 1.0, latents()[1] + 0.25
    assert torch.allclose(out[1], cond + 2.0 * (cond - uncond))


def test_multimodal_runs_each_needed_pass_once_with_per_modality_blocks():
    model = RecordingModel()
    video = GuidanceParams(cfg=3.0, stg=1.0, modality=3.0, rescale=0.0, stg_blocks=(29,))
    audio = GuidanceParams(cfg=7.0, stg=0.0, modality=1.0)
    out = MultimodalGuider(model, [video, audio])(latents(), timesteps(), torch.tensor(0.5))
    assert len(model.passes) == 4
    assert model.passes[2].skip_self_attention == ((29,), None)
    assert model.passes[3].isolate_modalities
    v = latents()[0]
    expected_video = (v + 1) + 2 * (0.75) + 1 * 0.5 + 2 * 0.25
    assert torch.allclose(out[0], expected_video)
    a = latents()[1]
    assert torch.allclose(out[1], (a + 1) + 6 * 0.75)  # stg/modality terms absent for audio


def test_combine_formula_and_rescale():
    gen = torch.Generator().manual_seed(3)
    c, u, p, m = (torch.randn(2, 6, generator=gen) for _ in range(4))
    params = GuidanceParams(cfg=3.0, stg=1.0, modality=3.0, rescale=0.7)
    pred = c + 2 * (c - u) + (c - p) + 2 * (c - m)
    factor = 0.7 * c.std() / pred.std() + 0.3
    assert torch.allclose(combine(params, c, u, p, m), pred * factor)
    full = rescale_to_std(pred, c, 1.0)
    assert torch.allclose(full.std(), c.std())


def test_rescale_std_is_over_the_whole_batch_by_default_and_per_item_on_request():
    gen = torch.Generator().manual_seed(5)
    c, u = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 3, 4, generator=gen)
    c[1] *= 4.0  # items of different spread: the two statistics differ
    batch = combine(GuidanceParams(cfg=3.0, rescale=1.0), c, u)
    per_item = combine(GuidanceParams(cfg=3.0, rescale=1.0, rescale_per_item=True), c, u)
    assert torch.allclose(batch.std(), c.std())
    assert not torch.allclose(batch[0].std(), c[0].std(), rtol=1e-2)
    for item in range(2):
        assert torch.allclose(per_item[item].std(), c[item].std())
        alone = combine(GuidanceParams(cfg=3.0, rescale=1.0), c[item:item + 1], u[item:item + 1])
        assert torch.allclose(per_item[item:item + 1], alone)


def test_neutral_parameters_return_cond_exactly():
    c = torch.randn(1, 8)
    assert torch.equal(combine(GuidanceParams(), c), c)


def test_identity_guidance_adds_scale_times_cond_minus_no_reference_after_the_rest():
    model = RecordingModel()
    params = [GuidanceParams(cfg=3.0, rescale=0.5), GuidanceParams(cfg=2.0)]
    plain = MultimodalGuider(RecordingModel(), params)(latents(), timesteps(), torch.tensor(0.5))
    out = MultimodalGuider(model, params, identity=IdentityGuidance(4.0))(latents(), timesteps(), torch.tensor(0.5))
    assert [(p.conditioning, p.reference) for p in model.passes] == [("positive", True), ("negative", True),
                                                                      ("positive", False)]
    for k in range(2):   # every modality: + 4 (c - c_without_reference), after CFG and rescale
        assert torch.allclose(out[k], plain[k] + 4.0 * (1.0 - 0.125))


def test_identity_guidance_at_scale_zero_is_plain_guidance_without_an_extra_pass():
    model = RecordingModel()
    params = [GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(1,))] * 2
    plain = MultimodalGuider(RecordingModel(), params)(latents(), timesteps(), torch.tensor(0.5))
    out = MultimodalGuider(model, params, identity=IdentityGuidance(0.0))(latents(), timesteps(), torch.tensor(0.5))
    assert all(p.reference for p in model.passes) and len(model.passes) == 3
    assert all(torch.equal(a, b) for a, b in zip(out, plain))


def test_identity_guidance_acts_only_inside_its_sigma_window():
    identity = IdentityGuidance(2.0, sigma_start=0.75, sigma_end=0.25)       # both ends inclusive (ComfyUI's)
    for sigma, inside in ((0.9, False), (0.75, True), (0.5, True), (0.25, True), (0.2, False)):
        model = RecordingModel()
        out = MultimodalGuider(model, [GuidanceParams()] * 2, identity=identity)(latents(), timesteps(),
                                                                                   torch.tensor([sigma, 0.0]))
        assert len(model.passes) == (2 if inside else 1)
        assert torch.allclose(out[1], latents()[1] + 1.0 + (2.0 * 0.875 if inside else 0.0))
