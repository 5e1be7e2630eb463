"""Chapter 15 — Contrastive neuron-centric Hebbian learning (Lunelli 2024, seed 003; spec
miconi-lunelli-manzali Part 2; :mod:`hebblib.contrastive`, :mod:`hebblib.networks.contrastive`, docs/contrastive.md).

Every hidden layer compares the samples of a batch by the cosine similarity of its outputs and descends its
own loss, same class → S = 1, other class → S = 0 (Eqs. 4.3–4.9); the *local* gradient of that loss is its
Hebbian update (Eqs. 4.10–4.22), and backprop trains only per-neuron learning-rate multipliers
C = C_post ⊗ C_pre (⊗ C_height ⊗ C_width), through the single-forward-pass scheme (§4.3). This chapter's code:
the exercise (the per-entry loss of Fig. 4.2), the checks of the local gradient against autograd, the
demo of Figs. 4.1–4.2 on a real batch, a short training run that records every C after every step, and the
tables of the thesis (6.2, 6.4) with what this project measured.
"""
from __future__ import annotations

import contextlib
import copy
import math

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..contrastive import (ADAMW_C, contrastive_delta_conv, contrastive_delta_linear, contrastive_loss,
                           contrastive_masks, cosine_similarities, get_contrastive_preset, hebbian_descent_delta,
                           make_optimizer, train_contrastive)
from ..networks.contrastive import contrastive_mlp
from ..results import chapter_result, full_data_accuracy
from ..runtime import is_quick, seed_everything, single_thread

CLASSES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The short run whose C's the chapter plots. Quick mode: the thesis's MLP at a quarter of its width on the shipped
# subset; full mode: the 4 × 2000 MLP itself on all of CIFAR-10 for a few epochs (the preset trains 100).
QUICK = {"hidden": (512, 512, 512, 512), "source": "subset", "limit_train": 1500, "limit_test": 500, "epochs": 3}
FULL = {"hidden": (2000, 2000, 2000, 2000), "source": "full", "limit_train": None, "limit_test": None, "epochs": 5}
TRACE_EVERY = 2  # record the C's every this many steps
LAYER_VIEWS = ("fc1", "fc2", "fc3", "fc4", "pixels")  # the hidden layers, and the input for comparison
NETWORK_STATES = ("initial", "trained")

# Table 6.4 of the thesis: SoftHebb's rows cite Journé et al. 2023; F-2 and F-1 were read off that paper's Fig.
# (the thesis's footnote), so they carry no spread. The CH and backprop rows come from the presets' metadata.
SOFTHEBB_TABLE_6_4 = {4: ("80.31", "± 0.14"), 2: ("~75", "(read off a fig.)"), 1: ("~66–67", "(read off a fig.)")}
SOFTHEBB_MEASURED = {4: "softhebb_paper"}  # hebblib's SoftHebb at F = 4 (its softhebb network scales every
#                                             layer together, so 96/96/96 (F = 1) and 96/192/384 (F = 2) do not exist)
BACKPROP_JOURNE = "84.00"  # Table 6.4, "Backpropagation [18]": the SoftHebb paper's own backprop figure


