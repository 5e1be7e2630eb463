"""Run folders, result files and the numbers reported from a run's per-epoch history.

Layout (``out`` defaults to ``runs/``, which git ignores)::

    runs/<preset>[-original]/<data source>-n<train images>-<config hash>/
        summary.json                 mean ± std over the seeds run so far
        seed<k>/unsupervised.pt      Hebbian weights after phase 1 (the resume point)
        seed<k>/supervised.pt        the trained head (linear probe) or the whole network (end to end)
        seed<k>/results.json         everything below, written when the run completes

The README's figures are the max (≈ final) test accuracy over the classifier epochs (spec nimmo-thesis
§4.6); a clean protocol selects the epoch on the validation split. All three are reported.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
import warnings
from pathlib import Path

import torch

METRICS = ("final_test_acc", "test_acc_at_best_val", "max_test_acc", "mean_test_acc_last_half")
RUNS_ENV = "HEBBLIB_RUNS"


def summarize_history(history: list[dict]) -> dict:
    """From per-epoch records (``val_acc``, ``test_acc`` in %): the final-epoch test accuracy, the test
    accuracy at the best validation epoch (earliest on ties), the max over epochs, and the mean over the last
    half of the epochs (the 2025 paper's headline measure)."""
    if not history:
        raise ValueError("the history is empty: no classifier epoch was run")
    tests = [h["test_acc"] for h in history]
    best = max(range(len(history)), key=lambda i: (history[i]["val_acc"], -i))
    half = tests[len(tests) // 2:]
    return {
        "final_test_acc": tests[-1],
        "best_val_epoch": history[best]["epoch"],
        "best_val_acc": history[best]["val_acc"],
        "test_acc_at_best_val": tests[best],
        "max_test_acc": max(tests),
        "mean_test_acc_last_half": sum(half) / len(half),
    }


def signed(value: float, digits: int = 1) -> str:
    """``value`` with its sign and ``digits`` decimals, a difference as tables and chapters print it; a value
    that rounds to zero prints ``+0.0``, never ``-0.0``."""
    text = f"{value:+.{digits}f}"
    return "+" + text[1:] if float(text) == 0 else text


def mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "values": list(values)}


def summarize_runs(results: list[dict]) -> dict:
    """Mean ± std of every reported metric over several seeds of one preset."""
    if not results:
        raise ValueError("no results to summarize")
    first = results[0]
    summary = {"preset": first["preset"], "original": first["original"], "change": first.get("change"),
               "published": first.get("published"),
               "source": first.get("source"), "data": first["data"], "seeds": [r["seed"] for r in results]}
    for metric in METRICS:
        summary[metric] = mean_std([r[metric] for r in results])
    return summary


def default_out() -> Path:
    """``$HEBBLIB_RUNS`` or ``runs/`` in the working directory."""
    return Path(os.environ.get(RUNS_ENV, "").strip() or "runs")


def config_hash(config: dict) -> str:
    """A short, stable hash of a JSON-serialisable configuration."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def group_dir(out, variant: str, source: str, n_train: int, key: str) -> Path:
    """``out/<variant>/<source>-n<images>-<key>`` (``variant``: :func:`hebblib.presets.variant_name`)."""
    return Path(out) / variant / f"{source}-n{n_train}-{key}"


def _atomic_write(path, write) -> None:
    """``write(tmp)`` into a temporary file of its own beside ``path``, then rename it to ``path``: a crash
    never leaves half a file, and two processes writing the same file (two identical runs into one folder)
    never share a temporary file; the last rename wins, whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # unique per process and call (and created with the usual permissions, unlike tempfile.mkstemp's 0600)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON, atomically (:func:`_atomic_write`)."""
    text = json.dumps(obj, indent=2, default=str)
    _atomic_write(path, lambda tmp: tmp.write_text(text))


def read_json(path) -> dict | None:
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def save_checkpoint(path, payload: dict) -> None:
    """``torch.save`` atomically (:func:`_atomic_write`). The payload holds tensors and plain Python data
    only, so that :func:`load_checkpoint` can read it with ``weights_only=True``."""
    _atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path, key: str) -> dict | None:
    """The checkpoint at ``path`` if it exists and was written for configuration ``key``, else None.

    Read with ``torch.load(weights_only=True)``: tensors and plain data only, no code runs while loading. A
    file that cannot be read so (truncated by a crash, foreign, or holding other objects) is reported with a
    warning naming it, and None is returned: the phase is trained again."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file: say so, then train again
        warnings.warn(f"checkpoint {path} could not be read ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                      f"training again", stacklevel=2)
        return None
    if not isinstance(payload, dict):
        warnings.warn(f"checkpoint {path} holds a {type(payload).__name__}, not a checkpoint; training again",
                      stacklevel=2)
        return None
    return payload if payload.get("config_hash") == key else None


def format_accuracy(summary_or_result: dict, metric: str) -> str:
    """``'72.31 %'`` for one run (or a summary of one seed: no spread to show), ``'72.31 ± 0.42 %'`` for a
    summary of several seeds (mean ± sample std)."""
    value = summary_or_result[metric]
    if isinstance(value, dict):
        if len(value.get("values", ())) == 1:
            return f"{value['mean']:.2f} %"
        return f"{value['mean']:.2f} ± {value['std']:.2f} %"
    return f"{value:.2f} %"


def measured_results_dir() -> Path:
    """``docs/results/`` in the repository: the committed summaries of full-data runs."""
    return Path(__file__).resolve().parents[1] / "docs" / "results"


def variant_stem(preset_name: str, original: bool = False, change: dict | None = None,
                 dataset: str | None = None) -> str:
    """``<preset>[-original][-<dataset>][-change-<hash of the change>]``: the folder of a run under ``runs/``
    and the file name of its committed summary under ``docs/results/``. The dataset is named only when it is
    not CIFAR-10 (``soft-fashion_mnist``), so the CIFAR-10 rows keep their names."""
    stem = preset_name + ("-original" if original else "")
    stem += f"-{dataset}" if dataset and dataset != "cifar10" else ""
    return stem + (f"-change-{config_hash(change)}" if change else "")


def measured_result(preset_name: str, original: bool = False, directory=None,
                    change: dict | None = None, dataset: str | None = None) -> dict | None:
    """The committed full-data summary of a preset (``docs/results/<variant>.json``, a copy of a run's
    ``summary.json``; the variant: :func:`variant_stem`), or None when it has not been measured yet.
    Chapters print it beside their own quick-mode number, saying which is which."""
    directory = Path(directory) if directory is not None else measured_results_dir()
    path = directory / f"{variant_stem(preset_name, original, change, dataset)}.json"
    return read_json(path) if path.is_file() else None


def headline_of(preset_name: str, original: bool = False, directory=None, change: dict | None = None,
                dataset: str | None = None) -> dict | None:
    """:func:`headline_group` of a variant's committed file (:func:`measured_result`); None when not measured."""
    stored = measured_result(preset_name, original, directory, change, dataset)
    return headline_group(stored_groups(stored)) if stored is not None else None


