"""Chapter 12 — Residual Hebbian blocks: the inverted bottleneck (spec nimmo-thesis §1.18, §2.7).

Each block (thesis §3.3.11, Table 11) has a main path and a shortcut, both made of Hebbian layers:

    main     = BN → 1×1 expand (C → eC) → Triangle → BN → 3×3 depthwise → Triangle
               → BN → 1×1 project (eC → C')
    shortcut = BN → 1×1 conv (C → C')        (identity when C = C')
    out      = pool(Triangle(main + shortcut))

Every sub-layer learns from its own input and output only; nothing but activity travels along the
skip. The functions here count the parameters per block, measure what the two paths carry, and show
that every sub-layer's weights moved. Reduced/full runs use the helpers of chapter 11.
"""
from __future__ import annotations

import torch
from matplotlib.figure import Figure

from ..networks import PARAMETER_COUNTS
from ..networks.blocks import ResidualBlock
from ..runtime import single_thread
from ..experiments import describe_result, parameter_rows, print_full_figure
from ..presets import get_preset

PUBLISHED_RESIDUAL = get_preset("residual")["published"]  # thesis Table 3 (5 classifier epochs); not in the README
SOURCE_THESIS = "Nimmo 2024 thesis, Table 3"
QUICK_WIDTH = 0.125
EXPANSION = 4


# ----- 1. parameters per block -------------------------------------------------------------------------
def bottleneck_parameters_solution(c_in: int, c_out: int, expansion: int = 4, kernel: int = 3) -> int:
    """Reference solution: weights of one inverted-bottleneck block (spec §1.18): expand ``c_in·h``,
    depthwise ``h·k²``, project ``h·c_out``, and a 1×1 shortcut ``c_in·c_out`` unless ``c_in == c_out``
    (``h = expansion · c_in``)."""
    hidden = expansion * c_in
    shortcut = 0 if c_in == c_out else c_in * c_out
    return c_in * hidden + hidden * kernel * kernel + hidden * c_out + shortcut


def bottleneck_cases():
    """Argument tuples ``(c_in, c_out, expansion, kernel)``: the two blocks of the thesis net and others."""
    return [(96, 384, 4, 3), (384, 1536, 4, 3), (64, 64, 6, 3), (10, 20, 1, 5)]


def block_rows(width_factor: float = 1.0) -> dict[str, list]:
    """The Hebbian layers of ``softhebb_residual`` grouped by block: ``{'stem': [...], 'res1': [...], ...}``."""
    blocks: dict[str, list] = {}
    for name, shape, count in parameter_rows("softhebb_residual", width_factor):
        blocks.setdefault(name.split(".")[0] if name.startswith("res") else name.split(" ")[0], []).append(
            (name, shape, count))
    return blocks


def print_block_table() -> int:
    """Per block: each sub-layer's weight shape and count, the block's sum; then the total."""
    total = 0
    for block, rows in block_rows().items():
        block_total = sum(count for *_, count in rows)
        total += block_total
        if len(rows) == 1:
            print(f"{rows[0][0]:20s} {str(rows[0][1]):22s} {block_total:>10,}")
            continue
        print(f"{block} ({block_total:,}):")
        for name, shape, count in rows:
            print(f"  {name:18s} {str(shape):22s} {count:>10,}")
    print(f"{'total':20s} {'':22s} {total:>10,}  (library table: {PARAMETER_COUNTS['softhebb_residual']:,})")
    return total


# ----- 2. what the skip carries ------------------------------------------------------------------------
def _energy(t: torch.Tensor) -> torch.Tensor:
    """Per-position activity ``Σ_c t²`` (N, H, W)."""
    return t.pow(2).sum(1)


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    denom = (a.norm() * b.norm()).item()
    return float(a @ b / denom) if denom > 0 else 0.0


@torch.no_grad()
def block_paths(block: ResidualBlock, x: torch.Tensor) -> dict:
    """The block's two paths on input ``x``, before they are summed: ``main``, ``shortcut``, ``out``."""
    main = block.act1(block.expand(block.norm1(x)))
    main = block.act2(block.depthwise(block.norm2(main)))
    main = block.project(block.norm3(main))
    shortcut = block.shortcut(block.shortcut_norm(x))
    return {"input": x, "main": main, "shortcut": shortcut, "sum": main + shortcut}


