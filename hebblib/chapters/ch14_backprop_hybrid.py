"""Chapter 14 — Backprop, Hebbian, and the α-mix of the two (spec nimmo-thesis §1.0 "Applying the update";
:mod:`hebblib.hybrid`; presets ``backprop``, ``hybrid_soft``, ``hybrid_optimal``).

Nimmo's code writes every Hebbian layer's update into the gradient that a torch optimiser descends:

    weight.grad = (1 − α) · grad_BP − α · η_o ΔW_Hebb          α = 0: backprop;  α = 1: Hebbian

(η_o: the radius schedule's per-unit factor, 1 for a constant rate). The thesis ran only α = 1, with a
separate Hebbian phase; :mod:`hebblib.hybrid` trains the whole network end to end at any α. This chapter's
code: the exercise, a small α sweep that the demo replays (quick mode: the shipped subset), and the
printouts of what the library measured (``scripts/alpha_sweep.py``, ``python -m hebblib bench --phases``).
"""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import torch
from matplotlib.figure import Figure

from ..layers import HebbianConv2d
from ..plots.mosaic import filter_mosaic
from ..presets import build_model, change_preset, get_preset
from ..results import chapter_result, chapter_results_dir, load_checkpoint
from ..runtime import is_quick, seed_everything, single_thread
from ..training import run_preset

# The demo's sweep. Quick mode: the shipped subset, ⅛ width, few images; full mode: the committed sweep's
# setting (scripts/alpha_sweep.py's defaults), whose runs it reads back from runs/alpha_sweep when they are there.
QUICK = {"alphas": (0.0, 0.5, 1.0), "width": 0.125, "limit_train": 600, "limit_test": 300, "epochs": 2,
         "source": "subset"}
FULL = {"alphas": (0.0, 0.25, 0.5, 0.75, 1.0), "width": 0.25, "limit_train": 2500, "limit_test": 1000,
        "epochs": 3, "source": "full", "out": Path(__file__).resolve().parents[2] / "runs" / "alpha_sweep"}
VIEWS = ("learned filters", "change since initialisation")  # the demo shows the change first
COMPARED = ("backprop", "soft", "optimal")  # the full-data rows printed beside the α-hybrid's


# ----- 1. the α-mix: the exercise ------------------------------------------------------------------------
def mixed_gradient_solution(grad_bp: torch.Tensor, delta_w: torch.Tensor, alpha: float,
                            unit_rates: torch.Tensor) -> torch.Tensor:
    """Reference solution: ``(1 − α)·grad_BP − α·η_o·ΔW``; ``unit_rates``: η_o, one per output unit (dim 0)."""
    rates = unit_rates.view(-1, *([1] * (delta_w.dim() - 1)))
    return (1 - alpha) * grad_bp - alpha * rates * delta_w


def unit_rates(weight: torch.Tensor, power: float = 0.5) -> torch.Tensor:
    """SoftHebb's radius factor of each unit, ``(|‖W_o‖ − 1| + 1e-10)^power``, as a HebbianConv2d computes it
    (``learning_rates(1.0)`` with ``lr_schedule='radius'``)."""
    o, i, k, _ = weight.shape
    layer = HebbianConv2d(i, o, k, lr_schedule="radius", radius_power=power)
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer.learning_rates(1.0).detach().clone()


def mixed_gradient_cases():
    """Argument tuples ``(grad_bp, delta_w, alpha, unit_rates)``: α at both ends and between, units whose
    radius is far from and near 1."""
    g = torch.Generator().manual_seed(14)
    cases = []
    for alpha, scale in ((0.0, 3.0), (1.0, 3.0), (0.5, 1.1), (0.25, 0.2)):
        weight = scale * torch.randn(6, 3, 3, 3, generator=g) / 5.2
        grad = torch.randn(6, 3, 3, 3, generator=g)
        delta = torch.randn(6, 3, 3, 3, generator=g)
        cases.append((grad, delta, alpha, unit_rates(weight)))
    return cases