def full_data_accuracy(preset_name: str, original: bool = False, directory=None,
                       change: dict | None = None, dataset: str | None = None) -> dict | None:
    """The committed full-data runs of a preset (or of its variant: ``original``, ``change``) in numbers, from
    the group of seeds :func:`headline_group` picks (the current protocol's when it has any): ``final``,
    ``at_best_val`` and ``max`` test accuracy (means over the group's seeds, %), their sample standard
    deviations ``final_std``, ``at_best_val_std``, ``max_std`` (None for one seed), ``seeds`` (how many),
    ``protocol`` (its version), ``current`` (whether that is :data:`PROTOCOL_VERSION`), ``precision``,
    ``zca_fit``, ``dataset`` (its :data:`hebblib.data.datasets.DATASETS` name) and ``file``; None when the variant has not been measured yet."""
    group = headline_of(preset_name, original, directory, change, dataset)
    if group is None:
        return None
    out = {"seeds": group["n"], "protocol": group["protocol"], "current": group["current"],
           "precision": group["precision"], "zca_fit": group["zca_fit"], "dataset": dataset or "cifar10",
           "file": f"docs/results/{variant_stem(preset_name, original, change, dataset)}.json"}
    for key, metric in (("final", "final_test_acc"), ("at_best_val", "test_acc_at_best_val"), ("max", "max_test_acc")):
        out[key] = float(group[metric]["mean"])
        out[f"{key}_std"] = float(group[metric]["std"]) if group["n"] > 1 else None
    return out


