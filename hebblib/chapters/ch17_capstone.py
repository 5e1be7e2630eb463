"""Chapter 17 — Capstone: design, run and report your own Hebbian network.

The library's parts compose through one typed configuration (:mod:`hebblib.config`): a preset dict names an
architecture (the blocks), the Hebbian settings shared by every layer (``hebbian``) and one dict per block
(``layers``: rule, competition, learning rate, activation, surround, ...), the data's normalisation and the
two phases. :meth:`hebblib.config.PresetConfig.from_dict` checks all of it before anything is built, and any
mistake is one ``ValueError`` naming the key path, the value and the valid choices.

The chapter: the parts list; the exercise (a design of your own, checked to be valid and to train); the
design beside the presets on the same data, seed and probe; a preset on three seeds through the command line
and the report it writes.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
import tempfile
from pathlib import Path

import torch
from matplotlib.figure import Figure

from ..competitions import available_competitions
from ..config import LayerSettings
from ..errors import HebbianDivergenceError
from ..networks import available_architectures
from ..presets import build_model, get_preset, resolve_preset
from ..rules import available_rules
from ..runtime import is_quick, seed_everything, single_thread
from ..training import load_splits, stream_generator, train_hebbian

COMPARED = ("soft", "optimal")   # the presets the design is compared with (the design takes a layer of each)
SEEDS_PRESET = "soft"             # the preset run on three seeds through the command line
CHECK_WIDTH, CHECK_IMAGES, CHECK_BATCH = 0.125, 64, 32
# Quick mode: every layer at ⅛ of its width, the first 800 subset training images (a tenth of them, stratified,
# for validation), 400 test images, 10 classifier epochs; the command line's quick run uses the same sizes.
QUICK_WIDTH, QUICK_TRAIN, QUICK_TEST, QUICK_EPOCHS = 0.125, 800, 400, 10
QUICK_END_TO_END_EPOCHS = 5  # a backprop twin trains its whole network each epoch: fewer epochs in quick mode
CLI_QUICK = {"limit_train": QUICK_TRAIN, "limit_test": QUICK_TEST, "epochs": QUICK_EPOCHS}


def _quick(quick):
    return is_quick() if quick is None else quick


# ----- 1. the parts ----------------------------------------------------------------------------------------
def print_parts() -> None:
    """The parts a design is made of: rules, competitions, architectures, and the settings of a layer."""
    print("rules:         ", ", ".join(available_rules()))
    print("competitions:  ", ", ".join(available_competitions()))
    print("architectures: ", ", ".join(available_architectures()))
    print("layer settings:", ", ".join(LayerSettings.keys()))


def print_preset(preset: dict, keys=("architecture", "model", "hebbian", "layers", "data", "unsupervised",
                                      "supervised")) -> None:
    """The recipe part of a preset, one key per line (JSON)."""
    for key in keys:
        print(f"{key:13s} {json.dumps(preset.get(key))}")


def config_error(preset: dict) -> str:
    """The library's message for ``preset`` (:func:`hebblib.presets.resolve_preset`), or 'valid'."""
    try:
        resolve_preset(preset)
    except (ValueError, TypeError) as err:
        return f"{type(err).__name__}: {err}"
    return "valid"


# ----- 2. the exercise: a design of your own -------------------------------------------------------------
def starting_point() -> dict:
    """A complete, valid preset to edit: the ``hard_basic`` recipe (SoftHebb's three blocks, hard WTA +
    Instar + cosine in every layer, ZCA, one Hebbian epoch, a linear probe), renamed ``my_network``."""
    preset = get_preset("hard_basic")
    preset.update(name="my_network", description="my design", published=None, source="chapter 17",
                  protocol=None, original_overrides={})
    return preset


