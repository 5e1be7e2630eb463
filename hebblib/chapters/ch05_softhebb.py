"""Chapter 5 — Soft competition: SoftHebb.

SoftHebb (Journé et al. 2023; Nimmo eq 30, eq 32 in code form, spec nimmo-thesis §1.8–1.9) replaces the
hard winner by a softmax over the units at each position, and lets the losers learn anti-Hebbian:

    q_o = softmax_o(u_o / T)                       soft WTA, temperature T (T → 0: hard WTA)
    y_o = +q_o for the most active unit, −q_o for the others
    ΔW_o = Σ_{n,p} y_o (x_p − u_o W_o)             the SoftHebb rule; its fixed point has ‖W_o‖ = 1
    lr_o = lr · |‖W_o‖ − 1|^0.5                    the radius-dependent learning rate

The chapter trains the 3-layer SoftHebb network (the ``soft`` preset, 5,893,162 parameters) with the
pipeline and looks inside it: radii per layer, receptive fields by projected gradient ascent, and the
weight distributions.
"""
from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
from pathlib import Path

import torch
from matplotlib.figure import Figure

from .. import diagnostics as dg
from ..competitions import SoftWTA
from ..data import CIFAR10_MEAN, CIFAR10_STD
from ..errors import HebbianDivergenceError
from ..layers import HebbianConv2d
from ..plots.competition import plot_radius, plot_weight_histogram
from ..plots.receptive_fields import pga_receptive_fields, plot_receptive_fields
from ..presets import get_preset
from ..runtime import is_quick, quick_or, seed_everything, single_thread

# the published numbers, from the presets
PUBLISHED = {"nimmo_readme": get_preset("soft")["published"],
             "softhebb_paper": get_preset("softhebb_paper")["published"]}
SOURCES = {"nimmo_readme": "Nimmo & Mondragón code README, 'soft' preset, 20 classifier epochs",
           "softhebb_paper": "Journé et al. 2023 (SoftHebb paper), 50 classifier epochs, its own protocol"}
# Quick mode trains a quarter-width copy of the 'soft' preset (24 → 96 → 384 channels): the full width
# costs about 0.1 s per image per Hebbian step on a 2-core CPU, so the shipped subset alone would take minutes.
QUICK_WIDTH = 0.25
TOY_ACTIVATIONS = (2.0, 1.6, 1.1, 0.4, -0.3, -1.0)


