"""Chapters 7–10 (hebblib.chapters.ch07–ch10): the exercise solutions, the widget demos at their extreme
values, and the chapters' key mechanisms on small seeded runs."""
from __future__ import annotations

import pytest
import torch

from hebblib import experiments as ex
from hebblib.chapters import ch07_lateral_inhibition as ch7
from hebblib.chapters import ch08_bcm as ch8
from hebblib.layers import HebbianConv2d
from hebblib.notebook import check_exercise
from hebblib.surround import SurroundModulation, dog_kernel
from test_chapters_01_03 import assert_finite_figure

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ----- chapter 7: the surround kernel -------------------------------------------------------------------------
def test_dog_solution_passes_its_check_and_matches_the_library(capsys):
    chosen = check_exercise("DoG", ch7.dog_kernel_solution, ch7.dog_kernel_solution, ch7.kernel_exercise_cases())
    assert chosen is ch7.dog_kernel_solution and "✓" in capsys.readouterr().out
    for args in ch7.kernel_exercise_cases():
        torch.testing.assert_close(ch7.dog_kernel_solution(*args), dog_kernel(*args))


def test_wrong_kernel_is_rejected(capsys):
    unnormalised = lambda size, se, si: dog_kernel(size, se, si) * 0.5  # noqa: E731
    chosen = check_exercise("DoG", unnormalised, ch7.dog_kernel_solution, ch7.kernel_exercise_cases())
    assert chosen is ch7.dog_kernel_solution and "✗" in capsys.readouterr().out


def test_kernel_sums_match_the_spec():
    sums = {name: round(total, 3) for name, _, _, _, total, _ in ch7.kernel_table()}
    assert sums == {"thesis default": 2.341, "optimal conv1": 1.961, "optimal conv2": 2.792, "optimal conv3": 1.731}
    assert float(dog_kernel(3, 1.0, 1.2).min()) > 0  # conv2 of 'optimal' has no inhibitory tap


def test_a_window_wide_enough_for_both_gaussians_erases_a_uniform_map():
    # both Gaussians are normalised: over a window that holds them both the kernel sums to about 0
    assert abs(float(dog_kernel(11, 1.0, 1.2).sum())) < 1e-3
    out = SurroundModulation(11, 1.0, 1.2)(torch.ones(1, 1, 31, 31))
    assert abs(float(out[0, 0, 15, 15])) < 1e-3
    assert float(dog_kernel(5, 1.2, 1.4).sum()) > 2  # the thesis kernel is cut off: it mostly smooths


@pytest.mark.parametrize("sigma_e,sigma_i,size", [(0.2, 0.3, 1), (3.0, 0.3, 11), (3.0, 5.0, 11), (0.2, 5.0, 2)])
def test_surround_demo_survives_extremes(sigma_e, sigma_i, size):
    assert_finite_figure(ch7.surround_demo(sigma_e, sigma_i, size))


def test_reduced_runs_differ_only_in_the_surround():
    presets = ch7.surround_presets()
    options = dict(n_train=200, n_test=100, probe_epochs=1, width_factor=0.125)
    runs = ex.train_presets(presets, quick=True, **options)
    base, sm = runs["hard WTA"], runs["hard WTA + surround"]
    assert base.layer().surround is None and sm.layer().surround is not None
    assert 0 <= base.accuracy <= 100 and 0 <= sm.accuracy <= 100
    assert not torch.equal(base.layer().weight, sm.layer().weight)
    again = ex.train_reduced(presets["hard WTA"], **options)
    torch.testing.assert_close(again.layer().weight, base.layer().weight)  # same seed, same run


def test_the_full_data_surround_pair_differs_only_in_the_surround():
    difference = ch7.surround_pair_difference()
    assert difference["keys"] == {"layers"} and difference["layers_equal_without_surround"]
    assert all(surround is not None for surround in difference["surround"])


def summary_json(name, final):
    return ('{"preset": "%s", "seeds": [0], "final_test_acc": %s, "test_acc_at_best_val": %s, '
            '"max_test_acc": %s}' % (name, final, final, final))


def test_full_data_surround_effect_is_optimal_minus_bcm(tmp_path, capsys):
    (tmp_path / "bcm.json").write_text(summary_json("bcm", 73.0))
    assert ch7.report_full_surround_pair(tmp_path) is None
    assert "not measured yet" in capsys.readouterr().out
    (tmp_path / "optimal.json").write_text(summary_json("optimal", 74.5))
    assert ch7.report_full_surround_pair(tmp_path) == pytest.approx(1.5)
    out = capsys.readouterr().out
    assert "74.50 vs 73.00, measured +1.5 points" in out and "76.0 vs 75.3, +0.7 points" in out
    assert "1 seed each" in out
    (tmp_path / "optimal.json").write_text(summary_json("optimal", 74.5).replace('"seeds": [0]', '"seeds": [0, 1]'))
    ch7.report_full_surround_pair(tmp_path)
    assert "means of 2 and 1 seed: a rough comparison" in capsys.readouterr().out