def design_solution() -> dict:
    """The reference design: no preset has it. Block 1 as ``optimal``'s (hard WTA + BCM + cosine + a
    difference-of-Gaussians surround), blocks 2 and 3 as ``soft``'s (soft WTA with inverse temperatures 0.65 and
    0.25 + the SoftHebb rule, dot product, SoftHebb's initialisation); ZCA-whitened input."""
    design = starting_point()
    design["hebbian"] = {"update_norm": "global_max"}
    design["layers"] = [
        {"rule": "bcm", "competition": "hard_wta", "activation": "cosine", "init": "kaiming_uniform", "lr": 0.1,
         "surround": {"size": 5, "sigma_e": 1.2, "sigma_i": 1.3}},
        {"rule": "softhebb", "competition": {"name": "soft_wta", "inverse_temperature": 0.65}, "activation": "dot",
         "init": "softhebb", "lr": 0.08},
        {"rule": "softhebb", "competition": {"name": "soft_wta", "inverse_temperature": 0.25}, "activation": "dot",
         "init": "softhebb", "lr": 0.05},
    ]
    return design


def broken_design() -> dict:
    """The reference design with a typo in the first layer's rule (``'instarr'``): the library refuses it."""
    design = design_solution()
    design["layers"][0]["rule"] = "instarr"
    return design


class DesignCheck:
    """What ``check_exercise`` runs for a design: ``DesignCheck(design)(seed, images)`` calls ``design()`` and

    1. validates the preset it returns (:class:`hebblib.config.PresetConfig`): a mistake raises the library's
       ``ValueError`` naming the key path, the value and the valid choices;
    2. builds its network at ⅛ width;
    3. lets it learn for one Hebbian pass over ``images`` subset images (``seed`` orders them): a divergence
       raises :class:`hebblib.HebbianDivergenceError`; weights that do not change raise a ``ValueError``;
    4. computes class scores for those images: they must be finite, one per class.

    It returns ``tensor([1, 1, 1, 1])``, one 1 per step passed, so a right design returns what the reference
    returns and a wrong one is stopped with the reason. ``preset()`` is the design's preset dict."""

    STEPS = ("valid configuration", "network built", "learned without diverging", "finite class scores")

    def __init__(self, design):
        if not callable(design):
            raise TypeError(f"design must be a function returning a preset dict, got {design!r}")
        self.design = design

    def preset(self) -> dict:
        preset = self.design()
        if not isinstance(preset, dict):
            raise TypeError(f"your design returns {type(preset).__name__}, expected a preset dict (start from "
                            f"ch17.starting_point())")
        return resolve_preset(preset)

    def __call__(self, seed: int = 0, images: int = CHECK_IMAGES) -> torch.Tensor:
        preset = self.preset()
        if preset["supervised"]["mode"] != "linear" or preset["unsupervised"]["epochs"] < 1:
            raise ValueError(f"supervised.mode = {preset['supervised']['mode']!r}, unsupervised.epochs = "
                             f"{preset['unsupervised']['epochs']}: a Hebbian design learns without labels first; "
                             f"valid: mode 'linear' and epochs >= 1")
        small = copy.deepcopy(preset)
        small["model"] = {**small.get("model", {}), "width_factor": CHECK_WIDTH}
        train = _check_images(small["data"]["normalization"])
        with single_thread():
            seed_everything(seed)
            net = build_model(small)
            before = {name: layer.weight.detach().clone() for name, layer in net.hebbian_layers().items()}
            if not before:
                raise ValueError(f"architecture {preset['architecture']!r} has no Hebbian layer to learn")
            part = train.subset(torch.arange(min(images, len(train))))
            train_hebbian(net, part, epochs=1, batch_size=CHECK_BATCH, augment=False, progress=False,
                          label=preset["name"], generator=stream_generator(seed, "hebbian"))
            still = [name for name, layer in net.hebbian_layers().items()
                     if torch.equal(layer.weight.detach(), before[name])]
            if still:
                raise ValueError(f"the weights of {', '.join(still)} did not change in {len(part)} images: is their "
                                 f"lr 0, or does their competition let no unit learn?")
            with torch.no_grad():
                scores = net.eval()(part.get(slice(0, 8))[0])
        if scores.shape[1] != 10 or not bool(torch.isfinite(scores).all()):
            raise HebbianDivergenceError(f"class scores of shape {tuple(scores.shape)}, finite: "
                                         f"{bool(torch.isfinite(scores).all())}; expected 10 finite scores per image")
        return torch.ones(len(self.STEPS), dtype=torch.int64)