def library_cases():
    """``(weight, grad_bp, delta_w, alpha)``: the same draws as :func:`mixed_gradient_cases`, with the weight."""
    g = torch.Generator().manual_seed(14)
    cases = []
    for alpha, scale in ((0.0, 3.0), (1.0, 3.0), (0.5, 1.1), (0.25, 0.2)):
        weight = scale * torch.randn(6, 3, 3, 3, generator=g) / 5.2
        cases.append((weight, torch.randn(6, 3, 3, 3, generator=g), torch.randn(6, 3, 3, 3, generator=g), alpha))
    return cases


def library_mixed_gradient(weight, grad_bp, delta_w, alpha) -> torch.Tensor:
    """The same mix done by the library: a radius-schedule ``HebbianConv2d`` with ``weight``, its ``weight.grad``
    set to ``grad_bp`` and its ``delta_w`` to ``delta_w``, then ``hebbian_grad(alpha)``."""
    o, i, k, _ = weight.shape
    layer = HebbianConv2d(i, o, k, lr_schedule="radius", radius_power=0.5)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.delta_w.copy_(delta_w)
    layer.weight.grad = grad_bp.clone()
    layer.hebbian_grad(alpha)
    return layer.weight.grad.detach().clone()


# ----- 2. a small sweep the demo replays --------------------------------------------------------------------
def sweep_setting(quick: bool | None = None) -> dict:
    """:data:`QUICK` or :data:`FULL`."""
    return dict(QUICK if (is_quick() if quick is None else quick) else FULL)


def _final_network(result: dict, preset: dict):
    """The network a hybrid run ended with (its ``supervised.pt``)."""
    saved = load_checkpoint(Path(result["run_dir"]) / "supervised.pt", result["config_hash"])
    if saved is None:
        raise FileNotFoundError(f"no final weights of this run in {result['run_dir']}; run it again")
    model = build_model(preset)
    model.load_state_dict(saved["state"])
    return model.eval()


def hybrid_sweep(setting: dict | None = None, seed: int = 0, preset: str = "hybrid_soft",
                 progress: bool = False) -> dict:
    """One run of ``preset`` per α of ``setting`` (:func:`sweep_setting`), each through
    :func:`hebblib.training.run_preset` from the same initial weights and the same batches: ``{α: {"history",
    "initial", "final" (conv1 weights), "grad_norms" (last epoch), "final_test_acc", "seconds", "n_train",
    "n_test"}}``. Quick mode: one thread, a temporary runs folder; full mode: ``setting['out']`` (resumable,
    and the committed sweep's runs are read back when they are there)."""
    setting = sweep_setting() if setting is None else setting
    quick = setting["source"] == "subset"
    out = setting.get("out") or tempfile.mkdtemp(prefix="hebblib-ch14-")
    runs = {}
    for alpha in setting["alphas"]:
        changed = change_preset(get_preset(preset), {"model": {"width_factor": setting["width"]},
                                                      "supervised": {"alpha": alpha}})
        seed_everything(seed)
        initial = build_model(changed).hebbian_layers()["conv1"].weight.detach().clone()
        with single_thread() if quick else contextlib.nullcontext():
            result = run_preset(changed, seed=seed, source=setting["source"], quick=quick,
                                limit_train=setting["limit_train"], limit_test=setting["limit_test"],
                                supervised_epochs=setting["epochs"], out=out, resume=not quick,
                                progress=progress, notice=None)
        model = _final_network(result, changed)
        runs[alpha] = {"history": result["epochs"], "initial": initial,
                       "final": model.hebbian_layers()["conv1"].weight.detach().clone(),
                       "grad_norms": result["epochs"][-1].get("grad_norms") or {},
                       "final_test_acc": result["final_test_acc"],
                       "seconds": sum(e["seconds"] for e in result["epochs"]),
                       "n_train": result["data"]["n_train"], "n_test": result["data"]["n_test"],
                       "reused": bool(result.get("reused"))}
    return runs


