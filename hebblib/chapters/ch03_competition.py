"""Chapter 3 — Competition: hard winner-take-all, k-WTA, anti-Hebbian learning, homeostatic thresholds.

Several Instar units see the same input; a competition decides which of them may learn (Nimmo
eqs 25–29, 31; Miconi §2.3):

    i* = argmax_o u_o,  m_o = 1[o = i*]  (top-k: o among the k largest)        eqs 25, 27
    y_o = m_o (binary, eq 28)   or   y_o = u_o m_o (activity-masked, eq 29)
    Δw_o = η y_o (x − w_o)      Instar: each winner moves towards the mean of what it wins

With binary outputs this is online k-means. Units that never win never move (dead units);
Miconi's adaptive thresholds ``θ_o ← θ_o + rate (rate_o − k/N)``, subtracted before the competition,
give every unit its share. The same layer on ZCA-whitened CIFAR-10 patches learns edge-like and
colour-opponent filters. Each function takes plain arguments and returns numbers or a ``Figure``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from .. import diagnostics as dg
from ..competitions import Competition
from ..data import gaussian_clusters, image_patches
from ..layers import HebbianLinear
from ..plots.mosaic import filter_mosaic
from ..runtime import single_thread
from ..notebook import print_checks

ACTIVATIONS = ("cosine", "dot")
# chapter 1's four unit colours, then six more
COLORS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "0.3")
RING_CLUSTERS, RING_RADIUS, RING_STD = 5, 3.0, 0.5


# ----- 2-D clusters -----------------------------------------------------------------------------------
def ring_clusters(n: int = 1000, clusters: int = RING_CLUSTERS, radius: float = RING_RADIUS,
                  std: float = RING_STD, seed: int = 0):
    """``n`` points in ``clusters`` Gaussian clusters whose centres sit on a circle around the origin.
    Returns ``(points, cluster ids, centres, cluster means)``; the means are the k-means target."""
    angles = torch.arange(clusters) * 2 * math.pi / clusters + math.pi / 2
    centres = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    points, ids = gaussian_clusters(n, centres, std=std, seed=seed)
    means = torch.stack([points[ids == c].mean(0) for c in range(clusters)])
    return points, ids, centres, means


def competition_spec(k: int = 1, threshold_rate: float = 0.0, binary: bool = True):
    """Hard (k-)WTA, or Miconi's adaptive thresholds when ``threshold_rate > 0``."""
    if threshold_rate > 0:
        return {"name": "adaptive_threshold", "k": int(k), "rate": float(threshold_rate), "binary": binary}
    return {"name": "hard_wta", "k": int(k), "binary": binary}


@dataclass
class PrototypeRun:
    """Weights after every batch (``weights[t]``: units x D), the thresholds (empty without
    homeostasis), and the trained layer."""

    weights: torch.Tensor
    thresholds: torch.Tensor
    layer: HebbianLinear

    @property
    def final(self) -> torch.Tensor:
        return self.weights[-1]


def train_prototypes(data: torch.Tensor, units: int = 5, k: int = 1, threshold_rate: float = 0.0,
                     activation: str = "cosine", lr: float = 0.05, epochs: int = 10, batch_size: int = 10,
                     seed: int = 0, competition=None) -> PrototypeRun:
    """Instar units under a hard (k-)WTA with binary outputs, on shuffled mini-batches of ``data``.

    Starting weights are small and random (seeded). The layer sums the update over the batch; the
    step is ``lr / batch_size``. ``competition`` replaces the default one (e.g. your own mask).
    """
    units = max(1, int(units))
    k = max(1, min(int(k), units))
    layer = HebbianLinear(data.shape[1], units, rule="instar", activation=activation, update_norm="none",
                          competition=competition if competition is not None else competition_spec(k, threshold_rate),
                          init="unit_norm")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(0.5 * torch.randn(units, data.shape[1], generator=gen))
    history, thresholds = [layer.weight.detach().clone()], []
    with single_thread():
        for _ in range(epochs):
            order = torch.randperm(data.shape[0], generator=gen)
            for start in range(0, data.shape[0], batch_size):
                layer(data[order[start:start + batch_size]])
                layer.apply_update(lr / batch_size)
                history.append(layer.weight.detach().clone())
                theta = getattr(layer.competition, "threshold", None)
                if theta is not None and theta.numel():
                    thresholds.append(theta.detach().clone())
    thresholds = torch.stack(thresholds) if thresholds else torch.empty(0, units)
    return PrototypeRun(torch.stack(history), thresholds, layer.eval())