def _check_images(normalization: str):
    return _CHECK_DATA.setdefault(normalization, load_splits({"normalization": normalization, "zca_eps": 1e-3},
                                                             source="subset", limit_train=200, limit_test=20)[0])


_CHECK_DATA: dict = {}


def design_check(design) -> DesignCheck:
    """``DesignCheck(design)``: the function ``check_exercise`` compares with the reference."""
    return DesignCheck(design)


def design_cases():
    """Argument tuples ``(seed, images)``: two orders of 64 subset images."""
    return [(0, CHECK_IMAGES), (1, CHECK_IMAGES)]


def check_design(design, name: str = "your network") -> None:
    """Print the verdict of ``check_exercise`` for ``design`` against the reference design, on
    :func:`design_cases`."""
    from ..notebook import check_exercise

    check_exercise(name, design_check(design), design_check(design_solution), design_cases())


def checked_preset(check) -> dict:
    """The preset of the design ``check_exercise`` kept (the reader's when it passed, else the reference)."""
    return check.preset() if isinstance(check, DesignCheck) else design_solution()


def print_layers(preset: dict) -> None:
    """What each layer of the design's network is built with (rule, competition, activation, lr, surround)."""
    from ..training import layer_settings

    small = copy.deepcopy(preset)
    small["model"] = {**small.get("model", {}), "width_factor": CHECK_WIDTH}
    for name, s in layer_settings(build_model(small)).items():
        options = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in s["competition"].items() if k in ("temperature", "k"))
        print(f"{name}: rule {s['rule']['name']}, competition {s['competition']['name']} ({options}), activation "
              f"{s['activation']}, lr {s['lr']:g}, surround {'yes' if s.get('surround') else 'no'}")


# ----- 3. the design beside the presets ---------------------------------------------------------------------
def quick_version(preset: dict, quick: bool | None = None) -> dict:
    """``preset`` as this chapter trains it: in quick mode at ⅛ width, the classifier without flips."""
    preset = copy.deepcopy(resolve_preset(preset))
    if _quick(quick):
        preset["model"] = {**preset.get("model", {}), "width_factor": QUICK_WIDTH}
        preset["supervised"]["augment"] = False
    return preset


def pipeline_run(preset: dict, seed: int = 0, quick: bool | None = None) -> dict:
    """One run of ``preset`` through :func:`hebblib.training.run_preset` (a Hebbian preset: one Hebbian epoch,
    frozen features, the linear probe; an end-to-end one: backprop), its record plus ``preset_dict``. Quick
    mode: :func:`quick_version` of it on the first 800 subset images and 400 test images, 10 classifier epochs
    (5 end-to-end epochs for a backprop network), one thread, a temporary runs folder; full mode: as published,
    on all of the data, under ``runs/`` (resumable)."""
    from ..training import run_preset

    quick = _quick(quick)
    preset = quick_version(preset, quick)
    if quick:
        out = tempfile.mkdtemp(prefix="hebblib-ch17-")
        try:
            with single_thread():
                epochs = QUICK_EPOCHS if preset["supervised"]["mode"] == "linear" else QUICK_END_TO_END_EPOCHS
                result = run_preset(preset, seed=seed, quick=True, limit_train=QUICK_TRAIN, limit_test=QUICK_TEST,
                                    supervised_epochs=epochs, out=out, resume=False, progress=False)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    else:
        result = run_preset(preset, seed=seed, quick=False)
    return {**result, "preset_dict": preset}


