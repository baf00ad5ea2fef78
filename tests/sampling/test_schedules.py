"""Exact schedule values: LTXVScheduler (facts + the 960x544x121 example), BasicScheduler, ManualSigmas."""
from __future__ import annotations

import pytest
import torch

from ltxgraph_ops.sampling.schedules import (ScheduleError, basic_scheduler, beta_sigmas, flow_shift_table,
                                             linear_quadratic_sigmas, ltxv_sigmas, parse_manual_sigmas,
                                             percent_to_sigma, set_first_sigma, simple_sigmas, token_count)

FACTS_8_STEPS = [1.0, 0.965712, 0.921875, 0.863856, 0.783445, 0.664579, 0.471003, 0.1, 0.0]
DISTILLED = "1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0"
STAGE_2 = "0.909375, 0.725, 0.421875, 0.0"


def test_ltxv_8_steps_without_latent_match_facts():
    sigmas = ltxv_sigmas(8)
    assert sigmas.dtype == torch.float32 and sigmas.shape == (9,)
    assert torch.allclose(sigmas, torch.tensor(FACTS_8_STEPS), atol=1e-6, rtol=0)


def test_ltxv_960x544x121_latent_exact_values():
    # 121 frames -> 16 latent frames, 544/32 = 17, 960/32 = 30: 8160 tokens (values = ltx-core LTX2Scheduler's)
    shape = (1, 128, 16, 17, 30)
    assert token_count(shape) == 8160
    expected = [1.0, 0.9778655171394348, 0.948645293712616, 0.9082885384559631, 0.8489304780960083,
                0.7530190944671631, 0.571769118309021, 0.10000008344650269, 0.0]
    assert torch.equal(ltxv_sigmas(8, latent_shape=shape), torch.tensor(expected, dtype=torch.float32))


def test_ltxv_without_stretch_ends_on_time_shift():
    sigmas = ltxv_sigmas(4, stretch=False)
    assert sigmas[-1] == 0 and sigmas[-2] > 0.1 and torch.all(sigmas[:-1] > sigmas[1:])


def test_ltxv_one_step_is_finite():
    assert torch.isfinite(ltxv_sigmas(1, latent_shape=(1, 128, 16, 17, 30))).all()


@pytest.mark.parametrize("text", [DISTILLED, STAGE_2])
def test_manual_sigmas_parse_exactly(text):
    values = [float(v) for v in text.split(",")]
    sigmas = parse_manual_sigmas(text)
    assert torch.equal(sigmas, torch.tensor(values, dtype=torch.float32))
    assert sigmas.tolist()[-2] == 0.421875  # exactly representable


def test_manual_sigmas_tolerate_spaces_and_newlines_and_refuse_junk():
    assert parse_manual_sigmas(" 1,\n0.5 ,0 ").tolist() == [1.0, 0.5, 0.0]
    assert parse_manual_sigmas("1e-1, .5").tolist() == [pytest.approx(0.1), 0.5]
    with pytest.raises(ScheduleError, match="'abc'"):
        parse_manual_sigmas("1.0, abc")
    with pytest.raises(ScheduleError):
        parse_manual_sigmas(" , ")


def test_set_first_sigma_copies():
    sigmas = parse_manual_sigmas(STAGE_2)
    out = set_first_sigma(sigmas, 0.95)
    assert out[0] == torch.tensor(0.95) and sigmas[0] == torch.tensor(0.909375)
    assert torch.equal(out[1:], sigmas[1:])


def test_flow_shift_table_is_ltxv_model_sampling():
    table = flow_shift_table()
    assert table.shape == (10000,) and abs(float(table[-1]) - 1.0) < 1e-7 and torch.all(table[1:] > table[:-1])


def test_simple_and_linear_quadratic_values():
    assert simple_sigmas(8).tolist() == [0.9999999403953552, 0.9868215918540955, 0.9697813987731934,
                                         0.9468903541564941, 0.9145108461380005, 0.8652006387710571,
                                         0.7809801697731018, 0.6044615507125854, 0.0]
    assert linear_quadratic_sigmas(8).tolist() == [1.0, 0.9937499761581421, 0.987500011920929, 0.981249988079071,
                                                   0.9750000238418579, 0.909375011920929, 0.7250000238418579,
                                                   0.421875, 0.0]
    assert linear_quadratic_sigmas(1).tolist() == [1.0, 0.0]


def test_beta_values_descend_to_zero():
    sigmas = beta_sigmas(8)
    assert sigmas.tolist() == [0.9999999403953552, 0.9943605065345764, 0.9804638028144836, 0.9561170339584351,
                               0.9145421385765076, 0.8401171565055847, 0.6952825784683228, 0.3940194845199585, 0.0]


@pytest.mark.parametrize("name", ["simple", "beta", "linear_quadratic"])
def test_basic_scheduler_denoise_takes_the_tail(name):
    full = basic_scheduler(name, 8)
    assert full.shape == (9,) and full[-1] == 0
    half = basic_scheduler(name, 4, denoise=0.5)
    assert torch.equal(half, full[-5:])
    assert basic_scheduler(name, 4, denoise=0.0).numel() == 0


def test_basic_scheduler_refuses_unknown_names():
    with pytest.raises(ScheduleError, match="karras"):
        basic_scheduler("karras", 8)


def test_percent_to_sigma_follows_the_flow_shift_curve():
    # ComfyUI's percent p is the model's sigma at time 1 - p (the table holds t = k / 10000)
    assert percent_to_sigma(0.0) == 1.0 and percent_to_sigma(1.0) == 0.0
    table = flow_shift_table()
    for percent in (0.25, 0.5, 0.9):
        assert percent_to_sigma(percent) == pytest.approx(float(table[round((1 - percent) * 10000) - 1]), abs=1e-6)
    values = [percent_to_sigma(p / 10) for p in range(11)]
    assert values == sorted(values, reverse=True)
