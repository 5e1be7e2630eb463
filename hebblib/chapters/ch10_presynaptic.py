"""Chapter 10 — Presynaptic competition: synapses of one neuron compete for a fixed budget.

Weights are read as resistances and turned into admittances, which are then normalised along one
dimension of the weight tensor (Nimmo §3.3.8, eqs 39–42, after Lagani 2024; spec nimmo-thesis §1.15):

    m = 1 / (|w| + 1e-6)                                        (39)
    linear   w_eff = m / (Σ m + ε)                              (40)
    softmax  w_eff = exp(m) / Σ exp(m)                          (41)
    lp_norm  w_eff = m / sqrt(Σ m²)                             (42)

with the sums over the ``output`` units, the ``input`` channels, the ``spatial`` taps of each (output,
input) pair, or all entries (``global``). ``w_eff`` replaces ``w`` in the forward pass and in the decay
term of the update; the update itself is applied to the raw ``w`` (:meth:`HebbianConv2d.effective_weight`).

The reduced and full runs, and the lines that print measured beside published, are chapter 7's.
"""
from __future__ import annotations

import functools

import torch
from matplotlib.figure import Figure

from ..presets import get_preset
from ..presynaptic import DIMS, KINDS, presynaptic_weights
from ..notebook import print_summary
from ..plots.mosaic import filter_mosaic

EPS = 1e-6
THESIS = {"hard WTA": 72.1, "hard WTA + presynaptic": 66.5}
THESIS_SOURCE = "Nimmo (2024) MSc thesis, Table 3 (5 classifier epochs)"
# what eqs (40)–(42) make equal to 1 along the competition dimension
NORMALISED = {"linear": "sum", "softmax": "sum", "lp_norm": "L2 norm"}


# ----- 1. admittances and the three normalisations ----------------------------------------------------------
def admittance(weight: torch.Tensor) -> torch.Tensor:
    """Eq (39): a weight read as a resistance becomes the admittance ``1 / (|w| + 1e-6)``: the *smallest*
    weights become the strongest synapses, and the sign is lost."""
    return 1.0 / (weight.abs() + EPS)


def lp_norm_spatial_solution(weight: torch.Tensor) -> torch.Tensor:
    """The exercise's reference: eq (42) over the spatial taps of every (output, input) pair of a weight
    shaped (out, in, kh, kw): ``m / sqrt(Σ_{kh,kw} m²)``, the norm clamped below at 1e-6."""
    m = admittance(weight)
    return m / m.pow(2).sum(dim=(2, 3), keepdim=True).sqrt().clamp_min(EPS)


def presynaptic_exercise_cases() -> list:
    """Weight tensors (out, in, kh, kw): a first layer, a 3×3 layer with many inputs, one with an exact zero
    and a 1×1 layer (a single tap: every effective weight is 1)."""
    g = torch.Generator().manual_seed(10)
    near_zero = torch.randn(4, 3, 3, 3, generator=g)
    near_zero[0, 0, 1, 1] = 0.0
    return [(torch.randn(8, 3, 5, 5, generator=g),), (0.1 * torch.randn(4, 16, 3, 3, generator=g),),
            (near_zero,), (torch.randn(6, 5, 1, 1, generator=g),)]


