"""Chapters 1–3 (hebblib.chapters.ch01–ch03): the exercise solutions, the widget demos at their extreme
values, and the chapters' key claims on small seeded runs."""
from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from hebblib.chapters import ch01_hebb_instar_oja as ch1
from hebblib.chapters import ch02_updates_as_gradients as ch2
from hebblib.chapters import ch03_competition as ch3
from hebblib.competitions import HardWTA
from hebblib.notebook import check_exercise
from hebblib.surrogate import surrogate_update

matplotlib.use("Agg")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_module_runs_on_one_thread():
    assert torch.get_num_threads() == 1


def assert_finite_figure(fig):
    """Every plotted line, scatter and image of ``fig`` holds finite numbers, and the figure draws."""
    assert isinstance(fig, Figure)
    assert fig.axes, "the figure has no axes"
    for ax in fig.axes:
        for line in ax.get_lines():
            assert np.isfinite(np.asarray(line.get_xydata(), dtype=float)).all(), ax.get_title()
        for collection in ax.collections:
            assert np.isfinite(np.asarray(collection.get_offsets(), dtype=float)).all(), ax.get_title()
        for image in ax.get_images():
            assert np.isfinite(np.asarray(image.get_array(), dtype=float)).all(), ax.get_title()
        for bar in (p for p in ax.patches if hasattr(p, "get_height")):
            assert np.isfinite([bar.get_x(), bar.get_height()]).all(), ax.get_title()
    fig.savefig(io.BytesIO(), format="png", dpi=40)


# ----- exercises --------------------------------------------------------------------------------------
def test_oja_solution_passes_its_check_and_matches_the_layer(capsys):
    chosen = check_exercise("Oja step", ch1.oja_step_solution, ch1.oja_step_solution, ch1.oja_exercise_cases())
    assert chosen is ch1.oja_step_solution and "✓" in capsys.readouterr().out
    # one step of the layer (batch of one, lr applied directly) is one step of the reference solution
    data, w0 = ch1.demo_data(0.5), ch1.initial_weights(1, 2)
    by_hand = ch1.run_oja_by_hand(ch1.oja_step_solution, data, lr=0.05, steps=50, w0=w0)
    by_layer = ch1.train_rule(data, "oja", lr=0.05, steps=50, w0=w0).final[0]
    torch.testing.assert_close(by_hand, by_layer, atol=1e-5, rtol=1e-5)


def test_wrong_oja_step_is_rejected(capsys):
    wrong = lambda w, x, lr: w + lr * (w @ x) * x  # noqa: E731  plain Hebb, no decay
    chosen = check_exercise("Oja step", wrong, ch1.oja_step_solution, ch1.oja_exercise_cases())
    assert chosen is ch1.oja_step_solution and "✗" in capsys.readouterr().out


def test_instar_surrogate_solution_gives_the_instar_update(capsys):
    solution = ch2.update_from_output(ch2.instar_surrogate_output_solution)
    check_exercise("Instar surrogate", solution, solution, ch2.exercise_cases(), atol=1e-9)
    assert "✓" in capsys.readouterr().out
    for x, weight, y in ch2.exercise_cases():
        torch.testing.assert_close(solution(x, weight, y), surrogate_update(x, weight, y, "instar"))
        by_hand = ch2.per_patch_update(x, weight, y, "instar", stride=1)
        torch.testing.assert_close(solution(x, weight, y), by_hand)


@pytest.mark.parametrize("k,binary", [(1, True), (1, False), (3, True), (3, False)])
def test_hard_wta_solution_matches_the_library(k, binary):
    u = torch.randn(7, 6, 2, 2, generator=torch.Generator().manual_seed(k))
    torch.testing.assert_close(ch3.hard_wta_solution(u, k, binary), HardWTA(k=k, binary=binary)(u))
    check_exercise("mask", ch3.hard_wta_solution, ch3.hard_wta_solution, ch3.mask_exercise_cases())


# ----- widget demos at their extreme values -----------------------------------------------------------
@pytest.mark.parametrize("rule", ch1.RULES)
@pytest.mark.parametrize("lr,steps,correlation,offset", [
    (0.5, 2000, 0.99, 3.0),     # largest step, longest run: explodes early, stays plottable
    (1e-4, 1, -0.99, 0.0),      # smallest step, one step
    (0.5, 2000, -0.99, 0.0),
])
def test_rule_demo_survives_extremes(rule, lr, steps, correlation, offset):
    assert_finite_figure(ch1.rule_demo(rule, lr, steps, correlation, offset))


@pytest.mark.parametrize("rule,output,k", [
    ("oja", "binary WTA", 1), ("oja", "graded WTA", 16), ("oja", "no competition", 1),
    ("hebb", "binary WTA", 16), ("instar", "graded WTA", 1), ("hebb", "no competition", 16),
])
def test_update_paths_demo_survives_extremes(rule, output, k):
    assert_finite_figure(ch2.update_paths_demo(rule, output, k))


