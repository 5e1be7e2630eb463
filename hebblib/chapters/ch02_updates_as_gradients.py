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
from ..runtime import is_quick, single_thread
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


# ----- 5. dense activations, sparse plasticity, pruning (Miconi 2021 §3.2; spec §1.6) -----------------------
PRUNE_FRACTIONS = (0.0, 0.5, 0.9, 0.99, 0.999)  # his code's ready-made sweep (spec §1.6); layers 2 and 3 only
OUTPUT_KINDS = ("triangle", "binary WTA")  # what a layer transmits; it always *learns* through the binary WTA
# Table 1 of the paper, final output, trained weights (10-run means): (output, pruned fraction) -> %
MICONI_PUBLISHED = {("triangle", 0.99): 64.55, ("binary WTA", 0.0): 34.5}
MICONI_SOURCE = "Miconi 2021, Table 1 (final output after 20 Hebbian epochs, 10-run means)"
PRUNING_RESULT = "ch02_miconi_pruning"  # docs/results/chapters/<name>.json, written by scripts/miconi_pruning.py


def miconi_net(fraction: float = 0.99, output: str = "triangle", width: float = 1.0, seed: int = 0):
    """The ``miconi`` preset's network with ``fraction`` of the weights of layers 2 and 3 pruned and ``output``
    transmitted (``'triangle'``: relu(a − mean_c a), a = u − θ; ``'binary WTA'``: the winner's 1)."""
    from ..errors import check_choice
    from ..networks import build_network
    from ..presets import get_preset

    check_choice("output", output, OUTPUT_KINDS)
    layers = [{**layer, "prune_fraction": 0.0 if i == 0 else float(fraction)}
              for i, layer in enumerate(get_preset("miconi")["layers"])]
    return build_network("miconi", layers, triangle=output == "triangle", width_factor=width,
                         generator=torch.Generator().manual_seed(seed))


def activity_and_plasticity(output: str = "triangle", fraction: float = 0.99, n: int = 50, seed: int = 0) -> dict:
    """One training-mode forward of ``n`` subset images through :func:`miconi_net`: per layer the fraction of
    units that *learn* at a position (the binary WTA's ŷ = 1) and the fraction that *transmit* (output > 0)."""
    net = miconi_net(fraction, output, seed=seed)
    seen, hooks = {}, []
    for i, stage in enumerate(net.stages, start=1):
        hooks.append(stage.conv.competition.register_forward_hook(
            lambda m, args, y, i=i: seen.__setitem__(("learn", i), float(y.mean()))))
        hooks.append(stage.act.register_forward_hook(
            lambda m, args, out, i=i: seen.__setitem__(("transmit", i), float((out > 0).float().mean()))))
    images = load_subset(train=True)[0][:n].float() / 255.0
    net.train()
    with torch.no_grad():
        net.features(images)
    for hook in hooks:
        hook.remove()
    return {f"conv{i}": {"units": stage.conv.out_channels, "learn": seen[("learn", i)],
                         "transmit": seen[("transmit", i)]} for i, stage in enumerate(net.stages, start=1)}


def pruning_check(fraction: float = 0.99, steps: int = 3, n: int = 50, seed: int = 0) -> dict:
    """A few Hebbian steps of :func:`miconi_net`; per pruned layer the fraction of weights kept, the largest
    |w| where the mask is 0, and the largest |‖W_o‖ − 1| over units that kept a weight."""
    net = miconi_net(fraction, seed=seed)
    images = load_subset(train=True)[0][: n * steps].float() / 255.0
    net.train()
    for step in range(steps):
        with torch.no_grad():
            net.features(images[step * n:(step + 1) * n])
        net.apply_updates()
    out = {}
    for name, layer in net.hebbian_layers().items():
        if layer.mask is None:
            continue
        weight = layer.weight.detach()
        norms = weight.flatten(1).norm(dim=1)
        alive = layer.mask.flatten(1).sum(1) > 0
        out[name] = {"kept": float(layer.mask.mean()), "max_pruned": float(weight[layer.mask == 0].abs().max()),
                     "norm_gap": float((norms[alive] - 1).abs().max()), "dead_units": int((~alive).sum())}
    return out


