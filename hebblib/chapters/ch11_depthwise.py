"""Chapter 11 — Depthwise-separable Hebbian networks (spec nimmo-thesis §1.17, §2.5, §7 C-1, C-9).

A depthwise-separable stage splits a k×k convolution into a per-channel spatial filter and a 1×1
channel mixer (thesis §2.4, §3.3.10):

    depthwise   u[n,c,h,v] = cos(W_c, x_c[h:h+k, v:v+k])          W: (C, 1, k, k), groups = C
    pointwise   z[n,o,h,v] = cos(P_o, u[n,:,h,v])                  P: (O, C, 1, 1)

A depthwise channel has only one unit, so there is nobody to compete with at a position: the hard WTA
moves to *space*, one winning position per channel and image (§1.17). The original code's cosine
normalises W over the input channels at each tap ('cosine_per_tap'); with one input channel per
group that is ``W / |W| = sign(W)``, so the learned magnitudes of depthwise weights never reach the
forward pass (§7 C-1). The chapter also holds the reduced-run helpers that chapters 12 and 13 reuse.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..layers import HebbianConv2d
from ..networks import PARAMETER_COUNTS, build_network
from ..runtime import is_quick, seed_everything, single_thread
from .ch01_hebb_instar_oja import print_checks

PUBLISHED = {"depthwise": 72.0, "hard_basic": 74.8}
SOURCE_README = "Nimmo & Mondragón code README"
THESIS_DEPTHWISE = 69.0  # thesis Table 3, 5 classifier epochs (spec §8 Ch 11)
QUICK_WIDTH, QUICK_TRAIN, QUICK_TEST, QUICK_PROBE_EPOCHS = 0.25, 800, 400, 5


# ----- 1. parameters ------------------------------------------------------------------------------------
def parameter_rows(architecture: str, width_factor: float = 1.0) -> list[tuple[str, tuple, int]]:
    """``(layer, weight shape, parameters)`` for every Hebbian layer and the head of ``architecture``."""
    net = build_network(architecture, width_factor=width_factor, generator=torch.Generator().manual_seed(0))
    rows = [(name, tuple(layer.weight.shape), layer.weight.numel()) for name, layer in net.hebbian_layers().items()]
    head = net.classifier
    rows.append(("head (Linear)", tuple(head.weight.shape), head.weight.numel() + head.bias.numel()))
    return rows


def print_parameter_table(architectures=("softhebb", "softhebb_depthwise")) -> dict:
    """Print the per-layer breakdown of each architecture and its total; returns the totals."""
    totals = {}
    for arch in architectures:
        rows = parameter_rows(arch)
        totals[arch] = sum(count for _, _, count in rows)
        print(f"{arch}:")
        for name, shape, count in rows:
            print(f"  {name:20s} {str(shape):22s} {count:>10,}")
        print(f"  {'total':20s} {'':22s} {totals[arch]:>10,}  (library table: {PARAMETER_COUNTS[arch]:,})")
    if len(totals) == 2:
        a, b = architectures
        print(f"{a} / {b} = {totals[a] / totals[b]:.3f}")
    return totals


# ----- 2. competition across space: the exercise --------------------------------------------------------
def spatial_wta_solution(u: torch.Tensor) -> torch.Tensor:
    """Reference solution: for each image and channel of ``u`` (N, C, H, W), 1 at the position of the
    largest activation and 0 elsewhere (spec §1.17, hard mode of the depthwise layer)."""
    flat = u.flatten(2)
    mask = torch.zeros_like(flat).scatter_(2, flat.argmax(dim=2, keepdim=True), 1.0)
    return mask.view_as(u)


def spatial_wta_cases():
    """Argument tuples ``(u,)``: a few (N, C, H, W) activation maps."""
    g = torch.Generator().manual_seed(11)
    return [(torch.randn(2, 3, 4, 4, generator=g),), (torch.randn(1, 5, 6, 3, generator=g),),
            (torch.randn(3, 2, 1, 7, generator=g),)]


def library_spatial_mask(u: torch.Tensor) -> torch.Tensor:
    """The mask the library's depthwise layer builds: a binary hard WTA over the positions of each
    channel (``competition_over='space'``, chosen automatically for a depthwise layer)."""
    c = u.shape[1]
    layer = HebbianConv2d(c, c, 1, groups=c, competition={"name": "hard_wta", "binary": True})
    arrange, restore = layer._arrangement(u)
    return restore(layer.competition(arrange(u)))


# ----- 3. the per-tap cosine pitfall --------------------------------------------------------------------
def depthwise_layer(channels: int = 8, kernel: int = 3, activation: str = "cosine", dale=False,
                    seed: int = 0) -> HebbianConv2d:
    """A depthwise Hebbian layer (groups = channels) with seeded random weights."""
    return HebbianConv2d(channels, channels, kernel, padding=kernel // 2, groups=channels, activation=activation,
                         dale=dale, generator=torch.Generator().manual_seed(seed)).eval()


def response(layer: HebbianConv2d, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The layer's output on ``x``, optionally with ``weight`` swapped in (the layer is left unchanged)."""
    saved = layer.weight.detach().clone()
    try:
        if weight is not None:
            with torch.no_grad():
                layer.weight.copy_(weight)
        with torch.no_grad():
            return layer(x)
    finally:
        with torch.no_grad():
            layer.weight.copy_(saved)


