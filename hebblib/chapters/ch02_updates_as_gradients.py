"""Chapter 2 — Hebbian updates as gradients (Miconi 2021, App. A).

A Hebbian update is not the gradient of anything the network optimises, but it can be written as the
gradient of a *surrogate* loss evaluated at the layer's real output ŷ (:mod:`hebblib.surrogate`):

    loss = −Σ ŷ · ỹ(w),   ỹ = w·x (Hebb),  w·x − ½‖w‖² (Instar),  w·x − ½ ŷ ‖w‖² (Oja)
    −∂loss/∂w = Σ ŷ x,     Σ ŷ (x − w),     Σ ŷ (x − ŷ w)

so autograd does the bookkeeping of overlapping patches in a convolution, and a torch optimiser that
*descends* the loss applies the Hebbian update. This module holds the checks and timings the notebook
runs, the figure behind its widget, and the reference solution of its exercise.
"""
from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..data import load_subset
from ..layers import HebbianConv2d
from ..surrogate import surrogate_loss, surrogate_update
from ..runtime import single_thread
from ..notebook import print_checks

SURROGATE_RULES = ("hebb", "instar", "oja")
OUTPUTS = ("binary WTA", "graded WTA", "no competition")


# ----- one neuron: the sign convention ----------------------------------------------------------------
def hand_update(x: torch.Tensor, w: torch.Tensor, y: torch.Tensor, rule: str) -> torch.Tensor:
    """Σ_n ŷ_n (x_n − s_n w) for one unit written out by hand: s = 0 (Hebb), 1 (Instar), ŷ (Oja)."""
    decay = {"hebb": torch.zeros_like(y), "instar": torch.ones_like(y), "oja": y}[rule]
    return (y[:, None] * (x - decay[:, None] * w)).sum(0)


def sign_convention_demo(rule: str = "instar", lr: float = 0.1, seed: int = 0) -> dict:
    """One linear unit, eight inputs, a binary output ŷ = 1[w·x > 0]. Returns the hand-written update,
    −∂loss/∂w from autograd, and the weights after one ``torch.optim.SGD`` step (which descends the
    loss) beside ``w + lr·Δw``; everything in float64."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 3, generator=g, dtype=torch.float64)
    w0 = torch.randn(3, generator=g, dtype=torch.float64)
    y = (x @ w0 > 0).double()  # the "real" output: not differentiable, and it need not be
    weight = torch.nn.Parameter(w0.clone().view(1, 3, 1, 1))  # one unit as a 1x1 convolution
    optimizer = torch.optim.SGD([weight], lr=lr)
    loss = surrogate_loss(x[:, :, None, None], weight, y.view(8, 1, 1, 1), rule)
    loss.backward()
    hand = hand_update(x, w0, y, rule)
    minus_grad = -weight.grad.flatten().clone()
    optimizer.step()
    return {"hand": hand, "minus_grad": minus_grad, "after_sgd": weight.detach().flatten(),
            "w_plus_lr_dw": w0 + lr * hand, "loss": loss.item()}


# ----- the exercise -----------------------------------------------------------------------------------
def instar_surrogate_output_solution(x: torch.Tensor, weight: torch.Tensor, y_real: torch.Tensor) -> torch.Tensor:
    """Reference solution: Instar's surrogate output ỹ(w) = conv(x, w) − ½‖w_o‖², per unit o."""
    current = F.conv2d(x, weight)
    return current - 0.5 * weight.pow(2).sum(dim=(1, 2, 3)).view(1, -1, 1, 1)


def update_from_output(output_fn):
    """Turn a surrogate-output function ``ỹ = f(x, weight, ŷ)`` into the update autograd derives from it:
    ``ΔW = −∂/∂W [ −Σ ŷ · f(x, W, ŷ) ]``."""
    def update(x, weight, y_real):
        w = weight.detach().clone().requires_grad_(True)
        loss = -(y_real * output_fn(x, w, y_real)).sum()
        (grad,) = torch.autograd.grad(loss, w)
        return -grad
    return update


def exercise_cases():
    """Argument tuples ``(x, weight, ŷ)``: small conv inputs and binary one-winner outputs."""
    g = torch.Generator().manual_seed(2)
    cases = []
    for n, c, units, k, size in ((2, 1, 3, 3, 6), (4, 3, 5, 5, 9), (1, 2, 4, 2, 5)):
        x = torch.randn(n, c, size, size, generator=g, dtype=torch.float64)
        weight = torch.randn(units, c, k, k, generator=g, dtype=torch.float64)
        u = F.conv2d(x, weight)
        y = F.one_hot(u.argmax(1), units).movedim(-1, 1).double()
        cases.append((x, weight, y))
    return cases


