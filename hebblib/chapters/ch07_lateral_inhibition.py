"""Chapter 7 — Lateral inhibition: the difference-of-Gaussians surround kernel.

A fixed "Mexican hat" kernel is convolved with every feature map of a Hebbian layer (depthwise, zero
padding), so that neighbouring positions of one map excite each other and positions further out inhibit
each other (Nimmo §3.3.9, after Hasani et al. 2019; spec nimmo-thesis §1.16):

    K(x, y) = ( G_e / (2π σ_e²) − G_i / (2π σ_i²) ) / K(0, 0),   G_s = exp(−(x² + y²) / (2σ²)).

What chapters 7–10 share (a *reduced* run of a preset for quick mode, the full run otherwise, the lines
that print a run's number beside the published one) is in :mod:`hebblib.experiments`.
"""
from __future__ import annotations

import functools
import math

import torch
from matplotlib.figure import Figure

from ..experiments import PresetRun, example_images, reduced_data
from ..layers import HebbianConv2d
from ..plots import style
from ..presets import DEFAULT_SURROUND, change_preset, get_preset
from ..surround import SurroundModulation, dog_kernel

THESIS = {"hard WTA": 72.1, "hard WTA + surround": 73.0}
THESIS_SOURCE = "Nimmo (2024) MSc thesis, Table 3 (5 classifier epochs)"
# the surround settings of the 2025 code's 'optimal' preset, per layer, and the thesis default
KERNELS = {"thesis default": (5, 1.2, 1.4), "optimal conv1": (5, 1.2, 1.3), "optimal conv2": (3, 1.0, 1.2),
           "optimal conv3": (3, 0.8, 1.1)}


# ----- 1. the kernel ----------------------------------------------------------------------------------------
def dog_kernel_solution(size: int = 5, sigma_e: float = 1.2, sigma_i: float = 1.4) -> torch.Tensor:
    """The exercise's reference: a (size × size) difference of two normalised Gaussians over integer
    offsets −c..c (c = size // 2), divided by its centre value so that K(0, 0) = 1."""
    c = size // 2
    offsets = torch.arange(-c, c + 1, dtype=torch.float64)
    r2 = offsets.view(-1, 1) ** 2 + offsets.view(1, -1) ** 2
    excite = torch.exp(-r2 / (2 * sigma_e ** 2)) / (2 * math.pi * sigma_e ** 2)
    inhibit = torch.exp(-r2 / (2 * sigma_i ** 2)) / (2 * math.pi * sigma_i ** 2)
    kernel = excite - inhibit
    return (kernel / kernel[c, c]).float()


def kernel_exercise_cases():
    """(size, σ_e, σ_i) triples: the thesis default, a 3×3 kernel and a wide surround."""
    return [(5, 1.2, 1.4), (3, 1.0, 1.2), (7, 0.8, 2.0), (1, 1.0, 1.5)]


def kernel_table() -> list[tuple[str, int, float, float, float, float]]:
    """(name, size, σ_e, σ_i, Σ K, most negative tap) for the settings in :data:`KERNELS`."""
    rows = []
    for name, (size, sigma_e, sigma_i) in KERNELS.items():
        k = dog_kernel(size, sigma_e, sigma_i)
        rows.append((name, size, sigma_e, sigma_i, float(k.sum()), float(k.min())))
    return rows


def print_kernel_table() -> None:
    print(f"{'setting':16s} {'K':>2s} {'σ_e':>5s} {'σ_i':>5s} {'Σ K':>7s} {'min tap':>8s}")
    for name, size, sigma_e, sigma_i, total, low in kernel_table():
        print(f"{name:16s} {size:2d} {sigma_e:5.2f} {sigma_i:5.2f} {total:7.3f} {low:8.3f}")


