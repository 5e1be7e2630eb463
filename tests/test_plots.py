"""Tests for hebblib.diagnostics and hebblib.plots: the numbers on hand-made inputs, every figure on
tiny inputs and edge cases (zero weights, one filter, 1×1 kernels, depthwise weights), PGA receptive
fields against the known optimum of a linear unit, and Miconi's reconstruction against autograd.
The real UMAP run is slow (numba compiles it) and runs only with HEBBLIB_SLOW_TESTS=1."""
from __future__ import annotations

import math
import os
import sys
import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from hebblib import HebbianConv2d, HebbianLinear, Triangle, dog_kernel  # noqa: E402
from hebblib import diagnostics as dg  # noqa: E402
from hebblib import plots  # noqa: E402
from hebblib.surround import SurroundModulation  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def image_axes(fig) -> list:
    return [ax for ax in fig.axes if ax.images]


def trained_conv(out_channels=8, kernel=5, seed=0):
    """A small HebbianConv2d after one training forward (win counts and ΔW filled, not applied)."""
    gen = torch.Generator().manual_seed(seed)
    layer = HebbianConv2d(3, out_channels, kernel, padding=kernel // 2, rule="softhebb", competition="soft_wta",
                          lr_schedule="radius", generator=gen)
    layer(torch.rand(2, 3, 8, 8, generator=gen))
    return layer


# ----- diagnostics ---------------------------------------------------------------------------------
def test_uniform_counts_give_entropy_one_and_no_dead_units():
    counts = torch.full((16,), 5.0)
    assert torch.allclose(dg.win_rates(counts), torch.full((16,), 1 / 16, dtype=torch.float64))
    assert dg.usage_entropy(counts) == pytest.approx(1.0)
    assert dg.effective_units(counts) == pytest.approx(16.0)
    assert dg.dead_fraction(counts) == 0.0


def test_one_winner_gives_entropy_zero():
    counts = torch.tensor([0, 0, 7, 0])
    assert dg.usage_entropy(counts) == pytest.approx(0.0)
    assert dg.effective_units(counts) == pytest.approx(1.0)
    assert dg.dead_fraction(counts) == pytest.approx(0.75)


def test_partial_usage_numbers():
    counts = [3, 3, 0, 0]  # two of four units share everything: H = log 2 / log 4
    summary = dg.competition_summary(counts)
    assert summary["entropy"] == pytest.approx(0.5)
    assert summary["effective_units"] == pytest.approx(2.0)
    assert summary["dead_fraction"] == pytest.approx(0.5)
    assert summary["max_rate"] == pytest.approx(0.5)
    assert summary["total_wins"] == 6


def test_metrics_are_nan_free_without_counts_and_for_one_unit():
    zeros = torch.zeros(5)
    assert dg.win_rates(zeros).sum() == 0
    assert (dg.usage_entropy(zeros), dg.effective_units(zeros), dg.dead_fraction(zeros)) == (0.0, 0.0, 1.0)
    assert dg.usage_entropy([4]) == 0.0 and dg.effective_units([4]) == 1.0
    with pytest.raises(ValueError, match="non-negative"):
        dg.win_rates([1, -1])


def test_layer_win_counts_match_winner_counts_of_its_activations():
    layer = HebbianConv2d(3, 6, 3, padding=1)  # hard WTA: win_counts counts argmax_o u
    x = torch.rand(2, 3, 5, 5)
    u = layer(x)
    assert torch.equal(dg.winner_counts(u), layer.win_counts.double())
    assert dg.competition_summary(layer)["total_wins"] == 2 * 5 * 5


def test_activation_sparsity():
    y = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    assert dg.activation_sparsity(y) == 0.75
    assert dg.activation_sparsity(y, threshold=2.0) == 1.0
    out = Triangle()(torch.randn(4, 10, 3, 3))
    assert 0 < dg.activation_sparsity(out) < 1