def unit_usage(layer: HebbianLinear, data: torch.Tensor) -> torch.Tensor:
    """How many inputs each unit wins after training: top-k of ``u − θ`` (θ = 0 without homeostasis)."""
    with torch.no_grad():
        u = layer.eval()(data)
    theta = getattr(layer.competition, "threshold", None)
    if theta is not None and theta.numel():
        u = u - theta
    k = getattr(layer.competition, "k", 1)
    winners = u.topk(k, dim=1).indices.flatten()
    return torch.bincount(winners, minlength=u.shape[1]).double()


def kmeans_error(prototypes: torch.Tensor, means: torch.Tensor) -> float:
    """The largest distance from a cluster mean to its nearest prototype (0: every mean is found)."""
    return float(torch.cdist(means, prototypes).min(dim=1).values.max())


def plot_prototypes(ax, data, means, run: PrototypeRun, title: str = ""):
    """Data, cluster means (×), each prototype's path (○ start, ● end)."""
    ax.scatter(data[:, 0], data[:, 1], s=3, color="0.78", zorder=1)
    ax.scatter(means[:, 0], means[:, 1], marker="x", s=80, color="k", zorder=5, label="cluster means")
    w = run.weights
    for unit in range(w.shape[1]):
        color = COLORS[unit % len(COLORS)]
        ax.plot(w[:, unit, 0], w[:, unit, 1], color=color, lw=1, alpha=0.8, zorder=3)
        ax.plot(*w[0, unit].tolist(), "o", mfc="white", mec=color, ms=5, zorder=4)
        ax.plot(*w[-1, unit].tolist(), "o", color=color, ms=7, mec="k", zorder=4)
    limit = float(data.abs().max()) + 0.5
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$, $w_1$")
    ax.set_ylabel("$x_2$, $w_2$")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)


def plot_wins(ax, counts: torch.Tensor, title: str = ""):
    """Bar chart of wins per unit in the prototypes' colours; dead units are marked."""
    counts = counts.double()
    units = counts.numel()
    colors = [COLORS[o % len(COLORS)] for o in range(units)]
    ax.bar(range(units), counts.tolist(), color=colors, edgecolor="k", lw=0.5)
    for o in range(units):
        if counts[o] == 0:
            ax.text(o, 0.02, "dead", rotation=90, ha="center", va="bottom", fontsize=8, color="0.3",
                    transform=ax.get_xaxis_transform())  # x in data, y just above the axis
    if counts.sum() > 0:
        ax.axhline(float(counts.sum()) / units, color="tab:red", ls="--", lw=1, label="equal share")
        ax.set_ylim(0, 1.2 * float(counts.max()))  # room for the legend above the bars
        ax.legend(fontsize=8, loc="upper right")
    summary = dg.competition_summary(counts) if counts.sum() > 0 else {"entropy": 0.0, "dead_fraction": 1.0}
    ax.set_title(f"{title}usage entropy {summary['entropy']:.2f}, dead {100 * summary['dead_fraction']:.0f}%",
                 fontsize=10)
    ax.set_xticks(range(units))
    ax.set_xlabel("unit")
    ax.set_ylabel("inputs won")


def prototypes_demo(k: int = 1, threshold_rate: float = 0.0, activation: str = "cosine", units: int = 5,
                    epochs: int = 10, seed: int = 0) -> Figure:
    """The widget's figure: prototypes moving over the five clusters, and the wins per unit."""
    data, _, _, means = ring_clusters(seed=seed)
    units = max(1, int(units))
    k = max(1, min(int(k), units))
    run = train_prototypes(data, units, k, float(threshold_rate), activation, epochs=int(epochs), seed=seed)
    counts = unit_usage(run.layer, data)
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ax_proto, ax_wins = fig.subplots(1, 2, width_ratios=(1.1, 1))
    rule = "hard WTA" if threshold_rate <= 0 else f"adaptive thresholds (rate {float(threshold_rate):g})"
    plot_prototypes(ax_proto, data, means, run, f"{units} units, k = {k}, {activation}, {rule}")
    plot_wins(ax_wins, counts)
    fig.suptitle(f"largest distance from a cluster mean to its nearest prototype: {kmeans_error(run.final, means):.2f}")
    return fig


