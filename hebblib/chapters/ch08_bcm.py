"""Chapter 8 — BCM: a sliding threshold and selectivity.

Bienenstock–Cooper–Munro plasticity (Nimmo eq 23, §3.3.6; spec nimmo-thesis §1.10): the update is
Hebbian above a threshold θ and anti-Hebbian below it, and θ follows the recent mean of y²:

    θ ← (1 − τ) θ + τ · E[y²]          (τ = ``theta_rate``; updated first, as in the code)
    Δw = η · x · y (y − θ)             (no decay term)

Because θ grows with the square of the activity, a unit that responds to everything raises its own
threshold until only its best input still potentiates: it becomes selective. Here a single toy neuron
on three patterns, then the ``bcm`` and ``optimal`` presets beside the hard-WTA Instar baseline.
"""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from ..presets import get_preset
from ..experiments import PresetRun, train_presets, train_reduced
from ..notebook import print_checks

PATTERN_COLORS = ("tab:blue", "tab:orange", "tab:green")
DIVERGED = 1e3  # the toy stops when a response exceeds this (θ too slow to hold the activity)


# ----- 1. one BCM step, and a toy neuron ----------------------------------------------------------------------
def bcm_step_solution(w: torch.Tensor, x: torch.Tensor, theta: float, lr: float, theta_rate: float) -> torch.Tensor:
    """The exercise's reference: one BCM step for a linear neuron ``y = w · x``, returning the new
    weights. θ moves first, towards y² (rate ``theta_rate``), then ``w += lr · x · y (y − θ_new)``."""
    y = w @ x
    theta = (1 - theta_rate) * theta + theta_rate * y * y
    return w + lr * x * y * (y - theta)


def bcm_exercise_cases():
    gen = torch.Generator().manual_seed(8)
    cases = []
    for theta, rate in ((1.0, 0.5), (0.2, 0.1), (3.0, 1.0)):
        w, x = torch.rand(4, generator=gen, dtype=torch.float64), torch.rand(4, generator=gen, dtype=torch.float64)
        cases.append((w, x, theta, 0.1, rate))
    return cases


def toy_patterns() -> torch.Tensor:
    """Three overlapping non-negative input patterns (rows), of equal norm."""
    p = torch.tensor([[1.0, 0.4, 0.0, 0.0, 0.1],
                      [0.0, 0.4, 1.0, 0.2, 0.0],
                      [0.1, 0.0, 0.1, 1.0, 0.5]], dtype=torch.float64)
    return p / p.norm(dim=1, keepdim=True)


def toy_neuron(theta_rate: float = 0.05, lr: float = 0.02, steps: int = 3000, seed: int = 0) -> dict:
    """A rectified linear neuron ``y = max(0, w · x)`` trained with BCM on patterns drawn at random.

    Returns ``responses`` (steps + 1, 3): the response to every pattern after each step; ``theta``
    (steps + 1); ``weights``; ``diverged_at`` (None, or the step at which a response passed
    :data:`DIVERGED`: the threshold moved too slowly to hold the activity back) and ``selectivity``
    (1 − mean of the other responses / the largest, at the end; 1 = responds to one pattern only).
    """
    patterns = toy_patterns()
    gen = torch.Generator().manual_seed(seed)
    w = 0.3 + 0.2 * torch.rand(patterns.shape[1], generator=gen, dtype=torch.float64)
    theta = 0.0
    theta_rate, lr, steps = min(max(float(theta_rate), 1e-4), 1.0), max(float(lr), 0.0), max(int(steps), 1)
    responses, thetas, diverged_at = [(patterns @ w).clamp_min(0)], [theta], None
    order = torch.randint(0, len(patterns), (steps,), generator=gen)
    for t, index in enumerate(order.tolist(), start=1):
        x = patterns[index]
        y = max(float(w @ x), 0.0)
        theta = (1 - theta_rate) * theta + theta_rate * y * y
        w = w + lr * x * y * (y - theta)
        r = (patterns @ w).clamp_min(0)
        if not bool(torch.isfinite(r).all()) or float(r.max()) > DIVERGED:
            diverged_at = t
            break
        responses.append(r)
        thetas.append(theta)
    responses = torch.stack(responses)
    final = responses[-1]
    best = float(final.max())
    others = (final.sum() - final.max()) / (len(final) - 1)
    selectivity = 1 - float(others) / best if best > 1e-9 else 0.0
    return {"responses": responses, "theta": torch.tensor(thetas), "weights": w, "diverged_at": diverged_at,
            "selectivity": selectivity, "winner": int(final.argmax())}


