"""Chapter 4 — The convolutional Hebbian layer.

A convolution applies one weight vector ``W_o`` (C·k·k numbers) to every k×k patch of the input. Seen
through the patches, a conv layer is a fully connected layer shared across positions, so its Hebbian
update is the sum of the per-patch updates (Nimmo §3.3.4; spec nimmo-thesis §1.0):

    u[n,o,p]   = W_o · x_patch[n,p]                          the forward: one conv2d
    y          = competition(u)  across channels o, at every (n, p)
    ΔW[o]      = Σ_{n,p} r[n,o,p] · x_patch[n,p]  −  (Σ_{n,p} s[n,o,p]) · W[o]
    ΔW        ← ΔW / max|ΔW|                                 update max-normalisation (Nimmo)

The first term is one call to ``torch.nn.grad.conv2d_weight`` (``hebblib.update.hebbian_term``);
this chapter checks it against an explicit sum over patches. The experiment is Miconi's (2021)
layer 1 — 100 filters 5×5, hard WTA, Instar, unit-norm weights — read out by a linear probe on
quadrant-pooled features, against the same layer with random weights.
"""
from __future__ import annotations

import contextlib
import functools
import math

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from .. import diagnostics as dg
from ..classifier import linear_probe, probe_summary
from ..errors import HebbianDivergenceError
from ..layers import ACTIVATIONS, HebbianConv2d
from ..networks import HebbianNet, build_network
from ..plots.competition import plot_competition, plot_ltp_ltd
from ..plots.filters import normalize_images, plot_filters
from ..runtime import is_quick, quick_or, single_thread
from ..update import hebbian_term, normalize_update

# Miconi (2021) Table 1, default network (WTA output, no pruning), layer-1 quadrants, 10 runs.
PUBLISHED = {"random": 43.3, "trained": 49.94}
PUBLISHED_SOURCE = "Miconi 2021, Table 1 (L1 quadrants; Ridge readout, full CIFAR-10, 20 epochs)"


# ----- 1. patches ----------------------------------------------------------------------------------
def example_batch(n: int = 64, source: str | None = None):
    """The first ``n`` ZCA-whitened training images (of the quick-mode subset unless ``source``)."""
    train, _, _ = load_data(source or "subset")
    return train.get(slice(0, n))[0]


def patch_matrix(x: torch.Tensor, kernel_size: int = 5) -> torch.Tensor:
    """All k×k patches of ``x`` (N, C, H, W) as columns: (N, C·k·k, positions), via ``F.unfold``."""
    return F.unfold(x, kernel_size)


