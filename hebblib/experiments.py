"""Experiments that compare mechanisms on the same data, seed and probe (chapters 7–13).

Two kinds of run, each in a quick and a full form:

* a **reduced run** of a preset (:func:`train_reduced`, chapters 7–10): the network at a fraction of its
  width, whose first blocks learn for one pass over a few hundred subset images (a ``callback`` can watch
  every batch), then a Dropout + Linear probe on those blocks' features; in full mode :func:`train_full`
  runs the preset through :func:`hebblib.training.run_preset` on all of CIFAR-10;
* a **pipeline run** (:func:`train_run`, chapters 11–13): one Hebbian epoch and the pipeline's own
  classifier through :func:`hebblib.training.run_preset`, on a few hundred subset images in quick mode.

Every run of one kind uses the same images, seeds (:func:`hebblib.training.derive_seed`) and probe, so
two runs differ only in the preset's settings. The ``report_*``/``print_*`` functions print a run's number
beside the published one (read from the preset) and the committed full-data figure.
"""
from __future__ import annotations

import functools
import tempfile
import time
from dataclasses import dataclass, field

import torch
from matplotlib.figure import Figure
from torch import nn

from .classifier import linear_probe
from .layers import HebbianConv2d
from .networks import build_network
from .notebook import print_summary, report, report_committed_preset
from .plots.mosaic import filter_mosaic
from .presets import build_model, get_preset, resolve_preset
from .runtime import is_quick, seed_everything, single_thread
from .training import (derive_seed, hebbian_network, load_splits, run_preset, stream_generator,
                       train_hebbian)

# ----- quick-mode sizes -----------------------------------------------------------------------------------
QUICK_WIDTH = 0.25      # quick mode: every layer at a quarter of its width (24 filters instead of 96)
QUICK_BLOCKS = 1        # reduced run: only the first block learns and feeds the probe
REDUCED_TRAIN, REDUCED_TEST, REDUCED_PROBE_EPOCHS = 1000, 500, 10   # reduced run (chapters 7–10)
QUICK_TRAIN, QUICK_TEST, QUICK_PROBE_EPOCHS = 800, 400, 5           # quick pipeline run (chapters 11–13)


# ----- test images --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def example_images(n: int = 3) -> torch.Tensor:
    """``n`` standardised test images of the shipped CIFAR-10 subset (cached)."""
    _, _, test = load_splits({"normalization": "standardize"}, source="subset", limit_train=200, limit_test=20)
    x, _ = test.get(slice(0, n))
    return x.cpu()


def preset_test_images(preset: dict, n: int = 64) -> torch.Tensor:
    """``n`` test images of the shipped subset, normalised as ``preset``'s network sees them."""
    _, _, test = load_splits(preset["data"], source="subset", limit_test=max(20, n))
    return test.get(torch.arange(n))[0].cpu()


def demo_image() -> torch.Tensor:
    """The first test image of the shipped subset, standardised (one demo input for the widgets)."""
    from .data import load_cifar

    images, _ = load_cifar(False, None, "subset")
    x = images[:1].float()
    return (x - x.mean()) / (x.std() + 1e-8)


# ----- one layer, probed ------------------------------------------------------------------------------------
def depthwise_layer(channels: int = 8, kernel: int = 3, activation: str = "cosine", dale=False,
                    seed: int = 0) -> HebbianConv2d:
    """A depthwise Hebbian layer (groups = channels) with seeded random weights."""
    return HebbianConv2d(channels, channels, kernel, padding=kernel // 2, groups=channels, activation=activation,
                         dale=dale, generator=torch.Generator().manual_seed(seed)).eval()


