"""Chapter 9 — Competition in time and by statistics: temporal and statistical (homeostatic) thresholds.

Two competitions of Nimmo's thesis (§3.3.7; spec nimmo-thesis §1.11–1.12) gate the hard WTA by a threshold:

    temporal:     τ[h, w] = mean_o median_{last 500 samples} u[n, o, h, w],   y = top-1( u ⊙ 1[u > τ] )
    statistical:  S = conv(x, W) / ‖W_o‖,  T = mean_o S + k · std_o S,        y = top-1( S ⊙ 1[S > T] )

The original statistical mode padded its already padded input a second time (spec §7 C-7): the similarity
map then has k − 1 more rows and columns than the input grid, the Hebbian term ``YX(r)`` shrinks to a
single tap, and it is broadcast over the whole kernel — every filter learns a spatially uniform colour.
``StatisticalCompetition(double_padding=True)`` reproduces that; this module shows it and the fix.
"""
from __future__ import annotations

import torch
from matplotlib.figure import Figure

from ..layers import HebbianConv2d
from ..presets import change_preset, get_preset
from ..plots import style
from ..experiments import example_images, train_presets, train_reduced
from ..notebook import print_checks


# ----- 1. the statistical gate ----------------------------------------------------------------------------------
def statistical_gate_solution(s: torch.Tensor, k_std: float = 2.0) -> torch.Tensor:
    """The exercise's reference: keep ``s`` where it exceeds the mean plus ``k_std`` standard deviations
    over the units (dim 1, unbiased std as ``torch.std``), zero elsewhere; then keep only the largest
    surviving value per position (top-1 over dim 1)."""
    threshold = s.mean(dim=1, keepdim=True) + k_std * s.std(dim=1, keepdim=True)
    gated = s * (s > threshold).to(s.dtype)
    best = gated.argmax(dim=1, keepdim=True)
    return gated * torch.zeros_like(gated).scatter_(1, best, 1.0)


def gate_exercise_cases():
    gen = torch.Generator().manual_seed(9)
    return [(torch.randn(4, 12, 3, 3, generator=gen), 2.0), (torch.randn(2, 8, 5, 5, generator=gen), 1.0),
            (torch.randn(3, 6, generator=gen), 0.0)]


# ----- 2. the double-padding bug ------------------------------------------------------------------------------
def statistical_layer(double_padding: bool, k_std: float = 2.0, units: int = 16, seed: int = 0) -> HebbianConv2d:
    """A 5×5 first layer with padding 2 (as in the SoftHebb net), plain Hebb (so ``delta_w`` is the Hebbian
    term alone, no decay), statistical competition with or without the double padding, no update scaling."""
    competition = {"name": "statistical", "k_std": float(k_std), "k": 1, "double_padding": bool(double_padding)}
    return HebbianConv2d(3, units, 5, padding=2, padding_mode="reflect", rule="hebb", competition=competition,
                         activation="cosine", update_norm="none", generator=torch.Generator().manual_seed(seed))


def hebbian_term(double_padding: bool, k_std: float = 2.0, images: torch.Tensor | None = None) -> torch.Tensor:
    """The Hebbian term ``YX(r)`` (units, 3, 5, 5) of one batch of CIFAR-10 images."""
    layer = statistical_layer(double_padding, k_std).train()
    with torch.no_grad():
        layer(example_images(8) if images is None else images)
    return layer.delta_w.detach().clone()


def spatial_variation(delta: torch.Tensor) -> float:
    """How much the term varies over the k×k taps of each (unit, colour) pair, relative to its size:
    mean over pairs of std over taps / (mean |value| + tiny). 0 = the same value at every tap."""
    flat = delta.flatten(2)
    return float((flat.std(dim=2) / (flat.abs().mean(dim=2) + 1e-12)).mean())