def compare(design: dict, seed: int = 0, quick: bool | None = None) -> dict:
    """The design and the presets of :data:`COMPARED`, each through :func:`pipeline_run` on the same data, seed
    and probe."""
    runs = {"your design": pipeline_run(design, seed, quick)}
    for name in COMPARED:
        runs[name] = pipeline_run(get_preset(name), seed, quick)
    return runs


def describe(run: dict) -> str:
    """'width × 0.125, 722 subset training images, 400 test images, 10 classifier epochs' (or the full-data
    equivalent) for a record of :func:`pipeline_run`."""
    data, width = run["data"], run["preset_dict"]["model"].get("width_factor", 1.0)
    kind = "classifier" if run["supervised"]["mode"] == "linear" else "end-to-end"
    return (f"{'REDUCED run: ' if run['quick'] else ''}width × {width:g}, {data['n_train']:,} {data['source']} "
            f"training images, {data['n_test']:,} test images, {run['supervised']['epochs']} {kind} epochs")


def comparison_figure(runs: dict) -> Figure:
    """Max test accuracy of each run of :func:`compare` (the design highlighted), with one standard error of
    the test set as error bars, and the published full-width number of each preset as a mark."""
    names = list(runs)
    acc = [runs[n]["max_test_acc"] for n in names]
    n_test = next(iter(runs.values()))["data"]["n_test"]
    err = [100 * ((a / 100) * (1 - a / 100) / n_test) ** 0.5 for a in acc]
    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.subplots()
    colors = ["tab:purple" if n == "your design" else "0.6" for n in names]
    ax.bar(names, acc, yerr=err, color=colors, capsize=4)
    for i, name in enumerate(names):
        ax.text(i, acc[i] + err[i] + 0.5, f"{acc[i]:.1f}%", ha="center", fontsize=9)
        published = get_preset(name)["published"] if name in COMPARED else None
        if published is not None:
            ax.plot([i - 0.35, i + 0.35], [published] * 2, color="tab:red", lw=1.5,
                    label="published (full width, all of CIFAR-10)" if i == 1 else None)
    ax.axhline(10, color="0.5", ls=":", lw=1)
    first = next(iter(runs.values()))
    ax.set(ylabel="max test accuracy (%)", ylim=(0, 100),
           title=f"Same data, seed and probe: {describe(first)} (± one standard error)")
    ax.title.set_fontsize(9)
    if any(n in COMPARED for n in names):
        ax.legend(fontsize=8, loc="upper right")
    return fig


# ----- 4. three seeds through the command line ----------------------------------------------------------------
def cli_arguments(preset: str = SEEDS_PRESET, quick: bool | None = None, out=None, device: str = "auto") -> list[str]:
    """``python -m hebblib`` arguments that run ``preset`` on seeds 0, 1, 2 end to end (Hebbian phase,
    features, classifier) and write each run's ``results.json`` and the seeds' ``summary.json``. Full mode: the
    preset as published on all of CIFAR-10 (``--device auto``: the GPU when there is one, as in Colab); quick
    mode: the sizes of :func:`pipeline_run` (⅛ width, 800 subset images, 10 classifier epochs)."""
    args = ["reproduce", "--preset", preset, "--seeds", "3", "--device", device]
    if _quick(quick):  # the sizes of quick_version and pipeline_run
        args += ["--quick", "--limit-train", str(CLI_QUICK["limit_train"]), "--limit-test",
                 str(CLI_QUICK["limit_test"]), "--epochs", str(CLI_QUICK["epochs"]), "--change",
                 json.dumps({"model": {"width_factor": QUICK_WIDTH}}), "--no-progress"]
    if out is not None:
        args += ["--out", str(out)]
    return args


