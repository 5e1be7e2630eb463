"""Chapters 14–15 (hebblib.chapters.ch14_backprop_hybrid, ch15_contrastive): the exercises against the library
and against wrong answers, the chapters' own loops against the library's, the demos at their extreme values
(and a different picture for every control change), and the printouts of committed measurements: numbers
from the JSON when it is there, "not measured" and the command when it is not."""
from __future__ import annotations

import copy
import io
import json

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from hebblib import results
from hebblib.chapters import ch14_backprop_hybrid as ch14
from hebblib.chapters import ch15_contrastive as ch15
from hebblib.contrastive import contrastive_loss, train_contrastive
from hebblib.data import DeviceDataset
from hebblib.networks.contrastive import contrastive_mlp
from hebblib.notebook import check_exercise

matplotlib.use("Agg")


def assert_finite_figure(fig):
    """``fig`` is a Figure with axes whose images, lines and scatters hold only finite numbers, and it draws."""
    assert isinstance(fig, Figure) and fig.axes
    for ax in fig.axes:
        arrays = [np.ma.filled(image.get_array(), 0.0) for image in ax.get_images()]
        arrays += [line.get_xydata() for line in ax.get_lines()]
        for array in arrays:
            assert np.isfinite(np.asarray(array, dtype=float)).all(), ax.get_title()
    fig.savefig(io.BytesIO(), format="png", dpi=30)


def png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ===== chapter 14 ===========================================================================================
def test_mixed_gradient_solution_matches_the_layer_and_a_wrong_mix_is_rejected(capsys):
    check_exercise("mixed gradient", ch14.mixed_gradient_solution, ch14.mixed_gradient_solution,
                   ch14.mixed_gradient_cases())
    assert "✓" in capsys.readouterr().out
    for (weight, grad, delta, alpha), case in zip(ch14.library_cases(), ch14.mixed_gradient_cases()):
        assert torch.equal(case[0], grad) and case[2] == alpha
        torch.testing.assert_close(ch14.mixed_gradient_solution(grad, delta, alpha, ch14.unit_rates(weight)),
                                   ch14.library_mixed_gradient(weight, grad, delta, alpha))
    # the sign of the Hebbian term flipped (ascending instead of descending along ΔW), and the rates forgotten
    for wrong in (lambda g, d, a, r: (1 - a) * g + a * r.view(-1, 1, 1, 1) * d,
                  lambda g, d, a, r: (1 - a) * g - a * d):
        chosen = check_exercise("mixed gradient", wrong, ch14.mixed_gradient_solution, ch14.mixed_gradient_cases())
        assert chosen is ch14.mixed_gradient_solution and "✗" in capsys.readouterr().out