def per_tap_pitfall(channels: int = 8, seed: int = 0) -> dict:
    """Largest output change when the depthwise weights W are replaced by sign(W), or by W with one tap
    multiplied by 10, under per-tap and under true cosine. Per-tap: both changes are round-off."""
    x = torch.randn(4, channels, 12, 12, generator=torch.Generator().manual_seed(seed + 1))
    out = {}
    for activation in ("cosine_per_tap", "cosine"):
        layer = depthwise_layer(channels, activation=activation, seed=seed)
        w = layer.weight.detach()
        stretched = w.clone()
        stretched[:, :, 1, 1] *= 10.0
        base = response(layer, x)
        out[activation] = {"sign": float((response(layer, x, w.sign()) - base).abs().max()),
                           "stretch": float((response(layer, x, stretched) - base).abs().max())}
    return out


def print_pitfall(numbers: dict, tol: float = 1e-5) -> None:
    """One line per activation: does the output change when W → sign(W), or one tap ×10? (stable text)"""
    for activation, d in numbers.items():
        print(f"{activation:15s} W → sign(W) changes the output: {d['sign'] > tol!s:5s}   "
              f"one tap × 10 changes the output: {d['stretch'] > tol}")


def _kernel_image(kernel: torch.Tensor) -> torch.Tensor:
    return kernel.nan_to_num(0.0).clamp(-1e6, 1e6)


def tap_scaling_demo(scale: float = 1.0, activation: str = "cosine_per_tap", channel: int = 0, seed: int = 0) -> Figure:
    """One depthwise channel on one image: its 3×3 kernel with the centre tap multiplied by ``scale``,
    and the response map. Under per-tap cosine the map only changes when ``scale`` changes sign."""
    layer = depthwise_layer(3, activation=activation, seed=seed)
    x = demo_image()
    w = layer.weight.detach().clone()
    w[:, :, 1, 1] *= float(scale)
    u_ref, u = response(layer, x)[0, channel], response(layer, x, w)[0, channel]
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    axes = fig.subplots(1, 4)
    k = _kernel_image(w[channel, 0])
    bound = float(k.abs().max()) or 1.0
    axes[0].imshow(k.numpy(), cmap="RdBu_r", vmin=-bound, vmax=bound)
    axes[0].set_title(f"kernel, centre × {scale:g}", fontsize=10)
    used = _kernel_image(F.normalize(w, dim=1)[channel, 0] if activation == "cosine_per_tap"
                         else w[channel, 0] / (w[channel].norm() + 1e-12))
    bound = float(used.abs().max()) or 1.0
    axes[1].imshow(used.numpy(), cmap="RdBu_r", vmin=-bound, vmax=bound)
    axes[1].set_title("what the forward pass uses", fontsize=10)
    for ax, img, title in ((axes[2], u, "response"), (axes[3], (u - u_ref).abs(), "|change| from scale 1")):
        img = img.nan_to_num(0.0)
        ax.imshow(img.numpy(), cmap="viridis")
        ax.set_title(f"{title} (max {float(img.abs().max()):.2g})", fontsize=10)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(f"activation = '{activation}'", fontsize=11)
    return fig


def demo_image() -> torch.Tensor:
    """The first test image of the shipped subset, standardised (one demo input for the widgets)."""
    from ..data import load_cifar

    images, _ = load_cifar(False, None, "subset")
    x = images[:1].float()
    return (x - x.mean()) / (x.std() + 1e-8)