def test_committed_changed_run_is_found_by_its_change(tmp_path, monkeypatch, capsys):
    from hebblib import results
    from hebblib.chapters import ch08_bcm
    from hebblib.presets import change_preset, get_preset, variant_name

    monkeypatch.setattr(results, "measured_results_dir", lambda: tmp_path)
    ch08_bcm.report_full_variants()
    assert capsys.readouterr().out.count("not measured yet") == 2
    changed = variant_name(change_preset(get_preset("optimal"), ch08_bcm.THETA_ZERO))
    (tmp_path / "optimal.json").write_text(summary_json("optimal", 72.7))
    (tmp_path / f"{changed}.json").write_text(summary_json("optimal", 74.2))
    (tmp_path / "optimal-original.json").write_text(summary_json("optimal", 75.1))
    ch08_bcm.report_full_variants()
    theta_zero, original = capsys.readouterr().out.splitlines()
    assert "measured 74.2%" in theta_zero and "theta_init" in theta_zero and f"{changed}.json" in theta_zero
    assert "optimal --original" in original and "measured 75.1%" in original


# ----- chapter 8: BCM ------------------------------------------------------------------------------------------
def test_bcm_step_solution_passes_and_matches_the_layer_rule(capsys):
    check_exercise("BCM", ch8.bcm_step_solution, ch8.bcm_step_solution, ch8.bcm_exercise_cases())
    assert "✓" in capsys.readouterr().out
    from hebblib.rules import BCM

    w, x, theta, lr, rate = ch8.bcm_exercise_cases()[0]
    rule = BCM(theta_rate=rate, theta_init=theta)
    y = (w @ x).view(1, 1)
    r, _ = rule(y, y)
    torch.testing.assert_close(ch8.bcm_step_solution(w, x, theta, lr, rate), w + lr * r[0, 0] * x)


def test_toy_bcm_neuron_becomes_selective():
    run = ch8.toy_neuron(theta_rate=0.05, lr=0.02, steps=3000, seed=0)
    assert run["diverged_at"] is None and run["selectivity"] > 0.9
    assert 2.0 < float(run["responses"][-1].max()) < 4.5  # y = θ = E[y²] = y²/3 at the fixed point
    slow = ch8.toy_neuron(theta_rate=1e-4, lr=0.1, steps=3000, seed=0)
    assert slow["diverged_at"] is not None  # a threshold that lags lets the activity run away


@pytest.mark.parametrize("theta_rate,lr,steps,seed", [(1e-4, 0.1, 6000, 0), (1.0, 0.1, 6000, 9), (0.05, 1e-3, 10, 3),
                                                      (1e-4, 1e-3, 1, 0)])
def test_toy_demo_survives_extremes(theta_rate, lr, steps, seed):
    assert_finite_figure(ch8.toy_demo(theta_rate, lr, steps, seed))


def test_bcm_network_records_thresholds_and_sparse_weights():
    recorder = ch8.ThetaRecorder()
    options = dict(n_train=200, n_test=100, probe_epochs=1)
    bcm = ex.train_reduced(ch8.bcm_presets()["hard WTA + BCM"], callback=recorder, **options)
    instar = ex.train_reduced(ch8.bcm_presets()["hard WTA + Instar"], **options)
    theta = recorder.trajectories()
    assert theta.shape[1] == bcm.layer().weight.shape[0] and torch.isfinite(theta).all()
    assert ch8.weight_statistics(bcm)["kurtosis"] > ch8.weight_statistics(instar)["kurtosis"] + 1
    assert_finite_figure(ch8.theta_figure(theta))
    assert_finite_figure(ch8.weight_histograms({"Instar": instar, "BCM": bcm}))


# ----- chapter 9: thresholds and the double-padding bug ------------------------------------------------------
from hebblib.chapters import ch09_time_and_statistics as ch9  # noqa: E402


def test_statistical_gate_solution_matches_the_library_competition(capsys):
    from hebblib.competitions import StatisticalCompetition

    check_exercise("gate", ch9.statistical_gate_solution, ch9.statistical_gate_solution, ch9.gate_exercise_cases())
    assert "✓" in capsys.readouterr().out
    s = torch.randn(3, 8, 4, 4, generator=torch.Generator().manual_seed(0))

    class Context:  # the competition reads the similarity from the layer context
        def similarity(self, extra_padding=False):
            return s

    torch.testing.assert_close(ch9.statistical_gate_solution(s, 1.0), StatisticalCompetition(1.0)(s, Context()))


def test_double_padding_makes_the_hebbian_term_spatially_uniform():
    twice, once = ch9.hebbian_term(True), ch9.hebbian_term(False)
    assert float(twice.abs().max()) > 0 and ch9.spatial_variation(twice) < 1e-4
    assert ch9.spatial_variation(once) > 0.1


@pytest.mark.parametrize("k_std,unit", [(0.0, 0), (10.0, 15), (2.0, 99)])
def test_term_figure_survives_extremes(k_std, unit):
    assert_finite_figure(ch9.term_figure(k_std, unit))