# ----- 1. soft winner-take-all --------------------------------------------------------------------------
def soft_wta_solution(u: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Reference solution: ``q = softmax(u / T)`` over dim 1, then the sign flip: +q for the most
    active unit at each position, −q for every other unit."""
    q = torch.softmax(u / temperature, dim=1)
    winner = torch.zeros_like(u).scatter_(1, u.argmax(dim=1, keepdim=True), 1.0)
    return q * (2 * winner - 1)


def library_soft_wta(u: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """hebblib's ``SoftWTA`` competition, as a function of ``(u, T)``."""
    return SoftWTA(temperature=temperature)(u)


def soft_wta_cases():
    """Argument tuples ``(u, T)``: a vector batch and a conv-shaped batch, cold to warm temperatures."""
    g = torch.Generator().manual_seed(5)
    return [(torch.randn(4, 6, generator=g), 1.0), (torch.randn(3, 5, generator=g), 0.25),
            (torch.randn(2, 8, 3, 3, generator=g), 4.0), (torch.tensor([[3.0, 1.0, 0.5, -2.0]]), 1.0)]


def softmax_demo(temperature: float = 1.0, activations=TOY_ACTIVATIONS) -> Figure:
    """The widget: one position, a few units. Left the activations u; middle the soft-WTA shares
    q = softmax(u/T) beside the hard WTA (T → 0); right the post-synaptic signal y = ±q that the
    SoftHebb rule uses (green: Hebbian winner, red: anti-Hebbian losers)."""
    temperature = float(temperature)
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    u = torch.tensor(activations, dtype=torch.float64)[None]
    q = torch.softmax(u / temperature, dim=1)[0]
    y = soft_wta_solution(u, temperature)[0]
    hard = torch.zeros_like(q).scatter_(0, u[0].argmax()[None], 1.0)
    units = range(u.shape[1])
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    ax_u, ax_q, ax_y = fig.subplots(1, 3)
    ax_u.bar(units, u[0].numpy(), color="0.5")
    ax_u.set(title="activations $u_o$ (one position)", xlabel="unit $o$")
    ax_q.bar([o - 0.2 for o in units], q.numpy(), width=0.4, label=f"softmax($u/T$), $T$ = {temperature:.3g}")
    ax_q.bar([o + 0.2 for o in units], hard.numpy(), width=0.4, color="0.8", label="hard WTA ($T$ → 0)")
    ax_q.set(title="who learns, and how much: $q_o$", xlabel="unit $o$", ylim=(0, 1.05))
    ax_q.legend(fontsize=8)
    colors = ["tab:green" if v > 0 else "tab:red" for v in y.tolist()]
    ax_y.bar(units, y.numpy(), color=colors)
    ax_y.axhline(0, color="black", lw=0.6)
    ax_y.set(title="$y_o = \\pm q_o$ (green Hebbian, red anti-Hebbian)", xlabel="unit $o$", ylim=(-1.05, 1.05))
    entropy = float(-(q * q.clamp_min(1e-300).log()).sum() / math.log(len(q)))
    fig.suptitle(f"$T$ = {temperature:.3g} (inverse temperature {1 / temperature:.3g}): the winner's share "
                 f"{float(q.max()):.2f}, losers' total {float(1 - q.max()):.2f}, normalised entropy {entropy:.2f}")
    return fig


# ----- 2. the radius-dependent learning rate --------------------------------------------------------------
@torch.no_grad()
def _standardized_images(n: int = 256) -> torch.Tensor:
    from ..data import load_subset

    images = load_subset(True)[0][:n].float() / 255
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def radius_run(schedule: str = "radius", lr: float = 0.3, steps: int = 100, power: float = 0.5,
               units: int = 16, batch_size: int = 16, seed: int = 0) -> torch.Tensor:
    """Radii ``‖W_o‖`` after every step of a small SoftHebb conv layer (3 → ``units``, 5×5, soft WTA,
    SoftHebb's init with radii near 25, global max-normalised update) on standardised subset images.
    ``schedule``: ``'constant'`` or ``'radius'`` (``lr_o = lr · |‖W_o‖ − 1|^power``). Returns
    (steps + 1, units); a diverged run stops early (its last radii are kept)."""
    images = _standardized_images()
    layer = HebbianConv2d(3, units, 5, rule="softhebb", competition={"name": "soft_wta", "temperature": 1.0},
                          lr=lr, lr_schedule=schedule, radius_power=power, init="softhebb",
                          update_norm="global_max", generator=torch.Generator().manual_seed(seed))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed + 1))
    radii = [layer.radius().clone()]
    with single_thread(), torch.no_grad():
        for step in range(max(int(steps), 0)):
            index = order[(step * batch_size + torch.arange(batch_size)) % len(images)]
            layer(images[index])
            try:
                layer.apply_update()
            except HebbianDivergenceError:
                break
            radii.append(layer.radius().clone())
    return torch.stack(radii)


def radius_figure(lr: float = 0.3, steps: int = 100, power: float = 0.5, seed: int = 0) -> Figure:
    """Left: the per-unit rate factor |r − 1|^power. Middle and right: the radii of 16 units under a
    constant learning rate and under the radius-dependent one (same base rate)."""
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    ax_f, ax_c, ax_r = fig.subplots(1, 3)
    r = torch.linspace(0, 3, 301)
    ax_f.plot(r.numpy(), (r - 1).abs().pow(power).numpy())
    ax_f.axvline(1, color="tab:red", lw=1)
    ax_f.set(xlabel=r"radius $\|W_o\|$", ylabel=r"$\mathrm{lr}_o\,/\,\mathrm{lr}$",
             title=rf"rate factor $|\,\|W_o\| - 1\,|^{{{power:g}}}$: slow near 1")
    for ax, schedule in ((ax_c, "constant"), (ax_r, "radius")):
        radii = radius_run(schedule, lr, steps, power, seed=seed)
        ax.plot(radii.numpy(), lw=1)
        ax.axhline(1, color="tab:red", lw=1)
        ax.set_yscale("log")
        ax.set(xlabel="step (batch of 16 images)", ylabel=r"radius $\|W_o\|$ (log)",
               title=f"{schedule} lr ({lr:g}): final radii {float(radii[-1].min()):.2f}–{float(radii[-1].max()):.2f}")
    fig.suptitle("SoftHebb's fixed point has radius 1: the radius-dependent rate brings most units there "
                 "and holds them")
    return fig