def accuracy_at_epoch(preset_name: str, epoch: int, original: bool = False, directory=None,
                      change: dict | None = None) -> dict | None:
    """Test accuracy after classifier epoch ``epoch`` (1-based) of the committed runs :func:`full_data_accuracy`
    reports (its headline group): ``mean``, ``std`` (sample; None for one seed), ``values`` and ``seeds``. For
    a published figure read out earlier than the preset's last epoch (the thesis's 5-epoch classifiers). None
    when the variant is not measured, or a run of the group stopped before ``epoch`` or kept no per-epoch
    record."""
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        raise ValueError(f"epoch must be an int >= 1, got {epoch!r}")
    group = headline_of(preset_name, original, directory, change)
    if group is None or not group["records"]:
        return None
    values = []
    for record in group["records"]:
        at = [e["test_acc"] for e in record.get("epochs") or [] if e.get("epoch") == epoch]
        if not at:
            return None
        values.append(float(at[0]))
    out = mean_std(values)
    return {**out, "std": out["std"] if len(values) > 1 else None, "seeds": len(values)}


def same_epochs(first: str, second: str, directory=None) -> dict | None:
    """Whether two presets' committed full-data runs are the same run: for each seed of ``first``'s headline
    group (:func:`headline_group`) that ``second`` also has in the group of the same protocol and precision,
    whether the test accuracies of every classifier epoch are equal. Returns ``seeds`` (the common seeds),
    ``identical`` (those equal at every epoch), ``epochs`` (how many each compared), ``protocol`` and
    ``precision``; None when either has no such runs. Equal curves to the last digit mean the two trainings
    made the same network (``temporal``'s gate, for instance, changing no update of ``hard_basic``'s)."""
    group = headline_of(first, directory=directory)
    stored = measured_result(second, directory=directory)
    if group is None or not group["records"] or stored is None:
        return None
    others = [g for g in stored_groups(stored)
              if (g["protocol"], g["precision"]) == (group["protocol"], group["precision"]) and g["records"]]
    if not others:
        return None
    theirs = {r["seed"]: r for g in others for r in g["records"]}

    def curve(record):
        return [e["test_acc"] for e in record.get("epochs") or []]

    common = [r for r in group["records"] if r["seed"] in theirs and curve(r)]
    if not common:
        return None
    return {"seeds": [r["seed"] for r in common],
            "identical": [r["seed"] for r in common if curve(r) == curve(theirs[r["seed"]])],
            "epochs": len(curve(common[0])), "protocol": group["protocol"], "precision": group["precision"]}


# ----- seeds grouped by protocol, for the results table and the chapters -------------------------------
# Version 1: the runs before 2026-12 (every one-seed row committed until then): the ZCA of the presets that
# whiten was fitted on all 50,000 training images, the 5,000 that become the validation split included, and
# everything ran in fp32. Version 2: the ZCA is fitted on the training split only (the 45,000 images that
# train); the run records its precision (fp32 or bf16). A run records its version in ``data["protocol"]``;
# a record without one is version 1.
PROTOCOL_VERSION = 2
PROTOCOLS = {1: "ZCA (where used) fitted on all 50,000 training images, the 5,000 validation images included; fp32",
             2: "ZCA (where used) fitted on the training split only (the 45,000 images that train); precision "
                "recorded per run"}
GROUP_METRICS = ("final_test_acc", "test_acc_at_best_val", "max_test_acc")


def run_protocol(record: dict) -> int:
    """The protocol version a run (or a summary) was measured under: ``data['protocol']``, else 1."""
    return int((record.get("data") or {}).get("protocol", 1))