def test_winner_recorder_counts_the_learning_positions_per_unit():
    # a hard WTA has exactly one learner per position; counts are per unit and per batch
    from hebblib.networks import HebbianNet

    layer = HebbianConv2d(3, 6, 3, padding=1, rule="instar", competition="hard_wta", name="conv1")
    net = HebbianNet([layer], input_shape=(3, 8, 8))
    recorder = ch9.WinnerRecorder()
    recorder.start(net)
    for _ in range(3):
        with torch.no_grad():
            net.features(torch.randn(4, 3, 8, 8))
        recorder(net)
    counts = recorder.matrix()
    assert counts.shape == (3, 6)
    assert counts.sum(1).tolist() == [4 * 8 * 8] * 3 and recorder.positions == [4 * 8 * 8] * 3


def test_effective_units_spans_one_to_all():
    assert ch9.effective_units(torch.tensor([[5.0, 0, 0, 0]])).item() == pytest.approx(1.0)
    assert ch9.effective_units(torch.tensor([[2.0, 2, 2, 2]])).item() == pytest.approx(4.0)
    assert 1 < ch9.effective_units(torch.tensor([[3.0, 1, 0, 0]])).item() < 2


def test_winners_figure_with_and_without_records(capsys):
    recorder = ch9.WinnerRecorder()
    recorder.counts, recorder.positions = [torch.tensor([3.0, 1, 0]), torch.tensor([0.0, 0, 0])], [4, 4]
    assert_finite_figure(ch9.winners_figure({"a": recorder, "b": ch9.WinnerRecorder()}, window=2))
    ch9.winner_table({"a": recorder})
    assert "1 of 3" in capsys.readouterr().out  # unit 2 never learned
    assert ch9.winners_figure({}).texts  # full mode: a notice instead of an empty grid


def test_train_hebbian_callback_and_upto_equal_the_loop_written_out():
    """hebblib.training.train_hebbian with upto= and callback= (what train_reduced uses) = the forward up to
    the block, all updates applied, and the callback after each batch, written out here."""
    from hebblib.experiments import reduced_data
    from hebblib.presets import build_model, resolve_preset
    from hebblib.training import train_hebbian

    preset = resolve_preset("hard_basic")
    preset["model"] = {**preset["model"], "width_factor": 0.125}
    train, _, _ = reduced_data("zca", 96, 20)

    class Counter:
        def __init__(self):
            self.started, self.calls = 0, 0

        def start(self, net):
            self.started += 1

        def __call__(self, net):
            self.calls += 1

    torch.manual_seed(0)
    net, counter = build_model(preset), Counter()
    train_hebbian(net, train, epochs=1, batch_size=32, augment=False, upto=0, callback=counter, progress=False,
                  generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    by_hand = build_model(preset).train()
    for x, _ in train.batches(32, shuffle=True, augment=False, generator=torch.Generator().manual_seed(1)):
        with torch.no_grad():
            by_hand.features(x, upto=0)
        by_hand.apply_updates()
    assert counter.started == 1 and counter.calls == -(-len(train) // 32)
    torch.testing.assert_close(net.hebbian_layers()["conv1"].weight, by_hand.hebbian_layers()["conv1"].weight)
    assert not torch.equal(net.hebbian_layers()["conv1"].weight, build_model(preset).hebbian_layers()["conv1"].weight)


def test_temporal_against_baseline_compares_every_epoch_of_matching_groups(tmp_path):
    """Equal at every epoch on every common seed -> the same runs; one epoch off on one seed -> not; a group of
    another precision is never compared (hard_basic's fp32 seed 0 differs, its bf16 seed 0 does not)."""
    import json

    def run(seed, accs, precision="bf16"):
        return {"seed": seed, "data": {"protocol": 2}, "precision": {"name": precision, "fp32_below_fan_in": 64},
                "epochs": [{"epoch": i + 1, "test_acc": a} for i, a in enumerate(accs)],
                "final_test_acc": accs[-1], "test_acc_at_best_val": accs[-1], "max_test_acc": max(accs)}

    def write(name, runs):
        (tmp_path / f"{name}.json").write_text(json.dumps({"preset": name, "published": 74.0, "runs": runs}))

    assert ch9.temporal_against_baseline(tmp_path).endswith("not measured yet")
    curves = {0: [60.0, 70.0, 74.39], 1: [61.0, 71.0, 74.94]}
    write("temporal", [run(s, c) for s, c in curves.items()])
    write("hard_basic", [run(s, c) for s, c in curves.items()] + [run(0, [1.0, 2.0, 3.0], "fp32")])
    line = ch9.temporal_against_baseline(tmp_path)
    assert "(seeds 0, 1; protocol v2, bf16)" in line and "all 3 classifier epochs on 2 of 2 seeds" in line
    assert line.endswith("the same runs: the gate changed nothing the classifier sees")
    write("hard_basic", [run(0, curves[0]), run(1, [61.0, 71.01, 74.94])])  # one epoch differs on seed 1
    line = ch9.temporal_against_baseline(tmp_path)
    assert "on 1 of 2 seeds" in line and line.endswith("not the same runs")
