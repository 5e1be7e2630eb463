"""Chapter 6 — Krotov–Hopfield: competing hidden units.

Krotov & Hopfield (2019), as taught by Manzali (2021; spec miconi-lunelli-manzali Part 3):

    I_μb = <W_μ, v_b>_p = Σ_i sgn(W_μi) |W_μi|^(p−1) v_bi          p-norm currents
    g_μb = 1 for the unit with the highest current of sample b,
           −Δ for the unit ranked k-th, 0 for the others              ranking competition
    ΔW_μ = Σ_b g_μb v_b − (Σ_b g_μb I_μb) W_μ                        Hebbian term − normalisation term

The normalisation term drives every unit that learns onto the p-sphere Σ_i |W_μi|^p = 1 (the fixed point,
not a projection). In the library the same rule is ``HebbianConv2d``/``HebbianLinear`` with
``rule='softhebb'`` (r = g, s = g·I), ``competition='krotov'`` and ``lebesgue_p=p``.

The chapter runs Manzali's 3-sample toy example, measures how often it converges with and without
standardising the inputs, and trains his one-layer convolutional network on CIFAR-10.
"""
from __future__ import annotations

import contextlib
import functools
import math

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from ..classifier import extract_features, linear_probe, probe_summary
from ..layers import HebbianConv2d, HebbianLinear
from ..networks import HebbianNet, build_network
from ..plots.filters import plot_filters
from ..runtime import is_quick, quick_or, single_thread
from ..weights import init_weight

# The toy batch of the slides (rows = samples v1, v2, v3).
TOY_V = ((0.10, 0.20, 0.30, 0.40), (0.10, 0.30, 0.30, 0.10), (0.40, 0.10, 0.10, 0.40))
TOY = {"p": 2.0, "k": 2, "delta": 0.4, "lr": 0.1, "iterations": 200, "tol": 0.05}
NORMALISATIONS = ("none", "per_sample", "per_feature")
# Spec §3.3 [SIM]: converged initialisations out of 200 (seed 1), per normalisation.
SPEC_COUNTS = {"none": 33, "per_sample": 110, "per_feature": 163}
# The documented initialisation of the chapter (and of the tests): on the raw inputs one unit wins every
# sample and another never reaches the p-sphere; once the features are standardised all three converge
# (the story of the slides' Figs 6–9).
TOY_SEED = 14
# Manzali Table 1 (test accuracy after n Bio layers + a linear classifier; val 66.97 for n = 1).
MANZALI_TABLE = {1: 66.21, 2: 65.22, 3: 63.08, 4: 58.86, 5: 45.45}
MANZALI_SOURCE = "Manzali 2021, Table 1 (1 layer: p = 2, k = 9, Δ = 0.08, dropout 0.2; 40k train images)"
ONE_LAYER = {"p": 2.0, "k": 9, "delta": 0.08, "dropout": 0.2, "lr_start": 0.007, "lr_end": 1e-4, "decay": 0.8}


# ----- 1. currents and ranking ---------------------------------------------------------------------------
def toy_inputs(normalisation: str = "none") -> torch.Tensor:
    """The slides' batch V (3 samples × 4 inputs, float64): raw; each sample standardised over its
    inputs (``per_sample``); or each input standardised over the batch (``per_feature``, BatchNorm)."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {normalisation!r}; valid choices: "
                         f"{', '.join(map(repr, NORMALISATIONS))}")
    v = torch.tensor(TOY_V, dtype=torch.float64)
    if normalisation == "per_sample":
        return (v - v.mean(1, keepdim=True)) / v.std(1, unbiased=False, keepdim=True)
    if normalisation == "per_feature":
        return (v - v.mean(0)) / v.std(0, unbiased=False)
    return v


def p_weights(W: torch.Tensor, p: float) -> torch.Tensor:
    """``sgn(W) |W|^(p−1)``: what the p-inner product multiplies the input by."""
    return W.sign() * W.abs().pow(p - 1)


def krotov_signals_solution(W: torch.Tensor, V: torch.Tensor, p: float, k: int, delta: float) -> torch.Tensor:
    """Reference solution of the exercise. ``W`` (units, inputs), ``V`` (samples, inputs). Returns
    ``torch.stack([I, g])``, both (units, samples): the currents and the ranking activations."""
    currents = p_weights(W, p) @ V.T
    ranked = currents.topk(k, dim=0).indices  # (k, samples): units by decreasing current
    g = torch.zeros_like(currents)
    g.scatter_(0, ranked[:1], 1.0)
    g.scatter_(0, ranked[k - 1:k], -delta)
    return torch.stack([currents, g])


def krotov_exercise_cases():
    """Argument tuples ``(W, V, p, k, Δ)``: the slides' toy, a wider layer and a larger batch."""
    g = torch.Generator().manual_seed(11)
    return [(torch.randn(3, 4, generator=g, dtype=torch.float64), toy_inputs(), 2.0, 2, 0.4),
            (torch.randn(5, 4, generator=g, dtype=torch.float64), toy_inputs("per_feature"), 3.0, 3, 0.2),
            (torch.randn(6, 8, generator=g, dtype=torch.float64), torch.randn(10, 8, generator=g, dtype=torch.float64),
             4.5, 4, 0.1)]