# ----- 3. the network and the pipeline --------------------------------------------------------------------
def quick_preset(quick: bool | None = None) -> dict:
    """The ``soft`` preset; in quick mode at quarter width and without flip augmentation of the
    classifier (which would double the feature extraction)."""
    preset = get_preset("soft")
    if is_quick() if quick is None else quick:
        preset["model"]["width_factor"] = QUICK_WIDTH
        preset["supervised"]["augment"] = False
    return preset


def architecture_table(model) -> list[str]:
    """One line per Hebbian layer (weight shape, competition, parameters) and the totals."""
    lines = []
    for name, layer in model.hebbian_layers().items():
        comp = layer.competition
        lines.append(f"{name}: {tuple(layer.weight.shape)}  soft WTA T = {comp.temperature:.3g}  "
                     f"{layer.weight.numel():,} weights")
    head = model.classifier
    lines.append(f"head: Dropout(0.5) → Linear({head.in_features:,} → {head.out_features})  "
                 f"{head.weight.numel() + head.bias.numel():,} parameters")
    lines.append(f"total: {model.num_parameters():,} parameters")
    return lines


def train_soft(seed: int = 0, quick: bool | None = None, out=None, progress: bool | None = None) -> dict:
    """Train the (quick) ``soft`` preset with ``hebblib.training.run_preset`` and load the network back.

    Returns the pipeline's result record plus ``before`` (the network as initialised, same seed) and
    ``after`` (after the Hebbian epoch, read from the run's checkpoint), and ``preset``.
    Quick mode writes its run into a temporary folder; full mode into :func:`runs_folder` (resumable).
    """
    from ..presets import build_model, resolve_preset
    from ..training import hebbian_network, run_preset

    quick = is_quick() if quick is None else quick
    progress = (not quick) if progress is None else progress
    preset = resolve_preset(quick_preset(quick))
    temporary = out is None
    if out is None:
        out = tempfile.mkdtemp(prefix="hebblib-ch05-") if quick else runs_folder()
    # Quick mode runs on one thread: on a shared 2-core CPU the many small tensors of the classifier
    # phase are several times slower with two threads competing for the cores.
    with single_thread() if quick else contextlib.nullcontext():
        result = run_preset(preset, seed=seed, quick=quick, out=out, resume=not quick, progress=progress)
    seed_everything(seed)  # run_preset builds its model right after seeding: the same initial weights
    before = build_model(preset).eval()
    after = hebbian_network(result, preset)
    if quick and temporary:  # nothing to resume from in quick mode: leave no files behind
        shutil.rmtree(out, ignore_errors=True)
    return {**result, "before": before, "after": after.eval(), "preset": preset}


def runs_folder() -> Path:
    """Where full-mode runs go: ``$HEBBLIB_RUNS`` if set, else ``runs/`` at the repository root (ignored
    by git; the notebook's working folder is ``notebooks/``), else ``runs/`` in the working folder."""
    import os

    from ..results import RUNS_ENV, default_out

    root = _repo_root()
    if os.environ.get(RUNS_ENV, "").strip() or not (root / "pyproject.toml").is_file():
        return default_out()
    return root / "runs"


