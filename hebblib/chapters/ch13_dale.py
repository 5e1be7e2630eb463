"""Chapter 13 — Dale's principle: purely excitatory Hebbian networks (spec nimmo-thesis §1.19, §2.6,
§5.3–5.4, §7 C-1).

A neuron's outgoing synapses are all excitatory or all inhibitory. Nimmo keeps only excitatory ones
(thesis §3.3.12):

    W₀ = |W_init|,   forward with |W|,   after an update  W ← |W + η ΔW| (abs)  or  max(W + η ΔW, 0) (ReLU)

The update itself may still potentiate (LTP, ΔW > 0) or depress (LTD, ΔW < 0). With the original
code's per-tap cosine a depthwise Dale kernel becomes |W|/|W| = 1 at every tap: the layer is a fixed
box filter divided by the patch norm, whatever its (centre–surround-looking) weights (§7 C-1).
Reduced/full runs use the helpers of chapter 11.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..layers import HebbianConv2d
from ..plots import style
from ..runtime import single_thread
from ..experiments import demo_image, depthwise_layer, describe_result, layer_response, print_full_figure
from ..plots.mosaic import kernel_mosaic
from ..presets import get_preset

PUBLISHED = {name: get_preset(name)["published"] for name in ("dale", "dale_thesis", "optimal")}  # from the presets
SOURCES = {"dale": "code README", "dale_thesis": "Nimmo 2024 thesis, Table 3", "optimal": "code README"}
QUICK_WIDTH = 0.125
MODES = ("abs", "relu", "none")


# ----- 1. the projection: the exercise ------------------------------------------------------------------
def dale_step_solution(weight: torch.Tensor, delta: torch.Tensor, lr: float, mode: str = "abs") -> torch.Tensor:
    """Reference solution: one update, then the projection back to non-negative weights:
    ``|W + lr ΔW|`` ('abs', as the thesis code) or ``max(W + lr ΔW, 0)`` ('relu')."""
    new = weight + lr * delta
    return new.abs() if mode == "abs" else new.clamp(min=0)


def dale_step_cases():
    """Argument tuples ``(weight, delta, lr, mode)`` with weights ≥ 0 and updates of both signs."""
    g = torch.Generator().manual_seed(13)
    w = torch.rand(4, 3, 3, 3, generator=g)
    d = torch.randn(4, 3, 3, 3, generator=g)
    return [(w, d, 0.1, "abs"), (w, d, 0.1, "relu"), (w, d, 1.0, "abs"), (w, d, 1.0, "relu")]


def library_dale_step(weight: torch.Tensor, delta: torch.Tensor, lr: float, mode: str = "abs") -> torch.Tensor:
    """The same step through a ``HebbianConv2d(dale=mode)``: ``apply_update`` then its projection."""
    o, i, k, _ = weight.shape
    layer = HebbianConv2d(i, o, k, dale=mode, update_norm="none")
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.delta_w.copy_(delta)
    layer.apply_update(lr)
    return layer.weight.detach().clone()


# ----- 2. a Dale layer learning: weights at zero, distributions, LTP/LTD ---------------------------------
def whitened_batches(n_images: int = 1024, batch_size: int = 32):
    """ZCA-whitened training images of the shipped subset, in batches (as the Dale presets see them)."""
    from ..training import load_splits

    train, _, _ = load_splits({"normalization": "zca", "zca_eps": 1e-3}, source="subset", limit_train=max(n_images, 20))
    x = train.get(torch.arange(min(n_images, len(train))))[0].cpu()
    return list(x.split(batch_size))


def train_dale_layer(mode: str = "abs", batches=None, lr: float = 0.1, units: int = 32, init: str = "kaiming_uniform",
                     seed: int = 0) -> dict:
    """A first layer (3 → ``units``, 5×5; hard WTA + Instar + cosine, update max-normalised, the ``dale``
    preset's ``init``) trained with
    ``dale=mode`` ('none': no constraint). Records, after every batch, the fraction of weights at zero
    (|W| < 1e-6), and keeps the initial and final weights and the last batch's update ``delta_w``."""
    batches = whitened_batches() if batches is None else batches
    dale = False if mode == "none" else mode
    layer = HebbianConv2d(3, units, 5, activation="cosine", dale=dale, lr=lr, init=init,
                          generator=torch.Generator().manual_seed(seed))
    initial, at_zero, last_delta = layer.weight.detach().clone(), [], None
    with single_thread():
        for x in batches:
            layer.train()(x)
            last_delta = layer.delta_w.clone()
            layer.apply_update()
            at_zero.append(float((layer.weight.detach().abs() < 1e-6).double().mean()))
    return {"layer": layer.eval(), "initial": initial, "final": layer.weight.detach().clone(),
            "at_zero": at_zero, "delta": last_delta}


def dale_runs(batches=None, lr: float = 0.1, seed: int = 0) -> dict:
    """:func:`train_dale_layer` for each of abs, ReLU and no constraint, on the same batches."""
    batches = whitened_batches() if batches is None else batches
    return {mode: train_dale_layer(mode, batches, lr=lr, seed=seed) for mode in MODES}


def distributions_figure(runs: dict) -> Figure:
    """Left: the fraction of weights at zero after every batch. Right: the final weight histograms."""
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    colors = {"abs": "tab:blue", "relu": "tab:red", "none": "0.4"}
    for index, (mode, run) in enumerate(runs.items()):
        zero = torch.tensor(run["at_zero"]).nan_to_num(0.0)
        # abs and none both stay at 0 %: a wide pale line under a dash-dotted one keeps both visible
        left.plot(range(1, len(zero) + 1), (100 * zero).numpy(), color=colors.get(mode), label=mode,
                  **style.overlap_style(index))
        w = run["final"].flatten().nan_to_num(0.0)
        right.hist(w.numpy(), bins=60, histtype="step", color=colors.get(mode), label=mode)
    left.set_xlabel("batch")
    left.set_ylabel("weights at zero (%)")
    left.set_title("silent synapses over training", fontsize=10)
    left.legend(fontsize=8)
    right.set_xlabel("weight")
    right.set_ylabel("count")
    right.set_yscale("log")
    right.set_title("final weight distribution", fontsize=10)
    right.legend(fontsize=8)
    return fig


def print_dale_table(runs: dict) -> None:
    """Per mode: minimum weight, fraction at zero, fraction of the last update that is LTP / LTD."""
    print(f"{'projection':10s} {'min W':>8s} {'at zero':>8s} {'LTP share':>10s} {'LTD share':>10s}")
    for mode, r in runs.items():
        d = r["delta"]
        print(f"{mode:10s} {float(r['final'].min()):8.3f} {100 * r['at_zero'][-1]:7.1f}% "
              f"{100 * float((d > 0).double().mean()):9.0f}% {100 * float((d < 0).double().mean()):9.0f}%")


def ltp_ltd_figure(run: dict, n: int = 9) -> Figure:
    """``plots.plot_ltp_ltd`` of the last batch's update of a Dale layer (read before it was applied)."""
    from ..plots import plot_ltp_ltd

    return plot_ltp_ltd(run["delta"], n=n, title="Dale (abs) layer 1: one batch's update, LTP green / LTD red",
                        fig=Figure(figsize=(6, 7.6), layout="constrained"))  # not pyplot's: shown once


# ----- 3. the depthwise per-tap quirk ------------------------------------------------------------------
def box_filter_response(x: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """What a depthwise Dale layer with per-tap cosine computes: a k×k box sum of each channel divided by
    the norm of the patch, ``Σ_patch x / ‖x_patch‖``."""
    c = x.shape[1]
    ones = torch.ones(c, 1, kernel, kernel)
    padded = F.pad(x, [kernel // 2] * 4)
    box = F.conv2d(padded, ones, groups=c)
    norms = (F.conv2d(padded * padded, ones, groups=c) + 1e-8).sqrt()
    return box / norms


def box_filter_check(channels: int = 8, seed: int = 0) -> dict:
    """Largest difference between a Dale depthwise layer's output and the box filter, for random
    weights and for a centre–surround-looking kernel, under per-tap and true cosine."""
    x = torch.randn(2, channels, 10, 10, generator=torch.Generator().manual_seed(seed + 1))
    box = box_filter_response(x)
    centre_surround = torch.full((channels, 1, 3, 3), 0.1)
    centre_surround[:, :, 1, 1] = 3.0
    out = {}
    for activation in ("cosine_per_tap", "cosine"):
        layer = depthwise_layer(channels, activation=activation, dale="abs", seed=seed)
        out[activation] = {"random": float((layer_response(layer, x) - box).abs().max()),
                           "centre_surround": float((layer_response(layer, x, centre_surround) - box).abs().max())}
    return out


def print_box_check(numbers: dict, tol: float = 1e-5) -> None:
    for activation, d in numbers.items():
        print(f"{activation:15s} output = box filter / patch norm:  random |W|: {d['random'] < tol!s:5s}  "
              f"centre–surround |W|: {d['centre_surround'] < tol}")


def trained_box_check(model, x: torch.Tensor, tol: float = 1e-5) -> dict:
    """For each depthwise layer of a trained Dale net, switched to per-tap cosine: the largest difference
    between its output with its learned weights and with all weights set to 1 (inputs: the normalised
    activity it receives). The layers are restored afterwards."""
    from ..networks.blocks import DepthwiseSeparableBlock

    out, h = {}, x
    with torch.no_grad():
        for stage in model.eval().stages:
            if isinstance(stage, DepthwiseSeparableBlock):
                layer, inp = stage.depthwise, stage.norm1(h)
                saved = layer.activation
                layer.activation = "cosine_per_tap"
                try:
                    out[layer.name] = float((layer_response(layer, inp) - layer_response(layer, inp, torch.ones_like(layer.weight)))
                                            .abs().max())
                finally:
                    layer.activation = saved
            h = stage(h)
    return out


def dale_kernels_figure(model, layer: str = "conv3.depthwise", n: int = 32) -> Figure:
    """Trained Dale depthwise kernels |W| (each scaled to its max), beside what the per-tap forward uses."""
    w = model.hebbian_layers()[layer].effective_weight().detach()[:n, 0]
    used = F.normalize(w.unsqueeze(1), dim=1)[:, 0]
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, k, title in ((axes[0], w, f"{layer}: learned |W|"), (axes[1], used, "what per-tap cosine uses")):
        ax.imshow(kernel_mosaic(k, ncols=16).numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    return fig


def depthwise_dale_demo(centre: float = 3.0, surround: float = 0.1, activation: str = "cosine_per_tap",
                        seed: int = 0) -> Figure:
    """A Dale depthwise kernel set to ``centre`` and ``surround`` on one test image: the kernel as set, the
    kernel Dale's abs projection makes of it (``|W|``, what the layer uses), the response, and its
    difference from the box filter."""
    x = demo_image()
    layer = depthwise_layer(3, activation=activation, dale="abs", seed=seed)
    w = torch.full((3, 1, 3, 3), float(surround))
    w[:, :, 1, 1] = float(centre)
    u = layer_response(layer, x, w)[0, 0].nan_to_num(0.0)
    diff = (u - box_filter_response(x)[0, 0]).abs().nan_to_num(0.0)
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, 4)
    top = max(float(w[0, 0].abs().max()), 1e-12)
    for ax, k, title in ((axes[0], w[0, 0], f"$W$ as set: centre {float(centre):g}, surround {float(surround):g}"),
                         (axes[1], w[0, 0].abs(), "$|W|$: what the Dale layer uses")):
        ax.imshow(k.numpy(), cmap="RdBu_r", vmin=-top, vmax=top)  # the same scale: the sign flip shows
        for (i, j), value in ((ij, float(k[ij])) for ij in ((a, b) for a in range(3) for b in range(3))):
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=9,
                    color="white" if abs(value) > 0.6 * top else "black")  # readable on the dark ends
        ax.set_title(title, fontsize=10)
    axes[2].imshow(u.numpy(), cmap="viridis")
    axes[2].set_title("response", fontsize=10)
    axes[3].imshow(diff.numpy(), cmap="magma")
    axes[3].set_title(f"|response − box filter| (max {float(diff.max()):.2g})", fontsize=10)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(f"Dale depthwise layer, activation = '{activation}'", fontsize=11)
    return fig


def print_cosine_full_figures(preset: str = "dale_thesis", directory=None) -> float | None:
    """The committed full-data runs of ``preset`` (docs/results/, or ``directory``) with the true cosine (the
    default) and with the original per-tap cosine (``--original``), each beside the published figure, or a
    line saying one is missing; when both are measured, a third line with the true cosine's gain (difference
    of the final accuracies' means, with each one's seed count and spread), which it returns."""
    from ..notebook import committed_difference, report_committed_preset

    entry = get_preset(preset)
    true, per_tap = (report_committed_preset(preset, entry["published"], entry["source"], original=original,
                                             directory=directory) for original in (False, True))
    if true is None or per_tap is None:
        return None
    gain, seeds = committed_difference(true, per_tap)
    print(f"· the true cosine's gain on all of CIFAR-10: {true['final']:.2f} − {per_tap['final']:.2f} = "
          f"{gain:+.1f} points (final epoch, {seeds})")
    return gain


# ----- summary -----------------------------------------------------------------------------------------
def summary(runs: dict) -> None:
    from ..notebook import report

    for name in ("dale", "dale_thesis", "optimal"):
        r = runs[name]
        note = describe_result(r) + (" — far below the published number by design" if r["quick"] else "")
        label = f"{name} (this run)" if name != "optimal" else "optimal = dale without Dale, baseline (this run)"
        report(label, r["max_test_acc"], PUBLISHED[name], SOURCES[name], note)
    for name in ("dale", "dale_thesis"):
        print_full_figure(name)


def summary_checks(layer_runs: dict, box: dict, trained: dict, nets: dict):
    dale_min = min(float(layer_runs[m]["final"].min()) for m in ("abs", "relu"))
    net_min = min(float(l.weight.detach().min()) for name in ("dale", "dale_thesis")
                  for l in nets[name]["model"].hebbian_layers().values())
    return [
        ("Dale layers (abs, ReLU): smallest weight ≥ 0", f"{dale_min >= 0}", "True", dale_min >= 0),
        ("Dale networks after training: smallest weight ≥ 0", f"{net_min >= 0}", "True", net_min >= 0),
        ("ReLU projection leaves more weights at zero than abs",
         f"{layer_runs['relu']['at_zero'][-1] > layer_runs['abs']['at_zero'][-1]}", "True",
         layer_runs["relu"]["at_zero"][-1] > layer_runs["abs"]["at_zero"][-1]),
        ("per-tap cosine, Dale depthwise: output = box filter (any |W|)",
         f"{max(box['cosine_per_tap'].values()) < 1e-5}", "True", max(box["cosine_per_tap"].values()) < 1e-5),
        ("trained dale_thesis depthwise layers: learned W ≡ all ones under per-tap cosine",
         f"{max(trained.values()) < 1e-4}", "True", max(trained.values()) < 1e-4),
    ]


__all__ = [
    "MODES", "PUBLISHED", "box_filter_check", "box_filter_response", "dale_kernels_figure", "dale_runs",
    "dale_step_cases", "dale_step_solution", "depthwise_dale_demo", "distributions_figure", "library_dale_step",
    "ltp_ltd_figure", "print_box_check", "print_dale_table", "summary", "summary_checks",
    "train_dale_layer", "trained_box_check", "whitened_batches",
]