def valid_surround(size, sigma_e, sigma_i) -> tuple[int, float, float, str]:
    """Widget values made legal: an odd size ≥ 1, σ_e > 0, σ_i > σ_e. Returns the values and a note
    saying what was changed ('' when nothing was)."""
    notes = []
    size = max(1, int(round(size)))
    if size % 2 == 0:
        size += 1
        notes.append(f"size → {size} (odd)")
    sigma_e = max(float(sigma_e), 0.05)
    if not sigma_i > sigma_e:
        sigma_i = round(sigma_e * 1.05 + 0.01, 3)
        notes.append(rf"$\sigma_i$ → {sigma_i} (must exceed $\sigma_e$)")
    return size, sigma_e, float(sigma_i), ", ".join(notes)


# ----- the activation maps of a few images ------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def fixed_layer(units: int = 8, seed: int = 0) -> HebbianConv2d:
    """A random first layer (5×5, cosine activity, reflect padding as in the networks), never trained."""
    layer = HebbianConv2d(3, units, 5, padding=2, padding_mode="reflect", activation="cosine",
                          generator=torch.Generator().manual_seed(seed))
    return layer.eval()


def surround_maps(images: torch.Tensor, size: int, sigma_e: float, sigma_i: float, channel: int = 0):
    """The layer's map of ``channel`` for each image, before and after the surround kernel, through the
    networks' Triangle nonlinearity (``relu(u − mean_o u)``), which makes the maps sparse."""
    with torch.no_grad():
        u = fixed_layer()(images)
        v = SurroundModulation(size, sigma_e, sigma_i)(u)
        before = torch.relu(u - u.mean(1, keepdim=True))[:, channel]
        after = torch.relu(v - v.mean(1, keepdim=True))[:, channel]
    return before, after


def surround_demo(sigma_e: float = 1.2, sigma_i: float = 1.4, size: int = 5, channel: int = 0) -> Figure:
    """Top: the kernel (heat map with Σ K) and its centre row. Below, for three CIFAR-10 images: the
    image, one channel of a fixed random layer (after Triangle) without and with the surround kernel."""
    size, sigma_e, sigma_i, note = valid_surround(size, sigma_e, sigma_i)
    kernel = dog_kernel(size, sigma_e, sigma_i)
    images = example_images()
    before, after = surround_maps(images, size, sigma_e, sigma_i, channel=int(channel) % 8)
    fig = Figure(figsize=(9.5, 3.0 * (1 + len(images))), layout="constrained")
    axes = fig.subplots(1 + len(images), 3)
    limit = max(float(kernel.abs().max()), 1e-6)
    axes[0, 0].imshow(kernel.numpy(), cmap=style.DIVERGING_CMAP, vmin=-limit, vmax=limit, interpolation="nearest")
    axes[0, 0].set(title=f"kernel $K$, $\\Sigma K$ = {float(kernel.sum()):.3f}", xticks=[], yticks=[])
    c = size // 2
    axes[0, 1].plot(range(-c, c + 1), kernel[c].numpy(), marker="o")
    axes[0, 1].axhline(0, color="black", linewidth=0.6)
    axes[0, 1].set(title="centre row of $K$", xlabel="offset", ylabel="$K$")
    axes[0, 2].set_axis_off()
    axes[0, 2].text(0.0, 0.5, rf"size {size}, $\sigma_e$ {sigma_e:.2f}, $\sigma_i$ {sigma_i:.2f}" "\n"
                    f"most negative tap {float(kernel.min()):.3f}\n" + (f"({note})" if note else ""),
                    fontsize=10, va="center")
    for row, (image, b, a) in enumerate(zip(images, before, after), start=1):
        shown = (image - image.min()) / (image.max() - image.min() + 1e-8)
        axes[row, 0].imshow(shown.permute(1, 2, 0).numpy())
        axes[row, 0].set_title("test image", fontsize=9)
        for ax, m, name in ((axes[row, 1], b, "without"), (axes[row, 2], a, "with surround")):
            active = float((m > 0).float().mean())
            ax.imshow(m.nan_to_num(0.0).numpy(), cmap="magma")
            ax.set_title(f"{name}: {100 * active:.0f}% active", fontsize=9)
        for ax in axes[row]:
            ax.set_axis_off()
    return fig


