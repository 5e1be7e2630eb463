"""The course's look in one place: figure sizes, colours, and the small layout helpers every plot uses.

Change a constant here and every figure of every chapter follows. The helpers also take care of what
each plotting function would otherwise repeat: moving tensors off the GPU, and grids of panels that
tolerate fewer items than the grid asks for.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import torch

# Sizes in inches.
CELL = 1.25            # one cell of an image grid (filters, receptive fields)
PANEL = (5.0, 3.6)     # one ordinary panel (a curve, a histogram)
MAX_GRID_WIDTH = 12.0  # grids wider than this are scaled down
MIN_GRID_WIDTH = 3.0   # so that a title fits above a grid of one or two cells

# Colours and colormaps.
LTP_COLOR = "#1a9850"        # potentiation (ΔW > 0), green as in the thesis's LTP/LTD plots
LTD_COLOR = "#d73027"        # depression (ΔW < 0)
DEAD_COLOR = "#7f7f7f"       # units that never won
ACCENT_COLOR = "#d62728"     # guide lines: radius 1, uniform win rate
REFERENCE_STYLE = {"linestyle": "--", "linewidth": 1.2, "alpha": 0.8}  # published curves
DIVERGING_CMAP = "RdBu_r"    # signed maps centred at 0
LTP_LTD_CMAP = "RdYlGn"      # ΔW maps: red = LTD, beige = converged, green = LTP
CLASS_CMAP = "tab10"         # one colour per class
# Curves that may coincide (two runs with the same result): a wide pale line under dashed and dotted ones,
# so that every curve stays visible where they overlap.
OVERLAP_STYLES = ({"linestyle": "-", "linewidth": 4.0, "alpha": 0.45}, {"linestyle": "--", "linewidth": 1.8},
                  {"linestyle": "-.", "linewidth": 1.5}, {"linestyle": ":", "linewidth": 2.2})


def overlap_style(index: int) -> dict:
    """Line settings of the ``index``-th curve of a plot whose curves may lie on top of each other."""
    return dict(OVERLAP_STYLES[index % len(OVERLAP_STYLES)])


def to_cpu(x) -> torch.Tensor:
    """A detached float CPU tensor from a tensor (any device), array, list or number."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        return (x if x.is_floating_point() else x.double()).cpu()
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def grid_shape(n: int, ncols: int | None = None) -> tuple[int, int]:
    """Rows and columns for ``n`` panels: ``ncols`` columns, or a near-square grid (25 -> 5×5)."""
    n = max(int(n), 1)
    cols = max(1, min(int(ncols), n)) if ncols else math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def image_grid(n: int, ncols: int | None = None, fig=None, title: str | None = None):
    """A figure with a grid of ``n`` image axes (ticks off); returns ``(fig, axes)`` with ``len(axes) == n``.

    Cells beyond ``n`` are not drawn. Pass ``fig`` to draw into an existing figure (it is cleared).
    """
    rows, cols = grid_shape(n, ncols)
    scale = min(CELL, MAX_GRID_WIDTH / cols)
    if fig is None:
        fig = new_figure(max(cols * scale, MIN_GRID_WIDTH), rows * scale + (0.4 if title else 0.0))
    else:
        fig.clear()
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(max(n, 1))][:n]
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return fig, axes


def panels(ncols: int = 1, fig=None, ax=None, width: float | None = None):
    """``(fig, axes)`` with ``ncols`` side-by-side panels; with ``ax`` given (one panel), draw there."""
    if ax is not None:
        if ncols != 1:
            raise ValueError(f"ax= can hold one panel only, this figure has {ncols}; pass fig= instead")
        return ax.figure, [ax]
    if fig is None:
        fig = new_figure(width or PANEL[0] * ncols, PANEL[1])
    else:
        fig.clear()
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def new_figure(width: float, height: float):
    """A pyplot figure with constrained layout (titles, colorbars and subfigures do not overlap)."""
    return plt.figure(figsize=(width, height), layout="constrained")


def integer_ticks(ax, x: bool = True, y: bool = False) -> None:
    """Only whole numbers on the chosen axes (filter indices, epochs)."""
    if x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if y:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def symmetric_limit(values: torch.Tensor) -> float:
    """``max|v|`` for a colour scale centred at 0; 1.0 when everything is 0 (so nothing divides by 0)."""
    peak = float(values.abs().max()) if values.numel() else 0.0
    return peak if peak > 0 and math.isfinite(peak) else 1.0