def layer_radii_figure(before, after) -> Figure:
    """The convergence monitor per layer: the radii ‖W_o‖ of every unit before (grey) and after (blue)
    the Hebbian epoch, on a log scale, with SoftHebb's fixed point at 1."""
    names = list(after.hebbian_layers())
    fig = Figure(figsize=(4.3 * len(names), 3.5), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        r0 = dg.radii_of(before.hebbian_layers()[name])
        r1 = dg.radii_of(after.hebbian_layers()[name])
        r1 = r1[torch.isfinite(r1)]
        low = max(min(float(r0.min()), float(r1.min()) if r1.numel() else 1.0, 0.5) * 0.8, 1e-6)
        high = max(float(r0.max()), float(r1.max()) if r1.numel() else 1.0, 2.0) * 1.2
        bins = torch.logspace(math.log10(low), math.log10(high), 40).numpy()
        ax.hist(r0.numpy(), bins=bins, color="0.6", alpha=0.8, label=f"initial (mean {float(r0.mean()):.2f})")
        ax.hist(r1.numpy(), bins=bins, color="C0", alpha=0.8, label=f"after (mean {float(r1.mean()):.2f})")
        ax.axvline(1, color="tab:red", lw=1)
        ax.set_xscale("log")
        ax.set(xlabel=r"radius $\|W_o\|$ (log)", ylabel="units", title=name)
        ax.legend(fontsize=8)
    fig.suptitle("Radii of every unit before and after the Hebbian epoch (red: the fixed point 1)")
    return fig


def radius_detail_figure(model, layer: str = "conv1") -> Figure:
    """``plot_radius`` of one layer of the trained network."""
    return plot_radius(model.hebbian_layers()[layer], fig=Figure(figsize=(11, 3.6), layout="constrained"))


def standardize_input(x: torch.Tensor) -> torch.Tensor:
    """The ``soft`` preset's input normalisation (per-channel CIFAR-10 mean and std), for PGA."""
    mean = torch.tensor(CIFAR10_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def receptive_fields(model, channels: int | None = None, steps: int | None = None,
                     step_size: float | None = None, progress: bool = False) -> dict:
    """PGA receptive fields (``pga_receptive_fields``) of the first ``channels`` channels of every
    block, read after its Triangle (before pooling), on an input the size of the unit's receptive field
    (5, 12 and 26 pixels for SoftHebb). Quick mode: 6 channels, 20 steps of 0.02; full mode: 25
    channels, the thesis's 500 steps of 0.001."""
    channels = quick_or(25, 6) if channels is None else channels
    steps = quick_or(500, 20) if steps is None else steps
    step_size = quick_or(1e-3, 2e-2) if step_size is None else step_size
    fields = {}
    for i, _ in enumerate(model.stages):
        target = f"stages.{i}.act"
        available = model.stages[i].conv.out_channels
        fields[f"conv{i + 1}"] = pga_receptive_fields(
            model, target=target, channels=list(range(min(channels, available))), size="rf", steps=steps,
            step_size=step_size, preprocess=standardize_input, progress=progress)
    return fields


def receptive_fields_figure(fields: dict) -> Figure:
    """One row of receptive-field images per layer (each min–max normalised)."""
    rows = len(fields)
    cols = max(f.shape[0] for f in fields.values())
    fig = Figure(figsize=(max(1.15 * cols, 6), 1.6 * rows + 0.4), layout="constrained")
    subfigs = fig.subfigures(rows, 1, squeeze=False)[:, 0]
    for sub, (name, images) in zip(subfigs, fields.items()):
        size = images.shape[-1]
        plot_receptive_fields(torch.nan_to_num(images, 0.5), ncols=cols, fig=sub,
                              title=f"{name}: {size}×{size} pixels")
    fig.suptitle("Receptive fields by projected gradient ascent (the input that most excites each channel)")
    return fig


def weight_histograms_figure(before, after) -> Figure:
    """Per layer, the distribution of the weights before and after the Hebbian epoch (histogram + KDE)."""
    names = list(after.hebbian_layers())
    fig = Figure(figsize=(4.5 * len(names), 3.4), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        plot_weight_histogram({"initial": before.hebbian_layers()[name].weight,
                               "after": after.hebbian_layers()[name].weight}, ax=ax, max_kde_points=5_000)
        ax.set_title(name)
    fig.suptitle("Weight distributions: SoftHebb makes small, distributed changes (Nimmo Fig 10)")
    return fig


# ----- 4. the full-data number, if one has been measured and committed ------------------------------------
def _repo_root() -> Path:
    from ..data.cifar import repo_root

    return repo_root()


def report_lines(result: dict, full: dict | None = None, quick: bool | None = None) -> None:
    """The quick (or full) measured number and the committed full-data number, each beside both
    published figures, saying which is which. ``full``: :func:`hebblib.results.full_data_accuracy`."""
    from ..notebook import report, report_full_data

    quick = result.get("quick") if quick is None else quick
    data = result["data"]
    if quick:
        what = (f"this run, quick mode: quarter-width 'soft' net, {data['n_train']:,} subset images, "
                f"{result['supervised']['epochs']} classifier epochs — far below the published numbers by design")
    else:
        what = (f"this run, full mode: {data['n_train']:,} training images, "
                f"{result['supervised']['epochs']} classifier epochs")
    for key in ("nimmo_readme", "softhebb_paper"):
        report(f"soft preset, max test accuracy ({what})", result["max_test_acc"], PUBLISHED[key], SOURCES[key])
    if full is None:
        print("soft preset on all of CIFAR-10 (committed results): not measured yet — run "
              "`python -m hebblib reproduce --preset soft` and record it in docs/results.md")
        return
    for key in ("nimmo_readme", "softhebb_paper"):
        report_full_data("soft preset", full, PUBLISHED[key], SOURCES[key])