# ----- a conv layer: three ways to the same update -----------------------------------------------------
def cifar_batch(n: int = 27, seed: int = 0) -> torch.Tensor:
    """``n`` images of the shipped CIFAR-10 subset, each standardised over its pixels (Miconi), float64."""
    images = load_subset(train=True)[0]
    pick = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    x = images[pick].double() / 255.0
    flat = x.flatten(1)
    return ((flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True)).view_as(x)


def competition_spec(output: str, k: int):
    """The layer's competition for each output kind of the widget."""
    if output == "binary WTA":
        return {"name": "hard_wta", "k": int(k), "binary": True}
    if output == "graded WTA":
        return {"name": "hard_wta", "k": int(k), "binary": False}
    if output == "no competition":
        return "none"
    raise ValueError(f"unknown output {output!r}; valid choices: {', '.join(map(repr, OUTPUTS))}")


def make_conv_layer(rule: str = "oja", units: int = 16, k: int = 1, output: str = "binary WTA",
                    stride: int = 12, update_via: str = "direct", seed: int = 0) -> HebbianConv2d:
    """Miconi's CheckHebb layer: 5×5 filters, stride 12 (a 3×3 output map on 32×32 images), unit-norm
    random weights, the raw update (no normalisation), float64."""
    k = max(1, min(int(k), units))
    layer = HebbianConv2d(3, units, 5, stride=stride, rule=rule, competition=competition_spec(output, k),
                          update_norm="none", init="unit_norm", update_via=update_via,
                          generator=torch.Generator().manual_seed(seed))
    return layer.double()


def per_patch_update(x: torch.Tensor, weight: torch.Tensor, y: torch.Tensor, rule: str, stride: int) -> torch.Tensor:
    """The update summed patch by patch with an explicit loop: Σ_{n,p} ŷ[n,o,p] (x_patch − s w_o)."""
    units, kernel = weight.shape[0], weight.shape[-1]
    patches = F.unfold(x, kernel, stride=stride)  # (N, C·k·k, P)
    w = weight.reshape(units, -1)
    y = y.flatten(2)  # (N, units, P)
    delta = torch.zeros_like(w)
    for n in range(patches.shape[0]):
        for p in range(patches.shape[2]):
            y_np = y[n, :, p]  # every unit's output at this patch
            decay = {"hebb": torch.zeros_like(y_np), "instar": y_np, "oja": y_np * y_np}[rule]
            delta += y_np[:, None] * patches[n, :, p][None, :] - decay[:, None] * w
    return delta.view_as(weight)


def compare_update_paths(rule: str = "oja", units: int = 16, k: int = 1, output: str = "binary WTA",
                         batch: int = 27, seed: int = 0) -> dict:
    """ΔW of one batch by four routes: the layer's direct update (one ``conv2d_weight`` call and a
    decay), ``surrogate_update`` (autograd), the layer built with ``update_via='surrogate'``, and an
    explicit loop over patches. Returns the four updates and the largest differences to the direct one."""
    x = cifar_batch(batch, seed)
    with single_thread():
        layer = make_conv_layer(rule, units, k, output, seed=seed)
        layer(x)
        direct = layer.delta_w.clone()
        weight = layer.weight.detach()
        y = layer.competition(F.conv2d(x, weight, stride=layer.stride))  # the real output ŷ
        autograd = surrogate_update(x, weight, y, rule, stride=layer.stride)
        via_layer = make_conv_layer(rule, units, k, output, update_via="surrogate", seed=seed)
        via_layer(x)
        by_patch = per_patch_update(x, weight, y, rule, stride=layer.stride[0])
    diff = lambda a: float((a - direct).abs().max())  # noqa: E731
    return {"direct": direct, "surrogate": autograd, "layer_surrogate": via_layer.delta_w.clone(), "per_patch": by_patch,
            "y": y, "x": x, "weight": weight,
            "max_diff_surrogate": diff(autograd), "max_diff_layer_surrogate": diff(via_layer.delta_w),
            "max_diff_per_patch": diff(by_patch), "scale": float(direct.abs().max())}


def oja_minus_instar(output: str = "binary WTA", units: int = 16, k: int = 1, batch: int = 27, seed: int = 0) -> float:
    """max |ΔW_Oja − ΔW_Instar| / max |ΔW_Instar| for the same ŷ: 0 exactly when ŷ is binary (ŷ² = ŷ)."""
    x = cifar_batch(batch, seed)
    updates = {}
    with single_thread():
        for rule in ("oja", "instar"):
            layer = make_conv_layer(rule, units, k, output, seed=seed)
            layer(x)
            updates[rule] = layer.delta_w
    return float((updates["oja"] - updates["instar"]).abs().max() / (updates["instar"].abs().max() + 1e-30))