def toy_fixed_point(run: dict, last: int = 500) -> tuple[float, float]:
    """(mean θ over the last ``last`` steps, mean over the three patterns of y² at the end): at BCM's
    fixed point θ = E[y²]; for a selective neuron y = θ on its pattern, so y = 3 with three patterns."""
    return float(run["theta"][-last:].mean()), float((run["responses"][-1] ** 2).mean())


def toy_figure(run: dict, title: str = "") -> Figure:
    """Responses y(t) to each pattern and θ(t) (left); the patterns and the final weights (right)."""
    fig = Figure(figsize=(10.5, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(2, 1))
    steps = np.arange(len(run["theta"]))
    for i, color in enumerate(PATTERN_COLORS):
        left.plot(steps, run["responses"][:, i].numpy(), color=color, label=f"y to pattern {i + 1}")
    left.plot(steps, run["theta"].numpy(), color="black", linestyle="--", label="θ")
    left.set(xlabel="step", ylabel="response", title=title or f"selectivity {run['selectivity']:.2f}")
    if run["diverged_at"] is not None:
        left.set_title(f"diverged at step {run['diverged_at']}: θ lags behind y² (shown up to there)")
    left.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # clear of the curves
    patterns = toy_patterns()
    width = 0.2
    for i, color in enumerate(PATTERN_COLORS):
        right.bar(np.arange(patterns.shape[1]) + (i - 1.5) * width, patterns[i].numpy(), width, color=color,
                  alpha=0.6, label=f"pattern {i + 1}")
    w = run["weights"]
    shown = (w / w.norm()).numpy() if float(w.norm()) > 0 and bool(torch.isfinite(w).all()) else np.zeros(len(w))
    right.bar(np.arange(len(w)) + 1.5 * width, shown, width, color="black", label="w / ‖w‖")
    right.set(xlabel="input", ylabel="value", title="patterns and final weights")
    right.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)  # clear of the bars
    return fig


def toy_demo(theta_rate: float = 0.05, lr: float = 0.02, steps: int = 3000, seed: int = 0) -> Figure:
    """Widget: the toy neuron for these settings."""
    return toy_figure(toy_neuron(theta_rate, lr, steps, seed))


# ----- 2. BCM in the network ------------------------------------------------------------------------------------
def bcm_presets() -> dict:
    """The hard-WTA Instar baseline, the ``bcm`` preset and ``optimal`` (BCM + surround)."""
    return {"hard WTA + Instar": get_preset("hard_basic"), "hard WTA + BCM": get_preset("bcm"),
            "optimal (BCM + surround)": get_preset("optimal")}


# the full-data variant that starts every channel's θ at 0 instead of 1 (reproduce --change)
THETA_ZERO = {"hebbian": {"rule": {"theta_init": 0.0}}}


def report_full_variants(preset_name: str = "optimal") -> None:
    """The committed full-data runs of two variants of ``preset_name``, each beside the published figure
    (or a line saying it is not measured yet): θ starting at 0 (:data:`THETA_ZERO`), and the original
    code's behaviour (``--original``: per-tap cosine)."""
    from ..notebook import report_committed_preset

    published = get_preset(preset_name)["published"]
    report_committed_preset(preset_name, published, "README", change=THETA_ZERO)
    report_committed_preset(preset_name, published, "README", original=True)


class ThetaRecorder:
    """Callback for ``train_reduced``: θ of a BCM layer's channels after every batch."""

    def __init__(self, layer: str = "conv1"):
        self.layer, self.values = layer, []

    def __call__(self, net) -> None:
        rule = net.hebbian_layers()[self.layer].rule
        theta = getattr(rule, "theta", None)
        if theta is not None and theta.numel():
            self.values.append(theta.detach().cpu().clone())

    def trajectories(self) -> torch.Tensor:
        return torch.stack(self.values) if self.values else torch.empty(0, 0)


