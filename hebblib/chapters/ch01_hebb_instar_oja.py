"""Chapter 1 — Plain Hebb, Instar, Oja and Sanger on toy data.

One linear unit (or a few) learns from 2-D/3-D Gaussian clouds with :class:`hebblib.HebbianLinear`
and ``competition='none'`` (so the post-synaptic signal is the unit's own activation ``y = w·x``):

    plain Hebb   Δw = η y x                    (Nimmo eq 18)     ‖w‖ grows like (1 + η λ₁)^t
    Instar       Δw = η y (x − w)              (Nimmo eq 19)     w → E[y x] / E[y]
    Oja          Δw = η y (x − y w)            (Oja 1982)        w → ±PC1, ‖w‖ → 1
    Sanger       Δw_o = η y_o (x − Σ_{j≤o} y_j w_j)   (Nimmo eq 24)   w_o → ±PC_o

Each function here takes plain arguments and returns numbers or a matplotlib ``Figure``, so the
notebook's widgets and the tests call the same code. The rules act on the raw input (no centring), so
"PC1" means the top eigenvector of the second-moment matrix E[x xᵀ], which is the covariance for the
centred clouds used here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from ..data import correlated_gaussian_2d, gaussian_cloud
from ..errors import HebbianDivergenceError
from ..layers import HebbianLinear
from ..notebook import print_checks  # noqa: F401  (the notebook calls ch1.print_checks)
from ..runtime import single_thread

RULES = ("hebb", "instar", "oja", "sanger")
COLORS = ("tab:red", "tab:blue", "tab:green", "tab:purple")
EXPLODE_AT = 1e6  # the layer's guard: max |w| beyond this stops training with HebbianDivergenceError

# The 3-D cloud of the Sanger section: distinct eigenvalues (about 3.7, 1.4, 0.9).
SANGER_COVARIANCE = ((3.0, 1.0, 0.5), (1.0, 2.0, 0.3), (0.5, 0.3, 1.0))
INSTAR_OFFSET = 2.0  # Instar needs data away from the origin (see instar_section)


# ----- data and the quantities the rules should find --------------------------------------------------
def demo_data(correlation: float = 0.8, offset: float = 0.0, n: int = 1000, seed: int = 0) -> torch.Tensor:
    """``n`` 2-D points of unit variance with the given correlation, shifted by ``(offset, offset/2)``."""
    correlation = max(-0.99, min(0.99, float(correlation)))
    shift = torch.tensor([offset, offset / 2])
    return correlated_gaussian_2d(n, correlation, seed=seed) + shift


def sanger_data(n: int = 4000, seed: int = 0) -> torch.Tensor:
    """A zero-mean 3-D Gaussian cloud with three well-separated principal components."""
    return gaussian_cloud(n, [0.0, 0.0, 0.0], SANGER_COVARIANCE, seed=seed)


def principal_axes(data: torch.Tensor):
    """Eigenvalues (largest first) and eigenvectors (columns) of E[x xᵀ], from ``torch.linalg.eigh``."""
    second_moment = data.T.double() @ data.double() / data.shape[0]
    values, vectors = torch.linalg.eigh(second_moment)
    return values.flip(0).float(), vectors.flip(1).float()


def instar_fixed_point(data: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Instar's fixed point for the current ``w``: the activity-weighted mean ``Σ y x / Σ y``, y = w·x."""
    y = data @ w
    return (y[:, None] * data).sum(0) / y.sum()


