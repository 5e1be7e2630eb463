"""Chapters 11–13 (hebblib.chapters.ch11–ch13): the exercise solutions, the widget demos at their extreme
values, and the chapters' key claims (parameter counts, the sign(W) reduction of per-tap cosine in
depthwise layers, Dale weights staying non-negative, the Dale depthwise box filter)."""
from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from hebblib import experiments as ex
from hebblib.chapters import ch11_depthwise as ch11
from hebblib.chapters import ch12_residual as ch12
from hebblib.chapters import ch13_dale as ch13
from hebblib.networks import PARAMETER_COUNTS, build_network
from hebblib.notebook import check_exercise

matplotlib.use("Agg")


def assert_finite_figure(fig):
    """``fig`` is a Figure with axes whose images, lines and scatters hold only finite numbers, and it draws."""
    assert isinstance(fig, Figure) and fig.axes
    for ax in fig.axes:
        arrays = [image.get_array() for image in ax.get_images()]
        arrays += [line.get_xydata() for line in ax.get_lines()]
        arrays += [c.get_offsets() for c in ax.collections]
        for array in arrays:
            assert np.isfinite(np.asarray(array, dtype=float)).all(), ax.get_title()
    fig.savefig(io.BytesIO(), format="png", dpi=30)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ----- exercises --------------------------------------------------------------------------------------
def test_spatial_wta_solution_passes_and_matches_the_depthwise_layer(capsys):
    check_exercise("spatial WTA", ch11.spatial_wta_solution, ch11.spatial_wta_solution, ch11.spatial_wta_cases())
    assert "✓" in capsys.readouterr().out
    for (u,) in ch11.spatial_wta_cases():
        mask = ch11.spatial_wta_solution(u)
        assert torch.equal(mask, ch11.library_spatial_mask(u))
        assert torch.equal(mask.flatten(2).sum(2), torch.ones(u.shape[:2]))  # one winner per image and channel


def test_wrong_spatial_wta_is_rejected(capsys):
    across_channels = lambda u: torch.zeros_like(u).scatter_(1, u.argmax(1, keepdim=True), 1.0)  # noqa: E731
    chosen = check_exercise("spatial WTA", across_channels, ch11.spatial_wta_solution, ch11.spatial_wta_cases())
    assert chosen is ch11.spatial_wta_solution and "✗" in capsys.readouterr().out


def test_bottleneck_solution_matches_the_library_blocks(capsys):
    check_exercise("bottleneck", ch12.bottleneck_parameters_solution, ch12.bottleneck_parameters_solution,
                   ch12.bottleneck_cases())
    assert "✓" in capsys.readouterr().out
    blocks = ch12.block_rows()
    for name, (c_in, c_out) in (("res1", (96, 384)), ("res2", (384, 1536))):
        assert sum(n for *_, n in blocks[name]) == ch12.bottleneck_parameters_solution(c_in, c_out)


def test_dale_step_solution_matches_the_layer_projection(capsys):
    check_exercise("Dale step", ch13.dale_step_solution, ch13.dale_step_solution, ch13.dale_step_cases())
    assert "✓" in capsys.readouterr().out
    for case in ch13.dale_step_cases():
        torch.testing.assert_close(ch13.dale_step_solution(*case), ch13.library_dale_step(*case))
    wrong = lambda w, d, lr, mode="abs": w + lr * d  # noqa: E731  no projection
    chosen = check_exercise("Dale step", wrong, ch13.dale_step_solution, ch13.dale_step_cases())
    assert chosen is ch13.dale_step_solution and "✗" in capsys.readouterr().out


# ----- key claims -------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch,count", [("softhebb", 5_893_162), ("softhebb_depthwise", 883_978),
                                        ("softhebb_residual", 4_030_378)])
def test_parameter_counts(arch, count):
    assert sum(n for *_, n in ex.parameter_rows(arch)) == count == PARAMETER_COUNTS[arch]


def test_residual_parameters_per_block():
    sums = {block: sum(n for *_, n in rows) for block, rows in ch12.block_rows().items()}
    assert sums == {"stem": 7_200, "res1": 224_640, "res2": 3_552_768, "head": 245_770}


def test_per_tap_cosine_in_a_depthwise_layer_only_sees_sign_of_w():
    numbers = ch11.per_tap_pitfall(channels=6, seed=1)
    assert numbers["cosine_per_tap"]["sign"] < 1e-5 and numbers["cosine_per_tap"]["stretch"] < 1e-5
    assert numbers["cosine"]["sign"] > 1e-2 and numbers["cosine"]["stretch"] > 1e-2
    # and directly: the per-tap normalisation of a (C, 1, k, k) kernel is sign(W)
    w = torch.randn(5, 1, 3, 3)
    torch.testing.assert_close(torch.nn.functional.normalize(w, dim=1), w.sign())


def test_dale_weights_stay_non_negative_and_relu_silences_synapses():
    batches = ch13.whitened_batches(n_images=256, batch_size=32)
    runs = {mode: ch13.train_dale_layer(mode, batches, units=8) for mode in ("abs", "relu", "none")}
    for mode in ("abs", "relu"):
        assert float(runs[mode]["final"].min()) >= 0
        assert float(runs[mode]["layer"].effective_weight().detach().min()) >= 0
        assert (runs[mode]["delta"] < 0).any(), "Dale layers should still depress some synapses (LTD)"
    assert float(runs["none"]["final"].min()) < 0
    assert runs["relu"]["at_zero"][-1] > runs["abs"]["at_zero"][-1]