def print_sweep_runs(runs: dict, setting: dict) -> None:
    """One line per α: test accuracy per epoch and the training time."""
    first = next(iter(runs.values()))
    print(f"hybrid_soft at width × {setting['width']:g}, {first['n_train']:,} {setting['source']} training images, "
          f"{first['n_test']:,} test images, {setting['epochs']} end-to-end epochs, seed 0")
    for alpha, run in runs.items():
        accs = ", ".join(f"{e['test_acc']:.1f}" for e in run["history"])
        print(f"  α = {alpha:4.2f}: test accuracy per epoch {accs} %  ({run['seconds']:.1f} s"
              f"{', read back' if run['reused'] else ''})")
    n, acc = first["n_test"], first["final_test_acc"] / 100
    print(f"(one standard error on {n:,} test images ≈ {100 * (acc * (1 - acc) / n) ** 0.5:.1f} points)")


def change_directions(runs: dict) -> dict:
    """Per α: the cosine between the change of conv1 in that run (W − W₀) and the change in the α = 0 run and in
    the α = 1 run (the ends of the sweep; None where the sweep lacks them)."""
    def cosine(a, b):
        return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-30))

    change = {a: r["final"] - r["initial"] for a, r in runs.items()}
    return {a: {end: (cosine(change[a], change[end]) if end in change else None) for end in (0.0, 1.0)}
            for a in runs}


