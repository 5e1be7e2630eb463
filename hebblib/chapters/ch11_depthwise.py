"""Chapter 11 — Depthwise-separable Hebbian networks (spec nimmo-thesis §1.17, §2.5, §7 C-1, C-9).

A depthwise-separable stage splits a k×k convolution into a per-channel spatial filter and a 1×1
channel mixer (thesis §2.4, §3.3.10):

    depthwise   u[n,c,h,v] = cos(W_c, x_c[h:h+k, v:v+k])          W: (C, 1, k, k), groups = C
    pointwise   z[n,o,h,v] = cos(P_o, u[n,:,h,v])                  P: (O, C, 1, 1)

A depthwise channel has only one unit, so there is nobody to compete with at a position: the hard WTA
moves to *space*, one winning position per channel and image (§1.17). The original code's cosine
normalises W over the input channels at each tap ('cosine_per_tap'); with one input channel per
group that is ``W / |W| = sign(W)``, so the learned magnitudes of depthwise weights never reach the
forward pass (§7 C-1). The runs (shared with chapters 12 and 13) are :mod:`hebblib.experiments`' pipeline runs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..experiments import (demo_image, depthwise_layer, describe_result, layer_response, parameter_rows,
                           print_full_figure)
from ..layers import HebbianConv2d
from ..networks import PARAMETER_COUNTS
from ..plots.mosaic import kernel_mosaic
from ..presets import get_preset

# the published numbers, from the presets
PUBLISHED = {name: get_preset(name)["published"] for name in ("depthwise", "hard_basic")}
SOURCE_README = "Nimmo & Mondragón code README"
THESIS_DEPTHWISE = 69.0  # thesis Table 3, 5 classifier epochs (spec §8 Ch 11); no preset holds the thesis run

# ----- 1. parameters ------------------------------------------------------------------------------------
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
        base = layer_response(layer, x)
        out[activation] = {"sign": float((layer_response(layer, x, w.sign()) - base).abs().max()),
                           "stretch": float((layer_response(layer, x, stretched) - base).abs().max())}
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
    u_ref, u = layer_response(layer, x)[0, channel], layer_response(layer, x, w)[0, channel]
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


# ----- 4. parameters against accuracy -------------------------------------------------------------------
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


# ----- summary ------------------------------------------------------------------------------------------
def summary(runs: dict, mechanism: str, baseline: str, published: float, source: str) -> None:
    """Measured (this run) beside published, the baseline on the same data, and the committed full figure."""
    from ..notebook import report

    quick = runs[mechanism]["quick"]
    note = describe_result(runs[mechanism]) + (" — far below the published number by design" if quick else "")
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
    "PUBLISHED", "centre_surround_fraction", "kernel_grid_figure", "library_spatial_mask", "per_tap_pitfall",
    "print_parameter_table", "print_pitfall", "published_per_parameter", "spatial_wta_cases",
    "spatial_wta_solution", "summary", "summary_checks", "tap_scaling_demo",
]
