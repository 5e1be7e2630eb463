"""The training pipeline (spec nimmo-thesis §3.3): unsupervised Hebbian phase → frozen features → classifier.

    result = run_preset("optimal", seed=0)            # one run; results/checkpoints under runs/
    summary = reproduce("optimal", seeds=3)           # several seeds → mean ± std

Phase 1 (``train_hebbian``): every batch goes once through the blocks in training mode (BatchNorm on batch
statistics); each Hebbian layer accumulates its ΔW during that forward and all layers apply it at once
(simultaneous, as the original; ``layerwise=True`` instead trains one layer per epoch, greedily).
Phase 2: freeze (eval mode), compute the features of train / val / test once (``classifier.cache_split_features``).
Phase 3: Dropout(0.5) + Linear trained with Adam on the cached features; the ``backprop`` preset trains
the whole network end to end instead. The epoch is selected on a validation split carved from the
training images (stratified, seeded); the test set is only reported.

``run_preset`` is a sequence of named steps that a chapter may also call one by one (see :class:`Run`):
``plan_run`` → ``prepare_data`` → ``run_folder`` → ``initial_model`` → ``hebbian_phase`` →
``split_features`` → ``train_classifier`` → ``result_record``; every random stream is seeded from the
run's seed in one place, :func:`derive_seed`.

Re-running the same call resumes: a finished run is read back, a run interrupted after phase 1 starts
from its ``unsupervised.pt`` checkpoint (the features are recomputed), one interrupted inside a phase 1 of
several epochs goes on after the last epoch saved in its ``unsupervised-epoch.pt``, and an end-to-end
(backprop) run goes on after the last epoch saved in its ``end_to_end.pt``.
"""
from __future__ import annotations

import dataclasses
import datetime
import inspect
import json
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .classifier import cache_split_features, train_end_to_end, train_linear_probe
from .hybrid import HybridHook
from .data import CIFAR10NotFoundError, DeviceDataset, cifar10_available, load_cifar10
from .data.cifar import check_explicit_root
from .data.datasets import DEFAULT_DATASET, DatasetNotFoundError, dataset_info, load_dataset, load_full
from .data.zca import fit_zca
from .data.subset import SUBSET_PER_CLASS
from .diagnostics import competition_diagnostics
from .dropout import FastDropout, dropout_mask_record
from .distributed import LOCAL
from .errors import HebbianDivergenceError, check_choice
from .config import PresetConfig, RunOptions
from .presets import build_model, resolve_preset, variant_name
from .results import (PROTOCOL_VERSION, config_hash, default_out, group_dir, load_checkpoint, read_json,
                      precision_label, save_checkpoint, summarize_history, summarize_runs, write_json)
from .layers import compute_precision
from .update import BF16_MIN_FAN_IN
from .runtime import (Precision, compile_problem, compiled_features, denormals_flushable, describe_cpu,
                      describe_device, flush_denormals, get_device, is_quick, keep_freed_memory, resolve_precision,
                      seed_everything)

QUICK_SUPERVISED_EPOCHS = 3
CUDA_CHECK_EVERY = 50  # updates between NaN/explosion checks on the GPU (each check is a host sync)
SOURCES = ("auto", "full", "subset")