def toy_weights(seed: int = TOY_SEED, runs: int | None = None) -> torch.Tensor:
    """Initial weights W ~ N(0, 1) of the toy's 3 units (float64): (3, 4), or (runs, 3, 4)."""
    shape = (3, 4) if runs is None else (runs, 3, 4)
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def toy_terms(W: torch.Tensor, V: torch.Tensor, p: float = 2.0, k: int = 2, delta: float = 0.4) -> dict:
    """One step of the rule, term by term: currents I, activations g, the Hebbian term g·V, the
    normalisation term −(Σ_b g·I)·W and their sum ΔW."""
    currents, g = krotov_signals_solution(W, V, p, k, delta)
    hebbian = g @ V
    normalisation = -(g * currents).sum(1, keepdim=True) * W
    return {"I": currents, "g": g, "hebbian": hebbian, "normalisation": normalisation,
            "delta_w": hebbian + normalisation}


# ----- 2. the toy dynamics, many initialisations at once ---------------------------------------------------
def toy_dynamics(W0: torch.Tensor, V: torch.Tensor, p: float = 2.0, k: int = 2, delta: float = 0.4,
                 lr: float = 0.1, iterations: int = 200) -> dict:
    """Full-batch Krotov–Hopfield updates ``W ← W + lr·ΔW`` (no update normalisation) for a stack of
    initialisations ``W0`` (runs, units, inputs), all at once.

    Returns ``W`` (the final weights), ``radius`` (iterations + 1, runs, units) = Σ_i |W_μi|^p,
    ``currents`` (iterations + 1, runs, units, samples) and ``diverged`` (runs,): a run whose weights
    become non-finite or larger than 1e6 is frozen at its last finite state and flagged.
    """
    with single_thread():  # tiny tensors: one thread avoids waiting on the other core at every op
        return _toy_dynamics(W0, V, p, k, delta, lr, iterations)


def _toy_dynamics(W0, V, p, k, delta, lr, iterations) -> dict:
    W = W0.clone().to(torch.float64)
    single = W.dim() == 2
    W = W[None] if single else W
    V = V.to(torch.float64)
    k = int(k)
    if not 2 <= k <= W.shape[1]:
        raise ValueError(f"k must be between 2 and the number of units ({W.shape[1]}), got {k!r}")
    diverged = torch.zeros(W.shape[0], dtype=torch.bool)
    radius, currents = [W.abs().pow(p).sum(-1)], []
    for _ in range(max(int(iterations), 0)):
        I = p_weights(W, p) @ V.T  # (runs, units, samples)
        currents.append(I)
        ranked = I.topk(k, dim=1).indices
        g = torch.zeros_like(I).scatter_(1, ranked[:, :1], 1.0).scatter_(1, ranked[:, k - 1:k], -delta)
        new = W + lr * (g @ V - (g * I).sum(-1, keepdim=True) * W)
        ok = torch.isfinite(new).flatten(1).all(1) & (new.abs().flatten(1).amax(1) < 1e6) & ~diverged
        diverged |= ~ok
        W = torch.where(ok[:, None, None], new, W)
        radius.append(W.abs().pow(p).sum(-1))
    currents.append(p_weights(W, p) @ V.T)
    out = {"W": W, "radius": torch.stack(radius), "currents": torch.stack(currents), "diverged": diverged}
    if single:
        out = {"W": W[0], "radius": out["radius"][:, 0], "currents": out["currents"][:, 0], "diverged": diverged[0]}
    return out


def converged(radius: torch.Tensor, tol: float = TOY["tol"]) -> torch.Tensor:
    """True where every unit ends within ``tol`` of the p-sphere: |Σ_i |W_μi|^p − 1| < tol (last step)."""
    return ((radius[-1] - 1).abs() < tol).all(-1)


def convergence_counts(runs: int = 200, seed: int = 1, p: float = 2.0, k: int = 2, delta: float = 0.4,
                       lr: float = 0.1, iterations: int = 200, tol: float = TOY["tol"]) -> dict:
    """How many of ``runs`` random initialisations W ~ N(0, 1) (seeded) converge, for each input
    normalisation (the same initialisations for all three)."""
    W0 = toy_weights(seed, runs)
    counts = {}
    for norm in NORMALISATIONS:
        result = toy_dynamics(W0, toy_inputs(norm), p, k, delta, lr, iterations)
        counts[norm] = int((converged(result["radius"], tol) & ~result["diverged"]).sum())
    return counts