def patches_figure(image: torch.Tensor, weight: torch.Tensor, positions=((2, 3), (12, 16), (22, 8))) -> Figure:
    """Weight sharing seen through patches: the image with a few 5×5 patches outlined; its patch
    matrix X (one column per position); and two output maps ``u_o = W_o X`` folded back to 28×28."""
    k = weight.shape[-1]
    x = image[None]
    patches = patch_matrix(x, k)[0]  # (C·k·k, L)
    side = image.shape[-1] - k + 1
    currents = (weight.flatten(1) @ patches).view(-1, side, side)
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, 4, width_ratios=(1, 1.7, 1, 1))
    axes[0].imshow(normalize_images(image[None])[0].permute(1, 2, 0).numpy(), interpolation="nearest")
    for i, (row, col) in enumerate(positions):
        axes[0].add_patch(Rectangle((col - 0.5, row - 0.5), k, k, fill=False, lw=2, color=f"C{i + 1}"))
        axes[1].axvline(row * side + col, color=f"C{i + 1}", lw=2)
    axes[0].set_title("an input image (ZCA) and three patches", fontsize=9)
    limit = float(patches.abs().quantile(0.99))
    axes[1].imshow(patches.numpy(), aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    axes[1].set(xlabel=f"position $p$ (all {patches.shape[1]} of them)", ylabel=f"patch entry ({patches.shape[0]})")
    axes[1].set_title("patch matrix $X$ = unfold($x$): one column per patch", fontsize=9)
    for ax, o in zip(axes[2:], (0, 1)):
        lim = float(currents[o].abs().max()) or 1.0
        ax.imshow(currents[o].numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(f"$u_{{{o}}} = W_{{{o}}} X$, folded to {side}×{side}", fontsize=9)
    for ax in (axes[0], axes[2], axes[3]):
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("One weight vector per filter, applied to every patch: a conv layer is a shared fully "
                 "connected layer")
    return fig


# ----- 2. the update as a convolution --------------------------------------------------------------
def tiny_problem(seed: int = 0, batch: int = 2, in_channels: int = 3, size: int = 6, out_channels: int = 4,
                 kernel_size: int = 3, dtype=torch.float64):
    """A small input ``x`` (batch, in, size, size), per-position factors ``r`` (batch, out, H', W') and the
    weight shape, seeded; float64 so that the forms below agree to round-off."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, in_channels, size, size, generator=g, dtype=dtype)
    side = size - kernel_size + 1
    r = torch.randn(batch, out_channels, side, side, generator=g, dtype=dtype)
    return x, r, (out_channels, in_channels, kernel_size, kernel_size)


def hebbian_term_by_loops(x: torch.Tensor, r: torch.Tensor, weight_shape) -> torch.Tensor:
    """``Σ_{n,h,w} r[n,o,h,w] · x[n, :, h:h+k, w:w+k]`` written as the loops it is (stride 1, no padding).
    Slow: for checking only."""
    out_ch, in_ch, kh, kw = weight_shape
    delta = x.new_zeros(weight_shape)
    for n in range(x.shape[0]):
        for h in range(r.shape[2]):
            for w in range(r.shape[3]):
                patch = x[n, :, h:h + kh, w:w + kw]  # (in, kh, kw)
                delta += r[n, :, h, w].view(out_ch, 1, 1, 1) * patch
    return delta


def hebbian_term_unfold_solution(x: torch.Tensor, r: torch.Tensor, weight_shape) -> torch.Tensor:
    """Reference solution of the exercise: patches with ``F.unfold``, then one contraction over
    samples and positions: ``ΔW[o, k] = Σ_{n,p} r[n,o,p] · X[n,k,p]``."""
    patches = F.unfold(x, weight_shape[2:])  # (N, C·kh·kw, L)
    delta = torch.einsum("nop,nkp->ok", r.flatten(2), patches)
    return delta.reshape(weight_shape)


def unfold_exercise_cases():
    """Argument tuples ``(x, r, weight_shape)`` for the exercise: different sizes, kernels and seeds."""
    cases = []
    for seed, (batch, cin, size, cout, k) in enumerate(((2, 3, 6, 4, 3), (1, 1, 5, 2, 5), (3, 2, 7, 5, 2))):
        cases.append(tiny_problem(seed, batch, cin, size, cout, k))
    return cases


def compare_update_forms(seed: int = 0) -> dict:
    """``hebbian_term`` (one conv2d_weight call) against the explicit loops and the unfold form, and
    the update a ``HebbianConv2d`` (plain Hebb, no competition, no normalisation) accumulates, which
    must equal the conv form with r = u. Max absolute differences (float64)."""
    x, r, shape = tiny_problem(seed)
    by_conv = hebbian_term(x, r, shape)
    by_loops = hebbian_term_by_loops(x, r, shape)
    by_unfold = hebbian_term_unfold_solution(x, r, shape)
    layer = HebbianConv2d(shape[1], shape[0], shape[2], rule="hebb", competition="none", update_norm="none",
                          generator=torch.Generator().manual_seed(seed)).double()
    u = layer(x)
    return {"conv_vs_loops": float((by_conv - by_loops).abs().max()),
            "conv_vs_unfold": float((by_conv - by_unfold).abs().max()),
            "layer_vs_conv": float((layer.delta_w - hebbian_term(x, u.detach(), shape)).abs().max()),
            "scale": float(by_loops.abs().max()), "shape": tuple(shape)}


# ----- 3. hard WTA at every position ----------------------------------------------------------------
def wta_figure(layer: HebbianConv2d, x: torch.Tensor, index: int = 0) -> Figure:
    """Hard WTA across channels at every position of one image: the winning channel at each position,
    the masked output ``y = u ⊙ m`` of two channels, and how many positions each channel wins."""
    with torch.no_grad():
        u = F.conv2d(layer.pad(x[index:index + 1]), layer.effective_weight())[0]
    winners = u.argmax(0)
    mask = F.one_hot(winners, u.shape[0]).permute(2, 0, 1).to(u.dtype)
    counts = torch.bincount(winners.flatten(), minlength=u.shape[0])
    top = counts.argsort(descending=True)[:2].tolist()
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, 4, width_ratios=(1, 1, 1, 1.6))
    axes[0].imshow(winners.numpy(), cmap="tab20", interpolation="nearest")
    axes[0].set_title("winning channel at each position", fontsize=9)
    for ax, o in zip(axes[1:3], top):
        y = (u[o] * mask[o]).numpy()
        lim = float(abs(y).max()) or 1.0
        ax.imshow(y, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(f"$y_{{{o}}} = u_{{{o}}} m_{{{o}}}$ (channel {o})", fontsize=9)
    for ax in axes[:3]:
        ax.set_xticks([]), ax.set_yticks([])
    axes[3].bar(range(len(counts)), counts.numpy(), width=1.0)
    axes[3].set(xlabel="channel $o$", ylabel="positions won", title="wins of each channel in this image")
    fig.suptitle(f"{u.shape[0]} channels compete at each of the {u.shape[1]}×{u.shape[2]} positions; "
                 f"one winner per position")
    return fig


# ----- 4. update max-normalisation -------------------------------------------------------------------
def normalization_table(x: torch.Tensor, batch_sizes=(4, 16, 64), out_channels: int = 16, seed: int = 0):
    """The largest entry of the raw update grows with the batch (a sum over samples and positions);
    after ``ΔW / max|ΔW|`` it is 1 whatever the batch, so ``lr`` is the largest change of any weight in
    one step. Returns rows ``(batch size, max|ΔW| raw, max after global_max, max per filter after
    per_filter)``."""
    layer = HebbianConv2d(x.shape[1], out_channels, 5, rule="instar", competition="hard_wta", activation="cosine",
                          update_norm="none", generator=torch.Generator().manual_seed(seed))
    rows = []
    for n in batch_sizes:
        layer.delta_w.zero_()
        with torch.no_grad():
            layer(x[:n])
        raw = layer.delta_w.clone()
        glob = normalize_update(raw, "global_max")
        per = normalize_update(raw, "per_filter")
        per_filter_max = per.abs().flatten(1).amax(1)
        rows.append((n, float(raw.abs().max()), float(glob.abs().max()),
                     float(per_filter_max[per_filter_max > 0].min()) if bool((per_filter_max > 0).any()) else 0.0))
    layer.delta_w.zero_()
    return rows


def print_normalization_table(rows) -> None:
    print(f"{'batch':>5}  {'max|ΔW| raw':>12}  {'after global_max':>16}  {'smallest filter max after per_filter':>36}")
    for n, raw, glob, per in rows:
        print(f"{n:5d}  {raw:12.1f}  {glob:16.3f}  {per:36.3f}")


# ----- 5. the experiment: Miconi's layer 1 ---------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _splits(source: str):
    from ..training import load_splits

    return load_splits({"normalization": "zca", "zca_eps": 1e-3}, source=source)


def data_source() -> str:
    """``'subset'`` in quick mode, else the full CIFAR-10 when present (else the subset, with a notice)."""
    from ..training import resolve_source

    source, notice = resolve_source("auto", quick=is_quick())
    if notice:
        print(notice)
    return source


def load_data(source: str | None = None):
    """``(train, val, test)`` ZCA-whitened DeviceDatasets (ZCA fitted on the training images only);
    cached, so the chapter's sections share one copy."""
    return _splits(source or data_source())


class QuadrantFeatures(nn.Module):
    """Coates et al.'s quadrant pooling as Miconi reads out layer 1: the pooled block output
    (C, 14, 14) is standardised per sample (the next layer's input normalisation), cut into four
    7×7 quadrants, and each channel averaged within each quadrant: ``4·C`` features.

    Wraps a one-block :class:`HebbianNet` and offers ``features``/``num_features`` for
    :func:`hebblib.classifier.extract_features`.
    """

    def __init__(self, net: HebbianNet):
        super().__init__()
        self.net = net
        self.num_features = 4 * net.stages[0].conv.out_channels

    def features(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net.stages[0](x)
        dims = (1, 2, 3)
        y = (y - y.mean(dim=dims, keepdim=True)) / (y.std(dim=dims, keepdim=True) + 1e-8)
        h, w = y.shape[-2] // 2, y.shape[-1] // 2
        quadrants = (y[..., :h, :w], y[..., :h, w:], y[..., h:, :w], y[..., h:, w:])
        return torch.cat([q.mean(dim=(2, 3)) for q in quadrants], dim=1)


def miconi_layer1(seed: int = 0, lr: float = 1e-4) -> HebbianNet:
    """Miconi's layer 1 as a one-block network: per-sample standardisation → HebbianConv2d(3, 100, 5)
    (Instar, binary hard WTA behind adaptive thresholds, unit-norm weights renormalised after every
    step, summed update with ``lr``) → binary WTA output → AvgPool 2 (the library's ``miconi``
    architecture, first block, his 'default network' without the triangle)."""
    full = build_network("miconi", triangle=False, generator=torch.Generator().manual_seed(seed))
    block = full.stages[0]
    block.conv.lr = float(lr)
    return HebbianNet([block], head_init="default", architecture="miconi_layer1")


def probe(net: HebbianNet, data, epochs: int, lr: float = 1e-3, seed: int = 0) -> dict:
    """Linear probe (:func:`hebblib.classifier.linear_probe`: a Linear head, Adam, no augmentation, seeded) on
    the quadrant features of ``net``; returns the final and best-validation test accuracies and the history."""
    model = QuadrantFeatures(net)
    history = linear_probe(model, *data, epochs=epochs, lr=lr, head=nn.Linear(model.num_features, 10), seed=seed,
                           dtype=torch.float32, progress=False)
    return probe_summary(history)


FULL_RESULT = "ch04_miconi_layer1"  # docs/results/chapters/<name>.json, written by scripts/chapter_full.py


def run_experiment(hebbian_epochs: int | None = None, probe_epochs: int | None = None, warmup_batches=None,
                   seed: int = 0, source: str | None = None, progress: bool = False) -> dict:
    """Miconi's comparison: the same layer and probe, with random weights and after Hebbian training.

    Quick mode: one Hebbian epoch over the 1,800 training images of the shipped subset (5 burn-in
    batches), probe 10 epochs. Full mode: Miconi's 20 epochs over 45,000 images (200 burn-in
    batches), probe 20 epochs. Returns accuracies, the trained network and timing.
    """
    from ..training import train_hebbian

    hebbian_epochs = quick_or(20, 1) if hebbian_epochs is None else hebbian_epochs
    probe_epochs = quick_or(20, 10) if probe_epochs is None else probe_epochs
    warmup_batches = quick_or(200, 5) if warmup_batches is None else warmup_batches
    data = load_data(source)
    net = miconi_layer1(seed)
    # Quick mode on one thread: on a shared 2-core CPU two threads mostly wait for each other.
    with single_thread() if is_quick() else contextlib.nullcontext():
        random_result = probe(net, data, probe_epochs, seed=seed)
        stats = train_hebbian(net, data[0], epochs=hebbian_epochs, batch_size=100, augment=True,
                              warmup_batches=warmup_batches, generator=torch.Generator().manual_seed(seed + 7),
                              progress=progress, label="Miconi layer 1")
        trained_result = probe(net, data, probe_epochs, seed=seed)
    return {"random": random_result["final_test_acc"], "trained": trained_result["final_test_acc"],
            "random_run": random_result, "trained_run": trained_result, "net": net, "layer": net.stages[0].conv,
            "hebbian": stats, "n_train": len(data[0]), "n_test": len(data[2]), "epochs": hebbian_epochs}


def filters_figure(layer: HebbianConv2d, n: int = 64) -> Figure:
    """The learned filters as colour images, grey at zero (Miconi's display ``0.5 + 0.5·w/max|w|``)."""
    cols = math.ceil(math.sqrt(min(n, layer.out_channels)))
    fig = Figure(figsize=(0.9 * cols, 0.9 * cols + 0.5), layout="constrained")
    return plot_filters(layer.weight, n=n, ncols=cols, mode="symmetric", fig=fig,
                        title=f"{min(n, layer.out_channels)} of the {layer.out_channels} learned 5×5 filters "
                              f"(grey = 0)")


def competition_figure(layer: HebbianConv2d) -> Figure:
    """Win rates of the layer's units over its training (``plot_competition``)."""
    return plot_competition(layer, fig=Figure(figsize=(11, 3.8), layout="constrained"))


def ltp_ltd_figure(net: HebbianNet, x: torch.Tensor, n: int = 16) -> Figure:
    """The update one more batch would make, split into potentiation and depression per filter
    (computed, shown, then discarded: the weights do not change)."""
    layer = net.stages[0].conv
    layer.delta_w.zero_()
    net.train()
    with torch.no_grad():
        net.features(x)
    fig = plot_ltp_ltd(layer, n=n, fig=Figure(figsize=(8, 7), layout="constrained"),
                       title="LTP / LTD of one more batch of 100 images (after training)")
    layer.delta_w.zero_()
    net.eval()
    return fig


# ----- 6. the widget ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _widget_images(n: int = 240) -> torch.Tensor:
    return example_batch(n)


def _message_figure(text: str) -> Figure:
    fig = Figure(figsize=(11, 3), layout="constrained")
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=11, wrap=True)
    return fig


def train_small_layer(activation: str = "cosine", lr: float = 0.2, batches: int = 40, units: int = 25,
                      batch_size: int = 20, seed: int = 0) -> HebbianConv2d:
    """A HebbianConv2d(3, ``units``, 5) with Instar + hard WTA (activity-masked) and the thesis's
    global max-normalised update, trained on ``batches`` batches of ZCA-whitened subset images."""
    images = _widget_images()
    layer = HebbianConv2d(3, units, 5, rule="instar", competition="hard_wta", activation=activation, lr=lr,
                          update_norm="global_max", init="unit_norm", explode_threshold=1e4,
                          generator=torch.Generator().manual_seed(seed))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed + 1))
    with single_thread(), torch.no_grad():  # small tensors: one thread is faster on a busy CPU
        for b in range(max(int(batches), 0)):
            index = order[(b * batch_size + torch.arange(batch_size)) % len(images)]
            layer(images[index])
            layer.apply_update()
    return layer