def kmeans_section(seed: int = 0):
    """Five Instar units, hard WTA, cosine competition, on five clusters: (figure, numbers)."""
    data, _, _, means = ring_clusters(seed=seed)
    run = train_prototypes(data, units=5, activation="cosine", seed=seed)
    counts = unit_usage(run.layer, data)
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ax_proto, ax_wins = fig.subplots(1, 2, width_ratios=(1.1, 1))
    plot_prototypes(ax_proto, data, means, run, "Instar + hard WTA (binary): prototypes → cluster means")
    plot_wins(ax_wins, counts)
    return fig, {"kmeans_error": kmeans_error(run.final, means), "wins": counts.tolist()}


def dead_units_section(threshold_rate: float = 0.2, seed: int = 0):
    """Dot-product competition without and with adaptive thresholds: (figure, numbers)."""
    data, _, _, means = ring_clusters(seed=seed)
    plain = train_prototypes(data, units=5, activation="dot", seed=seed)
    homeostatic = train_prototypes(data, units=5, activation="dot", threshold_rate=threshold_rate, seed=seed)
    counts = {"plain": unit_usage(plain.layer, data), "homeostatic": unit_usage(homeostatic.layer, data)}
    fig = Figure(figsize=(14, 7.6), layout="constrained")
    axes = fig.subplots(2, 3, width_ratios=(1.1, 1, 1))
    plot_prototypes(axes[0, 0], data, means, plain, "dot product, hard WTA")
    plot_wins(axes[0, 1], counts["plain"])
    axes[0, 2].axis("off")
    axes[0, 2].text(0.05, 0.5, "A unit that starts pointing away from the data\nnever wins, so it never "
                    "moves: a dead unit.\nThe winners' norms grow to the cluster radius,\nwhich makes "
                    "them win even more.", fontsize=10, va="center")
    plot_prototypes(axes[1, 0], data, means, homeostatic, f"dot product, adaptive thresholds (rate {threshold_rate:g})")
    plot_wins(axes[1, 1], counts["homeostatic"])
    theta = homeostatic.thresholds
    for unit in range(theta.shape[1]):
        axes[1, 2].plot(theta[:, unit], color=COLORS[unit % len(COLORS)], lw=1)
    axes[1, 2].set_xlabel("batch")
    axes[1, 2].set_ylabel("threshold θ")
    axes[1, 2].set_title("θ falls for units that win too little", fontsize=10)
    numbers = {name: {"dead_fraction": dg.dead_fraction(c), "entropy": dg.usage_entropy(c)} for name, c in counts.items()}
    numbers["plain"]["kmeans_error"] = kmeans_error(plain.final, means)
    numbers["homeostatic"]["kmeans_error"] = kmeans_error(homeostatic.final, means)
    return fig, numbers


# ----- the exercise -----------------------------------------------------------------------------------
def hard_wta_solution(u: torch.Tensor, k: int = 1, binary: bool = True) -> torch.Tensor:
    """Reference solution: the top-k mask along dim 1 (eq 27); ``m`` (eq 28) or ``u · m`` (eq 29)."""
    mask = torch.zeros_like(u).scatter_(1, u.topk(k, dim=1).indices, 1.0)
    return mask if binary else u * mask


def mask_exercise_cases():
    """Argument tuples ``(u, k, binary)``: linear (N, units) and convolutional (N, units, H, W) activations."""
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(6, 5, generator=g), 1, True), (torch.randn(6, 5, generator=g), 1, False),
            (torch.randn(4, 8, generator=g), 3, True), (torch.randn(2, 6, 3, 3, generator=g), 2, False)]