def abs_cosine(w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """|cos| between rows of ``w`` (or one vector) and the vector ``v``; the sign of a PC is arbitrary."""
    w = torch.atleast_2d(w)
    return ((w @ v).abs() / (w.norm(dim=1) * v.norm() + 1e-12)).squeeze()


# ----- training ---------------------------------------------------------------------------------------
@dataclass
class Trajectory:
    """The weights after every step of one run (``weights[t]``: units x D, ``t = 0..steps``) and,
    when the layer's guard stopped the run, the step at which the weights blew up."""

    rule: str
    weights: torch.Tensor
    exploded_at: int | None = None

    @property
    def norms(self) -> torch.Tensor:
        return self.weights.norm(dim=-1)

    @property
    def final(self) -> torch.Tensor:
        return self.weights[-1]

    def tail_mean(self, fraction: float = 0.25) -> torch.Tensor:
        """``w`` averaged over the last ``fraction`` of the steps: a noisy online run jitters around
        its fixed point, and the average sits much closer to it than any single step."""
        count = max(1, int(round(fraction * (self.weights.shape[0] - 1))))
        return self.weights[-count:].mean(0)


def make_layer(rule: str, dim: int, units: int = 1, w0: torch.Tensor | None = None,
               competition="none") -> HebbianLinear:
    """A ``HebbianLinear`` learning with ``rule`` and no competition, its raw update (no normalisation),
    and its guard at |w| = 1e6; ``w0`` (units x dim) sets the starting weights."""
    layer = HebbianLinear(dim, units, rule=rule, competition=competition, update_norm="none",
                          init="unit_norm", explode_threshold=EXPLODE_AT)
    if w0 is not None:
        with torch.no_grad():
            layer.weight.copy_(w0)
    return layer


def initial_weights(units: int, dim: int, norm: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Random starting weights of the given norm (seeded)."""
    w = torch.randn(units, dim, generator=torch.Generator().manual_seed(seed))
    return norm * w / w.norm(dim=1, keepdim=True)


def train_rule(data: torch.Tensor, rule: str = "oja", lr: float = 0.01, steps: int = 1000, units: int = 1,
               batch_size: int = 1, w0: torch.Tensor | None = None, seed: int = 0,
               competition="none") -> Trajectory:
    """Train a ``HebbianLinear`` on random mini-batches of ``data``; record ``w`` after every step.

    The layer sums its update over the batch, so the step is ``lr / batch_size`` and ``lr`` means the
    same for every batch size. A :class:`HebbianDivergenceError` from the layer's guard ends the run
    early; ``Trajectory.exploded_at`` says when.
    """
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; valid choices: {', '.join(map(repr, RULES))}")
    steps, dim = max(int(steps), 0), data.shape[1]
    w0 = initial_weights(units, dim, seed=seed) if w0 is None else w0
    layer = make_layer(rule, dim, units, w0, competition)
    order = torch.randint(data.shape[0], (steps, batch_size), generator=torch.Generator().manual_seed(seed + 1))
    history, exploded_at = [layer.weight.detach().clone()], None
    with single_thread():
        for step in range(steps):
            layer(data[order[step]])
            try:
                layer.apply_update(lr / batch_size)
            except HebbianDivergenceError:
                exploded_at = step + 1
                break
            history.append(layer.weight.detach().clone())
    return Trajectory(rule, torch.stack(history), exploded_at)


def growth_rate(trajectory: Trajectory, skip: int = 50) -> float:
    """The fitted slope of log ‖w‖ per step (plain Hebb: about log(1 + η λ₁))."""
    log_norm = trajectory.norms[:, 0].log()[skip:]
    if log_norm.numel() < 2:
        return float("nan")
    t = torch.arange(log_norm.numel(), dtype=log_norm.dtype)
    t = t - t.mean()
    return float((t * (log_norm - log_norm.mean())).sum() / (t * t).sum())


# ----- the exercise -----------------------------------------------------------------------------------
def oja_step_solution(w: torch.Tensor, x: torch.Tensor, lr: float) -> torch.Tensor:
    """Reference solution: one step of Oja's rule for one unit and one input, ``w + η y (x − y w)``."""
    y = w @ x
    return w + lr * y * (x - y * w)


def oja_exercise_cases():
    """Argument tuples ``(w, x, lr)`` on which the student's Oja step is checked."""
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(d, generator=g), torch.randn(d, generator=g), lr)
            for d, lr in ((2, 0.1), (3, 0.01), (5, 0.5), (2, 0.0))]


def run_oja_by_hand(step_fn, data: torch.Tensor, lr: float, steps: int, w0: torch.Tensor, seed: int = 0):
    """Apply ``step_fn(w, x, lr)`` on the same sample order as :func:`train_rule` (batch size 1)."""
    order = torch.randint(data.shape[0], (steps, 1), generator=torch.Generator().manual_seed(seed + 1))
    w = w0.flatten().clone()
    for step in range(steps):
        w = step_fn(w, data[order[step, 0]], lr)
    return w


# ----- figures ----------------------------------------------------------------------------------------
def _view_limits(data: torch.Tensor, margin: float = 0.6):
    low, high = data.min(0).values, data.max(0).values
    span = float((high - low).max())
    centre = (low + high) / 2
    half = span / 2 + margin
    return (float(centre[0]) - half, float(centre[0]) + half), (float(centre[1]) - half, float(centre[1]) + half)