def alpha_demo(runs: dict, alpha: float = 0.5, view: str = VIEWS[1]) -> Figure:
    """The run at ``alpha``: its first-layer filters (or their change since initialisation); every run's test
    accuracy per epoch; the direction of every run's conv1 change (cosine with the α = 0 and α = 1 runs'
    changes); and the two terms of this run's mix in its last epoch per layer, ``(1 − α)·‖grad_BP‖`` against
    ``α·‖ΔW‖`` (mean norms per step, as :class:`hebblib.hybrid.HybridHook` records them: ΔW max-normalised,
    before the per-unit rate η_o). The chosen α is highlighted everywhere."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    alpha = min(runs, key=lambda a: abs(a - float(alpha)))
    run = runs[alpha]
    fig = Figure(figsize=(16, 3.9), layout="constrained")
    ax_w, ax_acc, ax_dir, ax_g = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1.05, 1, 1, 1]})
    change = run["final"] - run["initial"]
    w = run["final"] if view == VIEWS[0] else change
    ax_w.imshow(filter_mosaic(w[:48], ncols=8).numpy(), interpolation="nearest")
    ax_w.set_axis_off()
    ax_w.set_title(f"conv1, α = {alpha:g}: {view}\nmean |W − W₀| = {float(change.abs().mean()):.4f} "
                   f"(‖W₀‖ per unit ≈ {float(run['initial'].flatten(1).norm(dim=1).mean()):.0f})", fontsize=9.5)
    for a, r in runs.items():
        epochs = [e["epoch"] for e in r["history"]]
        accs = [e["test_acc"] for e in r["history"]]
        ax_acc.plot(epochs, accs, "o-", lw=3 if a == alpha else 1, alpha=1 if a == alpha else 0.45,
                    label=f"α = {a:g}" + ("  ◀" if a == alpha else ""))
    ax_acc.set_xticks([e["epoch"] for e in run["history"]])
    ax_acc.axhline(10, color="grey", ls=":", lw=0.8)
    ax_acc.set_xlabel("end-to-end epoch")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_title(f"α = {alpha:g}: {run['final_test_acc']:.1f} % after {len(run['history'])} epoch(s)",
                     fontsize=9.5)
    ax_acc.legend(fontsize=8)
    directions = change_directions(runs)
    alphas = list(runs)
    for end, colour, label in ((0.0, "tab:blue", "with the α = 0 run (backprop)"),
                               (1.0, "tab:green", "with the α = 1 run (Hebbian)")):
        values = [directions[a][end] for a in alphas]
        if None not in values:
            ax_dir.plot(alphas, values, "o-", color=colour, label=label)
            ax_dir.plot([alpha], [directions[alpha][end]], "o", ms=13, mfc="none", mec="black", mew=2)
    ax_dir.set_ylim(-0.3, 1.05)
    ax_dir.axhline(0, color="grey", lw=0.8, ls=":")
    ax_dir.set_xlabel("α")
    ax_dir.set_ylabel("cosine of the changes W − W₀")
    ax_dir.set_title("which way conv1 moved", fontsize=9.5)
    ax_dir.legend(fontsize=8)
    layers = list(run["grad_norms"])
    if layers:
        x = torch.arange(len(layers)).numpy()
        bp = [(1 - alpha) * run["grad_norms"][n]["backprop"] for n in layers]
        hebb = [alpha * run["grad_norms"][n]["hebbian"] for n in layers]
        ax_g.bar(x - 0.2, bp, 0.4, color="tab:blue", label="(1 − α)·‖grad_BP‖")
        ax_g.bar(x + 0.2, hebb, 0.4, color="tab:green", label="α·‖ΔW_Hebb‖ (before η_o)")
        ax_g.set_xticks(x, layers)
        ax_g.set_yscale("symlog", linthresh=1e-2)
        ax_g.legend(fontsize=8, loc="lower center")
    ax_g.set_ylabel("mean norm per step (last epoch)")
    ax_g.set_title(f"the two terms of weight.grad at α = {alpha:g}", fontsize=9.5)
    return fig


# ----- 3. what the library measured ------------------------------------------------------------------------
def sweep_record() -> dict | None:
    """The committed α sweep (``scripts/alpha_sweep.py``'s JSON), or None."""
    return chapter_result("ch14_alpha_sweep")


def sweep_figure_path() -> Path:
    return chapter_results_dir() / "ch14_alpha_sweep.png"


def print_sweep_record(record: dict | None) -> None:
    """The committed sweep, one line per α: mean ± sample std over its seeds, and the seeds' values."""
    if record is None:
        print("the α sweep is not committed here (python scripts/alpha_sweep.py writes "
              "docs/results/chapters/ch14_alpha_sweep.json)")
        return
    print(f"{record['title']}\n{record['setting']}; {record['n_seeds']} seeds")
    print(f"  {'α':>5}  {'final epoch':>15}  {'at best validation':>19}  seeds (final)")
    for row in record["alphas"]:
        f, b = row["final_test_acc"], row["test_acc_at_best_val"]
        print(f"  {row['alpha']:5.2f}  {f['mean']:7.2f} ± {f['std']:4.2f} %  {b['mean']:10.2f} ± {b['std']:4.2f} %  "
              + ", ".join(f"{v:.1f}" for v in f["values"]))
    means = [row["final_test_acc"]["mean"] for row in record["alphas"]]
    stds = [row["final_test_acc"]["std"] for row in record["alphas"]]
    best = record["alphas"][max(range(len(means)), key=means.__getitem__)]["alpha"]
    print(f"the means span {max(means) - min(means):.2f} points (highest at α = {best:g}); the seeds' sample std "
          f"is {min(stds):.2f} to {max(stds):.2f} points"
          + (": the differences between α are within the seed spread" if max(means) - min(means) <= 2 * max(stds)
             else ": some differences exceed twice the largest seed spread"))
    print(f"measured on {record['device']} ({record['cpu_model']}, {record['threads']} thread(s)) in "
          f"{record['wall_s'] / 60:.1f} min: {record['command']}")


def print_full_data_rows() -> None:
    """The committed full-data runs of ``backprop``, ``soft`` and ``optimal`` beside their published numbers, and
    of the α-hybrid at α = 0.5 (the preset) and α = 0, 1 (its changes), or the command that measures each."""
    from ..notebook import report_committed_preset

    for name in COMPARED:
        entry = get_preset(name)
        report_committed_preset(name, entry["published"], entry["source"])
    for alpha in (0.5, 0.0, 1.0):
        change = None if alpha == 0.5 else {"supervised": {"alpha": alpha}}
        if report_committed_preset("hybrid_soft", None, change=change) is None:
            option = "" if change is None else " --change '" + str(change).replace("'", '"') + "'"
            print(f"    measure it: python -m hebblib reproduce --preset hybrid_soft{option} --data ROOT "
                  f"(20 end-to-end epochs; hours on a CPU)")


def costs_record() -> dict | None:
    """The committed training-step costs (``python -m hebblib bench --phases``'s JSON), or None."""
    return chapter_result("ch14_costs")


def print_costs(record: dict | None) -> None:
    """The bench's table, then what one run of each protocol costs at those rates: the Hebbian presets one
    Hebbian epoch (then features and a linear head), backprop and the α-hybrid 20 end-to-end epochs."""
    from ..bench import format_training_costs

    if record is None:
        print("costs not committed here (python -m hebblib bench --preset soft --phases --json "
              "docs/results/chapters/ch14_costs.json)")
        return
    print(format_training_costs(record))
    print(f"command: {record['command']}")
    epochs = get_preset("backprop")["supervised"]["epochs"]
    paths = record["paths"]
    hebb = paths["hebbian"]["epoch_45000_s"] / 60
    print(f"one run's training of the network, at these rates: Hebbian phase 1 epoch = {hebb:.0f} min; "
          f"backprop {epochs} epochs = {epochs * paths['backprop']['epoch_45000_s'] / 60:.0f} min; "
          f"α-hybrid {epochs} epochs = {epochs * paths['hybrid']['epoch_45000_s'] / 60:.0f} min "
          f"(the Hebbian presets then extract features once and train a linear head on them)")
    print(f"peak memory relative to the Hebbian phase: backprop × "
          f"{paths['backprop']['peak_mib'] / paths['hebbian']['peak_mib']:.1f}, α-hybrid × "
          f"{paths['hybrid']['peak_mib'] / paths['hebbian']['peak_mib']:.1f}")


# ----- summary -----------------------------------------------------------------------------------------
def summary_checks(runs: dict) -> list:
    """Claims this chapter's runs and the library must satisfy."""
    weight, grad, delta, _ = library_cases()[0]
    at_zero = library_mixed_gradient(weight, grad, delta, 0.0)
    at_one = library_mixed_gradient(weight, grad, delta, 1.0)
    expected_one = -unit_rates(weight).view(-1, 1, 1, 1) * delta
    rows = [
        ("α = 0: the mixed gradient is grad_BP bit for bit", f"{torch.equal(at_zero, grad)}", "True",
         torch.equal(at_zero, grad)),
        ("α = 1: the mixed gradient is −η_o·ΔW", f"{torch.allclose(at_one, expected_one)}", "True",
         torch.allclose(at_one, expected_one)),
    ]
    if all(a in runs for a in (0.0, 0.5, 1.0)):
        d = change_directions(runs)
        ends, middle = abs(d[0.0][1.0]), min(d[0.5][0.0], d[0.5][1.0])
        rows.append(("the α = 0 and α = 1 runs move conv1 in unrelated directions (|cosine| < 0.2)",
                     f"{ends:.2f}", "< 0.2", ends < 0.2))
        rows.append(("the α = 0.5 run moves conv1 partly along both (cosine > 0.2 with each)",
                     f"{d[0.5][0.0]:.2f} and {d[0.5][1.0]:.2f}", "> 0.2", middle > 0.2))
    return rows


__all__ = [
    "COMPARED", "FULL", "QUICK", "VIEWS", "alpha_demo", "change_directions", "costs_record", "hybrid_sweep",
    "library_cases",
    "library_mixed_gradient", "mixed_gradient_cases", "mixed_gradient_solution", "print_costs",
    "print_full_data_rows", "print_sweep_record", "print_sweep_runs", "summary_checks", "sweep_figure_path",
    "sweep_record", "sweep_setting", "unit_rates",
]
