"""How a layer learns, at a glance: who wins the competition, how far units are from radius 1,
how the weights are distributed, and where the last update potentiated or depressed them.

The numbers come from :mod:`hebblib.diagnostics`; these functions only draw them.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import diagnostics as dg
from . import style


def _counts_from(source) -> torch.Tensor:
    """Win counts from a layer (``win_counts``), a 1-D counts tensor, or activations (N, C, ...)."""
    if hasattr(source, "win_counts"):
        return style.to_cpu(source.win_counts)
    source = style.to_cpu(source)
    return source.flatten() if source.dim() <= 1 else dg.winner_counts(source)


def plot_competition(source, title: str | None = None, fig=None):
    """Win rates ``p_o`` sorted from the most to the least winning unit, and their histogram.

    ``source``: a Hebbian layer (its ``win_counts``, accumulated while training), a 1-D tensor of
    counts, or a layer's activations ``u`` (N, C, H, W) / (N, C), whose per-site winners are counted.
    The title gives the usage entropy H, the effective number of units exp(H·log C) and the dead
    fraction (see :mod:`hebblib.diagnostics`). The red line is the uniform rate 1/C.
    """
    counts = _counts_from(source)
    summary = dg.competition_summary(counts)
    rates = dg.win_rates(counts)
    order = rates.argsort(descending=True)
    sorted_rates = rates[order].numpy()
    units = rates.numel()
    fig, (bars, hist) = style.panels(2, fig=fig, width=2 * style.PANEL[0] + 1)
    bars.bar(np.arange(units), sorted_rates, width=1.0, color="C0")
    dead = np.flatnonzero(sorted_rates == 0)
    if dead.size and summary["total_wins"] > 0:  # dead units have no bar: mark them on the axis
        bars.plot(dead, np.zeros(dead.size), "|", color=style.DEAD_COLOR, markersize=8,
                  label=f"dead ({dead.size})")
    bars.axhline(1 / units, color=style.ACCENT_COLOR, linestyle="--", linewidth=1, label="uniform 1/C")
    bars.set(xlabel="unit (sorted by win rate)", ylabel="win rate $p_o$", title="win rate per unit")
    bars.legend(fontsize=8)
    hist.hist(sorted_rates, bins=min(30, max(units, 1)), color="C0")
    hist.axvline(1 / units, color=style.ACCENT_COLOR, linestyle="--", linewidth=1)
    hist.set(xlabel="win rate $p_o$", ylabel="units", title="distribution of win rates")
    if title is None:
        if summary["total_wins"] == 0:
            title = "no wins recorded yet: train the layer, or pass its activations"
        else:
            title = (f"{units} units: entropy H = {summary['entropy']:.3f}, effective units "
                     f"{summary['effective_units']:.1f}, dead {100 * summary['dead_fraction']:.1f}%")
    style.integer_ticks(bars)
    style.integer_ticks(hist, x=False, y=True)
    fig.suptitle(title)
    return fig


def plot_radius(source, tol: float = 0.1, title: str | None = None, fig=None):
    """Each unit's weight norm ``‖W_o‖`` and their histogram, with the line at 1 (SoftHebb's fixed
    point; its radius-dependent learning rate ``lr·|‖W_o‖ − 1|^p`` slows units down as they reach it).

    ``source``: a layer (its ``radius()``), a 1-D tensor of radii, or a weight tensor.
    """
    radii = dg.radii_of(source)
    summary = dg.radius_summary(radii, tol)
    fig, (per_unit, hist) = style.panels(2, fig=fig, width=2 * style.PANEL[0] + 1)
    per_unit.axhspan(1 - tol, 1 + tol, color=style.ACCENT_COLOR, alpha=0.1, label=f"1 ± {tol:g}")
    per_unit.axhline(1, color=style.ACCENT_COLOR, linewidth=1)
    per_unit.plot(np.arange(radii.numel()), radii.numpy(), "o", markersize=3)
    per_unit.set(xlabel="unit $o$", ylabel=r"radius $\|W_o\|$", title="radius per unit")
    per_unit.legend(fontsize=8)
    hist.hist(radii.numpy(), bins=min(30, max(radii.numel(), 1)), color="C0")
    hist.axvline(1, color=style.ACCENT_COLOR, linewidth=1)
    hist.set(xlabel=r"radius $\|W_o\|$", ylabel="units", title="distribution of radii")
    fig.suptitle(title or f"mean |‖W‖ − 1| = {summary['mean_deviation']:.3f} ± "
                          f"{summary['std_deviation']:.3f}; {summary['within_tol']}/{summary['units']} units "
                          f"within {tol:g} of radius 1")
    style.integer_ticks(per_unit)
    style.integer_ticks(hist, x=False, y=True)
    return fig


def _named_weights(weights) -> dict[str, np.ndarray]:
    if not isinstance(weights, dict):
        weights = {"weights": weights}
    out = {}
    for name, w in weights.items():
        values = style.to_cpu(getattr(w, "weight", w)).double().flatten().numpy()
        if values.size == 0:
            raise ValueError(f"weights {name!r} are empty")
        out[str(name)] = values
    return out


def plot_weight_histogram(weights, bins: int = 50, kde: bool = True, overlay: bool = True,
                          max_kde_points: int = 100_000, seed: int = 0, title: str | None = None,
                          ax=None, fig=None):
    """Histogram (density, 50 bins) and KDE of all weights (spec nimmo-thesis §5.3, Figs 8–12).

    Args:
        weights: a tensor or layer, or a dict ``{name: tensor or layer}`` to compare several layers
            or models: overlaid on one axes (``overlay=True``, shared bins) or side by side.
        kde: add a kernel density estimate, fitted on at most ``max_kde_points`` weights drawn at
            random (seeded); skipped for constant weights (their density is a spike).
    """
    import seaborn as sns  # imported here: seaborn is slow to import and only this plot needs it

    named = _named_weights(weights)
    if ax is not None and not overlay:
        raise ValueError("overlay=False draws one panel per entry; pass fig= instead of ax=")
    fig, axes = style.panels(1 if overlay else len(named), fig=fig, ax=ax)
    everything = np.concatenate(list(named.values()))
    low, high = float(everything.min()), float(everything.max())
    edges = np.linspace(low, high, bins + 1) if high > low else np.linspace(low - 0.5, high + 0.5, bins + 1)
    rng = np.random.default_rng(seed)
    for i, (name, values) in enumerate(named.items()):
        panel = axes[0] if overlay else axes[i]
        color = f"C{i % 10}"
        own_edges = edges if overlay else bins
        panel.hist(values, bins=own_edges, density=True, histtype="stepfilled", alpha=0.35, color=color,
                   label=f"{name} (std {values.std():.3g})")
        if kde and values.std() > 0 and np.unique(values[:1000]).size > 1:
            sample = values if values.size <= max_kde_points else rng.choice(values, max_kde_points, replace=False)
            sns.kdeplot(x=sample, ax=panel, color=color, linewidth=1.5)
        panel.set(xlabel="weight", ylabel="density")
        panel.legend(fontsize=8)
        if not overlay:
            panel.set_title(name)
    if title or ax is None:
        fig.suptitle(title or "Weight distribution")
    return fig


def plot_ltp_ltd(delta_w, n: int = 25, ncols: int | None = None, title: str | None = None, fig=None):
    """Where the update potentiates (LTP, green) or depresses (LTD, red) (spec nimmo-thesis §5.4, Fig 21).

    Top: ``Σ ΔW_o`` per filter for the first ``n`` filters. Below: each filter's k×k map of
    ``mean over input channels of ΔW_o`` on RdYlGn, one scale centred at 0 for all maps, so beige
    means "little change" (converged) relative to the layer's largest change; for 1×1 and linear
    layers the O×I matrix of ΔW instead. ``delta_w``: a ΔW tensor or a layer, read before
    ``apply_update()``/``hebbian_grad()`` clears its ``delta_w``.
    """
    split = dg.ltp_ltd(delta_w)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    chosen = list(range(min(n, split.per_filter.numel())))
    totals, maps = split.per_filter[chosen], split.maps[chosen]
    pointwise = maps.shape[-2:] == (1, 1)
    rows, cols = style.grid_shape(len(chosen), ncols)
    if fig is None:
        height = style.PANEL[1] + (style.PANEL[1] if pointwise else rows * style.CELL + 0.3)
        fig = style.new_figure(max(style.PANEL[0] + 1, cols * style.CELL), height)
    else:
        fig.clear()
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1 if pointwise else rows * style.CELL / style.PANEL[1]])
    bars = top.add_subplot(1, 1, 1)
    colors = [style.LTP_COLOR if t > 0 else style.LTD_COLOR for t in totals.tolist()]
    bars.bar(chosen, totals.numpy(), color=colors)
    bars.axhline(0, color="black", linewidth=0.6)
    bars.set(xlabel="filter", ylabel="Σ ΔW", title="net change per filter (green LTP, red LTD)")
    style.integer_ticks(bars)
    if pointwise:
        dw = style.to_cpu(getattr(delta_w, "delta_w", delta_w)).reshape(split.per_filter.numel(), -1)[chosen]
        limit = style.symmetric_limit(dw)
        heat = bottom.add_subplot(1, 1, 1)
        image = heat.imshow(dw.numpy(), aspect="auto", cmap=style.LTP_LTD_CMAP, vmin=-limit, vmax=limit,
                            interpolation="nearest")
        heat.set(xlabel="input", ylabel="filter", title="ΔW per weight")
        style.integer_ticks(heat, x=True, y=True)
        bottom.colorbar(image, ax=heat)
    else:
        _, axes = style.image_grid(len(chosen), ncols, fig=bottom)
        limit = style.symmetric_limit(maps)
        for ax, m, label in zip(axes, maps, chosen):
            image = ax.imshow(m.numpy(), cmap=style.LTP_LTD_CMAP, vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set_title(str(label), fontsize=7, pad=2)
        bottom.colorbar(image, ax=axes, shrink=0.8, label="mean ΔW over inputs")
    fig.suptitle(title or "LTP / LTD of the last update")
    return fig
