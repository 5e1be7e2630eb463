"""Chapter 10 (hebblib.chapters.ch10_presynaptic): the exercise solution, the demo for every kind × dim, the
normalisations of eqs (40)–(42), and a small reduced run with and without presynaptic competition."""
from __future__ import annotations

import pytest
import torch

from hebblib import experiments as ex
from hebblib.chapters import ch10_presynaptic as ch10
from hebblib.notebook import check_exercise
from hebblib.presynaptic import DIMS, KINDS, presynaptic_weights
from test_chapters_01_03 import assert_finite_figure

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_lp_norm_solution_passes_its_check_and_matches_the_library(capsys):
    cases = ch10.presynaptic_exercise_cases()
    chosen = check_exercise("lp_norm", ch10.lp_norm_spatial_solution, ch10.lp_norm_spatial_solution, cases)
    assert chosen is ch10.lp_norm_spatial_solution and "✓" in capsys.readouterr().out
    for (w,) in cases:
        torch.testing.assert_close(ch10.lp_norm_spatial_solution(w), presynaptic_weights(w, "lp_norm", "spatial"))


def test_a_wrong_dimension_is_rejected(capsys):
    def over_input(w):  # lp_norm along the input channels instead of the spatial taps
        return presynaptic_weights(w, "lp_norm", "input")

    chosen = check_exercise("lp_norm", over_input, ch10.lp_norm_spatial_solution, ch10.presynaptic_exercise_cases())
    assert chosen is ch10.lp_norm_spatial_solution and "✗" in capsys.readouterr().out


@pytest.mark.parametrize("dim", list(DIMS))
def test_lp_norm_has_unit_l2_and_softmax_and_linear_sum_to_one(dim):
    w = torch.randn(6, 4, 3, 3, generator=torch.Generator().manual_seed(1))
    dims = DIMS[dim]
    l2 = presynaptic_weights(w, "lp_norm", dim).pow(2).sum(dim=dims).sqrt()
    torch.testing.assert_close(l2, torch.ones_like(l2))
    for kind in ("softmax", "linear"):
        total = presynaptic_weights(w, kind, dim).sum(dim=dims)
        torch.testing.assert_close(total, torch.ones_like(total), atol=1e-5, rtol=0)
    assert all(low == pytest.approx(1.0, abs=1e-5) and high == pytest.approx(1.0, abs=1e-5)
               for *_, low, high in ch10.normalisation_table(w))


def test_small_weights_become_the_strongest_synapses_and_signs_are_lost():
    w = torch.tensor([[[[0.5, -0.01], [0.2, -2.0]]]])
    eff = presynaptic_weights(w, "lp_norm", "spatial")
    assert (eff >= 0).all() and int(eff.flatten().argmax()) == 1 and int(eff.flatten().argmin()) == 3


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dim", list(DIMS))
def test_demo_survives_every_kind_and_dim(kind, dim):
    assert torch.isfinite(presynaptic_weights(ch10.fixed_weight(), kind, dim)).all()  # what the histograms show
    assert_finite_figure(ch10.presynaptic_demo(kind, dim))


def test_demo_survives_an_exact_zero_and_huge_admittances():
    w = ch10.fixed_weight().clone()
    w[0] = 0.0  # m = 1e6 everywhere in one filter: softmax underflows to exact zeros elsewhere
    assert_finite_figure(ch10.presynaptic_demo("softmax", "global", weight=w))


def test_reduced_runs_differ_only_in_presynaptic_competition():
    options = dict(n_train=150, n_test=60, probe_epochs=1, width_factor=0.125)
    runs = ex.train_presets(ch10.presynaptic_presets(), quick=True, **options)
    base, pre = runs["hard WTA"], runs["hard WTA + presynaptic"]
    assert base.layer().presynaptic is None and pre.layer().presynaptic == {"kind": "lp_norm", "dim": "spatial"}
    assert 0 <= base.accuracy <= 100 and 0 <= pre.accuracy <= 100
    torch.testing.assert_close(pre.layer().effective_weight(),
                               presynaptic_weights(pre.layer().weight.view_as(pre.layer().effective_weight()),
                                                   "lp_norm", "spatial"))
    assert_finite_figure(ch10.effective_filters_figure(runs))
    rows = ch10.summary_rows(runs)
    assert all(ok for *_, ok in rows if ok is not None)