def pruning_sweep(fractions=PRUNE_FRACTIONS, outputs=OUTPUT_KINDS, hebbian_epochs: int = 1, width: float = 1.0,
                  limit_train: int | None = None, limit_test: int | None = None, probe_epochs: int = 10,
                  warmup_batches: int | None = None, seed: int = 0, source: str | None = None,
                  progress: bool = False) -> dict:
    """Test accuracy of the final output against the pruned fraction, per transmitted output: for each
    (output, fraction) the network of :func:`miconi_net` read out untrained and after ``hebbian_epochs`` of
    Miconi's Hebbian phase (batch 100, flips, ``warmup_batches`` without updates: default a fifth of an epoch,
    at most his 200), by the library's linear probe (Adam 1e-3, ``probe_epochs``) on the ZCA-whitened images.
    ``source``: 'subset' (quick mode's default) or 'full' (``limit_*``: the first images of each split)."""
    from ..classifier import linear_probe, probe_summary
    from ..training import load_splits, resolve_source, train_hebbian

    if source is None:
        source, notice = resolve_source("auto", quick=is_quick())
        if notice:
            print(notice)
    data = load_splits({"normalization": "zca", "zca_eps": 1e-3}, source=source, limit_train=limit_train,
                       limit_test=limit_test)
    batches = -(-len(data[0]) // 100)
    warmup = min(200, batches // 5) if warmup_batches is None else warmup_batches
    rows, start = [], time.perf_counter()
    for output in outputs:
        for fraction in fractions:
            net = miconi_net(fraction, output, width, seed)
            read = lambda: probe_summary(linear_probe(  # noqa: E731
                net, *data, epochs=probe_epochs, head=torch.nn.Linear(net.num_features, 10), seed=seed,
                dtype=torch.float32, progress=False))
            untrained = read()
            train_hebbian(net, data[0], epochs=hebbian_epochs, batch_size=100, augment=True, warmup_batches=warmup,
                          generator=torch.Generator().manual_seed(seed + 7), progress=progress,
                          label=f"Miconi, {output}, {fraction:g} pruned")
            trained = read()
            rows.append({"output": output, "fraction": float(fraction), "untrained": untrained["final_test_acc"],
                         "trained": trained["final_test_acc"], "trained_at_best_val": trained["test_acc_at_best_val"]})
    return {"rows": rows, "n_train": len(data[0]), "n_test": len(data[2]), "source": source,
            "hebbian_epochs": hebbian_epochs, "warmup_batches": warmup, "probe_epochs": probe_epochs, "width": width,
            "seconds": time.perf_counter() - start}


def pruning_curve_figure(sweep: dict, fraction: float | None = None, output: str | None = None,
                         committed: dict | None = None, ax=None):
    """Accuracy against the pruned fraction f (on a log scale of the kept fraction 1 − f), trained (solid) and
    untrained (dotted), one colour per output; ``committed``: the script's reduced full-data sweep, drawn beside
    (squares); the published points of Table 1 as stars; ``fraction``/``output``: the point to ring."""
    colours = {"triangle": "tab:orange", "binary WTA": "tab:blue"}
    for record, style, where in ((sweep, "o", "this run"), (committed, "s", "committed run")):
        if not record:
            continue
        for kind in OUTPUT_KINDS:
            rows = [r for r in record["rows"] if r["output"] == kind]
            if not rows:
                continue
            xs = [1.0 - r["fraction"] for r in rows]
            ax.plot(xs, [r["trained"] for r in rows], style + "-", color=colours[kind], alpha=1.0 if where ==
                    "committed run" or not committed else 0.45, label=f"{kind}, trained ({where})")
            ax.plot(xs, [r["untrained"] for r in rows], style + ":", color=colours[kind], alpha=0.6,
                    label=f"{kind}, untrained ({where})")
    for (kind, f), value in MICONI_PUBLISHED.items():
        ax.plot([1.0 - f], [value], "*", ms=13, color=colours[kind], markeredgecolor="k", label=f"published: {kind}")
    if fraction is not None and output is not None:
        rows = [r for r in ((committed or sweep)["rows"]) if r["output"] == output and r["fraction"] == fraction]
        for r in rows:
            ax.plot([1.0 - fraction], [r["trained"]], "o", ms=16, mfc="none", mec="k", mew=2)
    if fraction is not None:
        ax.axvline(1.0 - fraction, color="0.6", lw=1, ls="--", zorder=0)
    ax.set_xscale("log")
    ax.set_xlim(1.6, 6e-4)  # dense on the left, most pruned on the right
    ax.set_xticks([1.0 - f for f in PRUNE_FRACTIONS], [f"{f:g}" for f in PRUNE_FRACTIONS])
    ax.minorticks_off()
    ax.set(xlabel="fraction of the weights of layers 2–3 pruned", ylabel="test accuracy (%)",
           title="Final output, linear read-out")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)  # below: clear of the curves


def committed_pruning_curve() -> dict | None:
    """The committed reduced full-data sweep of ``scripts/miconi_pruning.py``
    (``docs/results/chapters/ch02_miconi_pruning.json``), as :func:`pruning_sweep` returns it, or None."""
    from ..results import chapter_result

    record = chapter_result(PRUNING_RESULT)
    return None if record is None else {"rows": record["curve"], "setting": record["setting"], "record": record}


def pruning_demo(fraction: float = 0.99, output: str = "triangle", committed: dict | None = None,
                 sweep: dict | None = None, units: int = 12) -> Figure:
    """Left: the accuracy curves (the committed run, or ``sweep``) with the chosen point ringed, and Miconi's
    published points. Right: the weights of ``units`` units of layer 2 at that pruned fraction, one row per
    unit (its 100 input channels × 3×3 taps), grey = pruned."""
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1.1, 1.0))
    pruning_curve_figure(sweep or {"rows": []}, fraction, output, committed, ax=left)
    if not (committed or sweep):
        left.text(0.5, 0.5, "not measured yet:\npython scripts/miconi_pruning.py", transform=left.transAxes,
                  ha="center", va="center", fontsize=10, color="0.3")
    layer = miconi_net(fraction, output).hebbian_layers()["conv2"]
    w = layer.weight.detach()[:units].flatten(1)
    image = w / w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
    right.imshow(image.numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    kept = 1.0 if layer.mask is None else float(layer.mask.mean())
    right.set(xlabel="input weight (100 channels × 9 taps)", ylabel="unit of layer 2",
              title=f"layer 2, {100 * fraction:g} % pruned ({output}): {100 * kept:.1f} % kept")
    return fig


def pruning_report(committed: dict | None) -> None:
    """The committed pruning curve's published points and the full-data ``miconi`` preset beside Miconi's."""
    from ..notebook import report, report_committed_preset

    for (kind, f), value in MICONI_PUBLISHED.items():
        label = f"Miconi's network, {kind} output, {f:g} of layers 2–3 pruned, trained"
        rows = [r for r in (committed or {}).get("rows", []) if r["output"] == kind and r["fraction"] == f]
        if not rows:
            print(f"{label}: not measured yet (python scripts/miconi_pruning.py)")
            continue
        report(label, rows[0]["trained"], value, MICONI_SOURCE,
               f"reduced run: {committed['setting']}; docs/results/chapters/{PRUNING_RESULT}.json")
    report_committed_preset("miconi", MICONI_PUBLISHED[("triangle", 0.99)], MICONI_SOURCE)


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
    "MICONI_PUBLISHED", "OUTPUT_KINDS", "PRUNE_FRACTIONS", "PRUNING_RESULT", "activity_and_plasticity",
    "committed_pruning_curve", "miconi_net", "pruning_check", "pruning_curve_figure", "pruning_demo", "pruning_report",
    "pruning_sweep",
    "OUTPUTS", "SURROGATE_RULES", "cifar_batch", "compare_update_paths", "exercise_cases", "hand_update",
    "instar_surrogate_output_solution", "make_conv_layer", "oja_minus_instar", "per_patch_update", "print_checks",
    "sign_convention_demo", "single_thread", "summary_rows", "time_update_paths", "update_from_output",
    "update_paths_demo",
]