class FunctionCompetition(Competition):
    """Wrap a mask function ``f(u, k, binary)`` as a competition a layer can use."""

    name = "function"

    def __init__(self, function, k: int = 1, binary: bool = True):
        super().__init__()
        self.function, self.k, self.binary = function, int(k), bool(binary)

    def min_competitors(self):
        return self.k

    def forward(self, u, ctx=None):
        return self.function(u, self.k, self.binary)


# ----- natural image patches --------------------------------------------------------------------------
def patch_data(n: int = 20_000, size: int = 5, whiten: bool = True, seed: int = 0) -> torch.Tensor:
    """``n`` flattened size×size CIFAR-10 patches (shipped subset): ZCA-whitened, or only centred."""
    patches = image_patches(n, size=size, whiten=whiten, seed=seed)
    return patches if whiten else patches - patches.mean(0)


def train_patches(data: torch.Tensor, units: int = 64, competition="hard_wta", rule: str = "instar",
                  lr: float = 5.0, epochs: int = 3, batch_size: int = 100, seed: int = 0) -> HebbianLinear:
    """A ``HebbianLinear`` with cosine activation (Nimmo's hard-WTA layers) trained on patches.
    Unit-norm random start; the step is ``lr / batch_size`` times the summed update."""
    layer = HebbianLinear(data.shape[1], units, rule=rule, competition=competition, activation="cosine",
                          update_norm="none", init="unit_norm", generator=torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed + 1)
    with single_thread():
        for _ in range(epochs):
            order = torch.randperm(data.shape[0], generator=gen)
            for start in range(0, data.shape[0], batch_size):
                layer(data[order[start:start + batch_size]])
                layer.apply_update(lr / batch_size)
    return layer.eval()


def response_correlation(layer: HebbianLinear, data: torch.Tensor, n: int = 5000) -> float:
    """Mean |correlation| between the responses of two different units (0: decorrelated)."""
    with torch.no_grad():
        u = layer(data[:n])
    c = torch.corrcoef(u.T).nan_to_num(0.0)
    units = c.shape[0]
    return float((c - torch.eye(units)).abs().sum() / (units * (units - 1)))


def patch_stats(layer: HebbianLinear, data: torch.Tensor) -> dict:
    """Usage entropy and dead fraction (hebblib.diagnostics), response correlation and mean ‖w‖."""
    counts = unit_usage(layer, data)
    return {"entropy": dg.usage_entropy(counts), "dead_fraction": dg.dead_fraction(counts),
            "correlation": response_correlation(layer, data), "mean_norm": float(layer.weight.detach().norm(dim=1).mean()),
            "counts": counts}