def command_line(args: list[str]) -> str:
    """The shell command of :func:`cli_arguments` (JSON quoted)."""
    return "python -m hebblib " + " ".join(f"'{a}'" if a.startswith("{") else a for a in args)


def run_seeds(preset: str = SEEDS_PRESET, quick: bool | None = None) -> dict:
    """Run :func:`cli_arguments` in this process (``hebblib.cli.main``), printing the command and the report the
    command line prints; returns the ``summary.json`` it wrote, with ``runs`` (each seed's ``results.json``).
    Quick mode: one thread, a temporary runs folder removed afterwards; full mode: ``runs/`` (resumable)."""
    from ..cli import main
    from ..results import read_json

    quick = _quick(quick)
    out = Path(tempfile.mkdtemp(prefix="hebblib-ch17-")) if quick else None
    args = cli_arguments(preset, quick, out)
    print("$", command_line([a for a in args if a not in ("--out", str(out))] if quick else args))
    text = io.StringIO()
    with single_thread() if quick else contextlib.nullcontext(), contextlib.redirect_stdout(text):
        code = main(args)
    report = text.getvalue()
    print(report.replace(str(out), "<temporary runs folder>") if quick else report, end="")
    if code != 0:
        raise RuntimeError(f"the command line stopped with exit status {code}")
    summary_path = next(line.split("results: ", 1)[1].strip() for line in report.splitlines() if "results: " in line)
    summary = read_json(summary_path)
    summary["runs"] = [read_json(Path(summary_path).parent / f"seed{s}" / "results.json") for s in summary["seeds"]]
    if quick:
        shutil.rmtree(out, ignore_errors=True)
    return summary


def seeds_figure(summary: dict) -> Figure:
    """Each seed's test accuracy per classifier epoch, and the three measures of the report (final, at the best
    validation epoch, max) per seed with their mean."""
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    curves, measures = fig.subplots(1, 2)
    for run in summary["runs"]:
        epochs = [e["epoch"] for e in run["epochs"]]
        curves.plot(epochs, [e["test_acc"] for e in run["epochs"]], "o-", label=f"seed {run['seed']}")
    curves.set(xlabel="classifier epoch", ylabel="test accuracy (%)", title="each seed, epoch by epoch")
    curves.legend(fontsize=8)
    keys = (("final_test_acc", "final"), ("test_acc_at_best_val", "at best val"), ("max_test_acc", "max"))
    for i, (key, label) in enumerate(keys):
        values = summary[key]["values"]
        measures.scatter([i] * len(values), values, color="C0", zorder=3)
        measures.plot([i - 0.25, i + 0.25], [summary[key]["mean"]] * 2, color="black", lw=1.5)
    measures.set_xticks(range(len(keys)), [label for _, label in keys])
    measures.set(ylabel="test accuracy (%)", title="the report's three measures (line: the mean)")
    fig.suptitle(f"{summary['preset']}: {len(summary['runs'])} seeds, {summary['data']['source']} data")
    return fig


# ----- 5. a second dataset ----------------------------------------------------------------------------------
SECOND_DATASET = "fashion_mnist"
SECOND_PRESETS = ("soft", "optimal", "backprop")


def second_dataset_runs(seed: int = 0, dataset: str = SECOND_DATASET, quick: bool | None = None) -> dict:
    """``soft``, ``optimal`` and their backprop twin on ``dataset`` through :func:`pipeline_run`, same data, seed
    and probe; quick mode: the shipped subset (the first 800 of its 2,000 training images, 400 test images) at
    ⅛ width, 10 classifier epochs (``backprop``: 5 end-to-end epochs)."""
    from ..presets import on_dataset

    return {name: pipeline_run(on_dataset(get_preset(name), dataset), seed, quick) for name in SECOND_PRESETS}


def full_data_commands(dataset: str = SECOND_DATASET) -> list[str]:
    """The commands that measure :data:`SECOND_PRESETS` on all of ``dataset`` (three seeds each)."""
    return [f"python -m hebblib reproduce --preset {name} --dataset {dataset} --seeds 3" for name in SECOND_PRESETS]