def term_figure(k_std: float = 2.0, unit: int = 0) -> Figure:
    """Widget: the Hebbian term of one unit (its three colour planes) with the input padded once (the fix)
    and twice (the original code), and the spatial variation of each."""
    k_std = min(max(float(k_std), 0.0), 10.0)
    fig = Figure(figsize=(9, 5.4), layout="constrained")
    axes = fig.subplots(2, 3)
    for row, double in enumerate((False, True)):
        delta = hebbian_term(double, k_std)
        u = int(unit) % delta.shape[0]
        peak = float(delta[u].abs().max())
        limit = max(peak, 1e-12)
        for c, name in enumerate(("red", "green", "blue")):
            ax = axes[row, c]
            ax.imshow(delta[u, c].numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set(xticks=[], yticks=[], title=f"{name}")
        if peak == 0:  # say so, rather than leave three blank panels
            axes[row, 1].text(2, 2, f"0 everywhere: unit {u} never\npassed the threshold", ha="center",
                              va="center", fontsize=10)
        what = "padded twice (original)" if double else "padded once (fixed)"
        axes[row, 0].set_ylabel(f"{what}\nvariation {spatial_variation(delta):.2f}, max |term| {peak:.2g}",
                                fontsize=9)
    fig.suptitle(f"Hebbian term of unit {int(unit) % 16}, statistical threshold k = {k_std:g}")
    return fig


# ----- 3. the presets ---------------------------------------------------------------------------------------
def threshold_presets() -> dict:
    """hard WTA (baseline), temporal, statistical (fixed) and statistical as originally coded (squared winner,
    double padding)."""
    original = {"name": "statistical", "k_std": 2.0, "k": 1, "square_winner": True, "double_padding": True}
    return {"hard WTA": get_preset("hard_basic"), "temporal": get_preset("temporal"),
            "statistical (fixed)": get_preset("adaptive"),
            "statistical (as coded)": change_preset(get_preset("adaptive"), {"hebbian": {"competition": original}})}


def filter_variation(run, layer: str = "conv1") -> float:
    """:func:`spatial_variation` of a trained layer's filters minus their initial mean per (unit, colour):
    low when the filters are flat colour patches."""
    return spatial_variation(run.layer(layer).weight.detach().cpu())


def print_filter_table(runs: dict) -> None:
    print(f"{'run':26s} {'spatial variation of conv1 filters':>36s}")
    for label, run in runs.items():
        print(f"{label:26s} {filter_variation(run):36.2f}")


def summary_rows() -> list:
    once, twice = spatial_variation(hebbian_term(False)), spatial_variation(hebbian_term(True))
    return [
        ("Hebbian term with double padding: spatial variation", f"{twice:.3f}", "0 (one tap broadcast)", twice < 1e-4),
        ("Hebbian term with the fix: spatial variation", f"{once:.2f}", "> 0.1 (varies over the kernel)", once > 0.1),
    ]


# ----- 4. who wins, and when ------------------------------------------------------------------------------------
class WinnerRecorder:
    """Callback for ``train_reduced``: after every batch, how many positions each unit of ``layer`` learned
    at (its competition output y ≠ 0) — the winner distribution over time. A forward hook on the layer's
    competition reads y, so the gated competitions (temporal, statistical) count only the units that pass.
    """

    def __init__(self, layer: str = "conv1"):
        self.layer, self.counts, self.positions, self._pending = layer, [], [], None

    def start(self, net) -> None:
        competition = net.hebbian_layers()[self.layer].competition
        competition.register_forward_hook(self._hook)

    def _hook(self, module, inputs, y) -> None:
        other_dims = [d for d in range(y.dim()) if d != 1]
        self._pending = ((y.detach() != 0).sum(dim=other_dims).cpu(), y.numel() // y.shape[1])

    def __call__(self, net) -> None:
        if self._pending is not None:
            counts, positions = self._pending
            self.counts.append(counts.float())
            self.positions.append(positions)
            self._pending = None

    def matrix(self) -> torch.Tensor:
        """(batches, units): positions won per unit in every batch."""
        return torch.stack(self.counts) if self.counts else torch.empty(0, 0)


def effective_units(counts: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of each row's win shares: 1 when one unit takes every win, the number of units when all
    win equally often. (batches, units) → (batches,)."""
    share = counts / counts.sum(1, keepdim=True).clamp_min(1)
    entropy = -(share * share.clamp_min(1e-12).log()).sum(1)
    return entropy.exp()


def train_with_winners(presets: dict, **options) -> tuple[dict, dict]:
    """Quick mode: :func:`train_reduced` on each preset with a :class:`WinnerRecorder` on conv1. Full mode: the
    full runs, and no recording (the pipeline has no per-batch hooks)."""
    from ..runtime import is_quick

    if not is_quick():
        return train_presets(presets, quick=False), {}
    runs, recorders = {}, {}
    for label, preset in presets.items():
        recorders[label] = WinnerRecorder()
        runs[label] = train_reduced(preset, label, callback=recorders[label], **options)
    return runs, recorders


def winners_figure(recorders: dict, window: int = 2) -> Figure:
    """Top: for each run, the share of each unit's wins (rows: units sorted by total wins) in consecutive
    windows of ``window`` batches. Bottom: the effective number of learning units per batch."""
    recorders = {label: r for label, r in recorders.items() if r.counts}
    fig = Figure(figsize=(3.2 * max(len(recorders), 1), 5.4), layout="constrained")
    if not recorders:
        fig.text(0.5, 0.5, "no per-batch record (full mode)", ha="center")
        return fig
    grid = fig.add_gridspec(2, len(recorders), height_ratios=[2, 1])
    timeline = fig.add_subplot(grid[1, :])
    for column, (label, recorder) in enumerate(recorders.items()):
        counts = recorder.matrix()
        usable = counts.shape[0] // window * window
        windows = counts[:usable].reshape(-1, window, counts.shape[1]).sum(1) if usable else counts
        order = counts.sum(0).argsort(descending=True)
        share = windows[:, order].T / windows.sum(1).clamp_min(1)
        ax = fig.add_subplot(grid[0, column])
        image = ax.imshow(share, aspect="auto", cmap="magma", interpolation="nearest", vmin=0)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel(f"window of {window} batches")
        ax.set_ylabel("unit (by total wins)" if column == 0 else "")
        timeline.plot(range(1, counts.shape[0] + 1), effective_units(counts).numpy(), label=label,
                      **style.overlap_style(column))  # hard WTA and temporal can coincide: keep both visible
    fig.colorbar(image, ax=fig.axes[:len(recorders)], shrink=0.8, label="share of the window's wins")
    units = next(iter(recorders.values())).matrix().shape[1]
    timeline.axhline(units, color="grey", lw=0.8, ls=":")
    timeline.set_xlabel("batch")
    timeline.set_ylabel("effective learning units")
    timeline.set_title(f"exp(entropy of the win shares); dotted: all {units} units equally", fontsize=9)
    timeline.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # clear of the curves
    return fig


def winner_table(recorders: dict) -> None:
    """Per run: learning events per position (1 for a hard WTA; fewer when a gate blocks the winner), units
    that never learned, and the effective number of learning units over the first and the last quarter of
    the batches."""
    print(f"{'run':26s} {'learners per position':>22s} {'units never learning':>21s} "
          f"{'effective units: first ¼':>25s} {'last ¼':>7s}")
    for label, recorder in recorders.items():
        counts = recorder.matrix()
        if not counts.numel():
            continue
        quarter = max(counts.shape[0] // 4, 1)
        first, last = (effective_units(part.sum(0, keepdim=True)).item()
                       for part in (counts[:quarter], counts[-quarter:]))
        never = int((counts.sum(0) == 0).sum())
        per_position = counts.sum().item() / sum(recorder.positions)
        print(f"{label:26s} {per_position:22.2f} {never:>15d} of {counts.shape[1]:<3d} {first:25.1f} {last:7.1f}")


def temporal_against_baseline(directory=None) -> str:
    """One line: on how many of the committed full-data seeds ``temporal`` and ``hard_basic`` gave the same
    test accuracy at every classifier epoch (:func:`hebblib.results.same_epochs`), or that it is not measured."""
    from ..results import same_epochs

    same = same_epochs("temporal", "hard_basic", directory=directory)
    if same is None:
        return "temporal against hard_basic on all of CIFAR-10, same seeds: not measured yet"
    seeds = ", ".join(str(s) for s in same["seeds"])
    verdict = ("the same runs: the gate changed nothing the classifier sees" if same["identical"] == same["seeds"]
               else "not the same runs")
    return (f"temporal against hard_basic on all of CIFAR-10 (seeds {seeds}; protocol v{same['protocol']}, "
            f"{same['precision']}): test accuracy equal at all {same['epochs']} classifier epochs on "
            f"{len(same['identical'])} of {len(same['seeds'])} seeds — {verdict}")


__all__ = [
    "WinnerRecorder", "effective_units", "filter_variation", "gate_exercise_cases", "hebbian_term", "print_checks",
    "print_filter_table", "spatial_variation", "statistical_gate_solution", "statistical_layer", "summary_rows",
    "temporal_against_baseline", "term_figure", "threshold_presets", "train_with_winners", "winner_table",
    "winners_figure",
]