def test_weight_statistics_on_hand_made_weights():
    w = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]).view(2, 3)
    stats = dg.weight_statistics(w)
    values = w.flatten().numpy()
    assert stats["count"] == 6
    assert stats["mean"] == pytest.approx(0.5) and stats["median"] == pytest.approx(0.5)
    assert (stats["min"], stats["max"]) == (-2.0, 3.0)
    assert stats["std"] == pytest.approx(values.std())
    assert stats["q25"] == pytest.approx(np.percentile(values, 25))
    assert stats["q75"] == pytest.approx(np.percentile(values, 75))
    assert stats["frac_positive"] == pytest.approx(0.5) and stats["frac_negative"] == pytest.approx(1 / 3)
    zero = dg.weight_statistics(torch.zeros(3))
    assert zero["std"] == 0.0 and zero["frac_positive"] == 0.0 and not any(math.isnan(v) for v in zero.values())
    assert dg.weight_statistics(HebbianLinear(4, 2))["count"] == 8


def test_ltp_ltd_sums_and_maps():
    dw = torch.zeros(3, 2, 3, 3)
    dw[0] = 1.0        # all LTP
    dw[1, 0, 1, 1] = -4.0  # one depressed tap on one input channel
    split = dg.ltp_ltd(dw)
    assert split.per_filter.tolist() == [18.0, -4.0, 0.0]
    assert split.maps.shape == (3, 3, 3)
    assert split.maps[1, 1, 1] == -2.0 and split.maps[0].eq(1).all()
    per_filter, maps = dg.ltp_ltd(torch.ones(4, 5))  # linear ΔW, unpacks like a tuple
    assert per_filter.tolist() == [5.0] * 4 and maps.shape == (4, 1, 1)
    layer = trained_conv()
    assert torch.allclose(dg.ltp_ltd(layer).per_filter, layer.delta_w.sum(dim=(1, 2, 3)))


def test_radius_summary_from_weights_radii_and_layer():
    w = torch.zeros(4, 2, 1, 1)
    w[:, 0, 0, 0] = torch.tensor([1.0, 1.05, 2.0, 0.0])
    summary = dg.radius_summary(w)
    assert summary["within_tol"] == 2 and summary["units"] == 4 and summary["fraction_within"] == 0.5
    assert summary["mean_deviation"] == pytest.approx((0 + 0.05 + 1 + 1) / 4)
    assert summary["std_deviation"] == pytest.approx(np.std([0, 0.05, 1, 1]))
    assert dg.radius_summary(torch.tensor([1.0, 3.0]))["mean_radius"] == 2.0
    layer = trained_conv()
    assert dg.radius_summary(layer)["mean_radius"] == pytest.approx(float(layer.radius().mean()), rel=1e-6)


# ----- filters and kernels -------------------------------------------------------------------------
@pytest.mark.parametrize("shape, expected_images", [
    ((8, 3, 5, 5), 8),      # RGB filters, fewer than n
    ((30, 3, 5, 5), 25),    # more than n: the first 25
    ((1, 3, 5, 5), 1),      # one filter
    ((16, 8, 3, 3), 16),    # deeper layer: mean over inputs
    ((12, 1, 3, 3), 12),    # depthwise
])
def test_plot_filters_grids(shape, expected_images):
    fig = plots.plot_filters(torch.randn(shape))
    assert isinstance(fig, Figure)
    assert len(image_axes(fig)) == expected_images


def test_plot_filters_modes_and_edge_cases():
    zeros = torch.zeros(4, 3, 5, 5)
    for mode in ("minmax", "symmetric"):
        fig = plots.plot_filters(zeros, mode=mode)
        shown = image_axes(fig)[0].images[0].get_array()
        assert np.allclose(shown, 0.5)  # zero filters are grey, not NaN
    fig = plots.plot_filters(torch.randn(10, 3, 5, 5), indices=[0, 9], title="picked")
    assert [ax.get_title() for ax in image_axes(fig)] == ["0", "9"]
    assert isinstance(plots.plot_filters(torch.randn(6, 3, 3, 3), rgb=False), Figure)
    with pytest.raises(ValueError, match="n must be"):
        plots.plot_filters(torch.randn(4, 3, 5, 5), n=0)
    with pytest.raises(ValueError, match="mode"):
        plots.plot_filters(torch.randn(4, 3, 5, 5), mode="bad")
    with pytest.raises(ValueError, match="shape"):
        plots.plot_filters(torch.randn(4, 5, 5))