@functools.lru_cache(maxsize=1)
def fixed_weight(units: int = 24, size: int = 5, seed: int = 0) -> torch.Tensor:
    """A fixed first-layer weight (units, 3, size, size): Gaussian, each filter scaled to unit norm, the
    way the layers initialise. The demo transforms this one tensor, so every redraw is fast."""
    w = torch.randn(units, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def normalised_along(w_eff: torch.Tensor, kind: str, dim: str) -> torch.Tensor:
    """What eqs (40)–(42) fix along ``dim``: the sum (linear, softmax) or the L2 norm (lp_norm) of every
    group of ``w_eff`` that competes; one value per group."""
    dims = DIMS[dim]
    if kind == "lp_norm":
        return w_eff.pow(2).sum(dim=dims).sqrt().flatten()
    return w_eff.sum(dim=dims).flatten()


def normalisation_table(weight: torch.Tensor | None = None) -> list:
    """``(kind, dim, groups, quantity, min, max)`` for every kind × dim on ``weight`` (default: the fixed
    one): the quantity is the sum or L2 norm along the competing dimension, which should be 1."""
    weight = fixed_weight() if weight is None else weight
    rows = []
    for kind in KINDS:
        for dim in DIMS:
            values = normalised_along(presynaptic_weights(weight, kind, dim), kind, dim)
            rows.append((kind, dim, values.numel(), NORMALISED[kind], float(values.min()), float(values.max())))
    return rows


def print_normalisation_table(weight: torch.Tensor | None = None) -> None:
    print(f"{'kind':8s} {'dim':8s} {'groups':>6s}  {'along dim':10s} {'min':>6s} {'max':>6s}")
    for kind, dim, groups, quantity, low, high in normalisation_table(weight):
        print(f"{kind:8s} {dim:8s} {groups:6d}  {quantity:10s} {low:6.3f} {high:6.3f}")


def concentration(w_eff: torch.Tensor, dim: str) -> float:
    """Mean share of its group's total that the largest effective weight holds (1 = one synapse takes
    everything, 1/n = all n equal)."""
    dims = DIMS[dim]
    flat = w_eff.movedim(dims, tuple(range(-len(dims), 0))).reshape(*[w_eff.shape[i] for i in range(4)
                                                                       if i not in dims], -1)
    share = flat.max(dim=-1).values / flat.sum(dim=-1).clamp_min(1e-30)
    return float(share.mean())


# ----- the widget: effective-weight histogram and filters of one fixed tensor -------------------------------
def presynaptic_demo(kind: str = "lp_norm", dim: str = "spatial", weight: torch.Tensor | None = None) -> Figure:
    """Left: the raw weights and log10 of the effective weights (histograms). Right: the filters before
    and after presynaptic competition (each filter scaled on its own, grey = 0)."""
    weight = fixed_weight() if weight is None else weight
    w_eff = presynaptic_weights(weight, kind, dim)
    values = normalised_along(w_eff, kind, dim)
    fig = Figure(figsize=(11.0, 6.0))  # fixed spacing: constrained layout would double the redraw time
    axes = fig.subplots(2, 2, width_ratios=(1.0, 1.1), gridspec_kw=dict(left=0.07, right=0.98, bottom=0.08,
                                                                          top=0.95, wspace=0.08, hspace=0.35))
    axes[0, 0].hist(weight.flatten().numpy(), bins=50, color="grey", histtype="stepfilled")
    axes[0, 0].set(title="raw weights $w$", xlabel="$w$", ylabel="count")
    # softmax can underflow to exactly 0: floor at 1e-12 so the log stays finite (the floor is labelled)
    floor = 1e-12
    logs = w_eff.clamp_min(floor).log10().flatten()
    axes[1, 0].hist(logs.numpy(), bins=50, color="tab:blue", histtype="stepfilled")
    at_floor = float((w_eff < floor).float().mean())
    axes[1, 0].set(title=f"effective weights, {kind} along {dim}"
                   + (f" ({100 * at_floor:.0f}% below 1e-12)" if at_floor > 0 else ""),
                   xlabel=r"$\log_{10} w_\mathrm{eff}$", ylabel="count")
    axes[1, 0].set_ylim(top=axes[1, 0].get_ylim()[1] * 1.35)  # headroom: the note stays clear of the bars
    axes[1, 0].text(0.02, 0.95, f"{NORMALISED[kind]} along {dim}: {float(values.min()):.3f} – "
                    f"{float(values.max()):.3f}\nlargest synapse's share of its group: "
                    f"{concentration(w_eff, dim):.3f}", transform=axes[1, 0].transAxes, va="top", fontsize=9)
    ncols = 8
    axes[0, 1].imshow(filter_mosaic(weight, ncols=ncols).numpy(), interpolation="nearest")
    axes[0, 1].set_title("filters $w$", fontsize=10)
    axes[1, 1].imshow(filter_mosaic(w_eff, ncols=ncols).numpy(), interpolation="nearest")
    axes[1, 1].set_title(r"effective filters $w_\mathrm{eff}$ (all ≥ 0)", fontsize=10)
    for ax in axes[:, 1]:
        ax.set_axis_off()
    return fig


# ----- 2. hard WTA with and without presynaptic competition ------------------------------------------------
def presynaptic_presets() -> dict:
    """The hard-WTA baseline ``hard_basic`` and the ``presynaptic`` preset, which differs from it only in
    ``presynaptic={'kind': 'lp_norm', 'dim': 'spatial'}`` on every Hebbian layer."""
    return {"hard WTA": get_preset("hard_basic"), "hard WTA + presynaptic": get_preset("presynaptic")}


def effective_filters_figure(runs: dict, layer: str = "conv1", ncols: int = 6) -> Figure:
    """The first-layer filters of each run as the forward pass sees them (``effective_weight``); for a run
    with presynaptic competition also its raw weights, for comparison."""
    panels = []
    for label, run in runs.items():
        hebbian = run.layer(layer)
        if hebbian.presynaptic is not None:
            panels.append((f"{label}: raw $w$", hebbian.weight))
        panels.append((f"{label}: $w_{{eff}}$, {run.accuracy:.1f}%", hebbian.effective_weight()))
    fig = Figure(figsize=(3.4 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, w) in zip(axes, panels):
        w = w.detach().cpu()
        ax.imshow(filter_mosaic(w.view(w.shape[0], -1, *w.shape[-2:]), ncols=ncols).numpy(),
                  interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
    return fig


def summary_rows(runs: dict) -> list:
    """Normalisation checks (verdicts) and the accuracy difference of the two runs (comparison only)."""
    weight = fixed_weight()
    rows = []
    for kind, dim in (("lp_norm", "spatial"), ("softmax", "input"), ("linear", "output")):
        values = normalised_along(presynaptic_weights(weight, kind, dim), kind, dim)
        worst = float((values - 1).abs().max())
        rows.append((f"{kind} along {dim}: {NORMALISED[kind]} of every group", f"{float(values.mean()):.3f}",
                     "1.000 (± 1e-3)", worst < 1e-3))
    non_negative = all(bool((presynaptic_weights(weight, k, d) >= 0).all()) for k in KINDS for d in DIMS)
    rows.append(("w_eff ≥ 0 for every kind and dim", "yes" if non_negative else "no",
                 "yes (admittances lose the sign)", non_negative))
    base, pre = runs["hard WTA"], runs["hard WTA + presynaptic"]
    rows.append(("hard WTA + presynaptic minus hard WTA", f"{pre.accuracy - base.accuracy:+.1f} points",
                 "−5.6 points in the thesis (66.5 vs 72.1); README 65.1 vs 74.8", None))
    return rows


__all__ = [
    "NORMALISED", "THESIS", "THESIS_SOURCE", "admittance", "concentration", "effective_filters_figure",
    "fixed_weight", "lp_norm_spatial_solution", "normalisation_table", "normalised_along",
    "presynaptic_demo", "presynaptic_exercise_cases", "presynaptic_presets", "print_normalisation_table",
    "print_summary", "summary_rows",
]