# ----- 2. hard WTA with and without the surround -------------------------------------------------------------
def surround_presets() -> dict:
    """The hard-WTA baseline and the same preset with the thesis surround (5, 1.2, 1.4) on every layer."""
    return {"hard WTA": get_preset("hard_basic"),
            "hard WTA + surround": change_preset(get_preset("hard_basic"),
                                                 {"hebbian": {"surround": dict(DEFAULT_SURROUND)}})}


def activity_statistics(run: PresetRun, n: int = 200) -> dict:
    """Fraction of the first block's outputs that are non-zero (after Triangle and pooling) on ``n`` images."""
    train, _, _ = reduced_data("zca")
    x, _ = train.get(slice(0, n))
    with torch.no_grad():
        y = run.net.features(x, upto=0)
    return {"active": float((y > 0).float().mean())}


def summary_rows(runs: dict) -> list:
    base, sm = runs["hard WTA"], runs["hard WTA + surround"]
    k = dog_kernel(5, 1.2, 1.4)
    return [
        ("Σ K for (5, 1.2, 1.4)", f"{float(k.sum()):.3f}", "2.341 (spec §1.16)", abs(float(k.sum()) - 2.341) < 1e-3),
        ("conv2 of 'optimal' (3, 1.0, 1.2): most negative tap", f"{float(dog_kernel(3, 1.0, 1.2).min()):.3f}",
         "> 0: no inhibition at all", float(dog_kernel(3, 1.0, 1.2).min()) > 0),
        ("hard WTA + surround minus hard WTA", f"{sm.accuracy - base.accuracy:+.1f} points",
         "+0.9 points in the thesis (73.0 vs 72.1)", None),
    ]


# the committed full-data pair that differs only in the surround: 'optimal' is 'bcm' plus per-layer surround
SURROUND_PAIR = ("bcm", "optimal")


def surround_pair_difference() -> dict:
    """How the presets of :data:`SURROUND_PAIR` differ: ``keys``, the top-level keys that differ besides
    name, description and published figure; ``layers_equal_without_surround``, whether their per-layer
    settings agree once the second's surround is dropped; ``surround``, the second's per-layer surround."""
    without, with_surround = (get_preset(name) for name in SURROUND_PAIR)
    ignored = {"name", "description", "published"}
    differs = {key for key in set(without) | set(with_surround)
               if key not in ignored and without.get(key) != with_surround.get(key)}
    layers = [{k: v for k, v in layer.items() if k != "surround"} for layer in with_surround["layers"]]
    return {"keys": differs, "layers_equal_without_surround": layers == without["layers"],
            "surround": [layer.get("surround") for layer in with_surround["layers"]]}


def report_full_surround_pair(directory=None) -> float | None:
    """The surround's effect on all of CIFAR-10, from the committed runs of ``bcm`` and ``optimal`` (same
    probe; only ``optimal``'s per-layer surround differs): their final test accuracies (means over each
    one's seeds; the line says when the counts differ) and the difference beside the README's; None (and a
    line saying so) while either is not measured."""
    from ..notebook import committed_difference
    from ..results import full_data_accuracy

    without_name, with_name = SURROUND_PAIR
    full = {name: full_data_accuracy(name, directory=directory) for name in SURROUND_PAIR}
    if any(v is None for v in full.values()):
        print(f"surround on all of CIFAR-10 ({with_name} minus {without_name}): not measured yet")
        return None
    published = {name: get_preset(name)["published"] for name in SURROUND_PAIR}
    effect, seeds = committed_difference(full[with_name], full[without_name])
    print(f"· surround on all of CIFAR-10, committed runs ({with_name} = {without_name} + per-layer surround, "
          f"same probe, {seeds}): {full[with_name]['final']:.2f} vs {full[without_name]['final']:.2f}, "
          f"measured {effect:+.1f} points | README {published[with_name]:.1f} vs {published[without_name]:.1f}, "
          f"{published[with_name] - published[without_name]:+.1f} points")
    return effect


__all__ = [
    "KERNELS", "activity_statistics", "dog_kernel_solution", "fixed_layer", "kernel_exercise_cases",
    "kernel_table", "print_kernel_table", "report_full_surround_pair", "summary_rows", "surround_demo",
    "surround_maps", "surround_pair_difference", "surround_presets", "valid_surround",
]