def test_plot_filters_pointwise_and_linear_layers():
    fig = plots.plot_filters(torch.randn(16, 8, 1, 1))
    assert len(fig.axes) == 3  # bars, heatmap, colorbar
    assert isinstance(plots.plot_filters(HebbianLinear(10, 4)), Figure)
    assert isinstance(plots.plot_filters(torch.zeros(1, 1, 1, 1)), Figure)


def test_normalize_images_ranges():
    x = torch.randn(5, 3, 4, 4)
    x[2] = 0.0
    for mode in ("minmax", "symmetric"):
        out = plots.normalize_images(x, mode)
        assert out.min() >= 0 and out.max() <= 1 and torch.isfinite(out).all()
        assert torch.allclose(out[2], torch.full_like(out[2], 0.5))
    sym = plots.normalize_images(torch.tensor([[[[-2.0, 0.0, 1.0]]]]), "symmetric")
    assert sym.flatten().tolist() == [0.0, 0.5, 0.75]  # 0.5 + 0.5 w / max|w|


def test_plot_kernel_shows_the_kernel_sum():
    kernel = dog_kernel(5, 1.2, 1.4)
    fig = plots.plot_kernel(kernel)
    assert f"{float(kernel.sum()):.3f}" in fig._suptitle.get_text()
    assert isinstance(plots.plot_kernel(), Figure)
    assert isinstance(plots.plot_kernel(SurroundModulation(7, 1.0, 2.0)), Figure)
    layer = HebbianConv2d(3, 4, 3, surround={"size": 3, "sigma_e": 0.8, "sigma_i": 1.5})
    assert isinstance(plots.plot_kernel(layer), Figure)
    assert isinstance(plots.plot_kernel(torch.ones(1, 1)), Figure)
    with pytest.raises(ValueError, match="no surround"):
        plots.plot_kernel(HebbianConv2d(3, 4, 3))


# ----- competition, radius, weights, LTP/LTD --------------------------------------------------------
def test_plot_competition_from_layer_counts_and_activations():
    layer = trained_conv()
    fig = plots.plot_competition(layer)
    assert "entropy H" in fig._suptitle.get_text()
    assert "no wins" in plots.plot_competition(torch.zeros(5))._suptitle.get_text()
    assert isinstance(plots.plot_competition(torch.tensor([3.0, 0.0, 0.0])), Figure)
    assert isinstance(plots.plot_competition(torch.randn(2, 6, 4, 4)), Figure)
    assert isinstance(plots.plot_competition(torch.tensor([1.0])), Figure)


def test_plot_radius():
    fig = plots.plot_radius(trained_conv())
    assert "within 0.1" in fig._suptitle.get_text()
    assert isinstance(plots.plot_radius(torch.ones(1)), Figure)
    assert isinstance(plots.plot_radius(torch.zeros(3, 2, 1, 1)), Figure)


def test_plot_weight_histogram_overlay_and_side_by_side():
    layer = trained_conv()
    fig = plots.plot_weight_histogram({"conv": layer, "zeros": torch.zeros(50), "tiny": torch.randn(3)})
    assert len(fig.axes) == 1
    fig = plots.plot_weight_histogram({"a": torch.randn(200), "b": torch.randn(100) * 2}, overlay=False)
    assert len(fig.axes) == 2
    assert isinstance(plots.plot_weight_histogram(torch.zeros(10)), Figure)
    _, ax = plt.subplots()
    assert plots.plot_weight_histogram(torch.randn(100), ax=ax, kde=False) is ax.figure


@pytest.mark.parametrize("delta", [torch.randn(8, 3, 5, 5), torch.zeros(1, 1, 3, 3), torch.randn(6, 4, 1, 1),
                                   torch.randn(5, 7)])
def test_plot_ltp_ltd_edge_cases(delta):
    assert isinstance(plots.plot_ltp_ltd(delta), Figure)