def library_toy_difference(seed: int = TOY_SEED, normalisation: str = "per_feature", iterations: int = 200) -> float:
    """The same dynamics through ``HebbianLinear(4, 3, rule='softhebb', competition='krotov',
    lebesgue_p=2, update_norm='none')``: max |W_library − W_by_hand| after ``iterations`` steps."""
    V = toy_inputs(normalisation)
    layer = HebbianLinear(4, 3, rule="softhebb", competition={"name": "krotov", "k": TOY["k"], "delta": TOY["delta"]},
                          lebesgue_p=TOY["p"], update_norm="none", lr=TOY["lr"]).double()
    W0 = toy_weights(seed)
    with torch.no_grad():
        layer.weight.copy_(W0)
    with single_thread():
        for _ in range(iterations):
            layer(V)
            layer.apply_update()
    by_hand = toy_dynamics(W0, V, TOY["p"], TOY["k"], TOY["delta"], TOY["lr"], iterations)["W"]
    return float((layer.weight.detach() - by_hand).abs().max())


# ----- figures of the toy ----------------------------------------------------------------------------------
def _heatmap(ax, matrix: torch.Tensor, title: str, xlabel: str = "sample b", ylabel: str = "unit μ",
             cmap: str = "RdBu_r", marks=None):
    m = matrix.detach().double()
    limit = float(m.abs().max()) if bool(torch.isfinite(m).all()) and float(m.abs().max()) > 0 else 1.0
    ax.imshow(m.numpy(), cmap=cmap, vmin=-limit, vmax=limit)
    for (i, j), value in ((ij, float(m[ij])) for ij in ((a, b) for a in range(m.shape[0]) for b in range(m.shape[1]))):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="white" if abs(value) > 0.6 * limit else "black")  # readable on the dark ends
    if marks is not None:
        for (i, j), color in marks:
            ax.plot(j, i - 0.32, marker="x", color=color, ms=9, mew=2.5)
    ax.set(xticks=range(m.shape[1]), yticks=range(m.shape[0]), xlabel=xlabel, ylabel=ylabel, title=title)
    ax.set_xticklabels([f"{t + 1}" for t in range(m.shape[1])])
    ax.set_yticklabels([f"{t + 1}" for t in range(m.shape[0])])


def toy_step_figure(seed: int = TOY_SEED, normalisation: str = "none") -> Figure:
    """The slides' Figs 2–5 for one initialisation: currents (× red: highest, × orange: k-th), the
    activations g, and the update's Hebbian term, normalisation term and total."""
    terms = toy_terms(toy_weights(seed), toy_inputs(normalisation), TOY["p"], TOY["k"], TOY["delta"])
    ranked = terms["I"].topk(TOY["k"], dim=0).indices
    marks = [((int(ranked[0, b]), b), "red") for b in range(3)] + \
            [((int(ranked[TOY["k"] - 1, b]), b), "orange") for b in range(3)]
    fig = Figure(figsize=(15, 3.4), layout="constrained")
    axes = fig.subplots(1, 5)
    _heatmap(axes[0], terms["I"], r"currents $I_{\mu b}$", marks=marks)
    _heatmap(axes[1], terms["g"], r"activations $g_{\mu b}$", marks=marks)
    for ax, key, title in zip(axes[2:], ("hebbian", "normalisation", "delta_w"),
                              (r"Hebbian term $\Sigma_b g_{\mu b} v_b$", r"normalisation $-\Sigma_b g_{\mu b} I_{\mu b}\, W_\mu$", r"$\Delta W$ (sum)")):
        _heatmap(ax, terms[key], title, xlabel="input i")
    fig.suptitle(f"One step of the rule (p = {TOY['p']:g}, k = {TOY['k']}, Δ = {TOY['delta']}; inputs: "
                 f"{normalisation}, initialisation seed {seed})")
    return fig