@torch.no_grad()
def skip_statistics(model, x: torch.Tensor) -> dict:
    """Per residual block: standard deviation of the main and shortcut outputs, the shortcut's share of
    the summed variance, the cosine between the two paths, and the correlation of each path's activity
    map ``Σ_c (·)²`` with the block input's."""
    model.eval()
    stats = {}
    for i, stage in enumerate(model.stages):
        if isinstance(stage, ResidualBlock):
            p = block_paths(stage, x)
            vm, vs = p["main"].var().item(), p["shortcut"].var().item()
            cos = torch.nn.functional.cosine_similarity(p["main"].flatten(1), p["shortcut"].flatten(1), dim=1)
            stats[f"res{i}"] = {
                "std_main": vm ** 0.5, "std_shortcut": vs ** 0.5,
                "shortcut_share": vs / (vm + vs) if vm + vs > 0 else 0.0,
                "cos_main_shortcut": float(cos.nan_to_num(0.0).mean()),
                "corr_main_input": _corr(_energy(p["main"]), _energy(p["input"])),
                "corr_shortcut_input": _corr(_energy(p["shortcut"]), _energy(p["input"])),
            }
        x = stage(x)
    return stats


def print_skip_table(stats_by_model: dict) -> None:
    """One row per (model, block)."""
    print(f"{'model, block':26s} {'std main':>9s} {'std skip':>9s} {'skip share':>10s} {'cos(main,skip)':>14s} "
          f"{'corr main~in':>12s} {'corr skip~in':>12s}")
    for model_name, stats in stats_by_model.items():
        for block, s in stats.items():
            print(f"{model_name + ', ' + block:26s} {s['std_main']:9.3f} {s['std_shortcut']:9.3f} "
                  f"{s['shortcut_share']:10.2f} {s['cos_main_shortcut']:14.2f} {s['corr_main_input']:12.2f} "
                  f"{s['corr_shortcut_input']:12.2f}")


def skip_mix_demo(model, x: torch.Tensor, shortcut_scale: float = 1.0, block: int = 1, image: int = 0) -> Figure:
    """Activity maps ``Σ_c (·)²`` of one image at block ``block``: the input, the main path, the shortcut
    scaled by ``shortcut_scale``, and ``Triangle(main + scale · shortcut)``."""
    stages = list(model.stages)
    res = [i for i, s in enumerate(stages) if isinstance(s, ResidualBlock)]
    index = res[max(0, min(int(block) - 1, len(res) - 1))]
    with torch.no_grad():
        h = x[image:image + 1]
        for stage in stages[:index]:
            h = stage(h)
        p = block_paths(stages[index], h)
        mixed = stages[index].act(p["main"] + float(shortcut_scale) * p["shortcut"])
    panels = {"block input": p["input"], "main path": p["main"],
              f"shortcut × {shortcut_scale:g}": float(shortcut_scale) * p["shortcut"], "Triangle(main + skip)": mixed}
    fig = Figure(figsize=(12, 3.4), layout="constrained")
    axes = fig.subplots(1, 4)
    reference = _energy(p["input"])[0]
    for ax, (title, t) in zip(axes, panels.items()):
        e = _energy(t)[0].nan_to_num(0.0, posinf=0.0, neginf=0.0)
        ax.imshow(e.numpy(), cmap="magma")
        ax.set_title(f"{title}\ncorr with input map {_corr(e, reference):+.2f}", fontsize=9)
        ax.set_axis_off()
    fig.suptitle(f"res{index}: activity $\\Sigma_c\\,(\\cdot)^2$ per position, one test image", fontsize=11)
    return fig


# ----- 3. every sub-layer learns -----------------------------------------------------------------------
def weight_change(before, after) -> dict:
    """``‖W_after − W_before‖ / ‖W_before‖`` for every Hebbian layer."""
    b, a = before.hebbian_layers(), after.hebbian_layers()
    changes = {}
    for name in b:
        w0, w1 = b[name].weight.detach(), a[name].weight.detach()
        changes[name] = float((w1 - w0).norm() / w0.norm().clamp_min(1e-12))
    return changes