def test_plot_ltp_ltd_colours_and_maps():
    delta = torch.zeros(3, 2, 3, 3)
    delta[0], delta[1] = 1.0, -1.0
    fig = plots.plot_ltp_ltd(delta, n=2)
    bars = fig.subfigs[0].axes[0].patches
    assert len(bars) == 2
    assert matplotlib.colors.to_hex(bars[0].get_facecolor()) == plots.style.LTP_COLOR
    assert matplotlib.colors.to_hex(bars[1].get_facecolor()) == plots.style.LTD_COLOR
    assert len(image_axes(fig.subfigs[1])) == 2
    assert isinstance(plots.plot_ltp_ltd(trained_conv(), n=4), Figure)


# ----- training curves -----------------------------------------------------------------------------
def test_curve_series_formats_agree():
    as_dict = {"epoch": [1, 2, 3], "acc": [0.1, 0.2, 0.3]}
    as_records = [{"epoch": e, "acc": a} for e, a in zip(as_dict["epoch"], as_dict["acc"])]
    assert plots.curve_series(as_dict) == plots.curve_series(as_records) == {"acc": ([1, 2, 3], [0.1, 0.2, 0.3])}
    assert plots.curve_series({"acc": [0.5, 0.6]}) == {"acc": ([1, 2], [0.5, 0.6])}
    assert plots.curve_series({"acc": ([10, 20], [0.5, 0.6])}) == {"acc": ([10, 20], [0.5, 0.6])}
    assert plots.curve_series([{"step": 1, "loss": torch.tensor(2.0), "acc": None}]) == {"loss": ([1], [2.0])}
    with pytest.raises(TypeError):
        plots.curve_series(3)


def test_plot_curves_with_reference_and_loss_panel():
    paper = {"paper: SoftHebb-Optimal": [0.6703, 0.6922, 0.7115]}
    fig = plots.plot_curves({"epoch": [1, 2, 3], "test_acc": [0.6, 0.65, 0.7], "loss": [2.0, 1.5, 1.2]},
                            reference=paper, title="run")
    assert len(fig.axes) == 2
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["test_acc", "paper: SoftHebb-Optimal"]
    _, ax = plt.subplots()
    assert plots.plot_curves([{"acc": 0.1}, {"acc": 0.2, "loss": 1.0}], ax=ax) is ax.figure
    assert len(ax.lines) == 2
    assert isinstance(plots.plot_curves({}), Figure)


def test_live_curves_store_outside_a_notebook():
    curves = plots.LiveCurves(reference={"paper": [0.5, 0.6]})
    assert not curves.live
    curves.add(1, acc=0.3, loss=torch.tensor(2.0))
    curves.add(2, acc=0.5)
    assert len(curves) == 2
    assert curves.history == {"step": [1.0, 2.0], "acc": [0.3, 0.5], "loss": [2.0, None]}
    fig = curves.figure()
    assert isinstance(fig, Figure) and curves.figure() is fig
    assert fig not in [plt.figure(n) for n in plt.get_fignums()]  # not shown again by pyplot


def test_live_curves_update_one_display_in_place(monkeypatch):
    calls = []

    class Handle:
        def update(self, fig):
            calls.append(("update", fig))

    def fake_display(fig, display_id=False):
        calls.append(("display", fig))
        return Handle()

    import IPython.display

    monkeypatch.setattr(IPython.display, "display", fake_display)
    curves = plots.LiveCurves(live=True, every=2)
    for step in range(1, 6):
        curves.add(step, acc=step / 10)
    assert [kind for kind, _ in calls] == ["display", "update"]  # redrawn after adds 2 and 4
    assert calls[0][1] is calls[1][1]
    with pytest.raises(ValueError, match="every"):
        plots.LiveCurves(every=0)