def layer_response(layer: HebbianConv2d, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
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


def parameter_rows(architecture: str, width_factor: float = 1.0) -> list[tuple[str, tuple, int]]:
    """``(layer, weight shape, parameters)`` for every Hebbian layer and the head of ``architecture``."""
    net = build_network(architecture, width_factor=width_factor, generator=torch.Generator().manual_seed(0))
    rows = [(name, tuple(layer.weight.shape), layer.weight.numel()) for name, layer in net.hebbian_layers().items()]
    head = net.classifier
    rows.append(("head (Linear)", tuple(head.weight.shape), head.weight.numel() + head.bias.numel()))
    return rows


# ----- reduced runs (chapters 7–10) -------------------------------------------------------------------------
class FirstBlocks(nn.Module):
    """The first ``blocks`` blocks of a ``HebbianNet``, seen as a feature extractor for the linear probe."""

    def __init__(self, net, blocks: int = 1):
        super().__init__()
        self.net, self.blocks = net, int(blocks)
        with torch.no_grad():
            was = net.training
            self.num_features = net.eval().features(torch.zeros(1, *net.input_shape), upto=self.blocks - 1).shape[1]
            net.train(was)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x, upto=self.blocks - 1)


@dataclass
class PresetRun:
    """One trained network and its probe: ``accuracy`` is the max test accuracy over the probe epochs
    (the README's measure), in %."""

    label: str
    net: nn.Module
    history: list
    quick: bool
    n_train: int
    n_test: int
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return max(h["test_acc"] for h in self.history)

    def layer(self, name: str = "conv1"):
        return self.net.hebbian_layers()[name]


@functools.lru_cache(maxsize=4)
def reduced_data(normalization: str = "zca", n_train: int = REDUCED_TRAIN, n_test: int = REDUCED_TEST,
                 source: str = "subset"):
    """``(train, val, test)`` of the shipped subset (or of the full CIFAR-10 with ``source='full'``): the first
    ``n_train`` training images (10 % of them for validation) and ``n_test`` test images, ZCA fitted on all of
    the source's training images."""
    return load_splits({"normalization": normalization, "zca_eps": 1e-3}, source=source,
                       limit_train=n_train, limit_test=n_test)


def train_reduced(preset, label: str | None = None, *, width_factor: float = QUICK_WIDTH, blocks: int = QUICK_BLOCKS,
                  n_train: int = REDUCED_TRAIN, n_test: int = REDUCED_TEST, batch_size: int = 32,
                  probe_epochs: int = REDUCED_PROBE_EPOCHS, seed: int = 0, callback=None,
                  source: str = "subset") -> PresetRun:
    """Quick mode: the preset's network at ``width_factor`` of its width, whose first ``blocks`` blocks learn
    for one pass over ``n_train`` subset images (``source='full'``: images of the full CIFAR-10; no flips),
    then a Dropout + Linear probe on those blocks' features for ``probe_epochs`` epochs. Same data, seed
    and probe for every preset, so two runs differ only in the preset's settings. ``callback`` is
    :func:`hebblib.training.train_hebbian`'s: ``callback(net)`` after every batch's update, ``start(net)``
    once before the first. On one thread: these tensors are small."""
    preset = resolve_preset(preset)
    preset["model"] = {**preset.get("model", {}), "width_factor": width_factor}
    train, val, test = reduced_data(preset["data"]["normalization"], n_train, n_test, source)
    start = time.perf_counter()
    with single_thread():
        seed_everything(seed)
        net = build_model(preset)
        train_hebbian(net, train, epochs=1, batch_size=batch_size, augment=False, upto=blocks - 1,
                      generator=stream_generator(seed, "hebbian"), progress=False, label=label or preset["name"],
                      callback=callback)
        torch.manual_seed(derive_seed(seed, "classifier_init"))
        history = linear_probe(FirstBlocks(net, blocks), train, val, test, epochs=probe_epochs, progress=False,
                               generator=stream_generator(seed, "classifier_batches"))
    return PresetRun(label or preset["name"], net.eval(), history, True, len(train), len(test),
                     time.perf_counter() - start, {"width_factor": width_factor, "blocks": blocks,
                                                    "probe_epochs": probe_epochs, "preset": preset["name"]})


def train_full(preset, label: str | None = None, seed: int = 0, progress: bool = True) -> PresetRun:
    """Full mode: :func:`hebblib.training.run_preset` on all of CIFAR-10 (resumable under ``runs/``), and
    the network read back from the run's checkpoint (:func:`hebblib.training.hebbian_network`)."""
    preset = resolve_preset(preset)
    result = run_preset(preset, seed=seed, quick=False, progress=progress)
    net = hebbian_network(result, preset)
    return PresetRun(label or preset["name"], net.eval(), result["epochs"], False, result["data"]["n_train"],
                     result["data"]["n_test"], result["timings_s"]["total"], {"preset": preset["name"]})