def activation_demo(activation: str = "cosine", lr: float = 0.2, batches: int = 40, seed: int = 0) -> Figure:
    """The widget: train a small conv layer with the chosen activation and learning rate; show its
    filters (grey = 0) and the win rates of its units. Survives every slider value: a run that
    diverges is reported instead of drawn."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid choices: {', '.join(map(repr, ACTIVATIONS))}")
    try:
        layer = train_small_layer(activation, float(lr), int(batches), seed=int(seed))
    except HebbianDivergenceError as err:
        return _message_figure(f"activation={activation!r}, lr={lr:g}: the weights diverged.\n{err}")
    weight = layer.weight.detach()
    if not bool(torch.isfinite(weight).all()):
        return _message_figure(f"activation={activation!r}, lr={lr:g}: the weights became non-finite.")
    fig = Figure(figsize=(12, 5), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=(1, 1.35))
    plot_filters(weight, n=layer.out_channels, ncols=5, mode="symmetric", fig=left,
                 title=f"{layer.out_channels} filters after {int(batches)} batches")
    summary = dg.competition_summary(layer.win_counts) if float(layer.win_counts.sum()) > 0 else None
    ax = right.subplots()
    rates = dg.win_rates(layer.win_counts) if summary else torch.zeros(layer.out_channels)
    order = rates.argsort(descending=True)
    ax.bar(range(len(rates)), rates[order].numpy(), width=1.0, color="C0")
    ax.axhline(1 / len(rates), color="tab:red", ls="--", lw=1, label="uniform 1/C")
    ax.set(xlabel="unit (sorted by win rate)", ylabel="win rate", ylim=(0, max(0.05, float(rates.max()) * 1.1)))
    ax.legend(fontsize=8)
    if summary:
        ax.set_title(f"dead units {100 * summary['dead_fraction']:.0f}%, usage entropy {summary['entropy']:.2f}, "
                     f"largest |w| {float(weight.abs().max()):.2g}", fontsize=10)
    fig.suptitle(f"activation = {activation!r}, lr = {float(lr):.3g}: Instar + hard WTA on ZCA images")
    return fig


# ----- summary ------------------------------------------------------------------------------------------
def report_lines(result: dict, quick: bool | None = None):
    """The chapter's measured numbers beside Miconi's, via :func:`hebblib.notebook.report`, and the
    committed full-data figures."""
    from ..notebook import print_full_result, report

    quick = is_quick() if quick is None else quick
    mode = (f"quick mode: {result['n_train']:,} training images of the shipped subset, "
            f"{result['epochs']} Hebbian epoch(s), Adam probe — expect lower numbers than the paper"
            if quick else f"full mode: {result['n_train']:,} training images, {result['epochs']} Hebbian epochs, "
                          f"Adam probe (Miconi: Ridge)")
    lines = [report("layer 1, random weights (quadrant probe)", result["random"], PUBLISHED["random"],
                    PUBLISHED_SOURCE, mode),
             report("layer 1, Hebbian-trained (quadrant probe)", result["trained"], PUBLISHED["trained"],
                    PUBLISHED_SOURCE, mode)]
    gain = result["trained"] - result["random"]
    print(f"gain from Hebbian training: measured {gain:+.1f} points | published "
          f"{PUBLISHED['trained'] - PUBLISHED['random']:+.1f} points")
    print_full_result(FULL_RESULT, "layer 1, random weights (quadrant probe)", PUBLISHED["random"], PUBLISHED_SOURCE,
                      key="random")
    print_full_result(FULL_RESULT, "layer 1, Hebbian-trained (quadrant probe)", PUBLISHED["trained"],
                      PUBLISHED_SOURCE, key="trained")
    return lines