def toy_runs_figure(seed: int = TOY_SEED) -> Figure:
    """200 iterations from the same initialisation on raw and on per-feature standardised inputs: each
    unit's Σ|W|^p, and the currents of every unit for every sample (the slides' Figs 6–9)."""
    W0 = toy_weights(seed)
    fig = Figure(figsize=(14, 6.2), layout="constrained")
    rows = fig.subfigures(2, 1)
    for row, norm in zip(rows, ("none", "per_feature")):
        result = toy_dynamics(W0, toy_inputs(norm), TOY["p"], TOY["k"], TOY["delta"], TOY["lr"], TOY["iterations"])
        axes = row.subplots(1, 4)
        for unit in range(3):
            axes[0].plot(result["radius"][:, unit].numpy(), color=f"C{unit}", label=f"unit {unit + 1}")
        axes[0].axhline(1, color="0.3", ls=":")
        axes[0].set(xlabel="iteration", ylabel=r"$\Sigma_i |W_{\mu i}|^p$", title="distance to the p-sphere")
        axes[0].legend(fontsize=8)
        for b in range(3):
            for unit in range(3):
                axes[b + 1].plot(result["currents"][:, unit, b].numpy(), color=f"C{unit}")
            axes[b + 1].set(xlabel="iteration", ylabel=r"current $I_{\mu b}$", title=f"sample {b + 1}")
        ok = bool(converged(result["radius"]))
        row.suptitle(f"inputs {norm}: {'converged' if ok else 'NOT converged'} "
                     rf"(final $\Sigma_i |W_{{\mu i}}|^p$ = {', '.join(f'{float(r):.2f}' for r in result['radius'][-1])})")
    return fig


def toy_demo(p: float = 2.0, k: int = 2, delta: float = 0.4, normalisation: str = "per_feature",
             seed: int = TOY_SEED, runs: int = 50) -> Figure:
    """The widget: the toy with the chosen p, k, Δ and input normalisation. Left: Σ|W|^p of each unit
    over the iterations (initialisation ``seed``); middle: the learned weights; right: the final
    Σ|W|^p of every unit over ``runs`` initialisations, and how many converged. Diverging runs are
    stopped and reported; nothing non-finite is drawn."""
    p, k, delta = max(float(p), 1.0), max(2, min(int(k), 3)), max(float(delta), 0.0)
    V = toy_inputs(normalisation)
    one = toy_dynamics(toy_weights(seed), V, p, k, delta, TOY["lr"], TOY["iterations"])
    many = toy_dynamics(toy_weights(seed + 1000, runs), V, p, k, delta, TOY["lr"], TOY["iterations"])
    ok = converged(many["radius"]) & ~many["diverged"]
    fig = Figure(figsize=(14, 3.8), layout="constrained")
    ax_r, ax_w, ax_all = fig.subplots(1, 3, width_ratios=(1.2, 1, 1.2))
    radius = one["radius"].clamp(max=1e6)
    for unit in range(3):
        ax_r.plot(radius[:, unit].numpy(), color=f"C{unit}", label=f"unit {unit + 1}")
    ax_r.axhline(1, color="0.3", ls=":")
    ax_r.set(xlabel="iteration", ylabel=r"$\Sigma_i |W_{\mu i}|^p$", title=f"seed {seed}: " + (
        "diverged (stopped)" if bool(one["diverged"]) else
        ("converged" if bool(converged(one["radius"])) else "not converged")))
    if float(radius.max()) > 30 * max(float(radius.min()), 1e-12):
        ax_r.set_yscale("log")
    ax_r.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # off the curves
    _heatmap(ax_w, one["W"], "learned weights W", xlabel="input i")
    final = many["radius"][-1].clamp(max=1e6)
    for unit in range(3):
        ax_all.scatter(torch.arange(runs).numpy(), final[:, unit].numpy(), s=8, color=f"C{unit}")
    ax_all.axhline(1, color="0.3", ls=":")
    ax_all.set(xlabel="initialisation", ylabel=r"final $\Sigma_i |W_{\mu i}|^p$",
               title=f"{int(ok.sum())}/{runs} initialisations converged")
    if float(final.max()) > 30 * max(float(final.min()), 1e-12):
        ax_all.set_yscale("log")
    fig.suptitle(f"p = {p:g}, k = {k}, Δ = {delta:g}, inputs {normalisation}, η = {TOY['lr']}, "
                 f"{TOY['iterations']} iterations")
    return fig


# ----- 3. the convolutional layer ---------------------------------------------------------------------------
def krotov_conv(p: float = 2.0, k: int = 9, delta: float = 0.08, out_channels: int = 96,
                update_norm: str = "per_filter", lr: float = 0.007, seed: int = 0) -> HebbianConv2d:
    """Manzali's BioConv2d as a hebblib layer: 3 → ``out_channels``, 5×5, p-norm currents, Krotov ranking
    across kernels at every patch, the SoftHebb/Krotov rule, ΔW max-normalised per filter."""
    return HebbianConv2d(3, out_channels, 5, rule="softhebb", competition={"name": "krotov", "k": k, "delta": delta},
                         lebesgue_p=p, update_norm=update_norm, lr=lr, init="unit_norm",
                         generator=torch.Generator().manual_seed(seed))