# ----- 1. the loss: the exercise -------------------------------------------------------------------------
def pair_loss_matrix_solution(y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Reference solution, Eqs. 4.3–4.8: the B × B per-entry loss ``M_pos ⊙ (1 − S) + M_neg ⊙ |S|`` of a
    layer's output ``y`` (one sample per row; conv maps flattened), whose mean is the loss L (4.9)."""
    flat = y.flatten(1)
    y_norm = flat / (flat.norm(dim=1, keepdim=True) + 1e-8)                       # (4.3)
    eye = torch.eye(flat.shape[0], dtype=flat.dtype)
    s = y_norm @ y_norm.T - eye                                                  # (4.4)
    same = labels.view(-1, 1) == labels.view(1, -1)
    positive = (same & ~eye.bool()).to(flat.dtype)                               # (4.5)
    negative = (~same).to(flat.dtype)                                            # (4.6)
    return positive * (1 - s) + negative * s.abs()                               # (4.7) + (4.8)


def pair_loss_cases():
    """``(y, labels)``: tanh outputs of a linear and of a conv layer, a batch of one class, one of all classes."""
    g = torch.Generator().manual_seed(15)
    return [(torch.tanh(torch.randn(6, 5, generator=g)), torch.tensor([0, 1, 0, 2, 1, 0])),
            (torch.tanh(torch.randn(5, 2, 3, 3, generator=g)), torch.tensor([3, 3, 1, 1, 3])),
            (torch.tanh(torch.randn(4, 7, generator=g)), torch.tensor([2, 2, 2, 2])),
            (torch.tanh(torch.randn(8, 4, generator=g)), torch.arange(8))]


# ----- 2. the local gradient is the gradient of the local loss --------------------------------------------
def local_gradient_checks(seed: int = 0) -> dict:
    """Largest relative difference between the library's hand-derived updates and −autograd of the loss on
    the layer's own output: a tanh linear layer, a tanh conv layer (padding, stride 2), and the output layer's
    Hebbian descent against −∂(Σ cross-entropy)/∂W."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 3])

    def relative(a, b):
        return float((a - b).abs().max() / b.abs().max())

    x = torch.randn(8, 12, generator=g, dtype=torch.float64)
    w = (0.3 * torch.randn(7, 12, generator=g, dtype=torch.float64)).requires_grad_()
    contrastive_loss(torch.tanh(x @ w.T), labels).backward()
    delta, _ = contrastive_delta_linear(x, (x @ w.T).detach(), labels)
    out = {"linear": relative(delta, -w.grad)}

    xc = torch.randn(8, 3, 9, 9, generator=g, dtype=torch.float64)
    padded = F.pad(xc, [1] * 4)
    wc = (0.3 * torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)).requires_grad_()
    contrastive_loss(torch.tanh(F.conv2d(padded, wc, stride=2)), labels).backward()
    delta, _ = contrastive_delta_conv(padded, F.conv2d(padded, wc, stride=2).detach(), labels, wc.shape, stride=2)
    out["conv"] = relative(delta, -wc.grad)

    wo = (0.3 * torch.randn(5, 12, generator=g, dtype=torch.float64)).requires_grad_()
    F.cross_entropy(x @ wo.T, labels % 5, reduction="sum").backward()
    delta, _ = hebbian_descent_delta(x, (x @ wo.T).detach(), labels % 5)
    out["output (Hebbian descent)"] = relative(delta, -wo.grad)
    return out


def print_gradient_checks(checks: dict, tol: float = 1e-10) -> None:
    for name, value in checks.items():
        print(f"{name:26s} hand-derived ΔW = −autograd of the local loss: {value < tol}")


# ----- 3. a short run that records the C's ------------------------------------------------------------------
def run_setting(quick: bool | None = None) -> dict:
    """:data:`QUICK` or :data:`FULL`."""
    return dict(QUICK if (is_quick() if quick is None else quick) else FULL)


def load_data(setting: dict):
    """``(train, val, test)`` of the setting, standardised per channel as the presets (10 % validation)."""
    from ..training import load_splits

    return load_splits(get_contrastive_preset("contrastive_mlp")["data"], source=setting["source"],
                       limit_train=setting["limit_train"], limit_test=setting["limit_test"])


def rate_snapshot(model) -> dict:
    """``{layer: {vector: C values (a copy)}}`` of every plastic layer."""
    return {name: {key[2:]: getattr(layer, key).detach().clone()
                   for key in ("c_post", "c_pre", "c_height", "c_width") if getattr(layer, key, None) is not None}
            for name, layer in model.plastic_layers().items()}


@torch.no_grad()
def accuracy(model, data, batch_size: int = 500) -> float:
    """Test accuracy (%) of ``model`` on ``data`` in eval mode."""
    model.eval()
    correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in data.batches(batch_size, shuffle=False,
                                                                                 augment=False))
    return 100.0 * correct / len(data)


def train_with_rate_trace(model, train, test, *, epochs: int, batch_size: int = 32, seed: int = 0,
                          every: int = TRACE_EVERY, optimizer: dict | None = None) -> dict:
    """The single-forward-pass loop of :func:`hebblib.contrastive.train_contrastive`, written out, recording the C's
    of every layer every ``every`` steps and the test accuracy after every epoch. Returns ``{"steps", "trace"
    (a list of :func:`rate_snapshot` s), "test_acc" (per epoch), "local_loss" (per layer, per step)}``.
    Same batches as ``train_contrastive`` with ``generator=torch.Generator().manual_seed(seed)``."""
    optimizer = make_optimizer(model, optimizer or ADAMW_C)            # AdamW 0.03 / 0.003 on the C's only
    generator = torch.Generator().manual_seed(seed)
    steps, trace, test_acc, local = [0], [rate_snapshot(model)], [], {}
    step = 0
    for _ in range(epochs):
        model.train()
        for x, y in train.batches(batch_size, shuffle=True, augment=False, generator=generator,
                                  drop_last=len(train) % batch_size == 1):
            optimizer.zero_grad(set_to_none=True)  # before the weight change, or its graph is lost (§4.3)
            model.begin_step()                     # W_t = constrain(W_{t−1} + η C ⊙ M), in the graph
            loss = F.cross_entropy(model(x), y)    # one forward; every layer keeps its input and U
            if loss.requires_grad:                 # step 1 has no pending update: no graph to C yet
                loss.backward()
                optimizer.step()                   # the C's learn from this batch's cross-entropy
            for name, value in model.local_updates(y).items():  # ΔW_t; M ← β M + ΔW_t
                local.setdefault(name, []).append(float(value))
            step += 1
            if step % every == 0:
                steps.append(step)
                trace.append(rate_snapshot(model))
        test_acc.append(accuracy(model, test))
    return {"steps": steps, "trace": trace, "test_acc": test_acc, "local_loss": local}


def quick_runs(setting: dict | None = None, seed: int = 0) -> dict:
    """The contrastive MLP of ``setting`` trained with :func:`train_with_rate_trace`, and its backprop twin (same
    network, same initial weights, :func:`hebblib.contrastive.train_contrastive`, SGD 0.001 + momentum):
    ``{"initial", "trained" (models), "trace", "backprop_test_acc", ...}``. One thread in quick mode."""
    setting = run_setting() if setting is None else setting
    train, val, test = load_data(setting)
    model = contrastive_mlp(setting["hidden"], generator=torch.Generator().manual_seed(seed))
    initial = copy.deepcopy(model).eval()
    twin = contrastive_mlp(setting["hidden"], learning="backprop", generator=torch.Generator().manual_seed(seed))
    with single_thread() if setting["source"] == "subset" else contextlib.nullcontext():
        seed_everything(seed)
        run = train_with_rate_trace(model, train, test, epochs=setting["epochs"], seed=seed)
        history = train_contrastive(twin, train, val, test, epochs=setting["epochs"],
                                    generator=torch.Generator().manual_seed(seed), progress=False)
    return {**run, "initial": initial, "trained": model.eval(), "backprop_test_acc": [h["test_acc"] for h in history],
            "setting": setting, "n_train": len(train), "n_test": len(test)}


def print_quick_runs(runs: dict) -> None:
    s = runs["setting"]
    hidden = " → ".join(str(h) for h in s["hidden"])
    print(f"MLP 3072 → {hidden} → 10 (tanh), {runs['n_train']:,} {s['source']} training images, "
          f"{runs['n_test']:,} test images, {s['epochs']} epochs, batch 32")
    print("  contrastive Hebbian (C's by AdamW): test accuracy per epoch "
          + ", ".join(f"{a:.1f}" for a in runs["test_acc"]) + " %")
    print("  backprop twin (SGD 0.001 + momentum): test accuracy per epoch "
          + ", ".join(f"{a:.1f}" for a in runs["backprop_test_acc"]) + " %")
    n, acc = runs["n_test"], runs["test_acc"][-1] / 100
    print(f"(one standard error on {n:,} test images ≈ {100 * (acc * (1 - acc) / n) ** 0.5:.1f} points)")


def rates_figure(runs: dict) -> Figure:
    """How the neuron-centric learning rates evolve: per layer, the mean of each C vector over its neurons with
    the band between its 5th and 95th percentile, against the training step (all start at 1)."""
    steps, trace = runs["steps"], runs["trace"]
    layers = list(trace[0])
    fig = Figure(figsize=(3.0 * len(layers), 3.3), layout="constrained")
    axes = fig.subplots(1, len(layers), sharey=True, squeeze=False)[0]
    colours = {"post": "tab:red", "pre": "tab:blue", "height": "tab:green", "width": "tab:purple"}
    for ax, layer in zip(axes, layers):
        for key in trace[0][layer]:
            values = torch.stack([snap[layer][key] for snap in trace])  # steps × neurons
            low, high = torch.quantile(values, torch.tensor([0.05, 0.95]), dim=1)
            ax.fill_between(steps, low.numpy(), high.numpy(), color=colours[key], alpha=0.2, lw=0)
            ax.plot(steps, values.mean(1).numpy(), color=colours[key], label=f"C_{key}")
        ax.axhline(1.0, color="grey", ls=":", lw=0.8)
        ax.set_title(layer, fontsize=10)
        ax.set_xlabel("training step")
    axes[0].set_ylabel("C (mean, 5–95 % band)")
    axes[0].legend(fontsize=8)
    fig.suptitle("neuron-centric learning rates during training (all initialised to 1)", fontsize=11)
    return fig


def rate_spread(runs: dict) -> dict:
    """Per layer: the largest |C − 1| after training, over all its C vectors."""
    return {layer: max(float((c - 1).abs().max()) for c in vectors.values())
            for layer, vectors in runs["trace"][-1].items()}


# ----- 4. the demo: Figs. 4.1 and 4.2 on a real batch ----------------------------------------------------
def demo_batch(test, batch_size: int = 16, seed: int = 0):
    """``batch_size`` test images drawn with ``seed``, sorted by class (positive pairs form blocks)."""
    g = torch.Generator().manual_seed(int(seed))
    index = torch.randperm(len(test), generator=g)[:int(batch_size)]
    x, y = test.get(index)
    order = torch.argsort(y, stable=True)
    return x[order], y[order]


@torch.no_grad()
def layer_output(model, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The activated output of ``layer`` ('pixels': the flattened input) for input ``x``, in eval mode."""
    if layer == "pixels":
        return x.flatten(1)
    model.eval()
    h = x
    for module in model.body:
        h = module(h)
        if getattr(module, "name", None) == layer:
            return h
    raise ValueError(f"layer must be one of {LAYER_VIEWS}, got {layer!r}")


def similarity_demo(runs: dict, test, network: str = "trained", layer: str = "fc2", batch_size: int = 16,
                    seed: int = 0, label_smoothing: float = 0.0) -> Figure:
    """Fig. 4.1: the B × B cosine similarities S of a batch at ``layer`` of the ``network`` ('initial' or
    'trained'), positive pairs framed blue, negative pairs red, the diagonal (ignored) black; Fig. 4.2: the
    per-entry loss ``M'_pos ⊙ (1 − S) + M'_neg ⊙ |S|`` (with label smoothing α, Eqs. 4.26–4.27); and the
    distribution of S over the positive and the negative pairs."""
    if network not in NETWORK_STATES:
        raise ValueError(f"network must be one of {NETWORK_STATES}, got {network!r}")
    x, labels = demo_batch(test, batch_size, seed)
    y = layer_output(runs[network], x, layer)
    s = cosine_similarities(y)
    positive, negative = contrastive_masks(labels, float(label_smoothing))
    loss = positive * (1 - s) + negative * s.abs()
    plain_pos, plain_neg = contrastive_masks(labels)
    b = len(labels)
    fig = Figure(figsize=(14, 4.5), layout="constrained")
    ax_s, ax_l, ax_h = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 0.9]})
    shown = np.ma.masked_array(s.numpy(), mask=torch.eye(len(labels), dtype=torch.bool).numpy())  # the diagonal
    image = ax_s.imshow(shown, cmap=matplotlib.colormaps["RdBu_r"].with_extremes(bad="black"), vmin=-1, vmax=1)
    fig.colorbar(image, ax=ax_s, shrink=0.8, label="S")
    for mask, colour in ((plain_pos, "tab:blue"), (plain_neg, "tab:red")):
        cells = [Rectangle((j - 0.5, i - 0.5), 1, 1) for i, j in mask.nonzero().tolist()]
        ax_s.add_collection(PatchCollection(cells, facecolor="none", edgecolor=colour,
                                            linewidth=1.6 if colour == "tab:blue" else 0.5))
    classes, counts = torch.unique_consecutive(labels, return_counts=True)  # one tick per class block
    centres = (torch.cumsum(counts, 0) - counts / 2 - 0.5).tolist()
    names = [CLASSES[int(t)] for t in classes]
    for ax in (ax_s, ax_l):
        ax.set_xticks(centres, names, rotation=90, fontsize=7)
        ax.set_yticks(centres, names, fontsize=7)
    state = (f"the pixels (input of the {network} network)" if layer == "pixels"
             else f"{layer} of the {network} network")
    ax_s.set_title(f"S at {state}\nblue: positive pairs, red: negative, black: ignored", fontsize=9.5)
    image = ax_l.imshow(loss.numpy(), cmap="magma", vmin=0, vmax=max(1.0, float(loss.max())))
    fig.colorbar(image, ax=ax_l, shrink=0.8, label="loss entry")
    ax_l.set_title(f"per-entry loss, label smoothing {float(label_smoothing):g}\n"
                   f"L = mean = {float(loss.mean()):.4f} (positives {float((positive * (1 - s)).mean()):.4f}, "
                   f"negatives {float((negative * s.abs()).mean()):.4f})", fontsize=9.5)
    pos, neg = s[plain_pos.bool()], s[plain_neg.bool()]
    bins = torch.linspace(-1, 1, 41).numpy()
    if len(neg):
        ax_h.hist(neg.numpy(), bins=bins, color="tab:red", alpha=0.6, density=True, label=f"negative ({len(neg)})")
    if len(pos):
        ax_h.hist(pos.numpy(), bins=bins, color="tab:blue", alpha=0.6, density=True, label=f"positive ({len(pos)})")
    ax_h.axvline(0, color="tab:red", ls=":", lw=1)
    ax_h.axvline(1, color="tab:blue", ls=":", lw=1)
    ax_h.set_xlabel("S (targets: 1 for positives, 0 for negatives)")
    ax_h.set_ylabel("density")
    gap = (float(pos.mean()) if len(pos) else math.nan) - (float(neg.abs().mean()) if len(neg) else math.nan)
    ax_h.set_title(f"B = {b}, batch seed {int(seed)}\nmean S(pos) − mean |S(neg)| = {gap:.3f}", fontsize=9.5)
    ax_h.legend(fontsize=8)
    return fig