def train_presets(presets: dict, quick: bool | None = None, **options) -> dict:
    """``label: preset`` → ``label: PresetRun``, reduced in quick mode, full otherwise."""
    quick = is_quick() if quick is None else quick
    if quick:
        return {label: train_reduced(p, label, **options) for label, p in presets.items()}
    return {label: train_full(p, label) for label, p in presets.items()}


def describe_run(run: PresetRun) -> str:
    if run.quick:
        i = run.info
        return (f"REDUCED run: first {i['blocks']} block at width × {i['width_factor']}, {run.n_train} subset "
                f"images, {i['probe_epochs']} probe epochs")
    return f"full run: whole network, {run.n_train:,} training images, {len(run.history)} classifier epochs"


def print_runs(runs: dict) -> None:
    """One line per run: the probe's max test accuracy, the epoch it was reached, the time."""
    for label, run in runs.items():
        best = max(range(len(run.history)), key=lambda i: run.history[i]["test_acc"])
        print(f"{label:30s} max test accuracy {run.accuracy:5.1f}% (epoch {best + 1}), {run.seconds:5.1f} s")
    first = next(iter(runs.values()))
    print(f"({describe_run(first)}; {first.n_test} test images)")


def report_preset(preset_name: str, run: PresetRun, label: str | None = None, original: bool = False) -> None:
    """This run's number beside the published one of ``preset_name``, and the committed full-data figure
    (with ``original``: the committed run with the original code's behaviour, ``--original``)."""
    preset = get_preset(preset_name)
    note = ("reduced quick-mode run: far below the published number by design; compare runs with each other"
            if run.quick else "")
    report(f"{label or preset_name}, this run ({describe_run(run)})", run.accuracy, preset["published"],
           "README", note)
    report_committed_preset(preset_name, preset["published"], "README", original=original)


def report_runs(rows, runs: dict, published: dict, source: str, preset_name: str, preset_run: str) -> None:
    """The closing cell of chapters 7–10: the comparison rows of ``rows`` (verdict None), each run's number
    beside its published one (``published[label]``, from ``source``), and ``preset_name``'s full-data figure
    beside the run ``runs[preset_run]``."""
    print_summary([r for r in rows if r[3] is None])
    for label, run in runs.items():
        report(f"{label}, this run ({describe_run(run)})", run.accuracy, published[label], source)
    report_preset(preset_name, runs[preset_run])


def filters_side_by_side(runs: dict, layer: str = "conv1", ncols: int = 8) -> Figure:
    """The first-layer filters of each run as one mosaic (grey = 0, each filter scaled on its own)."""
    fig = Figure(figsize=(3.6 * len(runs), 3.6), layout="constrained")
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    for ax, (label, run) in zip(axes, runs.items()):
        w = run.layer(layer).weight.detach().cpu()
        ax.imshow(filter_mosaic(w, ncols=ncols).numpy(), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"{label}: {run.accuracy:.1f}%", fontsize=10)
    return fig


# ----- pipeline runs (chapters 11–13) -----------------------------------------------------------------------
def chapter_preset(name: str, quick: bool | None = None, width_factor: float = QUICK_WIDTH, original: bool = False,
                   **hebbian) -> dict:
    """Preset ``name``; in quick mode at ``width_factor`` and without flipped copies for the probe (which
    would double the feature extraction). ``hebbian`` overrides the shared Hebbian settings."""
    preset = get_preset(name, original=original)
    if hebbian:
        preset["hebbian"] = {**preset["hebbian"], **hebbian}
        preset["name"] = name + "+" + "+".join(f"{k}={v}" for k, v in hebbian.items())
    if is_quick() if quick is None else quick:
        preset["model"]["width_factor"] = width_factor
        preset["supervised"]["augment"] = False
    return preset