def conv_versus_patches(seed: int = 0, p: float = 3.0, k: int = 3, delta: float = 0.2) -> float:
    """A conv layer is the fully connected rule applied to every patch: the raw update a Krotov
    ``HebbianConv2d`` accumulates on a small batch equals the toy formulas (``krotov_signals_solution``)
    applied to the unfolded patches as samples. Returns the max |difference| (float64)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64)
    layer = krotov_conv(p, k, delta, out_channels=6, update_norm="none", seed=seed).double()
    layer(x)
    W = layer.weight.detach().flatten(1)
    patches = F.unfold(x, 5).transpose(1, 2).reshape(-1, W.shape[1])  # every patch of every image: a sample
    currents, g_act = krotov_signals_solution(W, patches, p, k, delta)
    by_patches = g_act @ patches - (g_act * currents).sum(1, keepdim=True) * W
    return float((layer.delta_w.flatten(1) - by_patches).abs().max())


def manzali_lr(step: int, batches_per_epoch: int, start: float = ONE_LAYER["lr_start"],
               end: float = ONE_LAYER["lr_end"], decay: float = ONE_LAYER["decay"]) -> float:
    """Manzali's per-batch schedule ``η(t) = end − (end − start) · exp(−λ t / batches_per_epoch)``."""
    return end - (end - start) * math.exp(-decay * step / max(batches_per_epoch, 1))


LAYER_INITS = ("unit_norm", "randn")


def one_layer_net(seed: int = 0, p: float = ONE_LAYER["p"], k: int = ONE_LAYER["k"],
                  delta: float = ONE_LAYER["delta"], dropout: float = ONE_LAYER["dropout"],
                  init: str = "unit_norm") -> HebbianNet:
    """Manzali's one-layer network: BN(3) → Krotov conv 3→96 5×5 → ReLU → MaxPool 2 → BN(96)
    (the first block of the library's ``krotov_hopfield`` architecture, with the one-layer settings of
    Table 1) and a Dropout + Linear head on the 96×14×14 = 18,816 features.

    ``init``: ``'unit_norm'`` (the library's Krotov default: N(0, 1) rows scaled onto the unit sphere, so the
    layer starts converged) or ``'randn'`` (biopytorch's ``torch.randn``: N(0, 1) entries, ‖W_μ‖² ≈ 75, which
    the normalisation term has to bring down to 1)."""
    from ..errors import check_choice

    check_choice("init", init, LAYER_INITS)
    generator = torch.Generator().manual_seed(seed)
    stage1 = {"lebesgue_p": p, "competition": {"name": "krotov", "k": k, "delta": delta}}
    full = build_network("krotov_hopfield", layers=[stage1, {}, {}, {}, {}], generator=generator)
    block = full.stages[0]
    if init == "randn":
        init_weight(block.conv.weight, "normal", std=1.0, generator=torch.Generator().manual_seed(seed))
    channels = block.conv.out_channels
    return HebbianNet([block, nn.BatchNorm2d(channels, affine=False)], dropout=dropout, head_init="default",
                      architecture="krotov_hopfield_1layer", generator=generator)


def sphere_distance(layer) -> float:
    """Manzali's convergence measure ``max_μ |Σ_i |W_μi|^p − 1|`` (≤ 0.01: converged)."""
    w = layer.weight.detach().flatten(1)
    return float((w.abs().pow(layer.lebesgue_p).sum(1) - 1).abs().max())


