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

Re-running the same call resumes: a finished run is read back, a run interrupted after phase 1 starts
from its ``unsupervised.pt`` checkpoint (the features are recomputed), and an end-to-end (backprop) run
goes on after the last epoch saved in its ``end_to_end.pt``.
"""
from __future__ import annotations

import datetime
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .classifier import cache_split_features, train_end_to_end, train_linear_probe
from .data import CIFAR10NotFoundError, DeviceDataset, cifar10_available, load_cifar, load_cifar10
from .data.zca import fit_zca
from .data.subset import SUBSET_PER_CLASS
from .errors import HebbianDivergenceError, check_choice
from .presets import build_model, resolve_preset, variant_name
from .results import (config_hash, default_out, group_dir, load_checkpoint, read_json, save_checkpoint,
                      summarize_history, summarize_runs, write_json)
from .runtime import describe_device, get_device, is_quick, seed_everything

QUICK_SUPERVISED_EPOCHS = 3
CUDA_CHECK_EVERY = 50  # updates between NaN/explosion checks on the GPU (each check is a host sync)
SOURCES = ("auto", "full", "subset")


def _version() -> str:
    from . import __version__  # imported late: hebblib/__init__ imports this module

    return __version__


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_hebbian(model, data, *, epochs: int = 1, batch_size: int = 64, augment: bool = True,
                  layerwise: bool = False, warmup_batches: int = 0, generator: torch.Generator | None = None,
                  check_every: int | None = None, progress: bool = True, label: str = "hebbian") -> dict:
    """Phase 1: ``epochs`` unsupervised epochs over ``data`` (a ``DeviceDataset``; labels unused).

    Per batch: ``model.features(x)`` in training mode, then ``model.apply_updates()`` (all layers at once).
    ``layerwise``: each Hebbian layer in turn learns alone for ``epochs`` epochs, the forward stopping at
    its block. ``warmup_batches``: batches at the start whose updates are discarded (Miconi's burn-in,
    thresholds still adapt). Divergence (NaN or |W| above a layer's ``explode_threshold``) raises
    :class:`HebbianDivergenceError` naming ``label``, the layer, the epoch and the batch; the weights are
    checked every ``check_every`` updates (default 1 on the CPU, 50 on CUDA, so the loop never waits on the
    GPU in between). Returns ``images``, ``seconds``, ``images_per_s``.
    """
    layers = model.hebbian_layers()
    device = next(model.parameters()).device
    if not layers or epochs == 0:
        return {"images": 0, "seconds": 0.0, "images_per_s": None}
    check_every = check_every or (CUDA_CHECK_EVERY if device.type == "cuda" else 1)
    for layer in layers.values():
        layer.check_every = check_every
    plan = [(list(layers), None)] if not layerwise else [([name], model.stage_of(name)) for name in layers]
    n_batches = -(-len(data) // batch_size)
    model.train()
    images, step, start = 0, 0, time.perf_counter()
    where = "before training"
    try:
        for names, upto in plan:
            model.set_plastic(names)
            for epoch in range(epochs):
                desc = f"{label} " + (f"{names[0]} " if layerwise else "") + f"epoch {epoch + 1}/{epochs}"
                batches = data.batches(batch_size, shuffle=True, augment=augment, generator=generator)
                for b, (x, _) in enumerate(tqdm(batches, total=n_batches, desc=desc, disable=not progress,
                                                leave=False)):
                    where = (f"{'layer ' + names[0] + ', ' if layerwise else ''}epoch {epoch + 1}, "
                             f"batch {b + 1}/{n_batches}")
                    with torch.no_grad():
                        model.features(x, upto=upto)
                    if step < warmup_batches:
                        for layer in layers.values():
                            layer.delta_w.zero_()
                    else:
                        model.apply_updates()
                    images += x.shape[0]
                    step += 1
        where = "at the end of the unsupervised phase"
        model.check_finite()
    except HebbianDivergenceError as err:
        lag = (f" (the weights are checked every {check_every} updates, so it may have started up to "
               f"{check_every - 1} batches earlier)" if check_every > 1 else "")
        raise HebbianDivergenceError(f"{label}: Hebbian training diverged, detected {where}{lag}: {err}") from None
    finally:
        model.set_plastic(True)
    _sync(device)
    seconds = time.perf_counter() - start
    return {"images": images, "seconds": seconds, "images_per_s": images / seconds if seconds > 0 else None}


# ----- data ------------------------------------------------------------------------------------------
def resolve_source(source: str = "auto", root=None, quick: bool = False, download: bool = True):
    """``(source, notice)``: 'auto' is the subset in quick mode, else the full data when present (after one
    download attempt), else the shipped subset with a notice saying so."""
    check_choice("data source", source, SOURCES)
    if source != "auto":
        return source, None
    if quick:
        return "subset", None
    if cifar10_available(root):
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
    """``(train, val, test)`` DeviceDatasets: normalisation (and ZCA, fitted on the training images only)
    from ``data_cfg``; the validation split is ``min(val_size, 10 %)`` of the (limited) training images,
    stratified and seeded; ``limit_*`` keep the first images of a split."""
    for name, limit in (("limit_train", limit_train), ("limit_test", limit_test)):
        if limit is not None and not (isinstance(limit, int) and not isinstance(limit, bool) and limit >= 20):
            raise ValueError(f"{name} must be an int >= 20 (or None for all images), got {limit!r}")
    normalization = data_cfg.get("normalization", "none")
    images, labels = load_cifar(True, root, source)
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
        # fit also saw the 5,000 validation images; see docs/results_notes.md.)
        is_val = torch.zeros(len(every_train), dtype=torch.bool)
        is_val[val_index] = True
        zca = fit_zca(every_train.images[(~is_val).to(every_train.device)], data_cfg.get("zca_eps", 1e-3), root=root)
    train = DeviceDataset(limited.images[train_index.to(limited.device)], limited.labels[train_index.to(limited.device)],
                          normalization, zca, augment=True, device=device)
    val = DeviceDataset(limited.images[val_index.to(limited.device)], limited.labels[val_index.to(limited.device)],
                        normalization, zca, augment=False, device=device)
    images, labels = load_cifar(False, root, source)
    test = DeviceDataset(images, labels, normalization, zca, augment=False, device=train.device)
    if limit_test is not None and limit_test < len(test):
        test = test.subset(torch.arange(limit_test))
    return train, val, test


# ----- one run -----------------------------------------------------------------------------------------
def run_preset(preset, *, seed: int = 0, root=None, source: str = "auto", device=None, original: bool = False,
               quick: bool | None = None, limit_train: int | None = None, limit_test: int | None = None,
               val_size: int = 5000, split_seed: int = 0, supervised_epochs: int | None = None, out=None,
               resume: bool = True, stop_after: str | None = None, progress: bool = True,
               download: bool = True, deterministic: bool | None = None, notice=print) -> dict:
    """Train and evaluate one preset (a name or a dict from :func:`hebblib.presets.get_preset`) for one seed.

    ``quick`` (default: ``hebblib.is_quick()``) uses the shipped subset and at most 3 classifier epochs.
    ``out``: the runs folder (default ``$HEBBLIB_RUNS`` or ``runs/``); ``resume=False`` ignores what is there.
    ``stop_after='unsupervised'`` stops after writing the phase-1 checkpoint. ``deterministic`` (default: on
    the CPU only) trades cuDNN autotuning for bit-for-bit repeatable GPU runs. Returns the result record
    (also written to ``<run>/results.json``); accuracies are in %.
    """
    check_choice("stop_after", stop_after, (None, "unsupervised"))
    started, t0 = datetime.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    quick = is_quick() if quick is None else bool(quick)
    preset = resolve_preset(preset, original)
    name, sup, unsup = preset["name"], preset["supervised"], preset["unsupervised"]
    epochs = supervised_epochs or (min(sup["epochs"], QUICK_SUPERVISED_EPOCHS) if quick else sup["epochs"])
    device = get_device(device)
    source, message = resolve_source(source, root, quick, download)
    if message and notice:
        notice(message)
    if source == "full" and not download:
        load_cifar10(True, root, download=False)  # the data layer's clear error when the files are missing
    train, val, test = load_splits(preset["data"], root=root, source=source, device=device, limit_train=limit_train,
                                   limit_test=limit_test, val_size=val_size, split_seed=split_seed)
    t_data = time.perf_counter() - t0
    data_info = {"source": source, "normalization": preset["data"]["normalization"], "n_train": len(train),
                 "n_val": len(val), "n_test": len(test), "split_seed": split_seed}
    recipe = {k: preset[k] for k in ("architecture", "model", "hebbian", "layers", "data", "unsupervised",
                                     "supervised")}
    key = config_hash({"recipe": recipe, "seed": seed, "data": data_info, "epochs": epochs, "quick": quick})
    run_dir = group_dir(out or default_out(), variant_name(preset), source, len(train) + len(val),
                        config_hash({"recipe": recipe, "data": data_info, "epochs": epochs})) / f"seed{seed}"
    done = read_json(run_dir / "results.json") if resume else None
    if done and done.get("complete") and done.get("config_hash") == key:
        done["reused"] = True
        return done

    label = f"preset {name!r} (seed {seed})"
    deterministic = device.type != "cuda" if deterministic is None else bool(deterministic)
    seed_everything(seed, deterministic=deterministic)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic  # autotuned convolutions unless asked otherwise
    model = build_model(preset).to(device)
    resumed = False
    checkpoint = load_checkpoint(run_dir / "unsupervised.pt", key) if resume else None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        model.to(device)  # buffers whose shape depends on the data (BCM θ, thresholds) load on the CPU
        unsup_stats, resumed = checkpoint["stats"], True
    elif sup["mode"] == "linear":
        generator = torch.Generator().manual_seed(seed * 1000 + 1)
        unsup_stats = train_hebbian(model, train, epochs=unsup["epochs"], batch_size=unsup["batch_size"],
                                    augment=unsup.get("augment", True), layerwise=unsup.get("layerwise", False),
                                    warmup_batches=unsup.get("warmup_batches", 0), generator=generator,
                                    progress=progress, label=label)
        save_checkpoint(run_dir / "unsupervised.pt", {"config_hash": key, "model": model.state_dict(),
                                                     "stats": unsup_stats})
    else:
        unsup_stats = {"images": 0, "seconds": 0.0, "images_per_s": None}
    result = {
        "preset": name, "original": preset["original"], "change": preset.get("change"),
        "description": preset.get("description"),
        "published": preset.get("published"), "source": preset.get("source"), "protocol": preset.get("protocol"),
        "seed": seed, "quick": quick, "data": data_info, "device": describe_device(device),
        "torch_version": torch.__version__, "hebblib_version": _version(), "started_at": started,
        "architecture": preset["architecture"], "num_parameters": model.num_parameters(),
        "unsupervised": {**unsup_stats, "epochs": unsup["epochs"], "batch_size": unsup["batch_size"],
                         "resumed_from_checkpoint": resumed},
        "config_hash": key, "run_dir": str(run_dir), "complete": False,
    }
    if stop_after == "unsupervised":
        return result

    torch.manual_seed(seed * 1000 + 2)  # the same classifier run whether or not phase 1 was resumed
    generator = torch.Generator().manual_seed(seed * 1000 + 3)
    common = dict(epochs=epochs, lr=sup["lr"], batch_size=sup["batch_size"], schedule=sup["schedule"],
                  augment=sup.get("augment", True), generator=generator, progress=progress)
    t1 = time.perf_counter()
    if sup["mode"] == "end_to_end":
        model.set_plastic(False)
        t_features = 0.0
        # after every epoch, so that an interrupted run goes on from its last finished epoch
        epoch_checkpoint = run_dir / "end_to_end.pt" if resume else None
        history = train_end_to_end(model, train, val, test, desc=f"{name} backprop", checkpoint=epoch_checkpoint,
                                   checkpoint_key=key, **common)
        saved = model.state_dict()
    else:
        model.requires_grad_(False)
        model.classifier.requires_grad_(True)
        flip = bool(sup.get("augment", True))
        feats, mirrored = cache_split_features(model, train, val, test, mirrored=flip, progress=progress,
                                               prefix=f"{name} ")
        _sync(device)
        t_features = time.perf_counter() - t1
        head = torch.nn.Sequential(model.dropout, model.classifier)
        train_set = (feats["train"], train.labels) + ((mirrored,) if flip else ())
        history = train_linear_probe(head, train_set, (feats["val"], val.labels), (feats["test"], test.labels),
                                     desc=f"{name} classifier", **common)
        saved = model.classifier.state_dict()
        del feats, mirrored
    t_supervised = time.perf_counter() - t1 - t_features
    if sup["mode"] == "end_to_end":  # epochs run before an interruption count too
        t_supervised = sum(record["seconds"] for record in history)
    save_checkpoint(run_dir / "supervised.pt", {"config_hash": key, "state": saved, "mode": sup["mode"]})
    (run_dir / "end_to_end.pt").unlink(missing_ok=True)  # superseded by supervised.pt
    result.update(summarize_history(history))
    result.update({
        "supervised": {"mode": sup["mode"], "epochs": epochs, "batch_size": sup["batch_size"], "lr": sup["lr"],
                       "schedule": sup["schedule"], "augment": sup.get("augment", True)},
        "timings_s": {"data": t_data, "unsupervised": unsup_stats["seconds"], "features": t_features,
                      "supervised": t_supervised, "total": time.perf_counter() - t0},
        "epochs": history, "config": preset, "complete": True,
    })
    write_json(run_dir / "results.json", result)
    return result


def reproduce(preset, *, seeds: int = 1, first_seed: int = 0, out=None, **options) -> dict:
    """Run ``preset`` for ``seeds`` seeds (``first_seed``, ``first_seed + 1``, ...) and summarise them:
    mean ± std of the final test accuracy, the test accuracy at the best-validation epoch and the max.
    The summary (with every run's record under ``runs``) is written to ``summary.json`` beside the seeds."""
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}")
    results = [run_preset(preset, seed=s, out=out, **options) for s in range(first_seed, first_seed + seeds)]
    summary = summarize_runs(results)
    summary["runs"] = results
    summary_path = Path(results[0]["run_dir"]).parent / "summary.json"
    write_json(summary_path, {k: v for k, v in summary.items() if k != "runs"})
    summary["summary_path"] = str(summary_path)
    return summary