def weight_change_figure(changes: dict) -> Figure:
    """A bar per Hebbian sub-layer: relative weight change over the Hebbian epoch."""
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax = fig.subplots()
    names = list(changes)
    colors = ["tab:gray" if n == "stem" else "tab:blue" if "res1" in n else "tab:orange" for n in names]
    ax.bar(range(len(names)), [changes[n] for n in names], color=colors)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=9)
    ax.set_ylabel("‖ΔW‖ / ‖W₀‖ over the epoch")
    ax.set_title("every sub-layer, shortcut included, learns from its own activity", fontsize=10)
    return fig


def ltp_ltd_sublayers(model, x: torch.Tensor, block: str = "res1", n: int = 9) -> Figure:
    """One training-mode forward on ``x`` fills every layer's ``delta_w``; the LTP/LTD maps of the
    depthwise sub-layer of ``block`` (read before any update is applied; the buffers are then cleared)."""
    from ..plots import plot_ltp_ltd

    model.train()
    try:
        with torch.no_grad(), single_thread():
            model.features(x)
        layer = model.hebbian_layers()[f"{block}.depthwise"]
        fig = plot_ltp_ltd(layer, n=n, title=f"{block}.depthwise: LTP (green) / LTD (red) of one batch",
                           fig=Figure(figsize=(6, 7.6), layout="constrained"))  # not pyplot's: shown once
    finally:
        for layer in model.hebbian_layers().values():
            layer.delta_w.zero_()
        model.eval()
    return fig


# ----- summary -----------------------------------------------------------------------------------------
def summary(runs: dict) -> None:
    from ..notebook import report

    r, quick = runs["residual"], runs["residual"]["quick"]
    note = describe_result(r) + (" — far below the published number by design" if quick else "")
    report("residual (this run)", r["max_test_acc"], PUBLISHED_RESIDUAL, SOURCE_THESIS, note)
    report("hard_basic baseline (this run, same data, seed and probe)", runs["hard_basic"]["max_test_acc"])
    print_full_figure("residual")
    print(thesis_readout_line())


THESIS_CLASSIFIER_EPOCHS = 5  # the thesis's Table 3 trains each classifier for 5 epochs; the preset for 20


def thesis_readout_line(directory=None) -> str:
    """The committed full-data runs after the thesis's 5 classifier epochs, beside its 71 %, or a line saying
    they are not measured (docs/results/residual.json, :func:`hebblib.results.accuracy_at_epoch`)."""
    from ..results import accuracy_at_epoch, signed

    at = accuracy_at_epoch("residual", THESIS_CLASSIFIER_EPOCHS, directory=directory)
    label = f"residual after {THESIS_CLASSIFIER_EPOCHS} classifier epochs (the thesis's read-out), all of CIFAR-10"
    if at is None:
        return f"{label}: not measured yet"
    if at["std"] is None:
        spread = "% (1 seed)"
    else:
        spread = f" ± {at['std']:.1f}% (mean ± sample std of {at['seeds']} seeds)"
    return (f"{label}: measured {at['mean']:.1f}{spread} | published {PUBLISHED_RESIDUAL}% ({SOURCE_THESIS}) | "
            f"difference of the mean {signed(at['mean'] - PUBLISHED_RESIDUAL)} points")


def summary_checks(total: int, changes: dict):
    return [
        ("softhebb_residual parameters", f"{total:,}", "4,030,378", total == 4_030_378),
        ("Hebbian sub-layers whose weights moved", f"{sum(c > 0 for c in changes.values())}/{len(changes)}",
         "all", all(c > 0 for c in changes.values())),
    ]


__all__ = [
    "block_paths", "block_rows", "bottleneck_cases", "bottleneck_parameters_solution",
    "ltp_ltd_sublayers", "print_block_table", "print_skip_table",
    "skip_mix_demo", "skip_statistics", "summary", "summary_checks", "thesis_readout_line", "weight_change",
    "weight_change_figure",
]
