"""tools/comfyui_rules.py: the ComfyUI departures it emulates act where ComfyUI's rule says, and nowhere else."""
from __future__ import annotations

import torch

from ltxgraph_ops.models.transformer import LTXAVTransformer
from tools.comfyui_rules import comfyui_cross_modulation, cross_modulation_step, fractional_mask_step


def test_cross_modulation_rule_moves_both_streams_and_is_undone_on_exit() -> None:
    original = LTXAVTransformer._cross
    step = cross_modulation_step()
    assert LTXAVTransformer._cross is original
    assert step["video"]["relative_l2"] > 0.01 and step["audio"]["relative_l2"] > 0.01


def test_cross_modulation_rule_is_the_reference_when_sigma_is_zero() -> None:
    # sigma 0 scaled or not is 0: ComfyUI's unscaled sigma and the reference's sigma * 1000 meet there
    transformer = LTXAVTransformer.__new__(LTXAVTransformer)
    seen = []
    original = LTXAVTransformer._cross
    LTXAVTransformer._cross = lambda self, state, s, other_sigma, **kw: seen.append(other_sigma)
    try:
        with comfyui_cross_modulation():
            transformer.config = type("C", (), {"timestep_scale_multiplier": 1000})()
            LTXAVTransformer._cross(transformer, None, None, other_sigma=torch.tensor([0.0, 0.5]))
    finally:
        LTXAVTransformer._cross = original
    assert torch.equal(seen[0], torch.tensor([0.0, 0.0005]))


def test_fractional_mask_rule_differs_only_for_fractional_masks() -> None:
    assert fractional_mask_step(strength=0.6)["relative_l2"] > 0.01
    assert fractional_mask_step(strength=1.0)["max_abs"] == 0.0      # mask 0: both keep the clean latent