# ----- 4. reduced and full runs (shared with chapters 12 and 13) ---------------------------------------
def chapter_preset(name: str, quick: bool | None = None, width_factor: float = QUICK_WIDTH, original: bool = False,
                   **hebbian) -> dict:
    """Preset ``name``; in quick mode at ``width_factor`` and without flipped copies for the probe (which
    would double the feature extraction). ``hebbian`` overrides the shared Hebbian settings."""
    from ..presets import get_preset

    preset = get_preset(name, original=original)
    if hebbian:
        preset["hebbian"] = {**preset["hebbian"], **hebbian}
        preset["name"] = name + "+" + "+".join(f"{k}={v}" for k, v in hebbian.items())
    if is_quick() if quick is None else quick:
        preset["model"]["width_factor"] = width_factor
        preset["supervised"]["augment"] = False
    return preset


def train_run(preset: dict, seed: int = 0, quick: bool | None = None, limit_train: int = QUICK_TRAIN,
              limit_test: int = QUICK_TEST, probe_epochs: int = QUICK_PROBE_EPOCHS,
              progress: bool | None = None) -> dict:
    """One Hebbian epoch and the linear probe through ``hebblib.training.run_preset``; returns its result
    record plus ``model`` (the network after the Hebbian epoch, read from the run's checkpoint).

    Quick mode: ``limit_train``/``limit_test`` subset images, ``probe_epochs`` classifier epochs, one
    thread, a temporary runs folder. Full mode: the preset as published, on all of CIFAR-10, in ``runs/``
    (resumable)."""
    from ..presets import build_model, resolve_preset
    from ..training import run_preset

    quick = is_quick() if quick is None else quick
    progress = (not quick) if progress is None else progress
    preset = resolve_preset(preset)
    if quick:
        with single_thread():
            result = run_preset(preset, seed=seed, quick=True, limit_train=limit_train, limit_test=limit_test,
                                supervised_epochs=probe_epochs, out=tempfile.mkdtemp(prefix="hebblib-ch11-"),
                                resume=False, progress=progress)
    else:
        result = run_preset(preset, seed=seed, progress=progress)
    seed_everything(seed)
    model = build_model(preset)
    checkpoint = torch.load(Path(result["run_dir"]) / "unsupervised.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["model"])
    return {**result, "model": model.eval(), "preset_dict": preset}


def describe_run(result: dict) -> str:
    """'reduced run: ¼-width net, 720 subset images, 5 probe epochs' or the full-mode equivalent."""
    data, epochs = result["data"], result["supervised"]["epochs"]
    if result["quick"]:
        width = result["preset_dict"]["model"].get("width_factor", 1.0)
        return (f"REDUCED run: width × {width:g}, {data['n_train']:,} subset training images, "
                f"{data['n_test']:,} test images, {epochs} probe epochs")
    return f"full run: {data['n_train']:,} training images, {epochs} probe epochs"


def print_comparison(runs: dict) -> None:
    """One line per run: max test accuracy, parameters, accuracy per 100k parameters."""
    print(f"{'network':34s} {'test acc':>9s} {'params':>10s} {'acc / 100k params':>18s}")
    for name, r in runs.items():
        n = r["num_parameters"]
        print(f"{name:34s} {r['max_test_acc']:8.1f}% {n:>10,} {100_000 * r['max_test_acc'] / n:18.1f}")
    first = next(iter(runs.values()))
    n_test, acc = first["data"]["n_test"], first["max_test_acc"] / 100
    print(f"({describe_run(first)}; one standard error on {n_test:,} test images ≈ "
          f"{100 * (acc * (1 - acc) / n_test) ** 0.5:.1f} points, so small gaps mean little)")


def published_per_parameter() -> None:
    """The published accuracies per 100k parameters of the full networks."""
    for preset, arch in (("depthwise", "softhebb_depthwise"), ("hard_basic", "softhebb")):
        n = PARAMETER_COUNTS[arch]
        print(f"published {preset:11s} {PUBLISHED[preset]:.1f}% with {n:>9,} parameters: "
              f"{100_000 * PUBLISHED[preset] / n:5.2f}% per 100k parameters")


# ----- 5. depthwise kernels -----------------------------------------------------------------------------
def centre_surround_fraction(kernels: torch.Tensor) -> float:
    """Fraction of k×k kernels whose centre tap has the opposite sign to the mean of its 8 neighbours
    (a crude centre–surround detector)."""
    k = kernels.reshape(-1, kernels.shape[-2], kernels.shape[-1])
    c = k.shape[-1] // 2
    centre = k[:, c, c]
    surround = (k.sum((1, 2)) - centre) / (k[0].numel() - 1)
    return float((centre * surround < 0).double().mean())


def kernel_grid_figure(before, after, layer: str, n: int = 64) -> Figure:
    """The first ``n`` depthwise kernels of ``layer`` before and after the Hebbian epoch, each scaled on
    its own (blue < 0 < red), with the centre–surround fraction."""
    fig = Figure(figsize=(11, 5.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, net, title in ((axes[0], before, "initial"), (axes[1], after, "after one Hebbian epoch")):
        w = net.hebbian_layers()[layer].weight.detach()[:n, 0]
        ax.imshow(kernel_mosaic(w).numpy(), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(f"{title}: centre–surround {100 * centre_surround_fraction(w):.0f}%", fontsize=10)
        ax.set_axis_off()
    fig.suptitle(f"{layer}: one 3×3 kernel per channel", fontsize=11)
    return fig


def kernel_mosaic(kernels: torch.Tensor, ncols: int = 8) -> torch.Tensor:
    """Tile (n, k, k) kernels, each divided by its largest |tap|, with NaN-free gaps at 0."""
    n, k, _ = kernels.shape
    rows = math.ceil(n / ncols)
    scaled = kernels / kernels.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, 1, 1)
    mosaic = torch.zeros(rows * (k + 1) + 1, ncols * (k + 1) + 1)
    for i in range(n):
        r, c = divmod(i, ncols)
        mosaic[1 + r * (k + 1):1 + r * (k + 1) + k, 1 + c * (k + 1):1 + c * (k + 1) + k] = scaled[i]
    return mosaic.nan_to_num(0.0)


def initial_model(preset: dict, seed: int = 0):
    """The network of ``preset`` as ``run_preset`` initialises it for ``seed``."""
    from ..presets import build_model, resolve_preset

    seed_everything(seed)
    return build_model(resolve_preset(preset)).eval()


# ----- summary ------------------------------------------------------------------------------------------
def print_full_figure(preset: str) -> None:
    """The committed full-data figure of ``preset`` (docs/results/) beside its published number and
    source, or say it is not measured yet (:func:`hebblib.notebook.report_committed_preset`)."""
    from ..notebook import report_committed_preset
    from ..presets import get_preset

    entry = get_preset(preset)
    report_committed_preset(preset, entry["published"], entry["source"])


def summary(runs: dict, mechanism: str, baseline: str, published: float, source: str) -> None:
    """Measured (this run) beside published, the baseline on the same data, and the committed full figure."""
    from ..notebook import report

    quick = runs[mechanism]["quick"]
    note = describe_run(runs[mechanism]) + (" — far below the published number by design" if quick else "")
    report(f"{mechanism} (this run)", runs[mechanism]["max_test_acc"], published, source, note)
    report(f"{baseline} baseline (this run, same data, seed and probe)", runs[baseline]["max_test_acc"])
    print_full_figure(mechanism)


def summary_checks(totals: dict, pitfall: dict):
    """The bit-stable claims of the chapter beside their targets."""
    per_tap, true = pitfall["cosine_per_tap"], pitfall["cosine"]
    return [
        ("softhebb_depthwise parameters", f"{totals['softhebb_depthwise']:,}", "883,978",
         totals["softhebb_depthwise"] == 883_978),
        ("softhebb parameters", f"{totals['softhebb']:,}", "5,893,162", totals["softhebb"] == 5_893_162),
        ("per-tap cosine, depthwise: output unchanged by W → sign(W)", f"{per_tap['sign'] < 1e-5}", "True",
         per_tap["sign"] < 1e-5),
        ("true cosine, depthwise: output changed by one tap × 10", f"{true['stretch'] > 1e-3}", "True",
         true["stretch"] > 1e-3),
    ]


__all__ = [
    "PUBLISHED", "centre_surround_fraction", "chapter_preset", "depthwise_layer", "describe_run", "initial_model",
    "kernel_grid_figure", "kernel_mosaic", "library_spatial_mask", "parameter_rows", "per_tap_pitfall",
    "print_checks", "print_comparison", "print_full_figure", "print_parameter_table", "print_pitfall",
    "published_per_parameter", "response", "demo_image", "spatial_wta_cases", "spatial_wta_solution", "summary",
    "summary_checks", "tap_scaling_demo", "train_run",
]