def plot_trajectory(ax, data: torch.Tensor, trajectory: Trajectory, axes_vectors=None, target=None):
    """Data scatter, the path of each unit's weight vector (start ○, end ●), the principal axes as
    dashed lines and an optional target point (★). The view stays on the data: an exploding weight
    leaves it, and an arrow and a note say so."""
    xlim, ylim = _view_limits(data)
    ax.scatter(data[:, 0], data[:, 1], s=4, color="0.75", zorder=1)
    if axes_vectors is not None:
        for i, v in enumerate(axes_vectors.T[:2]):
            reach = 3 * max(abs(xlim[0]), abs(xlim[1]), abs(ylim[0]), abs(ylim[1]))
            ax.plot([-reach * v[0], reach * v[0]], [-reach * v[1], reach * v[1]], ls="--", lw=1,
                    color="0.35", zorder=2, label="PC1, PC2 (eigh)" if i == 0 else None)
    if target is not None:
        ax.plot(*target.tolist(), marker="*", ms=16, color="gold", mec="k", zorder=5, label="fixed point")
    w = trajectory.weights
    for unit in range(w.shape[1]):
        path = w[:, unit]
        color = COLORS[unit % len(COLORS)]
        ax.plot(path[:, 0], path[:, 1], color=color, lw=1.2, zorder=3, label=f"w{unit + 1}" if w.shape[1] > 1 else "w")
        ax.plot(*path[0].tolist(), "o", mfc="white", mec=color, zorder=4)
        end = path[-1]
        inside = xlim[0] <= end[0] <= xlim[1] and ylim[0] <= end[1] <= ylim[1]
        if inside:
            ax.plot(*end.tolist(), "o", color=color, zorder=4)
        else:  # point from the view's centre towards where w went
            direction = end / (end.norm() + 1e-12)
            ax.annotate("", xy=(direction * 0.45 * (xlim[1] - xlim[0])).tolist(), xytext=(0, 0),
                        arrowprops=dict(arrowstyle="->", color=color, lw=2), zorder=4)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$, $w_1$")
    ax.set_ylabel("$x_2$, $w_2$")
    ax.legend(loc="lower right", fontsize=8)


def plot_norms(ax, trajectory: Trajectory, reference: float | None = 1.0):
    """‖w‖ against the step (on a log scale when it spans more than a factor 30), with the
    explosion (if any) marked."""
    norms = trajectory.norms.clamp(min=1e-6)
    for unit in range(norms.shape[1]):
        ax.plot(norms[:, unit], color=COLORS[unit % len(COLORS)], lw=1.5)
    if reference is not None:
        ax.axhline(reference, color="0.4", ls=":", lw=1)
    if float(norms.max() / norms.min()) > 30:  # a log scale only where there is growth to see
        ax.set_yscale("log")
        ax.set_ylabel("‖w‖ (log scale)")
    else:
        ax.set_ylabel("‖w‖")
    ax.set_xlabel("step")
    if trajectory.exploded_at is not None:
        ax.axhline(EXPLODE_AT, color="tab:red", lw=1)
        # Headroom above the guard's line (it sits at 3/4 of the height) for the note, clear of the curve.
        bottom = ax.get_ylim()[0]
        ax.set_ylim(bottom, bottom * (EXPLODE_AT / bottom) ** (4 / 3))
        ax.text(0.02, 0.97, f"exploded at step {trajectory.exploded_at}\n(‖w‖ > {EXPLODE_AT:.0e}: the layer "
                "raised HebbianDivergenceError)", transform=ax.transAxes, va="top", fontsize=8, color="tab:red")