def train_krotov_layer(net: HebbianNet, data, epochs: int, batch_size: int = 64, seed: int = 0,
                       tol: float = 0.01, progress: bool = False) -> list[dict]:
    """Hebbian training of the one-layer net with Manzali's per-batch learning-rate schedule, recording
    the convergence measure after every batch; stops at the end of an epoch once it is ≤ ``tol``.

    (``hebblib.training.train_hebbian`` runs the same forward/apply loop at a fixed rate; the schedule
    and the per-batch record are why this loop is written out here.)
    """
    from tqdm.auto import tqdm

    layer = net.stages[0].conv
    per_epoch = -(-len(data) // batch_size)
    generator = torch.Generator().manual_seed(seed + 5)
    history, step = [], 0
    net.train()
    for epoch in range(epochs):
        batches = data.batches(batch_size, shuffle=True, augment=True, generator=generator)
        for x, _ in tqdm(batches, total=per_epoch, desc=f"Krotov layer, epoch {epoch + 1}", disable=not progress,
                         leave=False):
            layer.lr = manzali_lr(step, per_epoch)
            with torch.no_grad():
                net.features(x)
            net.apply_updates()
            step += 1
            history.append({"epoch": epoch + 1, "batch": step, "lr": layer.lr, "distance": sphere_distance(layer)})
        if history[-1]["distance"] <= tol:
            break
    net.eval()
    return history


PROBE_LR = 1e-4  # Adam on 18,816 features: the pipeline's default 1e-3 overshoots (the loss climbs)


def probe(net: HebbianNet, data, epochs: int, seed: int = 0, lr: float = PROBE_LR) -> dict:
    """The library's linear probe (Adam at ``lr``, no augmentation) on the net's Dropout + Linear head,
    seeded: the head is re-initialised from ``seed`` first, so two calls give the same numbers (it used to
    go on from the head a previous call had trained)."""
    history = linear_probe(net, *data, epochs=epochs, lr=lr, head=nn.Sequential(net.dropout, net.classifier),
                           seed=seed, dtype=torch.float32, progress=False)
    return probe_summary(history)


READOUTS = ("crop_flip", "flip", "none")


def manzali_classifier(net: HebbianNet, data, epochs: int = 30, lr: float = 0.05, seed: int = 0,
                       augment: str = "crop_flip", batch_size: int = 64, progress: bool = False) -> dict:
    """Manzali's read-out (spec miconi-lunelli-manzali §3.6): the net frozen, its Dropout + Linear head
    trained by SGD (momentum 0.9, ``lr``) with ``CosineAnnealingWarmRestarts(T_0=10, T_mult=2)``; the
    features are standardised with the training images' mean and std per feature (a BatchNorm in eval
    mode). Cosine cycles end after epochs 10, 30, 70 and 150 (Manzali ran 150 and kept the best-validation
    checkpoint). ``augment``:

    * ``'crop_flip'`` (Manzali): reflect-pad 4 + random 32×32 crop + random flip, features recomputed
      every epoch — a forward pass over the training images per epoch;
    * ``'flip'``: features of the images and of their mirror images computed once, one of the two drawn
      per sample and epoch (the pipeline's cheap form of the flips);
    * ``'none'``: features computed once.

    Returns the same keys as :func:`probe`."""
    from tqdm.auto import tqdm

    from ..augment import random_crop, random_flip
    from ..errors import check_choice

    check_choice("augment", augment, READOUTS)
    train, val, test = data
    net.eval()
    extract = lambda split, flip=False: extract_features(net, split, flip=flip, dtype=torch.float32,  # noqa: E731
                                                         progress=progress, desc="features")
    cached = extract(train)
    mean, std = cached.mean(0), cached.std(0) + 1e-5
    mirrored = extract(train, flip=True) if augment == "flip" else None
    fixed = {name: ((extract(split) - mean) / std, split.labels) for name, split in (("val", val), ("test", test))}
    torch.manual_seed(seed)
    head = nn.Sequential(net.dropout, net.classifier)
    optimizer = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9)
    schedule = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=10, T_mult=2)
    generator = torch.Generator().manual_seed(seed + 7)
    history = []
    for epoch in tqdm(range(epochs), desc="Manzali read-out", disable=not progress, leave=False):
        head.train()
        order = torch.randperm(len(train), generator=generator).to(cached.device)
        flips = (torch.rand(len(train), generator=generator) < 0.5).to(cached.device)
        for start in range(0, len(train), batch_size):
            index = order[start:start + batch_size]
            y = train.labels[index]
            if augment == "crop_flip":
                x, _ = train.get(index)
                x = random_flip(random_crop(x, 4, generator), generator)
                with torch.no_grad():
                    features = net.features(x)
            elif augment == "flip":
                features = torch.where(flips[index].unsqueeze(1), mirrored[index], cached[index])
            else:
                features = cached[index]
            loss = F.cross_entropy(head((features - mean) / std), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
        head.eval()
        with torch.no_grad():
            accuracy = {name: 100.0 * float((head(f).argmax(1) == labels).float().mean())
                        for name, (f, labels) in fixed.items()}
        history.append({"epoch": epoch + 1, "val_acc": accuracy["val"], "test_acc": accuracy["test"]})
    best = max(history, key=lambda h: h["val_acc"])
    return {"final_test_acc": history[-1]["test_acc"], "test_acc_at_best_val": best["test_acc"],
            "best_val_acc": best["val_acc"], "history": history}


@functools.lru_cache(maxsize=2)
def load_data(source: str | None = None):
    """``(train, val, test)`` with pixels on [0, 1] (the BN inside the block normalises, as Manzali's)."""
    from ..training import load_splits, resolve_source

    if source is None:
        source, notice = resolve_source("auto", quick=is_quick())
        if notice:
            print(notice)
    return load_splits({"normalization": "none"}, source=source)


FULL_RESULT = "ch06_krotov_one_layer"  # docs/results/chapters/<name>.json, written by scripts/chapter_full.py


def run_one_layer(epochs: int | None = None, probe_epochs: int | None = None, seed: int = 0, source=None,
                  progress: bool | None = None, readout: str | None = None, init: str | None = None) -> dict:
    """Train Manzali's one-layer network and read it out.

    Quick mode: unit-norm init, 2 Hebbian epochs on the shipped subset, then the pipeline's Adam probe for
    10 epochs (``readout='adam'``). Full mode (Manzali's protocol, which measured 65.97 % against his
    66.21 %): ``torch.randn`` init, 2 Hebbian epochs on all of CIFAR-10, then Manzali's SGD read-out
    (:func:`manzali_classifier`, ``readout`` = its ``augment``, default ``'crop_flip'``) for 30 epochs, the
    end of the second cosine cycle."""
    quick = is_quick()
    epochs = 2 if epochs is None else epochs
    readout = ("adam" if quick else "crop_flip") if readout is None else readout
    init = ("unit_norm" if quick else "randn") if init is None else init
    probe_epochs = (10 if readout == "adam" else 30) if probe_epochs is None else probe_epochs
    progress = (not quick) if progress is None else progress
    data = load_data(source)
    net = one_layer_net(seed, init=init)
    # Quick mode on one thread: on a shared 2-core CPU two threads mostly wait for each other.
    with single_thread() if quick else contextlib.nullcontext():
        history = train_krotov_layer(net, data[0], epochs, seed=seed, progress=progress)
        if readout == "adam":
            result = probe(net, data, probe_epochs, seed=seed)
        else:
            result = manzali_classifier(net, data, probe_epochs, seed=seed, augment=readout, progress=progress)
    return {**result, "net": net, "layer": net.stages[0].conv, "hebbian_history": history, "readout": readout,
            "n_train": len(data[0]), "n_test": len(data[2]), "epochs_run": history[-1]["epoch"] if history else 0,
            "init": init}


def training_figure(history: list[dict]) -> Figure:
    """The learning rate and the convergence measure max_μ|Σ|W_μ|^p − 1| after every batch."""
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    ax_lr, ax_d = fig.subplots(1, 2)
    steps = [h["batch"] for h in history]
    ax_lr.plot(steps, [h["lr"] for h in history])
    ax_lr.set(xlabel="batch", ylabel="η", title="η(t) = end − (end − start)·exp(−λt/T)")
    distance = [max(h["distance"], 1e-8) for h in history]
    ax_d.plot(steps, distance)
    ax_d.axhline(0.01, color="tab:red", ls="--", lw=1, label="Manzali's threshold 0.01")
    ax_d.set_yscale("log")
    ax_d.set(xlabel="batch", ylabel=r"$\max_\mu\, |\Sigma_i |W_{\mu i}|^p - 1|$", title="distance to the p-sphere")
    ax_d.legend(fontsize=8)
    return fig


def filters_figure(layer: HebbianConv2d, n: int = 48) -> Figure:
    """The learned 5×5 RGB kernels, each min–max normalised (Manzali's display)."""
    return plot_filters(layer.weight, n=n, ncols=12, fig=Figure(figsize=(11, 4.4), layout="constrained"),
                        title=f"first {min(n, layer.out_channels)} of {layer.out_channels} kernels")


def report_lines(counts: dict, result: dict, quick: bool | None = None) -> None:
    """The toy counts beside the spec's simulation, and the one-layer accuracy beside Manzali's."""
    from ..notebook import print_full_result, report

    quick = is_quick() if quick is None else quick
    print("Toy example, initialisations (of 200) that reach the p-sphere within 0.05 after 200 iterations:")
    for norm in NORMALISATIONS:
        print(f"  inputs {norm:11s}: measured {counts[norm]:3d}/200 | spec [SIM] {SPEC_COUNTS[norm]:3d}/200")
    readout = "Adam probe" if result.get("readout", "adam") == "adam" else f"SGD read-out ({result['readout']})"
    mode = (f"quick mode: {result['n_train']:,} subset images, {readout} {len(result['history'])} epochs — "
            f"lower than the paper by design" if quick else
            f"full mode: {result['n_train']:,} training images, {result['epochs_run']} Hebbian epoch(s), "
            f"{readout} {len(result['history'])} epochs (Manzali: 150)")
    report("one Krotov conv layer + linear classifier, test accuracy", result["final_test_acc"],
           MANZALI_TABLE[1], MANZALI_SOURCE, mode)
    print_full_result(FULL_RESULT, "one Krotov conv layer + linear classifier", MANZALI_TABLE[1], MANZALI_SOURCE)


# ----- 6. depth: one to five Krotov layers (Manzali's Table 1 and 2) ------------------------------------------
# Table 2 of the slides: Amato et al. (2019)'s Hebbian rule and full SGD on the same architecture, by depth.
AMATO_HEBBIAN = {1: 63.92, 2: 63.81, 3: 58.28, 4: 52.99, 5: 41.78}
FULL_SGD = {1: 60.71, 2: 66.30, 3: 72.39, 4: 82.69, 5: 84.95}
DEPTH_SOURCE = "Manzali 2021, Tables 1 and 2 (p, k, Δ and dropout tuned per depth by Optuna)"
DEPTH_COMMAND = ("python scripts/seed_runs.py manzali_1 manzali_2 manzali_3 manzali_4 manzali_5 --seeds 0 1 2 "
                 "--precision fp32 --data ROOT")
DEPTH_SEEDS = 3  # a comparison with a published figure: mean ± std over at least this many seeds


def depth_curve(directory=None) -> list[dict]:
    """Per depth 1–5: Manzali's published test accuracy and the committed full-data run of the library's preset
    ``manzali_<depth>`` (``docs/results/manzali_<depth>.json``, :func:`hebblib.results.full_data_accuracy`):
    the test accuracy at the best-validation epoch (Manzali kept the best-validation checkpoint), the final and the
    max, means over the committed seeds, with the sample standard deviations ``measured_std`` and ``final_std``
    (None for one seed); None where that depth has not been run yet."""
    from ..results import full_data_accuracy

    # a row's key ← full_data_accuracy's key
    taken = {"measured": "at_best_val", "measured_std": "at_best_val_std", "final": "final", "final_std": "final_std",
             "max": "max", "seeds": "seeds", "file": "file"}
    rows = []
    for depth, published in MANZALI_TABLE.items():
        full = full_data_accuracy(f"manzali_{depth}", directory=directory)
        rows.append({"depth": depth, "published": published, "amato_hebbian": AMATO_HEBBIAN[depth],
                     "full_sgd": FULL_SGD[depth],
                     **{key: None if full is None else full[source] for key, source in taken.items()}})
    return rows


def depth_lines(rows: list[dict]) -> None:
    """The measured depth curve beside the published one, one line per depth."""
    print(f"Krotov–Hopfield stack on all of CIFAR-10, test accuracy by depth; published: {DEPTH_SOURCE}")
    print(f"  {'layers':>6}  {'published':>9}  {'measured':>8}  {'final':>6}  {'gap':>6}  {'± std':>6}  {'seeds':>5}")
    for row in rows:
        if row["measured"] is None:
            print(f"  {row['depth']:>6}  {row['published']:>8.2f}%  not measured yet")
            continue
        std = "" if row["measured_std"] is None else f"{row['measured_std']:.2f}"
        print(f"  {row['depth']:>6}  {row['published']:>8.2f}%  {row['measured']:>7.2f}%  {row['final']:>5.2f}%  "
              f"{row['measured'] - row['published']:>+6.1f}  {std:>6}  {row['seeds']:>5}")
    measured = [r for r in rows if r["measured"] is not None]
    if measured:
        print("  measured: the preset manzali_<layers>, test accuracy at the best-validation epoch (final: the last "
              "of the 20 read-out epochs), the mean over the seeds; ± std: the sample standard deviation of the "
              f"measured column; {measured[0]['file'].rsplit('/', 1)[0]}/")
    if len(measured) < len(rows) or any(r["seeds"] < DEPTH_SEEDS for r in measured):
        print(f"  to measure the missing depths and seeds: {DEPTH_COMMAND}")


def depth_figure(rows: list[dict]) -> Figure:
    """Test accuracy against the number of Hebbian layers: Manzali's Krotov stack (published and measured here),
    Amato et al.'s Hebbian rule and full SGD (his Table 2)."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    depths = [r["depth"] for r in rows]
    ax.plot(depths, [r["published"] for r in rows], "o-", color="tab:blue", label="Krotov–Hopfield, published")
    measured = [r for r in rows if r["measured"] is not None]
    if measured:
        counts = sorted({r["seeds"] for r in measured})
        seeds = f"{counts[0]} seeds" if len(counts) == 1 else f"{counts[0]}–{counts[-1]} seeds"
        label = "Krotov–Hopfield, measured here" + (" (one seed)" if counts == [1] else f" (mean ± std, {seeds})")
        ax.errorbar([r["depth"] for r in measured], [r["measured"] for r in measured],
                    yerr=[r["measured_std"] or 0.0 for r in measured], fmt="s--", color="tab:orange", capsize=3,
                    label=label)
    ax.plot(depths, [r["amato_hebbian"] for r in rows], "^:", color="tab:green", label="Hebbian of Amato et al.")
    ax.plot(depths, [r["full_sgd"] for r in rows], "v:", color="tab:gray", label="full SGD (backprop)")
    ax.set(xlabel="Hebbian layers before the linear classifier", ylabel="CIFAR-10 test accuracy (%)",
           xticks=depths, title="Deeper unsupervised Krotov stacks lose accuracy")
    ax.legend(fontsize=8)
    return fig
