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


def variant_stem(preset_name: str, original: bool = False, change: dict | None = None) -> str:
    """``<preset>[-original][-change-<hash of the change>]``: the folder of a run under ``runs/`` and the
    file name of its committed summary under ``docs/results/``."""
    stem = preset_name + ("-original" if original else "")
    return stem + (f"-change-{config_hash(change)}" if change else "")


def measured_result(preset_name: str, original: bool = False, directory=None,
                    change: dict | None = None) -> dict | None:
    """The committed full-data summary of a preset (``docs/results/<variant>.json``, a copy of a run's
    ``summary.json``; the variant: :func:`variant_stem`), or None when it has not been measured yet.
    Chapters print it beside their own quick-mode number, saying which is which."""
    directory = Path(directory) if directory is not None else measured_results_dir()
    path = directory / f"{variant_stem(preset_name, original, change)}.json"
    return read_json(path) if path.is_file() else None


def full_data_accuracy(preset_name: str, original: bool = False, directory=None,
                       change: dict | None = None) -> dict | None:
    """The committed full-data run of a preset (or of its variant: ``original``, ``change``) in numbers:
    ``final``, ``at_best_val`` and ``max`` test accuracy (means over its seeds, %), ``seeds`` and ``file``;
    None when it has not been measured yet."""
    summary = measured_result(preset_name, original, directory, change)
    if summary is None:
        return None

    def mean(metric):
        value = summary.get(metric)
        return float(value["mean"] if isinstance(value, dict) else value)

    return {"final": mean("final_test_acc"), "at_best_val": mean("test_acc_at_best_val"),
            "max": mean("max_test_acc"), "seeds": len(summary.get("seeds", [])) or 1,
            "file": f"docs/results/{variant_stem(preset_name, original, change)}.json"}


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