def _version() -> str:
    from . import __version__  # imported late: hebblib/__init__ imports this module

    return __version__


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@flush_denormals()
def train_hebbian(model, data, *, epochs: int = 1, batch_size: int = 64, augment: bool = True,
                  layerwise: bool = False, warmup_batches: int = 0, generator: torch.Generator | None = None,
                  check_every: int | None = None, progress: bool = True, label: str = "hebbian",
                  precision: str = "fp32", upto: int | None = None, callback=None, reducer=None,
                  checkpoint=None, checkpoint_key: str | None = None, compile: bool = False) -> dict:
    """Phase 1: ``epochs`` unsupervised epochs over ``data`` (a ``DeviceDataset``; labels unused).

    Per batch: ``model.features(x)`` in training mode, then ``model.apply_updates()`` (all layers at once).
    ``layerwise``: each Hebbian layer in turn learns alone for ``epochs`` epochs, the forward stopping at
    its block. ``warmup_batches``: batches at the start whose updates are discarded (Miconi's burn-in,
    thresholds still adapt). Divergence (NaN or |W| above a layer's ``explode_threshold``) raises
    :class:`HebbianDivergenceError` naming ``label``, the layer, the epoch and the batch; the weights are
    checked every ``check_every`` updates (default 1 on the CPU, 50 on CUDA, so the loop never waits on the
    GPU in between). ``precision``: the arithmetic of the layers' products (``'fp32'``, ``'bf16'`` or
    ``'auto'``, :func:`hebblib.runtime.resolve_precision`); subnormal floats count as 0 meanwhile
    (:func:`hebblib.runtime.flush_denormals`). ``upto``: the forward stops after block ``upto`` (only the
    layers up to it see data; default: the whole network). ``callback(model)`` runs after every batch's
    update; a callback with a ``start(model)`` method gets it once, before the first batch (to attach
    hooks). ``reducer``: a :class:`hebblib.distributed.DistributedReducer` trains data-parallel (this process's
    shard of every global batch, the batch's reductions summed over the processes). ``checkpoint``: a file
    that receives the weights, the buffers and the random states after every finished epoch (of every layer,
    with ``layerwise``); when it holds one written for ``checkpoint_key``, training goes on after that epoch
    and ends bit-identical to an uninterrupted run (Miconi's 20 epochs are hours on a CPU). ``compile``: the
    forward pass and the update of every full batch fused by ``torch.compile``
    (:func:`hebblib.runtime.compiled_features`; the same values up to rounding). Returns ``images``
    (all processes'), ``seconds``, ``images_per_s``.
    """
    reducer = LOCAL if reducer is None else reducer
    layers = model.hebbian_layers()
    device = next(model.parameters()).device
    dtype = resolve_precision(precision, device).dtype
    if not layers or epochs == 0:
        return {"images": 0, "seconds": 0.0, "images_per_s": None}
    check_every = check_every or (CUDA_CHECK_EVERY if device.type == "cuda" else 1)
    for layer in layers.values():
        layer.check_every = check_every
    plan = [(list(layers), upto)] if not layerwise else [([name], model.stage_of(name)) for name in layers]
    forward = compiled_features(model, batch_size) if compile else model.features
    n_batches = -(-len(data) // batch_size)
    model.train()
    images, step, start = 0, 0, time.perf_counter()
    done, before = _resume_hebbian(checkpoint, checkpoint_key, model, generator) if checkpoint else (0, {})
    if done:
        images, step, start = before["images"], before["step"], start - before["seconds"]
    where = "before training"
    if hasattr(callback, "start"):
        callback.start(model)
    reducer.attach(model)
    try:
        for p, (names, upto) in enumerate(plan):
            model.set_plastic(names)
            for epoch in range(epochs):
                if p * epochs + epoch < done:  # finished before the checkpoint was written
                    continue
                desc = f"{label} " + (f"{names[0]} " if layerwise else "") + f"epoch {epoch + 1}/{epochs}"
                batches = reducer.batches(data, batch_size, shuffle=True, augment=augment, generator=generator)
                for b, (x, _) in enumerate(tqdm(batches, total=n_batches, desc=desc, disable=not progress,
                                                leave=False)):
                    where = (f"{'layer ' + names[0] + ', ' if layerwise else ''}epoch {epoch + 1}, "
                             f"batch {b + 1}/{n_batches}")
                    with torch.no_grad(), compute_precision(model, dtype):
                        forward(x, upto=upto)
                    if step < warmup_batches:
                        for layer in layers.values():
                            layer.delta_w.zero_()
                    else:
                        model.apply_updates()
                    if callback is not None:
                        callback(model)
                    images += x.shape[0]
                    step += 1
                if checkpoint and p * epochs + epoch + 1 < len(plan) * epochs:  # the last one: the caller's
                    model.check_finite()
                    save_checkpoint(checkpoint, {
                        "config_hash": checkpoint_key, "model": model.state_dict(), "done": p * epochs + epoch + 1,
                        "images": images, "step": step, "seconds": time.perf_counter() - start,
                        "random": {"cpu": torch.get_rng_state(),
                                   "generator": None if generator is None else generator.get_state()}})
        where = "at the end of the unsupervised phase"
        model.check_finite()
    except HebbianDivergenceError as err:
        lag = (f" (the weights are checked every {check_every} updates, so it may have started up to "
               f"{check_every - 1} batches earlier)" if check_every > 1 else "")
        raise HebbianDivergenceError(f"{label}: Hebbian training diverged, detected {where}{lag}: {err}") from None
    finally:
        model.set_plastic(True)
        reducer.detach(model)
    _sync(device)
    seconds = time.perf_counter() - start
    images = reducer.total(images)
    return {"images": images, "seconds": seconds, "images_per_s": images / seconds if seconds > 0 else None}


def _resume_hebbian(path, key, model, generator) -> tuple[int, dict]:
    """Load the epoch checkpoint at ``path`` (if it was written for ``key``) into ``model`` and the random
    streams: ``(epochs finished, {images, step, seconds})``; ``(0, {})`` when there is nothing to resume."""
    state = load_checkpoint(path, key)
    if state is None:
        return 0, {}
    model.load_state_dict(state["model"])
    torch.set_rng_state(state["random"]["cpu"])
    if generator is not None and state["random"]["generator"] is not None:
        generator.set_state(state["random"]["generator"])
    return int(state["done"]), {k: state[k] for k in ("images", "step", "seconds")}


# ----- data ------------------------------------------------------------------------------------------
def resolve_source(source: str = "auto", root=None, quick: bool = False, download: bool = True,
                   dataset: str = DEFAULT_DATASET):
    """``(source, notice)``: 'auto' is the subset in quick mode, else the full data when present (after one
    download attempt), else, for the default data root only, the shipped subset with a notice saying so.

    A ``root`` the caller names (``--data``) must hold CIFAR-10 when the full data is wanted ('full', or
    'auto' outside quick mode): else :class:`~hebblib.data.CIFAR10NotFoundError` naming it, and a folder that
    does not exist is not created. Another ``dataset`` (:mod:`hebblib.data.datasets`) is looked for under the
    root and in its system folders (Debian's, for Fashion-MNIST); missing, it is a
    :class:`~hebblib.data.DatasetNotFoundError` naming every folder searched, unless 'auto' with the default
    root, which falls back to its shipped subset with a notice."""
    check_choice("data source", source, SOURCES)
    info = dataset_info(dataset)
    if source == "subset" or (source == "auto" and quick):
        return "subset", None
    if dataset != DEFAULT_DATASET:
        try:
            load_full(dataset, True, root, download=download)
            return "full", None
        except DatasetNotFoundError:
            if source == "full" or root is not None or not info.subset_file:
                raise
        per = SUBSET_PER_CLASS
        return "subset", (f"notice: the full {info.title} was not found (pass --data ROOT or set HEBBLIB_DATA); "
                          f"using the shipped subset ({per['train'] * 10:,} train / {per['test'] * 10:,} test "
                          f"images), so the accuracy is NOT comparable with a full-data number")
    if root is not None:
        check_explicit_root(root, download=download)
        return "full", None
    if source == "full" or cifar10_available(root):
        return "full", None
    try:
        load_cifar10(True, root, download=download)
        return "full", None
    except CIFAR10NotFoundError:
        per = SUBSET_PER_CLASS
        return "subset", (f"notice: the full CIFAR-10 was not found (pass --data ROOT or set HEBBLIB_DATA); "
                          f"using the shipped subset ({per['train'] * 10:,} train / {per['test'] * 10:,} test "
                          f"images), so the accuracy is NOT comparable with the published number")


def load_splits(data_cfg: dict, *, root=None, source: str = "subset", device=None, limit_train: int | None = None,
                limit_test: int | None = None, val_size: int = 5000, split_seed: int = 0):
    """``(train, val, test)`` DeviceDatasets of ``data_cfg``'s ``dataset`` (default CIFAR-10): normalisation
    (and ZCA, fitted on the training images only; with ``zca_fit='train_and_val'`` on the validation split
    too, protocol v1) from ``data_cfg``; the validation split is ``min(val_size,
    10 %)`` of the (limited) training images, stratified and seeded; ``limit_*`` keep the first images of a
    split."""
    for name, limit in (("limit_train", limit_train), ("limit_test", limit_test)):
        if limit is not None and not (isinstance(limit, int) and not isinstance(limit, bool) and limit >= 20):
            raise ValueError(f"{name} must be an int >= 20 (or None for all images), got {limit!r}")
    normalization = data_cfg.get("normalization", "none")
    dataset = data_cfg.get("dataset", DEFAULT_DATASET)
    stats = {"mean": dataset_info(dataset).mean, "std": dataset_info(dataset).std}
    images, labels = load_dataset(dataset, True, root, source)
    every_train = DeviceDataset(images, labels, "none", device=device)
    limited = every_train
    if limit_train is not None and limit_train < len(every_train):
        limited = every_train.subset(torch.arange(limit_train))
    n_val = min(int(val_size), round(0.1 * len(limited)))
    if n_val < 10:
        raise ValueError(f"val_size={val_size!r} leaves {n_val} validation images; use at least 10")
    train_index, val_index = limited.split_indices(n_val / len(limited), seed=split_seed)
    zca = None
    if normalization == "zca":
        # Fitted on training images only: every training image except the validation split (all 45,000
        # of the full protocol), so no validation (or test) image shapes the whitening. (Until 2026-12 the
        # fit also saw the 5,000 validation images, zca_fit="train_and_val"; see docs/results_notes.md.)
        is_val = torch.zeros(len(every_train), dtype=torch.bool)
        if data_cfg.get("zca_fit", "train") == "train":
            is_val[val_index] = True
        zca = fit_zca(every_train.images[(~is_val).to(every_train.device)], data_cfg.get("zca_eps", 1e-3), root=root)
    train = DeviceDataset(limited.images[train_index.to(limited.device)], limited.labels[train_index.to(limited.device)],
                          normalization, zca, augment=True, device=device, **stats)
    val = DeviceDataset(limited.images[val_index.to(limited.device)], limited.labels[val_index.to(limited.device)],
                        normalization, zca, augment=False, device=device, **stats)
    images, labels = load_dataset(dataset, False, root, source)
    test = DeviceDataset(images, labels, normalization, zca, augment=False, device=train.device, **stats)
    if limit_test is not None and limit_test < len(test):
        test = test.subset(torch.arange(limit_test))
    return train, val, test


# ----- one run, as named steps ------------------------------------------------------------------------------
# Every random stream of run ``seed`` is seeded from it here, and only here (derive_seed).
SEED_STREAMS = {"hebbian": 1, "classifier_init": 2, "classifier_batches": 3}
RECIPE_KEYS = ("architecture", "model", "hebbian", "layers", "data", "unsupervised", "supervised")


def derive_seed(seed: int, stream: str) -> int:
    """The seed of one random stream of run ``seed``: ``seed · 1000 + k`` with ``k`` from :data:`SEED_STREAMS`
    (``'hebbian'``: batch order and flips of phase 1; ``'classifier_init'``: torch's global generator before
    the head is trained, i.e. dropout; ``'classifier_batches'``: batch order and flips of the classifier)."""
    check_choice("seed stream", stream, SEED_STREAMS)
    return seed * 1000 + SEED_STREAMS[stream]


def stream_generator(seed: int, stream: str) -> torch.Generator:
    """A ``torch.Generator`` seeded with :func:`derive_seed`."""
    return torch.Generator().manual_seed(derive_seed(seed, stream))


@dataclasses.dataclass
class Run:
    """One run of a preset, filled in step by step (each step a function of this module):

        run = plan_run("soft", seed=0, quick=True)   # validated preset and options; nothing loaded yet
        prepare_data(run)                             # run.train, run.val, run.test, run.data_info
        run_folder(run)                               # run.key, run.run_dir (resume point and results)
        model = initial_model(run)                    # seeded, as every run of this seed starts
        hebbian_phase(run, model)                     # phase 1, or its checkpoint read back
        features = split_features(run, model)         # phase 2 (linear read-out only)
        history = train_classifier(run, model, features)
        record = result_record(run, model, history)   # what run_preset writes to results.json

    ``preset`` is the validated preset dict (hashed into the run folder and recorded), ``config`` the same
    preset typed (:class:`hebblib.config.PresetConfig`), ``options`` the run's :class:`~hebblib.config.RunOptions`.
    """

    preset: dict
    config: PresetConfig
    options: RunOptions
    device: torch.device
    epochs: int
    label: str
    started: str
    t0: float
    source: str | None = None
    train: DeviceDataset | None = None
    val: DeviceDataset | None = None
    test: DeviceDataset | None = None
    data_info: dict | None = None
    key: str | None = None
    run_dir: Path | None = None
    unsupervised: dict | None = None
    resumed: bool = False
    timings: dict = dataclasses.field(default_factory=dict)
    precision: Precision | None = None  # Hebbian phase and features (or backprop): resolved in run_folder

    @property
    def seed(self) -> int:
        return self.options.seed

    @property
    def name(self) -> str:
        return self.preset["name"]


def plan_run(preset, *, original: bool = False, **options) -> Run:
    """Step 0: the preset (a name, a dict or a :class:`~hebblib.config.PresetConfig`) and the run's options
    (the fields of :class:`~hebblib.config.RunOptions`; ``quick=None``: ``hebblib.is_quick()``), validated,
    with the device and the number of classifier epochs. Every bad value is a ``ValueError`` here, before
    any data is read."""
    started, t0 = datetime.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    valid = [f.name for f in dataclasses.fields(RunOptions)]
    for key in options:
        if key not in valid:
            raise ValueError(f"unknown run option {key!r}; valid options: {', '.join(map(repr, valid))}")
    if options.get("quick") is None:
        options["quick"] = is_quick()
    options["quick"] = bool(options["quick"])
    preset = resolve_preset(preset, original)
    config = PresetConfig.from_dict(preset)
    options = RunOptions(**options)
    requested = options.precision or config.unsupervised.precision
    if config.supervised.mode == "hybrid" and requested == "bf16":
        raise ValueError(f"precision 'bf16': the α-hybrid ({preset['name']!r}) trains in fp32 only "
                         f"(its Hebbian ΔW inside the backprop forward has no bf16 path); valid choices: 'fp32', 'auto'")
    device = get_device(options.device)
    if options.compile and config.supervised.mode != "linear":
        raise ValueError(f"compile=True: fuses the Hebbian phase and the feature extraction of a linear read-out "
                         f"preset; {preset['name']!r} trains {config.supervised.mode}; valid choice: compile=False")
    if options.compile and (problem := compile_problem(device)):
        raise ValueError(f"compile=True: {problem}; valid choice here: compile=False")
    epochs = options.classifier_epochs(config.supervised, QUICK_SUPERVISED_EPOCHS)
    return Run(preset=preset, config=config, options=options, device=device, epochs=epochs,
               label=f"preset {preset['name']!r} (seed {options.seed})", started=started, t0=t0)


def prepare_data(run: Run, notice=print) -> tuple:
    """Step 1: ``(train, val, test)`` of the run's data source (:func:`resolve_source`; ``notice`` receives
    the line saying the subset stands in for missing full data) and split (:func:`load_splits`)."""
    o = run.options
    dataset = run.config.data.dataset
    source, message = resolve_source(o.source, o.root, o.quick, o.download, dataset=dataset)
    if message and notice:
        notice(message)
    if source == "full" and not o.download:
        load_full(dataset, True, o.root, download=False)  # the data layer's clear error when the files are missing
    run.train, run.val, run.test = load_splits(run.preset["data"], root=o.root, source=source, device=run.device,
                                               limit_train=o.limit_train, limit_test=o.limit_test,
                                               val_size=o.val_size, split_seed=o.split_seed)
    run.source = source
    run.timings["data"] = time.perf_counter() - run.t0
    run.data_info = {"source": source, "normalization": run.config.data.normalization, "n_train": len(run.train),
                     "n_val": len(run.val), "n_test": len(run.test), "split_seed": o.split_seed,
                     "protocol": PROTOCOL_VERSION}  # the ZCA's fit (results.PROTOCOLS): part of the run's key
    if dataset != DEFAULT_DATASET:  # recorded (and hashed) only off CIFAR-10, so earlier runs keep their keys
        run.data_info["dataset"] = dataset
    return run.train, run.val, run.test


def run_folder(run: Run) -> Path:
    """Step 2: the run's folder, ``<out>/<variant>/<source>-n<images>-<hash of recipe and data>/seed<k>``, and
    ``run.key``, the hash a checkpoint or result must carry to be reused."""
    recipe = {k: run.preset[k] for k in RECIPE_KEYS}
    quick, epochs = run.options.quick, run.epochs
    # the precision the run computes in (run option, else the preset's unsupervised.precision): a bf16 run has
    # its own folder; fp32 hashes as before the setting existed, so earlier fp32 runs are found again
    run.precision = resolve_precision(run.options.precision or run.config.unsupervised.precision, run.device)
    if run.config.supervised.mode == "hybrid" and run.precision.name != "fp32":  # plan_run refused an explicit bf16
        run.precision = Precision(run.precision.requested, "fp32", "the α-hybrid trains in fp32 only")
    if run.precision.name != "fp32":
        recipe["precision"] = run.precision.name
        if run.config.supervised.mode == "linear":  # the image-facing layers stay fp32 (since 2026-12): a new key
            recipe["precision"] = {"name": run.precision.name, "fp32_below_fan_in": BF16_MIN_FAN_IN}
    if run.options.compile:  # fused: other roundings, so a folder and key of its own
        recipe["compile"] = True
    run.key = config_hash({"recipe": recipe, "seed": run.seed, "data": run.data_info, "epochs": epochs,
                           "quick": quick})
    group = group_dir(run.options.out or default_out(), variant_name(run.preset), run.source,
                      run.data_info["n_train"] + run.data_info["n_val"],
                      config_hash({"recipe": recipe, "data": run.data_info, "epochs": epochs}))
    run.run_dir = group / f"seed{run.seed}"
    return run.run_dir


def finished_result(run: Run) -> dict | None:
    """The record of this run if it finished earlier (``resume``), marked ``reused``; else None."""
    done = read_json(run.run_dir / "results.json") if run.options.resume else None
    if done and done.get("complete") and done.get("config_hash") == run.key:
        done["reused"] = True
        return done
    return None


def initial_model(run: Run):
    """Step 3: the preset's network on the run's device, as every run of this seed starts (Python, NumPy and
    torch seeded with ``seed``; on CUDA cuDNN autotuning unless ``deterministic``)."""
    deterministic = run.device.type != "cuda" if run.options.deterministic is None else bool(run.options.deterministic)
    seed_everything(run.seed, deterministic=deterministic)
    if run.device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic  # autotuned convolutions unless asked otherwise
    return build_model(run.preset).to(run.device)


def hebbian_phase(run: Run, model) -> dict:
    """Step 4, phase 1: the unsupervised epochs (:func:`train_hebbian`), saved to ``unsupervised.pt``; or,
    when that checkpoint was written for this run, the weights read back from it. None for end-to-end
    presets. Returns the phase's ``images``, ``seconds``, ``images_per_s``."""
    checkpoint = load_checkpoint(run.run_dir / "unsupervised.pt", run.key) if run.options.resume else None
    unsup = run.config.unsupervised
    if checkpoint is None and run.options.hebbian_from is not None and run.config.supervised.mode == "linear":
        checkpoint = adopt_hebbian_phase(run, run.options.hebbian_from)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        model.to(run.device)  # buffers whose shape depends on the data (BCM θ, thresholds) load on the CPU
        stats, run.resumed = checkpoint["stats"], True
    elif run.config.supervised.mode == "linear":
        stats = train_hebbian(model, run.train, epochs=unsup.epochs, batch_size=unsup.batch_size,
                              augment=unsup.augment, layerwise=unsup.layerwise, warmup_batches=unsup.warmup_batches,
                              generator=stream_generator(run.seed, "hebbian"), progress=run.options.progress,
                              label=run.label, precision=run.precision.name,
                              checkpoint=run.run_dir / "unsupervised-epoch.pt" if run.options.resume else None,
                              checkpoint_key=run.key, compile=run.options.compile)
        save_checkpoint(run.run_dir / "unsupervised.pt", {"config_hash": run.key, "model": model.state_dict(),
                                                         "stats": stats})
        (run.run_dir / "unsupervised-epoch.pt").unlink(missing_ok=True)  # the whole phase is saved now
    else:
        stats = {"images": 0, "seconds": 0.0, "images_per_s": None}
    run.unsupervised = stats
    return stats


HEBBIAN_KEYS = ("architecture", "model", "hebbian", "layers", "data", "unsupervised")  # all but the classifier


def adopt_hebbian_phase(run: Run, source) -> dict:
    """The Hebbian phase of the finished run in ``source`` (its ``seed<k>`` folder, or the folder holding
    ``seed<run.seed>``), for a run that differs from it in the classifier only: the same seed, data, split,
    precision and every setting of :data:`HEBBIAN_KEYS`, so that training the phase again would give the same
    weights (the phase draws nothing from the classifier's settings; tests/test_training.py). Saved as this
    run's own ``unsupervised.pt`` and returned as its checkpoint; the run's record names the source. A source
    that is missing, unfinished or different is a ``ValueError`` naming the first difference."""
    folder = Path(source)
    if (folder / f"seed{run.seed}").is_dir():
        folder = folder / f"seed{run.seed}"
    record = read_json(folder / "results.json")
    if not record or not record.get("complete"):
        raise ValueError(f"hebbian_from {str(source)!r}: no finished run there (results.json of seed {run.seed})")
    label = run.precision.name + (", compiled" if run.options.compile else "")  # as results.precision_label
    mine = {"seed": run.seed, "quick": run.options.quick, "data": run.data_info, "precision": label,
            **{key: run.preset.get(key) for key in HEBBIAN_KEYS}}
    theirs = {"seed": record.get("seed"), "quick": record.get("quick"), "data": record.get("data"),
              "precision": precision_label(record),
              **{key: (record.get("config") or {}).get(key) for key in HEBBIAN_KEYS}}
    for key, value in mine.items():
        if json.dumps(theirs[key], sort_keys=True, default=str) != json.dumps(value, sort_keys=True, default=str):
            raise ValueError(f"hebbian_from {str(folder)!r}: its {key} differs from this run's, so its Hebbian phase "
                             f"is not this run's (theirs {theirs[key]!r}, this run {value!r})")
    checkpoint = load_checkpoint(folder / "unsupervised.pt", record["config_hash"])
    if checkpoint is None:
        raise ValueError(f"hebbian_from {str(folder)!r}: its unsupervised.pt is missing or not its own")
    checkpoint = {**checkpoint, "config_hash": run.key,
                  "stats": {**checkpoint["stats"], "adopted_from": str(folder)}}
    save_checkpoint(run.run_dir / "unsupervised.pt", checkpoint)
    return checkpoint


def split_features(run: Run, model) -> tuple:
    """Step 5, phase 2 (linear read-out): freeze the network and cache the features of train / val / test
    (and of the mirrored training images when the classifier flips): ``(features, mirrored)``."""
    t1 = time.perf_counter()
    model.requires_grad_(False)
    model.classifier.requires_grad_(True)
    features = cache_split_features(model, run.train, run.val, run.test, mirrored=run.config.supervised.augment,
                                    progress=run.options.progress, prefix=f"{run.name} ",
                                    precision=run.precision.name, mirrored_eval=run.config.supervised.flip_average,
                                    compile=run.options.compile)
    _sync(run.device)
    run.timings["features"] = time.perf_counter() - t1
    return features


def train_classifier(run: Run, model, features: tuple | None = None) -> list[dict]:
    """Step 6, phase 3: the ``Dropout → Linear`` head on the cached ``features`` (computed here when not
    given) or, for an end-to-end preset, the whole network by backprop (resuming after the last epoch saved
    in ``end_to_end.pt``). The trained weights go to ``supervised.pt``. Returns the per-epoch records."""
    sup = run.config.supervised
    torch.manual_seed(derive_seed(run.seed, "classifier_init"))  # the same whether or not phase 1 was resumed
    common = dict(epochs=run.epochs, lr=sup.lr, batch_size=sup.batch_size, schedule=sup.schedule,
                  augment=sup.augment, generator=stream_generator(run.seed, "classifier_batches"),
                  progress=run.options.progress)
    if sup.mode in ("end_to_end", "hybrid"):
        model.set_plastic(False)
        # the α-hybrid (hebblib.hybrid): the same loop, each Hebbian layer's gradient mixed with its ΔW
        hook = HybridHook(model, sup.alpha) if sup.mode == "hybrid" else None
        run.timings["features"] = 0.0
        # after every epoch, so that an interrupted run goes on from its last finished epoch
        epoch_checkpoint = run.run_dir / "end_to_end.pt" if run.options.resume else None
        history = train_end_to_end(model, run.train, run.val, run.test,
                                   desc=f"{run.name} {'hybrid' if hook else 'backprop'}", checkpoint=epoch_checkpoint,
                                   checkpoint_key=run.key, hook=hook, precision=run.precision.name, **common)
        saved = model.state_dict()
        run.timings["supervised"] = sum(record["seconds"] for record in history)  # epochs before a resume too
    else:
        feats, mirrored = split_features(run, model) if features is None else features
        t1 = time.perf_counter()
        head = torch.nn.Sequential(model.dropout, model.classifier)
        train_set = (feats["train"], run.train.labels) + ((mirrored,) if sup.augment else ())
        flips = sup.flip_average  # the mirrored validation and test features, for flip averaging
        history = train_linear_probe(head, train_set,
                                     (feats["val"], run.val.labels) + ((feats["val_flip"],) if flips else ()),
                                     (feats["test"], run.test.labels) + ((feats["test_flip"],) if flips else ()),
                                     desc=f"{run.name} classifier", compile=run.options.compile, **common)
        saved = model.classifier.state_dict()
        run.timings["supervised"] = time.perf_counter() - t1
        del feats, mirrored
    save_checkpoint(run.run_dir / "supervised.pt", {"config_hash": run.key, "state": saved, "mode": sup.mode})
    (run.run_dir / "end_to_end.pt").unlink(missing_ok=True)  # superseded by supervised.pt
    return history


def _options_of(module) -> dict:
    """The constructor options a module keeps as plain attributes (``k``, ``theta_rate``, ``sigma_e``, ...)."""
    values = {k: getattr(module, k) for k in inspect.signature(type(module)).parameters if hasattr(module, k)}
    return {k: v for k, v in values.items() if isinstance(v, (bool, int, float, str, type(None)))}


def layer_settings(model) -> dict:
    """What each Hebbian layer of ``model`` holds, read from the layers themselves (the settings the preset's
    levels resolved to, :mod:`hebblib.config`): rule and competition with their options, lr and its
    schedule, activation, update normalisation, surround, ... By layer name; recorded as ``layers_used``."""
    out = {}
    for name, layer in (model.hebbian_layers() if hasattr(model, "hebbian_layers") else {}).items():
        record = {"type": type(layer).__name__, "rule": {"name": layer.rule.name, **_options_of(layer.rule)},
                  "competition": {"name": layer.competition.name, **_options_of(layer.competition)}}
        for key in ("activation", "competition_over", "lr", "lr_schedule", "radius_power", "update_norm", "dale",
                    "weight_norm", "lebesgue_p", "renormalize", "update_via", "explode_threshold", "padding_mode",
                    "presynaptic"):
            if hasattr(layer, key):
                record[key] = getattr(layer, key)
        surround = getattr(layer, "surround", None)
        record["surround"] = None if surround is None else _options_of(surround)
        out[name] = record
    return out


def result_record(run: Run, model, history: list[dict] | None = None) -> dict:
    """Step 7: the run's record (accuracies in %). Without ``history`` (stopped after phase 1) it is marked
    incomplete; with it, it holds the accuracies of :func:`hebblib.results.summarize_history`, the per-epoch
    records, the timings and the preset. :func:`run_preset` writes it to ``<run>/results.json``. It also holds
    ``recipe_hash`` (the run's group folder: seeds with the same hash share every setting) and, for the
    presets with a Hebbian phase, ``competition``: :func:`hebblib.diagnostics.competition_diagnostics` of the
    trained network on the first training images."""
    preset, unsup, sup = run.preset, run.config.unsupervised, run.config.supervised
    stats = run.unsupervised or {"images": 0, "seconds": 0.0, "images_per_s": None}
    result = {
        "preset": run.name, "original": preset["original"], "change": preset.get("change"),
        "description": preset.get("description"),
        "published": preset.get("published"), "source": preset.get("source"), "protocol": preset.get("protocol"),
        "seed": run.seed, "quick": run.options.quick, "data": run.data_info, "device": describe_device(run.device),
        # the host's CPU: what the timings below were taken on (a run resumed on another machine: the last one)
        "cpu": describe_cpu(),
        "torch_version": torch.__version__, "hebblib_version": _version(), "started_at": run.started,
        "architecture": preset["architecture"], "num_parameters": model.num_parameters(),
        "unsupervised": {**stats, "epochs": unsup.epochs, "batch_size": unsup.batch_size,
                         "resumed_from_checkpoint": run.resumed},
        "layers_used": layer_settings(model),
        "precision": {**run.precision.as_dict(), "flush_denormals": denormals_flushable(),
                      "allocator": keep_freed_memory(),
                      **({"fp32_below_fan_in": BF16_MIN_FAN_IN} if run.precision.name != "fp32"
                         and sup.mode == "linear" else {}),
                      **({"compile": True} if run.options.compile else {})},
        "config_hash": run.key, "recipe_hash": run.run_dir.parent.name.rsplit("-", 1)[-1],
        "run_dir": str(run.run_dir), "complete": False,
        # the competition at the end of the Hebbian phase, on a fixed batch of training images
        "competition": (competition_diagnostics(model, run.train) if sup.mode == "linear" else None),
    }
    if history is None:
        return result
    result.update(summarize_history(history))
    result.update({
        "supervised": {"mode": sup.mode, "epochs": run.epochs, "batch_size": sup.batch_size, "lr": sup.lr,
                       "schedule": sup.schedule, "augment": sup.augment,
                       **({"alpha": sup.alpha} if sup.mode == "hybrid" else {}),
                       **({"dropout_mask": dropout_mask_record(model.dropout, run.device)}
                          if sup.mode == "linear" and isinstance(getattr(model, "dropout", None), FastDropout)
                          else {})},
        "timings_s": {"data": run.timings["data"], "unsupervised": stats["seconds"],
                      "features": run.timings["features"], "supervised": run.timings["supervised"],
                      "total": time.perf_counter() - run.t0},
        "epochs": history, "config": preset, "complete": True,
    })
    return result


def run_preset(preset, *, original: bool = False, notice=print, **options) -> dict:
    """Train and evaluate one preset (a name, a dict from :func:`hebblib.presets.get_preset` or a
    :class:`~hebblib.config.PresetConfig`) for one seed: the steps of :class:`Run`, one after the other.

    ``options`` are those of :class:`hebblib.config.RunOptions`: ``seed`` (0), ``root``, ``source``
    ('auto'), ``device``, ``quick`` (default ``hebblib.is_quick()``: the shipped subset and at most 3
    classifier epochs), ``limit_train``, ``limit_test``, ``val_size`` (5000), ``split_seed`` (0),
    ``supervised_epochs`` (the preset's), ``out`` (the runs folder: ``$HEBBLIB_RUNS`` or ``runs/``), ``resume``
    (False ignores what is there), ``stop_after='unsupervised'`` (stop after writing the phase-1 checkpoint),
    ``progress``, ``download``, ``deterministic`` (default: on the CPU only; trades cuDNN autotuning for
    bit-for-bit repeatable GPU runs). Every option and preset value is checked before any data is read.
    Returns the result record (also written to ``<run>/results.json``); accuracies are in %.
    """
    run = plan_run(preset, original=original, **options)
    prepare_data(run, notice)
    run_folder(run)
    done = finished_result(run)
    if done is not None:
        return done
    model = initial_model(run)
    hebbian_phase(run, model)
    if run.options.stop_after == "unsupervised":
        return result_record(run, model)
    history = train_classifier(run, model)
    result = result_record(run, model, history)
    write_json(run.run_dir / "results.json", result)
    return result


def finished_linear_record(run_dir) -> dict:
    """The ``results.json`` of the finished run with a linear classifier in ``run_dir`` (its ``seed<k>``
    folder), its ``run_dir`` set to that folder (the record may name another checkout's); else a
    ``ValueError`` naming the folder. For scripts that redo part of a finished run (:func:`plan_like`)."""
    record = read_json(Path(run_dir) / "results.json")
    if not record or not record.get("complete") or (record.get("supervised") or {}).get("mode") != "linear":
        raise ValueError(f"{run_dir}: not a finished run with a linear classifier (results.json)")
    return {**record, "run_dir": str(run_dir)}


def plan_like(record: dict, **options) -> Run:
    """:func:`plan_run` for the run that wrote ``record`` (its ``results.json``): its preset, seed, data source,
    split, image counts, quick mode and classifier epochs; ``options`` add to or override those (``root``,
    ``precision``, ``out``, ...). For scripts that redo part of a finished run on its trained weights."""
    data = record["data"]
    planned = dict(seed=record["seed"], source=data["source"], quick=record["quick"], split_seed=data["split_seed"],
                   limit_train=data["n_train"] + data["n_val"], limit_test=data["n_test"],
                   supervised_epochs=len(record["epochs"]), device="cpu", progress=False)
    return plan_run(record["config"], **{**planned, **options})


def hebbian_network(result: dict, preset=None):
    """The network of a run (``result``: the record :func:`run_preset` returned) with the weights its Hebbian
    phase learned, read from the run's ``unsupervised.pt`` by :func:`hebblib.results.load_checkpoint`
    (tensors only, and only a checkpoint written for this run). ``preset``: the run's preset (default: the
    one the record holds). ``FileNotFoundError`` when the checkpoint is not there."""
    preset = result["config"] if preset is None else preset
    checkpoint = load_checkpoint(Path(result["run_dir"]) / "unsupervised.pt", result["config_hash"])
    if checkpoint is None:
        raise FileNotFoundError(f"no Hebbian checkpoint of this run (configuration {result['config_hash']}) in "
                                f"{result['run_dir']}; run the preset again to write it")
    model = build_model(preset)
    model.load_state_dict(checkpoint["model"])
    return model


def reproduce(preset, *, seeds: int = 1, first_seed: int = 0, out=None, parallel: int = 1, **options) -> dict:
    """Run ``preset`` for ``seeds`` seeds (``first_seed``, ``first_seed + 1``, ...) and summarise them:
    mean ± std of the final test accuracy, the test accuracy at the best-validation epoch and the max.
    The summary (with every run's record under ``runs``) is written to ``summary.json`` beside the seeds.
    ``parallel`` > 1 runs that many seeds at a time, each in its own process
    (:func:`hebblib.distributed.run_seeds_in_processes`)."""
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}")
    if parallel != 1:
        from .distributed import run_seeds_in_processes

        results = run_seeds_in_processes(preset, range(first_seed, first_seed + seeds), parallel, out=out, **options)
    else:
        results = [run_preset(preset, seed=s, out=out, **options) for s in range(first_seed, first_seed + seeds)]
    summary = summarize_runs(results)
    summary["runs"] = results
    summary_path = Path(results[0]["run_dir"]).parent / "summary.json"
    write_json(summary_path, {k: v for k, v in summary.items() if k != "runs"})
    summary["summary_path"] = str(summary_path)
    return summary