# ----- receptive fields ----------------------------------------------------------------------------
def test_receptive_field_size_by_stride_arithmetic():
    softhebb = [(5, 1), (4, 2), (3, 1), (4, 2), (3, 1)]  # conv, pool, conv, pool, conv
    assert plots.receptive_field_size(softhebb[:1]) == (5, 1)
    assert plots.receptive_field_size(softhebb[:3]) == (12, 2)
    assert plots.receptive_field_size(softhebb) == (26, 4)  # spec nimmo §5.1: 5/12/26
    miconi = [(5, 1), (2, 2), (3, 1), (2, 2), (3, 1)]
    assert plots.receptive_field_size(miconi)[0] == 20
    net = nn.Sequential(nn.Conv2d(3, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(4, 2, 1),
                        nn.Sequential(HebbianConv2d(4, 4, 3, padding=1)), nn.AvgPool2d(2))
    assert plots.receptive_field_size(net, upto=net[3]) == (12, 2)
    assert plots.receptive_field_size(net, upto="3.0") == (12, 2)
    assert plots.receptive_field_size(net) == (14, 4)
    assert plots.receptive_field_size(nn.Conv2d(1, 1, 3, dilation=2)) == (5, 1)
    assert plots.receptive_field_size([((3, 1), 1)]) == ((3, 1), 1)
    with pytest.raises(ValueError, match="not a submodule"):
        plots.receptive_field_size(net, upto=nn.Conv2d(1, 1, 1))


def _linear_unit(channels=4, kernel=5, seed=0):
    torch.manual_seed(seed)
    return nn.Conv2d(3, channels, kernel, bias=False)


def test_pga_on_a_linear_unit_converges_to_its_weights():
    conv = _linear_unit()
    w = conv.weight.detach()
    # Unclamped: the maximiser of w·x on the sphere ‖x‖ = ε is ε·w/‖w‖.
    free = plots.pga_receptive_fields(conv, size=5, steps=25, eps=2.0, value_range=None, progress=False)
    assert free.shape == (4, 3, 5, 5)
    assert torch.allclose(free.flatten(1).norm(dim=1), torch.full((4,), 2.0), atol=1e-4)
    assert (dg.pattern_correlation(free, w) > 0.99).all()
    # Clamped to [0, 1]: the positive part of the weights, normalised.
    clamped = plots.pga_receptive_fields(conv, size=5, steps=25, progress=False)
    assert clamped.min() >= 0 and clamped.max() <= 1
    assert (dg.pattern_correlation(clamped, w.clamp(min=0)) > 0.9).all()


def test_pga_is_vectorised_over_channels():
    conv = _linear_unit(channels=6)
    batches = []
    conv.register_forward_hook(lambda module, inputs, output: batches.append(inputs[0].shape[0]))
    images = plots.pga_receptive_fields(conv, channels=[5, 1, 3], size=5, steps=7, progress=False)
    assert images.shape == (3, 3, 5, 5)
    assert batches == [1] + [3] * 7  # one probe, then one batched pass per step
    w = conv.weight.detach()[[5, 1, 3]]
    assert (dg.pattern_correlation(images, w.clamp(min=0)) > 0.9).all()
    with pytest.raises(ValueError, match="channels"):
        plots.pga_receptive_fields(conv, channels=[6], size=5, steps=1, progress=False)


class _OrderedNet(nn.Module):
    """Registered as (pool, conv, act, head) but run as conv → act → pool → head."""

    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = HebbianConv2d(3, 4, 3, padding=1)
        self.act = Triangle()
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.head(self.pool(self.act(self.conv(x))))


def test_layer_output_runs_the_real_forward_and_stops_at_the_target():
    net = _OrderedNet()
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(plots.layer_output(net, net.pool, x), net.pool(net.act(net.conv(x))))
    assert torch.allclose(plots.layer_output(net, "act", x), net.act(net.conv(x)))
    assert torch.allclose(plots.layer_output(net, None, x), net(x))
    assert plots.layer_output(net, lambda t: t * 2, x).equal(x * 2)
    net.head.register_forward_pre_hook(lambda *args: pytest.fail("layers after the target must not run"))
    plots.layer_output(net, net.pool, x)


def test_pga_leaves_a_training_hebbian_model_untouched():
    net = _OrderedNet().train()
    before = net.conv.weight.detach().clone()
    images = plots.pga_receptive_fields(net, target=net.pool, channels=[0, 1], size=8, steps=5, progress=False)
    assert images.shape == (2, 3, 8, 8) and torch.isfinite(images).all()
    assert net.training and net.conv.training
    assert net.conv.weight.equal(before) and net.conv.delta_w.eq(0).all() and net.conv.win_counts.eq(0).all()
    assert net.conv.weight.grad is None


def test_pga_preprocess_rf_size_and_centre_objective():
    conv = _linear_unit(channels=2)
    w = conv.weight.detach()
    flipped = plots.pga_receptive_fields(conv, size=5, steps=20, preprocess=lambda x: -x, progress=False)
    assert (dg.pattern_correlation(flipped, (-w).clamp(min=0)) > 0.9).all()
    net = nn.Sequential(nn.Conv2d(3, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(4, 2, 1),
                        nn.Conv2d(4, 3, 3, padding=1))
    images = plots.pga_receptive_fields(net, target=net[3], size="rf", steps=3, objective="centre", progress=False)
    assert images.shape == (3, 3, 12, 12)
    with pytest.raises(ValueError, match="objective"):
        plots.pga_receptive_fields(net, objective="max", progress=False)


def test_plot_receptive_fields_grid():
    fig = plots.plot_receptive_fields(torch.rand(7, 3, 6, 6))
    assert len(image_axes(fig)) == 7
    assert isinstance(plots.plot_receptive_fields(torch.zeros(1, 1, 4, 4)), Figure)


def test_reconstruction_sizes_follow_miconi():
    weights = [torch.randn(10, 3, 5, 5), torch.randn(12, 10, 3, 3), torch.randn(14, 12, 3, 3)]
    fields = plots.reconstruct_receptive_fields(weights, pool_sizes=2)
    assert [f.shape[-1] for f in fields] == [5, 10, 20]  # spec miconi §1.10
    assert [f.shape[:2] for f in fields] == [(10, 3), (12, 3), (14, 3)]
    assert torch.allclose(fields[0], weights[0])
    # Layer 2 by Miconi's loop: RF_2[n][i·2 : i·2 + 5, j·2 : j·2 + 5] += Σ_c w_2[n, c, i, j] · RF_1[c]
    loop = torch.zeros(12, 3, 10, 10)
    for i in range(3):
        for j in range(3):
            loop[:, :, 2 * i: 2 * i + 5, 2 * j: 2 * j + 5] += torch.einsum("nc,cxhw->nxhw", weights[1][:, :, i, j],
                                                                          weights[0])
    assert torch.allclose(fields[1], loop, atol=1e-5)


def _linear_net_output(weights, x):
    """conv (no padding) → 2×2 average pool → conv → ...: what a 'spread' reconstruction describes."""
    for i, w in enumerate(weights):
        x = F.conv2d(x, w)
        if i < len(weights) - 1:
            x = F.avg_pool2d(x, 2)
    return x


def test_spread_reconstruction_is_the_exact_gradient_of_a_linear_network():
    torch.manual_seed(0)
    weights = [torch.randn(4, 3, 5, 5, dtype=torch.float64), torch.randn(5, 4, 3, 3, dtype=torch.float64),
               torch.randn(2, 5, 3, 3, dtype=torch.float64)]
    fields = plots.reconstruct_receptive_fields(weights, pool_sizes=2, pool_placement="spread")
    size = fields[-1].shape[-1]
    assert size == 20  # the receptive-field size of the network (stride arithmetic)
    for o in range(2):
        x = torch.zeros(1, 3, size, size, dtype=torch.float64, requires_grad=True)
        out = _linear_net_output(weights, x)
        (grad,) = torch.autograd.grad(out[0, o, 0, 0], x)
        assert torch.allclose(fields[-1][o].double(), grad[0], atol=1e-4)


def test_reconstruction_expands_depthwise_weights():
    w1, depthwise, pointwise = torch.randn(4, 3, 3, 3), torch.randn(4, 1, 3, 3), torch.randn(6, 4, 1, 1)
    dense = torch.zeros(4, 4, 3, 3)
    for c in range(4):
        dense[c, c] = depthwise[c, 0]
    got = plots.reconstruct_receptive_fields([w1, depthwise, pointwise], pool_sizes=[2, 1])
    want = plots.reconstruct_receptive_fields([w1, dense, pointwise], pool_sizes=[2, 1])
    assert all(torch.allclose(a, b) for a, b in zip(got, want))
    with pytest.raises(ValueError, match="pool_placement"):
        plots.reconstruct_receptive_fields([w1], pool_placement="middle")
    with pytest.raises(ValueError, match="does not follow"):
        plots.reconstruct_receptive_fields([w1, torch.randn(2, 3, 3, 3)])


# ----- embeddings ----------------------------------------------------------------------------------
def test_pca_embedding_finds_the_dominant_direction():
    gen = torch.Generator().manual_seed(0)
    t = torch.randn(300, generator=gen)
    direction = torch.randn(20, generator=gen)
    features = t[:, None] * direction * 5 + 0.1 * torch.randn(300, 20, generator=gen)
    coords, indices = plots.embed_features(features, method="pca", n=None)
    assert coords.shape == (300, 2) and indices.equal(torch.arange(300))
    assert abs(np.corrcoef(coords[:, 0].numpy(), t.numpy())[0, 1]) > 0.99
    sub, idx = plots.embed_features(features, method="pca", n=50, seed=3)
    again, idx_again = plots.embed_features(features, method="pca", n=50, seed=3)
    assert sub.shape == (50, 2) and idx.equal(idx_again) and torch.allclose(sub, again)
    assert idx.unique().numel() == 50


def test_plot_embedding_pca_and_edge_cases():
    features, labels = torch.randn(120, 4, 2, 2), torch.arange(120) % 10
    fig = plots.plot_embedding(features, labels, method="pca", n=100, class_names=[f"c{i}" for i in range(10)])
    assert isinstance(fig, Figure)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][:2] == ["c0", "c1"]
    assert isinstance(plots.plot_embedding(torch.randn(5, 1), torch.zeros(5), method="pca"), Figure)
    assert isinstance(plots.plot_embedding(torch.ones(6, 3), torch.arange(6), method="pca"), Figure)
    with pytest.raises(ValueError, match="method"):
        plots.plot_embedding(features, labels, method="tsne")
    with pytest.raises(ValueError, match="one row each"):
        plots.plot_embedding(features, labels[:5], method="pca")


def test_umap_settings_without_importing_umap(monkeypatch):
    seen = {}

    class FakeUMAP:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def fit_transform(self, z):
            seen["mean"], seen["std"] = z.mean(0), z.std(0)
            return z[:, :2]

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    features = torch.randn(40, 6) * 7 + 3
    fig = plots.plot_embedding(features, torch.arange(40) % 3, method="umap", seed=42)
    assert isinstance(fig, Figure)
    assert (seen["n_neighbors"], seen["min_dist"], seen["n_components"], seen["random_state"]) == (15, 0.1, 2, 42)
    assert np.allclose(seen["mean"], 0, atol=1e-9) and np.allclose(seen["std"], 1)  # standardised first


@pytest.mark.skipif(os.environ.get("HEBBLIB_SLOW_TESTS") != "1", reason="real UMAP takes ~30 s (numba JIT); "
                    "set HEBBLIB_SLOW_TESTS=1")
def test_plot_embedding_real_umap():
    features, labels = torch.randn(200, 8), torch.arange(200) % 4
    features[:, 0] += labels * 4.0
    assert isinstance(plots.plot_embedding(features, labels, method="umap"), Figure)


# ----- CUDA inputs ---------------------------------------------------------------------------------
@needs_cuda
def test_cuda_tensors_and_models():
    layer = trained_conv().cuda()
    layer(torch.rand(2, 3, 8, 8, device="cuda"))
    for fig in (plots.plot_filters(layer.weight), plots.plot_competition(layer), plots.plot_radius(layer),
                plots.plot_ltp_ltd(layer), plots.plot_weight_histogram({"w": layer.weight}),
                plots.plot_embedding(torch.randn(30, 5, device="cuda"), torch.arange(30, device="cuda") % 3,
                                     method="pca")):
        assert isinstance(fig, Figure)
    assert dg.weight_statistics(layer)["count"] == layer.weight.numel()
    conv = _linear_unit().cuda()
    images = plots.pga_receptive_fields(conv, size=5, steps=30, progress=False)
    assert images.device.type == "cpu"
    assert (dg.pattern_correlation(images, conv.weight.detach().cpu().clamp(min=0)) > 0.9).all()
