"""Training curves: a live figure that updates in place in a notebook, and its static twin.

A history is either a dict of lists (``{"epoch": [1, 2], "test_acc": [0.61, 0.65]}``) or a list of
dicts, one per step (``[{"epoch": 1, "test_acc": 0.61}, ...]``). The x values come from the first
of the keys ``step``, ``epoch``, ``iteration``, ``batch`` that is present, else 1, 2, 3, ... Metrics
whose name contains "loss" get their own panel. A dict value may also be an ``(xs, ys)`` pair.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from matplotlib.figure import Figure

from . import style

X_KEYS = ("step", "epoch", "iteration", "batch")


def _number(value):
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu().reshape(-1)[0]) if value.numel() == 1 else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _is_xy_pair(values) -> bool:
    return (isinstance(values, tuple) and len(values) == 2
            and all(isinstance(v, (Sequence, torch.Tensor)) and not isinstance(v, str) for v in values))


def curve_series(history) -> dict[str, tuple[list, list]]:
    """Normalise a history (see the module docstring) into ``{metric: (xs, ys)}``, skipping
    missing (None) and non-numeric values."""
    series: dict[str, tuple[list, list]] = {}

    def put(name, x, y):
        y, x = _number(y), _number(x)
        if y is not None:
            xs, ys = series.setdefault(name, ([], []))
            xs.append(x if x is not None else len(xs) + 1)
            ys.append(y)

    if isinstance(history, Mapping):
        xkey = next((k for k in X_KEYS if k in history), None)
        for name, values in history.items():
            if name == xkey:
                continue
            if _is_xy_pair(values):
                xs, ys = values
            else:
                ys = list(values) if not isinstance(values, torch.Tensor) else values.flatten().tolist()
                xs = list(history[xkey]) if xkey else range(1, len(ys) + 1)
            for x, y in zip(xs, ys):
                put(name, x, y)
    elif isinstance(history, Sequence):
        xkey = next((k for k in X_KEYS if any(k in r for r in history)), None)
        for i, record in enumerate(history):
            for name, y in record.items():
                if name != xkey:
                    put(name, record.get(xkey, i + 1) if xkey else i + 1, y)
    else:
        raise TypeError(f"history must be a dict of lists or a list of dicts, got {type(history).__name__}")
    return series


def plot_curves(history, reference=None, title: str | None = None, xlabel: str | None = None,
                ax=None, fig=None):
    """Plot training curves; losses on a panel of their own.

    Args:
        history: a dict of lists or a list of dicts (see the module docstring).
        reference: curves to compare with, drawn dashed, in the same format, e.g. the published
            per-epoch test accuracy ``{"paper: SoftHebb-Optimal": [0.6703, 0.6922, ...]}``.
        ax: draw everything on this one axes. fig: draw into this (cleared) figure.
    """
    curves = curve_series(history)
    references = curve_series(reference) if reference is not None else {}
    is_loss = lambda name: "loss" in name.lower()  # noqa: E731
    # Panels: (curve names, reference names); losses apart from everything else.
    groups = [([n for n in curves if is_loss(n) == loss], [n for n in references if is_loss(n) == loss])
              for loss in (False, True)]
    groups = [g for g in groups if g[0] or g[1]] or [([], [])]
    if ax is not None:
        groups = [(list(curves), list(references))]
    fig, axes = style.panels(len(groups), fig=fig, ax=ax)
    if xlabel is None:
        keys = history.keys() if isinstance(history, Mapping) else (history[0].keys() if history else ())
        xlabel = next((k for k in X_KEYS if k in keys), "step")
    for panel, (names, reference_names) in zip(axes, groups):
        for name in names:
            xs, ys = curves[name]
            panel.plot(xs, ys, marker="o" if len(xs) <= 30 else None, markersize=3, label=name)
        for name in reference_names:
            xs, ys = references[name]
            label = f"{name} (reference)" if name in curves else name
            panel.plot(xs, ys, color="gray" if len(references) == 1 else None, label=label,
                       **style.REFERENCE_STYLE)
        panel.set_xlabel(xlabel)
        if names or reference_names:
            panel.legend(fontsize=8)
            panel.set_ylabel("loss" if all(is_loss(n) for n in names + reference_names) else "value")
        panel.grid(alpha=0.3)
        if all(float(x).is_integer() for n in names for x in curves[n][0]):
            style.integer_ticks(panel)
    if title:
        fig.suptitle(title)
    return fig


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (where display handles can update an output in place)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class LiveCurves:
    """A training-curve figure that redraws in place while a notebook cell runs.

    Example::

        curves = LiveCurves(reference={"paper": published_test_acc}, xlabel="epoch")
        for epoch in range(1, epochs + 1):
            ...
            curves.add(epoch, train_acc=train_acc, test_acc=test_acc, loss=loss)

    Outside a notebook (a script, pytest) nothing is displayed; the values are still stored in
    :attr:`records` and :meth:`figure` draws them. The figure is not registered with pyplot, so a
    notebook does not show it a second time at the end of the cell.

    Args:
        reference: reference curves, as in :func:`plot_curves`.
        every: redraw after every ``every``-th :meth:`add` (redrawing costs ~0.1 s).
        live: display and update in place; default: when running inside a Jupyter kernel.
    """

    def __init__(self, reference=None, title: str | None = None, xlabel: str = "step", every: int = 1,
                 live: bool | None = None):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        self.reference, self.title, self.xlabel, self.every = reference, title, xlabel, every
        self.live = _in_notebook() if live is None else bool(live)
        self.records: list[dict] = []
        self._fig = None
        self._handle = None

    def add(self, step, **metrics) -> None:
        """Record ``metrics`` (numbers or one-element tensors) at ``step``; redraw when live."""
        self.records.append({"step": _number(step), **{k: _number(v) for k, v in metrics.items()}})
        if self.live and len(self.records) % self.every == 0:
            self.refresh()

    @property
    def history(self) -> dict[str, list]:
        """The records as a dict of lists (``None`` where a metric was not given at a step)."""
        names = list(dict.fromkeys(k for r in self.records for k in r))
        return {name: [r.get(name) for r in self.records] for name in names}

    def figure(self) -> Figure:
        """The figure with every value so far (the same ``Figure`` object each time)."""
        if self._fig is None:
            self._fig = Figure(figsize=(2 * style.PANEL[0], style.PANEL[1]), layout="constrained")
        return plot_curves(self.records, self.reference, self.title, self.xlabel, fig=self._fig)

    def refresh(self) -> None:
        """Redraw now and update the displayed output (shows it the first time)."""
        from IPython.display import display

        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"LiveCurves({len(self.records)} records, live={self.live})"