def plot_alignment(ax, trajectory: Trajectory, vectors: torch.Tensor):
    """|cos| between unit o and the o-th principal axis, step by step."""
    w = trajectory.weights
    for unit in range(w.shape[1]):
        cos = abs_cosine(w[:, unit], vectors[:, unit % vectors.shape[1]])
        ax.plot(torch.atleast_1d(cos), color=COLORS[unit % len(COLORS)], lw=1.5, label=f"w{unit + 1} vs PC{unit + 1}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("|cos(w, PC)|")
    ax.legend(loc="lower right", fontsize=8)


def rule_demo(rule: str = "oja", lr: float = 0.01, steps: int = 500, correlation: float = 0.8,
              offset: float = 0.0, seed: int = 0) -> Figure:
    """The widget's figure: one run of ``rule`` (2 units for Sanger) on a 2-D cloud.

    Left: the weight path over the data; middle: ‖w‖ (log scale); right: |cos| to the principal axes.
    Survives every slider value: an explosion ends the run and is written on the plot.
    """
    data = demo_data(correlation, offset, seed=seed)
    units = 2 if rule == "sanger" else 1
    trajectory = train_rule(data, rule, lr=float(lr), steps=int(steps), units=units, seed=seed)
    _, vectors = principal_axes(data)
    target = None
    if rule == "instar" and trajectory.exploded_at is None:
        target = instar_fixed_point(data, trajectory.final[0])
        target = target if bool(torch.isfinite(target).all()) else None
    fig = Figure(figsize=(13, 4), layout="constrained")
    ax_path, ax_norm, ax_cos = fig.subplots(1, 3)
    plot_trajectory(ax_path, data, trajectory, vectors, target)
    plot_norms(ax_norm, trajectory, reference=None if rule == "instar" else 1.0)
    plot_alignment(ax_cos, trajectory, vectors)
    final = trajectory.norms[-1]
    status = (f"exploded at step {trajectory.exploded_at}" if trajectory.exploded_at is not None
              else "final ‖w‖ = " + ", ".join(f"{float(v):.3g}" for v in final))
    fig.suptitle(f"{rule}: η = {float(lr):.2g}, {int(steps)} steps, correlation {float(correlation):+.2f}, "
                 f"offset {float(offset):.1f} — {status}")
    return fig


def hebb_section(lr: float = 0.01, steps: int = 2000, seed: int = 0):
    """Plain Hebb on a centred cloud: (figure, numbers). The numbers are the step at which the guard
    fired, the fitted growth rate of log ‖w‖ beside the prediction log(1 + η λ₁), and |cos| to PC1."""
    data = demo_data(0.8, 0.0, seed=seed)
    trajectory = train_rule(data, "hebb", lr=lr, steps=steps, seed=seed)
    values, vectors = principal_axes(data)
    fig = Figure(figsize=(13, 4), layout="constrained")
    ax_path, ax_norm, ax_cos = fig.subplots(1, 3)
    plot_trajectory(ax_path, data, trajectory, vectors)
    plot_norms(ax_norm, trajectory, reference=None)
    plot_alignment(ax_cos, trajectory, vectors)
    fig.suptitle(f"plain Hebb, η = {lr:g}: the direction settles on PC1 while the length explodes")
    numbers = {
        "exploded_at": trajectory.exploded_at,
        "growth_per_step": growth_rate(trajectory),
        "predicted_growth_per_step": math.log1p(lr * float(values[0])),
        "cos_pc1": float(abs_cosine(trajectory.final[0], vectors[:, 0])),
    }
    return fig, numbers


def instar_section(lr: float = 0.01, steps: int = 1500, batch_size: int = 16, seed: int = 0):
    """Instar on a cloud centred at (2, 1): with y = w·x it settles on the activity-weighted mean
    Σ y x / Σ y; a lone unit whose output is fixed at 1 (hard WTA, binary, one unit: it always wins)
    settles on the plain mean. Distances use ``w`` averaged over the second half of the run.
    Returns (figure, numbers)."""
    data = demo_data(0.8, INSTAR_OFFSET, seed=seed)
    w0 = initial_weights(1, 2, seed=seed)
    graded = train_rule(data, "instar", lr=lr, steps=steps, batch_size=batch_size, w0=w0, seed=seed)
    always_wins = train_rule(data, "instar", lr=lr, steps=steps, batch_size=batch_size, w0=w0, seed=seed,
                             competition={"name": "hard_wta", "binary": True})
    graded_end, binary_end = graded.tail_mean(0.5)[0], always_wins.tail_mean(0.5)[0]
    weighted_mean = instar_fixed_point(data, graded_end)
    mean = data.mean(0)
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax_graded, ax_binary = fig.subplots(1, 2)
    plot_trajectory(ax_graded, data, graded, target=weighted_mean)
    ax_graded.set_title("y = w·x: w → Σ y x / Σ y (activity-weighted mean)", fontsize=10)
    plot_trajectory(ax_binary, data, always_wins, target=mean)
    ax_binary.set_title("y = 1 (a unit that always wins): w → mean of the data", fontsize=10)
    numbers = {
        "distance_to_weighted_mean": float((graded_end - weighted_mean).norm()),
        "distance_to_mean_binary": float((binary_end - mean).norm()),
        "weighted_mean": weighted_mean.tolist(),
        "mean": mean.tolist(),
    }
    return fig, numbers


def oja_section(lr: float = 0.02, steps: int = 2000, batch_size: int = 8, seed: int = 0):
    """Oja on the centred cloud: (figure, numbers) with the final ‖w‖ and |cos(w, PC1)|."""
    data = demo_data(0.8, 0.0, seed=seed)
    trajectory = train_rule(data, "oja", lr=lr, steps=steps, batch_size=batch_size, seed=seed)
    _, vectors = principal_axes(data)
    fig = Figure(figsize=(13, 4), layout="constrained")
    ax_path, ax_norm, ax_cos = fig.subplots(1, 3)
    plot_trajectory(ax_path, data, trajectory, vectors)
    plot_norms(ax_norm, trajectory)
    plot_alignment(ax_cos, trajectory, vectors)
    fig.suptitle(f"Oja, η = {lr:g}: w turns to PC1 and its length settles at 1")
    numbers = {"norm": float(trajectory.norms[-1, 0]), "cos_pc1": float(abs_cosine(trajectory.final[0], vectors[:, 0]))}
    return fig, numbers


def sanger_section(lr: float = 0.05, steps: int = 600, batch_size: int = 32, seed: int = 0):
    """Sanger with three units on the 3-D cloud, against ``torch.linalg.eigh``: (figure, numbers)."""
    data = sanger_data(seed=seed)
    values, vectors = principal_axes(data)
    trajectory = train_rule(data, "sanger", lr=lr, steps=steps, units=3, batch_size=batch_size, seed=seed)
    final = trajectory.final
    cosines = torch.stack([abs_cosine(final[o], vectors[:, o]) for o in range(3)])
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax_cos, ax_bar = fig.subplots(1, 2, width_ratios=(2, 1))
    plot_alignment(ax_cos, trajectory, vectors)
    ax_cos.set_title("Sanger, 3 units: |cos| between unit o and the o-th eigenvector", fontsize=10)
    table = (final @ vectors).abs() / final.norm(dim=1, keepdim=True)
    image = ax_bar.imshow(table, vmin=0, vmax=1, cmap="viridis")
    for (i, j), value in ((ij, float(table[ij])) for ij in ((a, b) for a in range(3) for b in range(3))):
        ax_bar.text(j, i, f"{value:.2f}", ha="center", va="center", color="w" if value < 0.6 else "k")
    ax_bar.set_xticks(range(3), [f"PC{j + 1}\nλ={float(values[j]):.2f}" for j in range(3)])
    ax_bar.set_yticks(range(3), [f"unit {i + 1}" for i in range(3)])
    ax_bar.set_title("|cos($w_o$, eigh vector)| at the end", fontsize=10)
    fig.colorbar(image, ax=ax_bar, shrink=0.8)
    numbers = {"cosines": cosines.tolist(), "norms": trajectory.norms[-1].tolist(), "eigenvalues": values.tolist()}
    return fig, numbers


# ----- the summary ------------------------------------------------------------------------------------
def summary_rows(hebb: dict, instar: dict, oja: dict, sanger: dict):
    """The chapter's measured numbers beside their theoretical targets (rounded for a stable printout)."""
    growth, predicted = hebb["growth_per_step"], hebb["predicted_growth_per_step"]
    return [
        ("plain Hebb: guard fired (‖w‖ > 1e6) at step", hebb["exploded_at"], "finite (unbounded growth)",
         hebb["exploded_at"] is not None),
        ("plain Hebb: growth of log‖w‖ per step", f"{growth:.4f}", f"log(1 + η λ₁) = {predicted:.4f} ± 10%",
         abs(growth - predicted) < 0.1 * predicted),
        ("plain Hebb: |cos(w, PC1)|", f"{hebb['cos_pc1']:.3f}", "1 (direction → PC1)", hebb["cos_pc1"] > 0.99),
        ("Instar: ‖w − Σyx/Σy‖", f"{instar['distance_to_weighted_mean']:.3f}", "0 (± 0.05)",
         instar["distance_to_weighted_mean"] < 0.05),
        ("Instar, y = 1: ‖w − mean‖", f"{instar['distance_to_mean_binary']:.3f}", "0 (± 0.05)",
         instar["distance_to_mean_binary"] < 0.05),
        ("Oja: ‖w‖", f"{oja['norm']:.3f}", "1 ± 0.01", abs(oja["norm"] - 1) < 0.01),
        ("Oja: |cos(w, PC1)|", f"{oja['cos_pc1']:.3f}", "> 0.99", oja["cos_pc1"] > 0.99),
        ("Sanger: |cos(w_o, PC_o)|, o = 1, 2, 3", ", ".join(f"{c:.3f}" for c in sanger["cosines"]), "each > 0.95",
         min(sanger["cosines"]) > 0.95),
    ]