def update_paths_demo(rule: str = "oja", output: str = "binary WTA", k: int = 1, units: int = 16, seed: int = 0) -> Figure:
    """The widget's figure. Left: every entry of ΔW from the direct path against the same entry from
    autograd (on the diagonal when they agree). Right: Oja's ΔW against Instar's for the same ŷ."""
    k = max(1, min(int(k), units))
    paths = compare_update_paths(rule, units, k, output, seed=seed)
    x, weight, y = paths["x"], paths["weight"], paths["y"]
    with single_thread():
        oja = surrogate_update(x, weight, y, "oja", stride=12).flatten()
        instar = surrogate_update(x, weight, y, "instar", stride=12).flatten()
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    ax_paths, ax_rules = fig.subplots(1, 2)
    direct, auto = paths["direct"].flatten(), paths["surrogate"].flatten()
    _identity_scatter(ax_paths, direct, auto, "direct ΔW (conv2d_weight − decay)", "surrogate ΔW (autograd)")
    ax_paths.set_title(f"{rule}, {output}, k = {k}: max |difference| = {paths['max_diff_surrogate']:.1e}", fontsize=10)
    _identity_scatter(ax_rules, instar, oja, "Instar ΔW", "Oja ΔW", color="tab:orange")
    gap = float((oja - instar).abs().max() / (instar.abs().max() + 1e-30))
    ax_rules.set_title(f"same ŷ, two rules: max |Oja − Instar| / max |Instar| = {gap:.2g}", fontsize=10)
    return fig


def _identity_scatter(ax, a: torch.Tensor, b: torch.Tensor, xlabel: str, ylabel: str, color="tab:blue"):
    low = float(torch.minimum(a.min(), b.min()))
    high = float(torch.maximum(a.max(), b.max()))
    pad = 0.05 * (high - low) + 1e-9
    ax.plot([low - pad, high + pad], [low - pad, high + pad], color="0.6", lw=1, ls="--", zorder=1)
    ax.scatter(a.numpy(), b.numpy(), s=6, alpha=0.6, color=color, zorder=2)
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


# ----- cost -------------------------------------------------------------------------------------------
def time_update_paths(units: int = 32, batch: int = 64, image_size: int = 32, kernel: int = 5,
                      repeats: int = 5, rule: str = "instar", seed: int = 0) -> dict:
    """Median wall time of one training step (forward, update, ``apply_update``) of a small conv layer,
    with the update computed directly and through the surrogate loss; float32 on the CPU. Timings on
    a shared machine are noisy: compare the ratio, not the milliseconds."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, image_size, image_size, generator=g)
    seconds = {}
    for path in ("direct", "surrogate"):
        layer = HebbianConv2d(3, units, kernel, padding=kernel // 2, rule=rule,
                              competition={"name": "hard_wta", "binary": True}, update_norm="global_max",
                              update_via=path, lr=0.01, init="unit_norm",
                              generator=torch.Generator().manual_seed(seed))
        layer(x)
        layer.apply_update()  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            layer(x)
            layer.apply_update()
            times.append(time.perf_counter() - start)
        seconds[path] = statistics.median(times)
    return {"ms_direct": 1e3 * seconds["direct"], "ms_surrogate": 1e3 * seconds["surrogate"],
            "ratio": seconds["surrogate"] / seconds["direct"], "units": units, "batch": batch}


# ----- summary ----------------------------------------------------------------------------------------
def summary_rows(sign: dict, paths: dict, gap_binary: float, gap_graded: float):
    """Measured agreement beside the target of each claim (values rounded for a stable printout)."""
    sign_gap = float((sign["hand"] - sign["minus_grad"]).abs().max())
    sgd_gap = float((sign["after_sgd"] - sign["w_plus_lr_dw"]).abs().max())
    relative = max(paths["max_diff_surrogate"], paths["max_diff_layer_surrogate"], paths["max_diff_per_patch"]) / paths["scale"]
    tiny = lambda gap: "< 1e-12" if gap < 1e-12 else f"{gap:.1e}"  # round-off differs between machines  # noqa: E731
    return [
        ("one unit: max |−∂loss/∂w − hand-written Δw|", tiny(sign_gap), "< 1e-12 (float64)", sign_gap < 1e-12),
        ("one unit: max |SGD step − (w + η Δw)|", tiny(sgd_gap), "< 1e-12 (float64)", sgd_gap < 1e-12),
        ("conv layer: largest relative gap, 4 routes to ΔW", tiny(relative), "< 1e-12 (float64)", relative < 1e-12),
        ("binary ŷ: |Oja − Instar| / |Instar|", f"{gap_binary:.2f}", "0 exactly", gap_binary == 0.0),
        ("graded ŷ: |Oja − Instar| / |Instar|", f"{gap_graded:.2f}", "> 0 (they differ)", gap_graded > 0.01),
    ]


__all__ = [
    "OUTPUTS", "SURROGATE_RULES", "cifar_batch", "compare_update_paths", "exercise_cases", "hand_update",
    "instar_surrogate_output_solution", "make_conv_layer", "oja_minus_instar", "per_patch_update", "print_checks",
    "sign_convention_demo", "single_thread", "summary_rows", "time_update_paths", "update_from_output",
    "update_paths_demo",
]