def test_unit_rates_are_the_radius_rule():
    weight = torch.randn(5, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    expected = ((weight.flatten(1).norm(dim=1) - 1).abs() + 1e-10).sqrt()
    torch.testing.assert_close(ch14.unit_rates(weight), expected)


def test_summary_checks_of_the_mix_hold():
    rows = ch14.summary_checks({})
    assert [ok for *_, ok in rows] == [True, True]


TINY_SWEEP = {"alphas": (0.0, 1.0), "width": 0.125, "limit_train": 120, "limit_test": 40, "epochs": 1,
              "source": "subset"}


@pytest.fixture(scope="module")
def tiny_sweep():
    return ch14.hybrid_sweep(TINY_SWEEP, seed=0)


def test_the_sweep_starts_every_alpha_from_the_same_weights_and_alpha_changes_the_result(tiny_sweep):
    assert set(tiny_sweep) == {0.0, 1.0}
    assert torch.equal(tiny_sweep[0.0]["initial"], tiny_sweep[1.0]["initial"])
    assert not torch.equal(tiny_sweep[0.0]["final"], tiny_sweep[1.0]["final"])
    for alpha, run in tiny_sweep.items():
        assert not torch.equal(run["initial"], run["final"])
        assert len(run["history"]) == 1 and run["history"][0]["alpha"] == alpha
        assert set(run["grad_norms"]) == {"conv1", "conv2", "conv3"}


@pytest.mark.parametrize("alpha", [0.0, 1.0, 0.4])
@pytest.mark.parametrize("view", ch14.VIEWS)
def test_alpha_demo_extremes(tiny_sweep, alpha, view):
    assert_finite_figure(ch14.alpha_demo(tiny_sweep, alpha, view))


def test_alpha_demo_redraws_differently_for_every_control_and_refuses_a_bad_view(tiny_sweep):
    base = png(ch14.alpha_demo(tiny_sweep, 0.0, ch14.VIEWS[0]))
    assert png(ch14.alpha_demo(tiny_sweep, 1.0, ch14.VIEWS[0])) != base
    assert png(ch14.alpha_demo(tiny_sweep, 0.0, ch14.VIEWS[1])) != base
    with pytest.raises(ValueError, match="view must be one of"):
        ch14.alpha_demo(tiny_sweep, 0.0, "filters")


def test_the_committed_sweep_and_costs_are_printed_from_their_json(capsys):
    record, costs = ch14.sweep_record(), ch14.costs_record()
    if record is None or costs is None:
        pytest.skip("the chapter 14 measurements are not committed in this checkout")
    ch14.print_sweep_record(record)
    out = capsys.readouterr().out
    for row in record["alphas"]:
        f = row["final_test_acc"]
        assert f"{row['alpha']:5.2f}  {f['mean']:7.2f} ± {f['std']:4.2f} %" in out
    assert record["command"] in out
    ch14.print_costs(costs)
    out = capsys.readouterr().out
    for path in ("hebbian", "backprop", "hybrid"):
        assert f"{costs['paths'][path]['img_s']:8.1f}" in out
    assert costs["command"] in out


def test_missing_measurements_say_so_with_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(results, "chapter_results_dir", lambda: tmp_path)
    monkeypatch.setattr(results, "measured_results_dir", lambda: tmp_path)
    ch14.print_sweep_record(ch14.sweep_record())
    ch14.print_costs(ch14.costs_record())
    ch14.print_full_data_rows()
    out = capsys.readouterr().out
    assert "python scripts/alpha_sweep.py" in out and "python -m hebblib bench --preset soft --phases" in out
    assert out.count("not measured yet") == len(ch14.COMPARED) + 3
    assert "python -m hebblib reproduce --preset hybrid_soft --change '{\"supervised\": {\"alpha\": 0.0}}'" in out
    assert "%" not in out.replace("% ", "")  # no accuracy printed when nothing was measured


# ===== chapter 15 ===========================================================================================
def test_pair_loss_solution_is_the_library_loss_and_wrong_answers_are_rejected(capsys):
    check_exercise("per-entry loss", ch15.pair_loss_matrix_solution, ch15.pair_loss_matrix_solution,
                   ch15.pair_loss_cases())
    assert "✓" in capsys.readouterr().out
    for y, labels in ch15.pair_loss_cases():
        torch.testing.assert_close(ch15.pair_loss_matrix_solution(y, labels).mean(), contrastive_loss(y, labels))
        assert torch.equal(ch15.pair_loss_matrix_solution(y, labels).diagonal(), torch.zeros(len(labels)))

    def opposite_negatives(y, labels):  # negatives pushed to S = −1 instead of 0: not the thesis's loss
        loss = ch15.pair_loss_matrix_solution(y, labels)
        flat = torch.nn.functional.normalize(y.flatten(1), dim=1, eps=1e-8)
        s = flat @ flat.T
        negative = labels.view(-1, 1) != labels.view(1, -1)
        return torch.where(negative, 1 + s, loss)

    def diagonal_kept(y, labels):  # S without its diagonal (Eq. 4.4) but M_pos with it: each sample its own pair
        flat = y.flatten(1) / (y.flatten(1).norm(dim=1, keepdim=True) + 1e-8)
        s = flat @ flat.T - torch.eye(len(labels))
        same = (labels.view(-1, 1) == labels.view(1, -1)).float()
        return same * (1 - s) + (1 - same) * s.abs()

    for wrong in (opposite_negatives, diagonal_kept):
        chosen = check_exercise("per-entry loss", wrong, ch15.pair_loss_matrix_solution, ch15.pair_loss_cases())
        assert chosen is ch15.pair_loss_matrix_solution and "✗" in capsys.readouterr().out


def test_local_gradient_checks_pass_and_can_fail(monkeypatch):
    assert max(ch15.local_gradient_checks(seed=1).values()) < 1e-10
    real = ch15.contrastive_delta_linear
    monkeypatch.setattr(ch15, "contrastive_delta_linear", lambda *a, **k: (-real(*a, **k)[0], None))
    assert ch15.local_gradient_checks(seed=1)["linear"] > 1


def _dataset(n, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 4
    images[labels == 1, 0] //= 3  # some class structure
    return DeviceDataset(images, labels, normalization="standardize", device="cpu")


def test_the_chapters_written_out_loop_is_the_librarys_training_loop():
    train, val, test = _dataset(70, 0), _dataset(20, 1), _dataset(20, 2)
    ours = contrastive_mlp((24, 16), generator=torch.Generator().manual_seed(3))
    library = copy.deepcopy(ours)
    run = ch15.train_with_rate_trace(ours, train, test, epochs=2, batch_size=8, seed=7, every=3)
    train_contrastive(library, train, val, test, epochs=2, batch_size=8, generator=torch.Generator().manual_seed(7),
                      progress=False)
    for (name, a), (_, b) in zip(ours.state_dict().items(), library.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    steps = 2 * -(-70 // 8)
    assert run["steps"] == [0] + list(range(3, steps + 1, 3)) and len(run["trace"]) == len(run["steps"])
    assert all(torch.equal(c, torch.ones_like(c)) for v in run["trace"][0].values() for c in v.values())
    assert all(not torch.equal(c, torch.ones_like(c)) for v in run["trace"][-1].values() for c in v.values())
    assert len(run["test_acc"]) == 2 and set(run["local_loss"]) == {"fc1", "fc2", "out"}


@pytest.fixture(scope="module")
def tiny_runs():
    setting = {"hidden": (32, 32, 32, 32), "source": "subset", "limit_train": 200, "limit_test": 100, "epochs": 1}
    runs = ch15.quick_runs(setting, seed=0)
    _, _, test = ch15.load_data(setting)
    return runs, test


def test_quick_runs_train_both_nets_and_the_rates_figure_draws(tiny_runs):
    runs, _ = tiny_runs
    assert len(runs["test_acc"]) == len(runs["backprop_test_acc"]) == 1
    assert set(ch15.rate_spread(runs)) == {"fc1", "fc2", "fc3", "fc4", "out"}
    assert min(ch15.rate_spread(runs).values()) > 0
    assert_finite_figure(ch15.rates_figure(runs))


@pytest.mark.parametrize("network", ch15.NETWORK_STATES)
@pytest.mark.parametrize("layer,batch,seed,smoothing", [("pixels", 4, 0, 0.0), ("fc4", 32, 9, 0.5),
                                                         ("fc1", 4, 3, 0.5), ("fc2", 32, 0, 0.0)])
def test_similarity_demo_extremes(tiny_runs, network, layer, batch, seed, smoothing):
    runs, test = tiny_runs
    assert_finite_figure(ch15.similarity_demo(runs, test, network, layer, batch, seed, smoothing))


def test_similarity_demo_redraws_differently_for_every_control(tiny_runs):
    runs, test = tiny_runs
    values = {"network": "trained", "layer": "fc2", "batch_size": 16, "seed": 0, "label_smoothing": 0.0}
    base = png(ch15.similarity_demo(runs, test, **values))
    for key, other in (("network", "initial"), ("layer", "pixels"), ("batch_size", 32), ("seed", 9),
                       ("label_smoothing", 0.5)):
        assert png(ch15.similarity_demo(runs, test, **{**values, key: other})) != base, key
    # the browser test may toggle the network while the input is shown: the picture must still change
    pixels = {**values, "layer": "pixels"}
    assert png(ch15.similarity_demo(runs, test, **pixels)) != png(ch15.similarity_demo(runs, test, **{
        **pixels, "network": "initial"}))
    with pytest.raises(ValueError, match="network must be one of"):
        ch15.similarity_demo(runs, test, network="final")
    with pytest.raises(ValueError, match="layer must be one of"):
        ch15.similarity_demo(runs, test, layer="conv1")


def test_the_demo_matrix_is_the_library_loss(tiny_runs):
    runs, test = tiny_runs
    x, labels = ch15.demo_batch(test, 12, seed=2)
    assert torch.equal(labels, labels.sort().values)
    y = ch15.layer_output(runs["trained"], x, "fc3")
    torch.testing.assert_close(ch15.pair_loss_matrix_solution(y, labels).mean(), contrastive_loss(y, labels))


def test_tables_print_published_numbers_and_never_invent_measured_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(results, "measured_results_dir", lambda: tmp_path)
    ch15.print_table_6_4(None)
    ch15.print_table_6_2(None)
    out = capsys.readouterr().out
    for published in ("70.04 ± 0.24", "68.71 ± 0.76", "66.78 ± 0.52", "80.38 ± 0.52", "42.17 ± 0.38",
                      "49.49 ± 0.79", "80.31", "~75", "~66–67"):
        assert published in out
    # every row with a preset (SoftHebb F-4: softhebb_paper); SoftHebb F-2/F-1 and Journé's backprop have none
    assert out.count("not measured on full data") == 10 and out.count("not measurable here") == 3
    # a committed full-data run of F-1 (two seeds) shows up as mean ± std, and a reduced record as its own column
    run = {"seed": 0, "final_test_acc": 64.0, "test_acc_at_best_val": 64.5, "max_test_acc": 65.0}
    stored = {"preset": "contrastive_conv_f1", "published": 66.78, "data": {"protocol": 2},
              "runs": [run, {**run, "seed": 1, "final_test_acc": 66.0}]}
    (tmp_path / "contrastive_conv_f1.json").write_text(json.dumps(stored))
    reduced = {"presets": {"contrastive_mlp": {"test_acc_at_best_val": {"mean": 31.25, "std": 0.5,
                                                                          "values": [31.0, 31.5]}}}}
    ch15.print_table_6_4(reduced)
    ch15.print_table_6_2(reduced)
    out = capsys.readouterr().out
    assert "65.00 ± 1.41 (2 seeds)" in out and "31.25 ± 0.50 (2 seeds)" in out
    assert out.count("not measured on full data") == 9


def test_the_reduced_script_writes_what_the_chapter_prints(tmp_path, monkeypatch, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "ch15_reduced", Path(__file__).resolve().parents[1] / "scripts" / "ch15_reduced.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    path = tmp_path / "ch15_reduced.json"
    assert script.main(["--presets", "contrastive_mlp", "--source", "subset", "--limit-train", "200",
                        "--limit-test", "100", "--mlp-epochs", "1", "--out", str(tmp_path / "runs"),
                        "--json", str(path)]) == 0
    record = json.loads(path.read_text())
    row = record["presets"]["contrastive_mlp"]
    assert record["rows"] == {} and row["epochs"] == 1 and len(row["runs"]) == 1
    assert record["data"]["n_train"] == 180 and record["data"]["n_test"] == 100
    capsys.readouterr()
    monkeypatch.setattr(results, "measured_results_dir", lambda: tmp_path)
    ch15.print_table_6_2(record)
    ch15.print_reduced_setting(record)
    out = capsys.readouterr().out
    assert f"{row['test_acc_at_best_val']['mean']:.2f} (1 seed)" in out and record["command"] in out
    with pytest.raises(SystemExit):
        script.main(["--mlp-epochs", "0"])