@torch.no_grad()
def separations(runs: dict, test, batch_size: int = 256, seed: int = 0) -> dict:
    """Per hidden layer, initial vs trained network: mean S over the positive pairs minus mean |S| over the
    negative pairs of one batch of ``batch_size`` test images (the loss drives it towards 1)."""
    x, labels = demo_batch(test, min(batch_size, len(test)), seed)
    positive, negative = (m.bool() for m in contrastive_masks(labels))
    out = {}
    for state in NETWORK_STATES:
        model, h = runs[state].eval(), x
        for module in model.body:
            h = module(h)
            name = getattr(module, "name", None)
            if name in LAYER_VIEWS:  # the hidden layers
                s = cosine_similarities(h)
                out.setdefault(name, {})[state] = float(s[positive].mean() - s[negative].abs().mean())
    return out


# ----- 5. the thesis's tables beside what was measured -----------------------------------------------------
def _published(name: str) -> str:
    entry = get_contrastive_preset(name)
    if entry["published"] is None:
        return "—"
    return f"{entry['published']:.2f} ± {entry['published_std']:.2f}"


def _measured(name: str | None, reduced: dict | None) -> tuple[str, str]:
    """(full-data text, reduced-setting text) of preset ``name``."""
    if name is None:
        return "not measurable here", "—"
    full = full_data_accuracy(name)
    if full is None:
        full_text = "not measured on full data"
    elif full["seeds"] > 1:
        full_text = f"{full['final']:.2f} ± {full['final_std']:.2f} ({full['seeds']} seeds)"
    else:
        full_text = f"{full['final']:.2f} (1 seed)"
    row = (reduced or {}).get("presets", {}).get(name)
    if row is None:
        return full_text, "—"
    a = row["test_acc_at_best_val"]
    spread = f" ± {a['std']:.2f}" if len(a["values"]) > 1 else ""
    return full_text, f"{a['mean']:.2f}{spread} ({len(a['values'])} seed{'s' if len(a['values']) > 1 else ''})"