def initial_network(preset: dict, seed: int = 0):
    """The network of ``preset`` as ``run_preset`` initialises it for ``seed``."""
    seed_everything(seed)
    return build_model(resolve_preset(preset)).eval()


def train_run(preset: dict, seed: int = 0, quick: bool | None = None, limit_train: int = QUICK_TRAIN,
              limit_test: int = QUICK_TEST, probe_epochs: int = QUICK_PROBE_EPOCHS,
              progress: bool | None = None) -> dict:
    """One Hebbian epoch and the linear probe through ``hebblib.training.run_preset``; returns its result
    record plus ``model`` (the network after the Hebbian epoch, read from the run's checkpoint by
    :func:`hebblib.training.hebbian_network`) and ``preset_dict``.

    Quick mode: ``limit_train``/``limit_test`` subset images, ``probe_epochs`` classifier epochs, one
    thread, a temporary runs folder. Full mode: the preset as published, on all of CIFAR-10, in ``runs/``
    (resumable)."""
    quick = is_quick() if quick is None else quick
    progress = (not quick) if progress is None else progress
    preset = resolve_preset(preset)
    if quick:
        with single_thread():
            result = run_preset(preset, seed=seed, quick=True, limit_train=limit_train, limit_test=limit_test,
                                supervised_epochs=probe_epochs, out=tempfile.mkdtemp(prefix="hebblib-run-"),
                                resume=False, progress=progress)
    else:
        result = run_preset(preset, seed=seed, progress=progress)
    seed_everything(seed)  # the global generator as after the run's own initialisation
    model = hebbian_network(result, preset)
    return {**result, "model": model.eval(), "preset_dict": preset}


def describe_result(result: dict) -> str:
    """'reduced run: ¼-width net, 720 subset images, 5 probe epochs' or the full-mode equivalent, for a
    record of :func:`train_run`."""
    data, epochs = result["data"], result["supervised"]["epochs"]
    if result["quick"]:
        width = result["preset_dict"]["model"].get("width_factor", 1.0)
        return (f"REDUCED run: width × {width:g}, {data['n_train']:,} subset training images, "
                f"{data['n_test']:,} test images, {epochs} probe epochs")
    return f"full run: {data['n_train']:,} training images, {epochs} probe epochs"


def print_comparison(runs: dict) -> None:
    """One line per run of :func:`train_run`: max test accuracy, parameters, accuracy per 100k parameters."""
    print(f"{'network':34s} {'test acc':>9s} {'params':>10s} {'acc / 100k params':>18s}")
    for name, r in runs.items():
        n = r["num_parameters"]
        print(f"{name:34s} {r['max_test_acc']:8.1f}% {n:>10,} {100_000 * r['max_test_acc'] / n:18.1f}")
    first = next(iter(runs.values()))
    n_test, acc = first["data"]["n_test"], first["max_test_acc"] / 100
    print(f"({describe_result(first)}; one standard error on {n_test:,} test images ≈ "
          f"{100 * (acc * (1 - acc) / n_test) ** 0.5:.1f} points, so small gaps mean little)")


def print_full_figure(preset: str) -> None:
    """The committed full-data figure of ``preset`` (docs/results/) beside its published number and
    source, or say it is not measured yet (:func:`hebblib.notebook.report_committed_preset`)."""
    entry = get_preset(preset)
    report_committed_preset(preset, entry["published"], entry["source"])


__all__ = [
    "FirstBlocks", "PresetRun", "QUICK_BLOCKS", "QUICK_PROBE_EPOCHS", "QUICK_TEST", "QUICK_TRAIN", "QUICK_WIDTH",
    "REDUCED_PROBE_EPOCHS", "REDUCED_TEST", "REDUCED_TRAIN", "chapter_preset", "demo_image", "depthwise_layer",
    "describe_result", "describe_run", "example_images", "filters_side_by_side", "initial_network",
    "layer_response", "parameter_rows", "preset_test_images", "print_comparison", "print_full_figure",
    "print_runs", "reduced_data", "report_preset", "report_runs", "train_full", "train_presets", "train_reduced",
    "train_run",
]