def print_second_dataset(runs: dict, dataset: str = SECOND_DATASET) -> None:
    """Each run's number (with the network's input shape and size), then each preset's committed full-data
    figure on ``dataset`` (``docs/results/<preset>-<dataset>.json``) or the command that measures it."""
    from ..data.datasets import dataset_info
    from ..notebook import report
    from ..results import full_data_accuracy

    info = dataset_info(dataset)
    for name, run in runs.items():
        published = run["published"]
        report(f"{name} on {info.title} (this run: {'×'.join(map(str, info.shape))} input, "
               f"{run['num_parameters']:,} parameters)", run["max_test_acc"], published,
               run["source"] if published else "", describe(run))
    for name, command in zip(SECOND_PRESETS, full_data_commands(dataset)):
        full = full_data_accuracy(name, dataset=dataset)
        if full is None:
            print(f"{name} on all of {info.title}: not measured yet (`{command}`)")
            continue
        n = full["seeds"]
        spread = f" ± {full['final_std']:.1f}" if n > 1 and full.get("final_std") is not None else ""
        print(f"{name} on all of {info.title}, committed full-data run{'s' if n > 1 else ''} ({n} seed"
              f"{'s' if n > 1 else ''}{', mean ± sample std' if spread else ''}), final epoch: {full['final']:.1f}"
              f"{spread}% — max over epochs {full['max']:.1f}, at the best validation epoch "
              f"{full['at_best_val']:.1f}; protocol v{full['protocol']}, {full['precision']}; {full['file']} "
              f"(`{command}`)")