def filter_grid_figure(layers: dict, size: int = 5, titles: dict | None = None) -> Figure:
    """One mosaic of filters per entry ``name: (layer, data)`` of ``layers``, side by side, each unit
    sorted by how often it wins on ``data`` (most first, reading order)."""
    fig = Figure(figsize=(4.6 * len(layers), 5.0), layout="constrained")
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    for ax, (name, (layer, data)) in zip(axes, layers.items()):
        w = layer.weight.detach()
        order = unit_usage(layer, data).argsort(descending=True, stable=True)
        ax.imshow(filter_mosaic(w[order].view(w.shape[0], 3, size, size)).numpy(), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title((titles or {}).get(name, name), fontsize=11)
    return fig


def patches_section(n_patches: int = 20_000, epochs: int = 3, size: int = 5, threshold_rate: float = 0.2,
                    seed: int = 0):
    """64 units, hard WTA, cosine, on whitened and on raw (centred) patches, and on raw patches with
    adaptive thresholds. Returns (figure of filter grids, statistics per run, the runs as
    ``name: (layer, data)``)."""
    white = patch_data(n_patches, size, whiten=True, seed=seed)
    raw = patch_data(n_patches, size, whiten=False, seed=seed)
    runs = {
        "whitened": (train_patches(white, epochs=epochs, seed=seed), white),
        "raw": (train_patches(raw, epochs=epochs, seed=seed), raw),
        "raw + thresholds": (train_patches(raw, competition=competition_spec(1, threshold_rate, binary=False),
                                           epochs=epochs, seed=seed), raw),
    }
    stats = {name: patch_stats(layer, data) for name, (layer, data) in runs.items()}
    titles = {name: f"{name}: entropy {s['entropy']:.2f}, dead {100 * s['dead_fraction']:.0f}%"
              for name, s in stats.items()}
    return filter_grid_figure(runs, size, titles), stats, runs


def anti_hebbian_section(data: torch.Tensor, hard_wta_layer: HebbianLinear | None = None, epochs: int = 3,
                         seed: int = 0) -> dict:
    """Three ways to treat the losers on whitened patches: leave them (hard WTA + Instar; pass the layer
    trained by :func:`patches_section` to reuse it), make every loser anti-Hebbian (Nimmo's 'antihard'
    mode: y = ±u, Δw = y (x − u w), eq 31), or only the runner-up, with a weight of −0.4 (the
    Krotov–Hopfield ranking). Statistics per run."""
    runs = {
        "hard WTA": hard_wta_layer if hard_wta_layer is not None else train_patches(data, epochs=epochs, seed=seed),
        "all losers anti-Hebbian": train_patches(data, competition="anti_wta", rule="softhebb", epochs=epochs, seed=seed),
        "runner-up anti-Hebbian": train_patches(data, competition={"name": "krotov", "k": 2, "delta": 0.4},
                                                epochs=epochs, seed=seed),
    }
    return {name: patch_stats(layer, data) for name, layer in runs.items()}


def print_patch_table(stats: dict) -> None:
    """One row per run: usage entropy, dead fraction, mean |corr| between units, mean ‖w‖ (rounded)."""
    print(f"{'run':26s} {'entropy':>8s} {'dead':>6s} {'|corr|':>7s} {'‖w‖':>6s}")
    for name, s in stats.items():
        print(f"{name:26s} {s['entropy']:8.2f} {100 * s['dead_fraction']:5.0f}% {s['correlation']:7.2f} {s['mean_norm']:6.2f}")


# ----- summary ----------------------------------------------------------------------------------------
def summary_rows(kmeans: dict, dead: dict, patches: dict):
    """The chapter's measured numbers beside their targets (rounded for a stable printout)."""
    plain, homeo = dead["plain"], dead["homeostatic"]
    white, raw, raw_thr = patches["whitened"], patches["raw"], patches["raw + thresholds"]
    return [
        ("k-means: largest |cluster mean − nearest prototype|", f"{kmeans['kmeans_error']:.2f}", "< 0.05",
         kmeans["kmeans_error"] < 0.05),
        ("dot product, hard WTA: dead units", f"{100 * plain['dead_fraction']:.0f}%", "> 0 (some never win)",
         plain["dead_fraction"] > 0),
        ("dot product + adaptive thresholds: dead units", f"{100 * homeo['dead_fraction']:.0f}%", "0%",
         homeo["dead_fraction"] == 0),
        ("dot product + adaptive thresholds: k-means error", f"{homeo['kmeans_error']:.2f}", "< 0.05",
         homeo["kmeans_error"] < 0.05),
        ("whitened patches: dead units / usage entropy", f"{100 * white['dead_fraction']:.0f}% / {white['entropy']:.2f}",
         "0% / > 0.9", white["dead_fraction"] == 0 and white["entropy"] > 0.9),
        ("raw patches: dead units / usage entropy", f"{100 * raw['dead_fraction']:.0f}% / {raw['entropy']:.2f}",
         "more dead, lower entropy than whitened", raw["dead_fraction"] > white["dead_fraction"]),
        ("raw patches + thresholds: dead units / usage entropy",
         f"{100 * raw_thr['dead_fraction']:.0f}% / {raw_thr['entropy']:.2f}", "0% / > 0.9",
         raw_thr["dead_fraction"] == 0 and raw_thr["entropy"] > 0.9),
    ]


__all__ = [
    "ACTIVATIONS", "FunctionCompetition", "PrototypeRun", "anti_hebbian_section", "competition_spec",
    "dead_units_section", "filter_grid_figure", "filter_mosaic", "hard_wta_solution", "kmeans_error", "kmeans_section",
    "mask_exercise_cases", "patch_data", "patch_stats", "patches_section", "print_checks", "print_patch_table",
    "prototypes_demo", "response_correlation", "ring_clusters", "summary_rows", "train_patches",
    "train_prototypes", "unit_usage",
]