def test_dale_network_weights_stay_non_negative_after_updates():
    net = build_network("hardhebb_depthwise", width_factor=0.125,
                        defaults={"rule": "instar", "competition": "hard_wta", "activation": "cosine", "dale": True},
                        generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    net.train()
    for _ in range(2):
        with torch.no_grad():
            net.features(x)
        net.apply_updates()
    assert all(float(layer.weight.detach().min()) >= 0 for layer in net.hebbian_layers().values())


def test_dale_depthwise_per_tap_layer_is_a_box_filter():
    numbers = ch13.box_filter_check(channels=4, seed=2)
    assert max(numbers["cosine_per_tap"].values()) < 1e-5
    assert min(numbers["cosine"].values()) > 1e-2


def test_skip_statistics_are_finite():
    preset = ex.chapter_preset("residual", quick=True, width_factor=0.125)
    model = ex.initial_network(preset)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    stats = ch12.skip_statistics(model, x)
    assert set(stats) == {"res1", "res2"}
    for s in stats.values():
        assert all(torch.isfinite(torch.tensor(v)) for v in s.values())
        assert 0 <= s["shortcut_share"] <= 1


# ----- demos at their extreme widget values ---------------------------------------------------------------
@pytest.mark.parametrize("scale", [-10.0, 0.0, 10.0])
@pytest.mark.parametrize("activation", ["cosine_per_tap", "cosine"])
def test_tap_scaling_demo_extremes(scale, activation):
    assert_finite_figure(ch11.tap_scaling_demo(scale=scale, activation=activation, channel=2))


@pytest.mark.parametrize("scale,block", [(0.0, 1), (3.0, 2)])
def test_skip_mix_demo_extremes(scale, block):
    preset = ex.chapter_preset("residual", quick=True, width_factor=0.125)
    model = ex.initial_network(preset)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert_finite_figure(ch12.skip_mix_demo(model, x, shortcut_scale=scale, block=block, image=1))


@pytest.mark.parametrize("centre,surround", [(0.0, 0.0), (-10.0, 10.0), (10.0, -10.0)])
@pytest.mark.parametrize("activation", ["cosine_per_tap", "cosine"])
def test_dale_depthwise_demo_extremes(centre, surround, activation):
    assert_finite_figure(ch13.depthwise_dale_demo(centre=centre, surround=surround, activation=activation))


def test_accuracy_at_epoch_and_the_thesis_readout_line(tmp_path):
    """The 5-epoch figure chapter 12 prints beside the thesis's 71 % comes from each seed's epoch 5 (not the
    last epoch, not the max), over the headline group's seeds only (a v1 run is left out)."""
    import json

    from hebblib.results import accuracy_at_epoch

    def run(seed, accs, protocol=2):
        epochs = [{"epoch": i + 1, "test_acc": a} for i, a in enumerate(accs)]
        return {"seed": seed, "data": {"protocol": protocol}, "precision": {"name": "bf16"}, "epochs": epochs,
                "final_test_acc": accs[-1], "test_acc_at_best_val": accs[-1], "max_test_acc": max(accs)}

    assert accuracy_at_epoch("residual", 5, directory=tmp_path) is None
    assert ch12.thesis_readout_line(tmp_path).endswith(": not measured yet")
    accs = [[60, 65, 68, 69, 70.0, 72, 75], [61, 66, 67, 70, 71.0, 73, 74], [59, 64, 69, 69, 72.0, 71, 73]]
    runs = [run(s, a) for s, a in enumerate(accs)] + [run(0, [50, 50, 50, 50, 99.0, 50, 50], protocol=1)]
    (tmp_path / "residual.json").write_text(json.dumps({"preset": "residual", "published": 71.0, "runs": runs}))
    at = accuracy_at_epoch("residual", 5, directory=tmp_path)
    assert at["values"] == [70.0, 71.0, 72.0] and at["mean"] == 71.0 and at["std"] == 1.0 and at["seeds"] == 3
    line = ch12.thesis_readout_line(tmp_path)
    assert "measured 71.0 ± 1.0% (mean ± sample std of 3 seeds) | published 71.0%" in line
    assert line.endswith("difference of the mean +0.0 points")
    assert accuracy_at_epoch("residual", 8, directory=tmp_path) is None  # the runs stopped at epoch 7
    with pytest.raises(ValueError, match="epoch must be an int >= 1, got 0"):
        accuracy_at_epoch("residual", 0, directory=tmp_path)


def test_signed_difference_never_prints_minus_zero():
    from hebblib.results import signed

    assert [signed(v) for v in (-0.003, 0.04, -0.0, -0.06, 2.6, -2.64)] == ["+0.0", "+0.0", "+0.0", "-0.1", "+2.6",
                                                                         "-2.6"]
    assert signed(-0.004, 2) == "+0.00" and signed(-0.005, 2) == "-0.01"