def second_dataset_figure(runs: dict, dataset: str = SECOND_DATASET) -> Figure:
    """Left: one test image of each class; right: each run's max test accuracy, with the committed full-data
    figure (mean of its seeds) as a mark where there is one."""
    from ..data.datasets import dataset_info, load_dataset
    from ..results import full_data_accuracy

    info = dataset_info(dataset)
    images, labels = load_dataset(dataset, False, None, "subset")
    fig = Figure(figsize=(12, 3.4), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1.5, 1])
    axes = left.subplots(2, 5)
    for c, ax in enumerate(axes.flat):
        image = images[int(torch.nonzero(labels == c)[0])]
        ax.imshow(image.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if image.shape[0] == 1 else None)
        ax.set_title(info.classes[c], fontsize=8)
        ax.set_axis_off()
    left.suptitle(f"{info.title}: {'×'.join(map(str, info.shape))} images, {len(info.classes)} classes", fontsize=10)
    ax = right.subplots()
    names = list(runs)
    acc = [runs[n]["max_test_acc"] for n in names]
    ax.bar(names, acc, color=["tab:blue", "tab:orange", "tab:green"][:len(names)])
    for i, name in enumerate(names):
        ax.text(i, acc[i] + 1, f"{acc[i]:.1f}%", ha="center", fontsize=9)
        full = full_data_accuracy(name, dataset=dataset)
        if full is not None:
            ax.plot([i - 0.35, i + 0.35], [full["final"]] * 2, color="tab:red", lw=1.5,
                    label="all of the data (committed)" if not ax.get_legend_handles_labels()[0] else None)
    ax.set(ylim=(0, 100), ylabel="max test accuracy (%)", title="this run, same data, seed and probe")
    ax.title.set_fontsize(9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    return fig


MEASURES = {"final_test_acc": "final epoch", "test_acc_at_best_val": "epoch of the best validation accuracy",
            "max_test_acc": "max over epochs"}


def _measure_epoch(run: dict, measure: str) -> int:
    """The classifier epoch (1-based) whose test accuracy ``measure`` reports for one run."""
    epochs = run["epochs"]
    if measure == "final_test_acc":
        return epochs[-1]["epoch"]
    if measure == "test_acc_at_best_val" and "best_val_epoch" in run:  # the epoch the report itself chose
        return run["best_val_epoch"]
    key = "val_acc" if measure == "test_acc_at_best_val" else "test_acc"
    return max(epochs, key=lambda e: e[key])["epoch"]  # the first of equal ones, as the report


def measure_demo(measure: str = "final_test_acc", seed: int = 0, summary: dict | None = None) -> Figure:
    """The demo: one seed's test (and validation) accuracy per epoch with the epoch ``measure`` picks marked;
    beside it that measure for every seed, the chosen seed highlighted, and their mean."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; valid choices: {', '.join(map(repr, MEASURES))}")
    runs = {run["seed"]: run for run in summary["runs"]}
    if seed not in runs:
        raise ValueError(f"seed {seed!r} was not run; valid choices: {', '.join(map(str, runs))}")
    run = runs[seed]
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    curve, spread = fig.subplots(1, 2)
    epochs = [e["epoch"] for e in run["epochs"]]
    curve.plot(epochs, [e["test_acc"] for e in run["epochs"]], "o-", color="C0", label="test")
    curve.plot(epochs, [e["val_acc"] for e in run["epochs"]], "s--", color="C1", label="validation")
    chosen = _measure_epoch(run, measure)
    value = run["epochs"][chosen - 1]["test_acc"]
    curve.scatter([chosen], [value], s=180, facecolors="none", edgecolors="tab:red", linewidths=2,
                  label=f"{MEASURES[measure]}: {value:.2f}%", zorder=4)
    curve.set(xlabel="classifier epoch", ylabel="accuracy (%)", title=f"seed {seed}")
    curve.legend(fontsize=8)
    values = summary[measure]["values"]
    colors = ["tab:red" if s == seed else "0.6" for s in summary["seeds"]]
    spread.bar([str(s) for s in summary["seeds"]], values, color=colors)
    spread.axhline(summary[measure]["mean"], color="black", lw=1.2,
                   label=f"mean {summary[measure]['mean']:.2f} ± {summary[measure]['std']:.2f}%")
    low, high = min(values), max(values)
    spread.set_ylim(max(0.0, low - 5), high + 3)
    spread.set(xlabel="seed", ylabel="test accuracy (%)", title=f"{MEASURES[measure]}, every seed")
    spread.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{summary['preset']}: which epoch does the '{measure}' measure read?")
    return fig


# ----- summary -----------------------------------------------------------------------------------------------
def summary(runs: dict, seeds: dict) -> None:
    from ..notebook import report, report_committed_preset

    first = next(iter(runs.values()))
    note = "reduced quick-mode run: far below the published number by design" if first["quick"] else ""
    for name, run in runs.items():
        published = get_preset(name)["published"] if name in COMPARED else None
        report(f"{name} (this run, max test accuracy; {describe(run)})", run["max_test_acc"], published,
               "code README" if published else "", note)
    values = seeds["final_test_acc"]
    print(f"{seeds['preset']} on {len(values['values'])} seeds through the command line: final test accuracy "
          f"{values['mean']:.1f} ± {values['std']:.1f}% (mean ± sample std)")
    report_committed_preset(seeds["preset"], get_preset(seeds["preset"])["published"], "code README")


__all__ = [
    "COMPARED", "DesignCheck", "MEASURES", "SECOND_DATASET", "SEEDS_PRESET", "broken_design", "check_design",
    "checked_preset", "cli_arguments", "command_line", "compare", "comparison_figure", "config_error", "describe",
    "design_cases", "design_check", "design_solution", "full_data_commands", "measure_demo", "pipeline_run",
    "print_layers", "print_parts", "print_preset", "print_second_dataset", "quick_version", "run_seeds",
    "second_dataset_figure", "second_dataset_runs", "seeds_figure", "starting_point", "summary",
]