def train_bcm_runs(quick: bool | None = None, **options):
    """The three presets of :func:`bcm_presets`, recording θ of conv1 for the BCM run in quick mode."""
    presets = bcm_presets()
    recorder = ThetaRecorder()
    from ..runtime import is_quick

    quick = is_quick() if quick is None else quick
    if not quick:
        return train_presets(presets, quick=False), recorder

    runs = {}
    for label, preset in presets.items():
        callback = recorder if label == "hard WTA + BCM" else None
        runs[label] = train_reduced(preset, label, callback=callback, **options)
    return runs, recorder


def theta_figure(theta: torch.Tensor, final: torch.Tensor | None = None) -> Figure:
    """θ(t) of every channel (one line each), and the final θ per channel sorted."""
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    if theta.numel():
        left.plot(np.arange(1, theta.shape[0] + 1), theta.numpy(), linewidth=0.8, alpha=0.7)
        left.set(xlabel="batch", ylabel=r"$\theta_o$", yscale="log", title=r"$\theta_o$ per channel of conv1 (from $\theta_0$ = 1)")
    if final is None and theta.numel():
        final = theta[-1]
    if final is not None and final.numel():
        values = final.sort(descending=True).values.clamp_min(1e-12).numpy()
        right.bar(np.arange(len(values)), values, color="tab:purple")
        right.set(xlabel="channel (sorted)", ylabel=r"final $\theta_o$", yscale="log", title="final thresholds")
    return fig


def weight_statistics(run: PresetRun, layer: str = "conv1") -> dict:
    """Of a layer's weights: excess kurtosis (0 for a Gaussian; large = sharp peak with heavy tails), and
    the fraction within 10 % of the largest |w| of zero."""
    w = run.layer(layer).weight.detach().double().flatten()
    z = (w - w.mean()) / (w.std() + 1e-12)
    return {"kurtosis": float((z ** 4).mean() - 3), "near_zero": float((w.abs() < 0.1 * w.abs().max()).double().mean()),
            "std": float(w.std())}


def print_weight_table(runs: dict) -> None:
    print(f"{'run':28s} {'std':>7s} {'excess kurtosis':>16s} {'|w| < 10% of max':>17s}")
    for label, run in runs.items():
        s = weight_statistics(run)
        print(f"{label:28s} {s['std']:7.3f} {s['kurtosis']:16.2f} {100 * s['near_zero']:16.0f}%")


def weight_histograms(runs: dict, layer: str = "conv1") -> Figure:
    """Histograms of the first layer's weights per run, each scaled by its own max |w| (log density)."""
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    ax = fig.subplots()
    for i, (label, run) in enumerate(runs.items()):
        w = run.layer(layer).weight.detach().double().flatten()
        w = w / (w.abs().max() + 1e-12)
        ax.hist(w.numpy(), bins=60, range=(-1, 1), density=True, histtype="step", linewidth=1.6, color=f"C{i}",
                label=f"{label} (kurtosis {weight_statistics(run, layer)['kurtosis']:.1f})")
    ax.set(xlabel="w / max |w|", ylabel="density", yscale="log", title=f"{layer} weights")
    ax.legend(fontsize=8)
    return fig


def summary_rows(toy: dict, runs: dict) -> list:
    base, bcm = weight_statistics(runs["hard WTA + Instar"]), weight_statistics(runs["hard WTA + BCM"])
    return [
        ("toy BCM neuron: selectivity at the end", f"{toy['selectivity']:.2f}", "> 0.9 (responds to one pattern)",
         toy["selectivity"] > 0.9),
        ("toy BCM neuron: largest response (y = θ at the fixed point; 3 for three patterns)",
         f"{float(toy['responses'][-1].max()):.1f}", "about 3", 2.0 < float(toy["responses"][-1].max()) < 4.5),
        ("conv1 excess kurtosis, BCM vs Instar", f"{bcm['kurtosis']:.1f} vs {base['kurtosis']:.1f}",
         "BCM heavier-tailed (thesis Figs 11–12)", None),
    ]


__all__ = [
    "THETA_ZERO", "ThetaRecorder", "bcm_exercise_cases", "bcm_presets", "bcm_step_solution", "print_checks",
    "print_weight_table", "report_full_variants", "summary_rows", "theta_figure", "toy_demo", "toy_figure",
    "toy_fixed_point", "toy_neuron", "toy_patterns", "train_bcm_runs", "weight_histograms",
    "weight_statistics",
]