def reduced_record() -> dict | None:
    """The committed reduced-setting runs (``scripts/ch15_reduced.py``), or None."""
    return chapter_result("ch15_reduced")


def _print_rows(rows, reduced) -> None:
    print(f"  {'method':31s} {'published (%)':>26s}   {'measured, all of CIFAR-10':>27s}   "
          f"{'measured, reduced setting':>25s}")
    for label, published, name in rows:
        full, small = _measured(name, reduced)
        print(f"  {label:31s} {published:>26s}   {full:>27s}   {small:>25s}")


def print_table_6_4(reduced: dict | None = None) -> None:
    """Table 6.4 (CIFAR-10, conv network by width F): contrastive Hebbian (CH), SoftHebb at the same width,
    backprop; the thesis's numbers beside the committed measurements (docs/results/, and the reduced setting)."""
    print("Table 6.4 (Lunelli 2024): CIFAR-10, conv network, width factor F; test accuracy, mean ± std of 5 runs")
    rows = []
    for f in (4, 2, 1):
        rows.append((f"CH, F-{f}", _published(f"contrastive_conv_f{f}"), f"contrastive_conv_f{f}"))
    for f in (4, 2, 1):
        value, spread = SOFTHEBB_TABLE_6_4[f]
        rows.append((f"SoftHebb, F-{f} [Journé et al.]", f"{value} {spread}", SOFTHEBB_MEASURED.get(f)))
    rows.append(("Backprop, F-4 (this network)", _published("contrastive_conv_backprop"), "contrastive_conv_backprop"))
    rows.append(("Backprop, F-1 (this network)", _published("contrastive_conv_f1_backprop"),
                 "contrastive_conv_f1_backprop"))
    rows.append(("Backprop [Journé et al.]", f"{BACKPROP_JOURNE} (no spread)", None))
    _print_rows(rows, reduced)
    print("  SoftHebb F-4 measured = hebblib's softhebb_paper preset (Journé et al.'s protocol); hebblib's SoftHebb "
          "network scales every layer by one factor, so the thesis's F-2 (96/192/384) and F-1 (96/96/96) SoftHebb "
          "nets are not built here.")