def run_precision(record: dict) -> str:
    """``'fp32'`` or ``'bf16'``: the Hebbian phase's and the features' arithmetic (records older than the
    precision setting ran in fp32)."""
    return (record.get("precision") or {}).get("name", "fp32")


def precision_label(record: dict) -> str:
    """The precision as results tables show and group it: ``'fp32'``, ``'bf16'``, or ``'bf16 (all layers)'``
    for the Hebbian runs of the first bf16 path (until 2026-12), which also rounded the image-facing layers'
    products (since then those stay fp32: :data:`hebblib.update.BF16_MIN_FAN_IN`; the record says
    ``precision.fp32_below_fan_in``). A run fused by ``torch.compile`` (``precision.compile``) adds
    ``', compiled'``: the same arithmetic, other roundings."""
    name = run_precision(record)
    hebbian = (record.get("supervised") or {}).get("mode", "linear") == "linear"
    if name == "bf16" and hebbian and "fp32_below_fan_in" not in (record.get("precision") or {}):
        name = "bf16 (all layers)"
    return f"{name}, compiled" if (record.get("precision") or {}).get("compile") else name


def zca_fit(record: dict) -> str:
    """Which images the run's ZCA was fitted on: ``'none'`` (no whitening), ``'train+val (50,000)'``
    (protocol 1, or a run with ``data.zca_fit = 'train_and_val'``) or ``'train (45,000)'`` (protocol 2; the
    numbers are the run's own)."""
    data = record.get("data") or {}
    if data.get("normalization") != "zca":
        return "none"
    asked = [((record.get(key) or {}).get("data") or {}).get("zca_fit") for key in ("config", "change")]
    fit = next((f for f in asked if f), "train")  # the run's recipe, else its change (a stored record)
    if run_protocol(record) < 2 or fit == "train_and_val":  # v1, or v2 with the v1 fit asked for (data.zca_fit)
        return f"train+val ({data.get('n_train', 0) + data.get('n_val', 0):,})"
    return f"train ({data.get('n_train', 0):,})"


def group_key(record: dict) -> tuple:
    """What seeds must share to be averaged: the variant (preset, ``original``, change), the protocol
    version, the precision and ``recipe_hash`` (the hash of the run's group folder under ``runs/``: the preset's
    architecture, model, Hebbian, layer, data, unsupervised and classifier settings, the precision, the
    data split and the classifier epochs; None for records that predate it, which then group only with each
    other)."""
    change = record.get("change")
    return (record["preset"], bool(record.get("original")), json.dumps(change, sort_keys=True) if change else None,
            run_protocol(record), precision_label(record), record.get("recipe_hash"))