@pytest.mark.parametrize("k,threshold_rate,activation,units", [
    (1, 0.0, "dot", 1), (10, 1.0, "cosine", 10), (10, 0.0, "dot", 5), (1, 1.0, "dot", 10),
])
def test_prototypes_demo_survives_extremes(k, threshold_rate, activation, units):
    assert_finite_figure(ch3.prototypes_demo(k, threshold_rate, activation, units, epochs=2))


# ----- the chapters' claims ---------------------------------------------------------------------------
def test_plain_hebb_explodes_along_pc1():
    _, numbers = ch1.hebb_section(lr=0.02, steps=1500)
    assert numbers["exploded_at"] is not None and numbers["cos_pc1"] > 0.99
    assert numbers["growth_per_step"] == pytest.approx(numbers["predicted_growth_per_step"], rel=0.15)


def test_oja_converges_to_unit_norm_pc1():
    data = ch1.demo_data(0.8)
    _, vectors = ch1.principal_axes(data)
    run = ch1.train_rule(data, "oja", lr=0.02, steps=1500, batch_size=8)
    w = run.final[0]
    assert abs(float(w.norm()) - 1) < 0.01
    assert float(ch1.abs_cosine(w, vectors[:, 0])) > 0.99


def test_instar_settles_on_the_weighted_mean_and_sanger_finds_the_eigenvectors():
    _, instar = ch1.instar_section(steps=800)
    assert instar["distance_to_weighted_mean"] < 0.05 and instar["distance_to_mean_binary"] < 0.05
    _, sanger = ch1.sanger_section(steps=400)
    assert min(sanger["cosines"]) > 0.95


def test_surrogate_routes_agree_and_oja_is_instar_for_binary_outputs():
    paths = ch2.compare_update_paths("oja", units=8, k=2, output="graded WTA", batch=6)
    for route in ("surrogate", "layer_surrogate", "per_patch"):
        assert paths[f"max_diff_{route}"] < 1e-10 * paths["scale"]
    assert ch2.oja_minus_instar("binary WTA", units=8, batch=6) == 0.0
    assert ch2.oja_minus_instar("graded WTA", units=8, batch=6) > 0.01
    sign = ch2.sign_convention_demo("oja")
    torch.testing.assert_close(sign["hand"], sign["minus_grad"])
    torch.testing.assert_close(sign["after_sgd"], sign["w_plus_lr_dw"])


def test_timing_reports_both_paths():
    cost = ch2.time_update_paths(units=4, batch=2, image_size=12, repeats=1)
    assert cost["ms_direct"] > 0 and cost["ms_surrogate"] > 0 and cost["ratio"] > 0


def test_instar_hard_wta_finds_the_cluster_means():
    data, _, _, means = ch3.ring_clusters(seed=0)
    run = ch3.train_prototypes(data, units=5, activation="cosine", seed=0)
    assert ch3.kmeans_error(run.final, means) < 0.05


def test_adaptive_thresholds_revive_dead_units():
    _, numbers = ch3.dead_units_section(threshold_rate=0.2, seed=0)
    assert numbers["plain"]["dead_fraction"] > 0
    assert numbers["homeostatic"]["dead_fraction"] < numbers["plain"]["dead_fraction"]
    assert numbers["homeostatic"]["kmeans_error"] < 0.05


def test_patch_sections_run_on_a_small_sample():
    fig, stats, runs = ch3.patches_section(n_patches=1500, epochs=1)
    assert_finite_figure(fig)
    assert set(stats) == {"whitened", "raw", "raw + thresholds"}
    anti = ch3.anti_hebbian_section(runs["whitened"][1], runs["whitened"][0], epochs=1)
    for s in list(stats.values()) + list(anti.values()):
        assert 0 <= s["entropy"] <= 1 and 0 <= s["dead_fraction"] <= 1 and np.isfinite(s["correlation"])
    # what the chapter's question relies on: pushing every loser away correlates the units and shrinks
    # the weights; pushing only the runner-up does neither (on this sample: |corr| 0.58 vs 0.14 and 0.12)
    hard, every, runner_up = anti["hard WTA"], anti["all losers anti-Hebbian"], anti["runner-up anti-Hebbian"]
    assert every["correlation"] > 2 * max(hard["correlation"], runner_up["correlation"])
    assert every["mean_norm"] < hard["mean_norm"] < runner_up["mean_norm"]
    mosaic = ch3.filter_mosaic(torch.randn(10, 3, 5, 5), ncols=4)
    assert mosaic.shape == (3 * 6 + 1, 4 * 6 + 1, 3) and float(mosaic.min()) >= 0 and float(mosaic.max()) <= 1