def print_table_6_2(reduced: dict | None = None) -> None:
    """Table 6.2 (CIFAR-10, the 4 × 2000 MLP) likewise."""
    print("Table 6.2 (Lunelli 2024): CIFAR-10, 4 × 2000 tanh MLP; test accuracy, mean ± std of 5 runs")
    rows = [("CH", _published("contrastive_mlp"), "contrastive_mlp"),
            ("CH + label smoothing", _published("contrastive_mlp_label_smoothing"), "contrastive_mlp_label_smoothing"),
            ("CH without momentum", _published("contrastive_mlp_no_momentum"), "contrastive_mlp_no_momentum"),
            ("Backprop", _published("contrastive_mlp_backprop"), "contrastive_mlp_backprop")]
    _print_rows(rows, reduced)


def print_reduced_setting(reduced: dict | None) -> None:
    if reduced is None:
        print("reduced setting: not run here (python scripts/ch15_reduced.py writes "
              "docs/results/chapters/ch15_reduced.json)")
        return
    print(f"reduced setting: {reduced['setting']}\n  measured on {reduced['device']} ({reduced['cpu_model']}, "
          f"{reduced['threads']} thread(s)): {reduced['command']}")


def print_full_data_commands(reduced: dict | None = None) -> None:
    """The commands that measure the full-data rows, and (from the reduced runs' speed) how long each takes here."""
    names = ("contrastive_conv_f1", "contrastive_conv_f1_backprop", "contrastive_mlp", "contrastive_mlp_backprop",
             "contrastive_conv_f4")
    print("the full-data rows are measured by (50 epochs for the conv presets, 100 for the MLP ones, 45,000 images):")
    for name in names:
        line = f"  python -m hebblib reproduce --preset {name} --seeds 3 --source full --data ROOT"
        row = (reduced or {}).get("presets", {}).get(name)
        if row:
            rate = sum(r["images_per_s"] for r in row["runs"]) / len(row["runs"])
            epochs = get_contrastive_preset(name)["training"]["epochs"]
            line += (f"   (at the reduced runs' {rate:.0f} img/s on {reduced['threads']} thread(s): "
                     f"≈ {45_000 * epochs / rate / 3600:.0f} h per seed)")
        print(line)