def group_runs(records: list[dict]) -> list[dict]:
    """The seed records of one or several variants, grouped by :func:`group_key`; per group the mean and the
    sample standard deviation (n − 1) of each metric over its seeds (:func:`mean_std`), the gap of the mean
    final test accuracy to the published figure, and ``gap_beyond_2std``: whether ``|gap| > 2 std`` (None
    for one seed, where no spread is measured). Each group also carries ``records`` (sorted by seed)."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault(group_key(record), []).append(record)
    out = []
    for key, members in groups.items():
        members = sorted(members, key=lambda r: r["seed"])
        seeds = [r["seed"] for r in members]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seed repeated within one group of {key[0]!r}: seeds {seeds}")
        first = members[-1]
        group = {"preset": first["preset"], "original": bool(first.get("original")), "change": first.get("change"),
                 "published": first.get("published"), "published_std": first.get("published_std"),
                 "source": first.get("source"),
                 "protocol": run_protocol(first), "current": run_protocol(first) == PROTOCOL_VERSION,
                 "precision": precision_label(first), "zca_fit": zca_fit(first), "recipe_hash": first.get("recipe_hash"),
                 "dataset": (first.get("data") or {}).get("dataset", "cifar10"),
                 "seeds": seeds, "n": len(seeds), "records": members}
        for metric in GROUP_METRICS:
            group[metric] = mean_std([float(r[metric]) for r in members])
        group.update(published_gap(group["final_test_acc"], group["published"]))
        out.append(group)
    return sorted(out, key=lambda g: (g["preset"], g["original"], g["change"] is not None, -g["protocol"],
                                      g["precision"], -g["n"]))


def published_gap(metric: dict, published: float | None) -> dict:
    """``gap`` = mean − published (None without a published figure) and ``gap_beyond_2std`` = ``|gap| >
    2 · std`` (the sample std over the seeds); None when there is one seed or no published figure."""
    if published is None:
        return {"gap": None, "gap_beyond_2std": None}
    gap = metric["mean"] - published
    beyond = abs(gap) > 2 * metric["std"] if len(metric["values"]) >= 2 else None
    return {"gap": gap, "gap_beyond_2std": beyond}


def stored_runs(stored: dict) -> list[dict]:
    """The seed records of a committed variant file (``docs/results/<variant>.json``), each complete with the
    variant's ``preset``, ``original``, ``change``, ``published``, ``source`` and ``data`` (which older files
    keep once, beside their ``runs``). A file without ``runs`` (a bare summary) gives one record per seed
    only when it lists each seed's value; else an empty list (see :func:`stored_groups`)."""
    shared = {k: stored.get(k) for k in ("preset", "original", "change", "published", "published_std", "source",
                                         "data")}
    return [{**shared, **run} for run in stored.get("runs", [])]


def stored_groups(stored: dict) -> list[dict]:
    """:func:`group_runs` of a committed variant file; a bare summary (mean and std per metric, no ``runs``:
    the oldest files and hand-written ones) is read as one group of its own."""
    records = stored_runs(stored)
    if records:
        return group_runs(records)
    seeds = stored.get("seeds") or [0]
    group = {k: stored.get(k) for k in ("preset", "original", "change", "published", "source")}
    group.update({"protocol": run_protocol(stored), "current": run_protocol(stored) == PROTOCOL_VERSION,
                  "precision": precision_label(stored), "zca_fit": zca_fit(stored), "recipe_hash": None,
                  "seeds": seeds, "n": len(seeds), "records": []})
    for metric in GROUP_METRICS:
        value = stored.get(metric)
        if value is None:
            return []
        value = value if isinstance(value, dict) else {"mean": value}
        group[metric] = {"mean": float(value["mean"]), "std": float(value.get("std", 0.0)) if len(seeds) > 1 else 0.0,
                         "values": list(value.get("values", [value["mean"]] * len(seeds)))}
    group.update(published_gap(group["final_test_acc"], group["published"]))
    return [group]


def headline_group(groups: list[dict]) -> dict | None:
    """The group a chapter or the table's main section reports for a variant: of the current protocol when
    there is one, else of the latest; among those the one with the most seeds, then fp32 (the default
    precision) before bf16, then the latest started."""
    if not groups:
        return None
    latest = max(g["protocol"] for g in groups)
    candidates = [g for g in groups if g["protocol"] == latest]
    return max(candidates, key=lambda g: (g["n"], g["precision"] == "fp32",
                                          max((r.get("started_at") or "" for r in g["records"]), default="")))


# ----- full-mode results of the chapters' own experiments (not presets) -------------------------------
def chapter_results_dir() -> Path:
    """``docs/results/chapters/`` in the repository: full-data figures of the chapters' experiments,
    written by ``scripts/chapter_full.py``."""
    return measured_results_dir() / "chapters"


def save_chapter_result(name: str, record: dict, directory=None) -> Path:
    """Write ``record`` (JSON-able) as ``<directory>/<name>.json`` (default :func:`chapter_results_dir`)."""
    directory = Path(directory) if directory is not None else chapter_results_dir()
    path = directory / f"{name}.json"
    write_json(path, record)
    return path


def chapter_result(name: str, directory=None) -> dict | None:
    """The committed full-data record of a chapter experiment, or None when it has not been run."""
    directory = Path(directory) if directory is not None else chapter_results_dir()
    path = directory / f"{name}.json"
    return read_json(path) if path.is_file() else None