# ----- summary -----------------------------------------------------------------------------------------
def summary_checks(checks: dict, runs: dict, separations: dict) -> list:
    worst = max(checks.values())
    spread = rate_spread(runs)
    last = list(separations)[-1]
    sep = separations[last]
    return [
        ("hand-derived local updates = −autograd (linear, conv, output layer)", f"{worst < 1e-10}", "True",
         worst < 1e-10),
        ("every layer's C moved away from 1 during training", f"{min(spread.values()) > 0}", "True",
         min(spread.values()) > 0),
        (f"{last}: mean S(pos) − mean |S(neg)| grows with training (trained vs initial)",
         f"{sep['trained']:.3f} vs {sep['initial']:.3f}", "trained larger", sep["trained"] > sep["initial"]),
    ]


__all__ = [
    "CLASSES", "FULL", "LAYER_VIEWS", "NETWORK_STATES", "QUICK", "accuracy", "demo_batch", "layer_output",
    "load_data", "local_gradient_checks", "pair_loss_cases", "pair_loss_matrix_solution", "print_full_data_commands",
    "print_gradient_checks", "print_quick_runs", "print_reduced_setting", "print_table_6_2", "print_table_6_4",
    "quick_runs", "rate_snapshot", "rate_spread", "rates_figure", "reduced_record", "run_setting", "separations",
    "similarity_demo", "summary_checks", "train_with_rate_trace",
]
