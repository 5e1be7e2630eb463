"""Collect finished full-data runs into docs/results/ and render docs/results.md.

    python scripts/results_table.py collect RUNS_DIR   # add every finished full-data seed under RUNS_DIR
    python scripts/results_table.py render             # write docs/results.md from docs/results/*.json

``docs/results/<variant>.json`` keeps every seed ever collected for a variant (the runs of earlier protocols
too: that file is the history); ``render`` groups the seeds that share preset, variant, protocol version,
precision and recipe (hebblib.results.group_runs) and shows per group mean ± sample std (n − 1) over the
seeds, the gap of the mean to the published figure and whether it exceeds two standard deviations. Every
number in the table comes from those JSON files, which the training pipeline wrote.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hebblib.data.datasets import dataset_info  # noqa: E402
from hebblib.presets import variant_name  # noqa: E402
from hebblib.results import (PROTOCOL_VERSION, PROTOCOLS, group_key, headline_group, run_protocol,  # noqa: E402
                             signed, stored_groups, stored_runs)

DOCS = ROOT / "docs"
STORE = DOCS / "results"
VARIANT_KEYS = ("preset", "original", "change", "published", "published_std", "source", "description")
# what a committed seed keeps of its results.json (not its run folder, a path of the machine that ran it)
RUN_KEYS = ("seed", "device", "cpu", "torch_version", "hebblib_version", "started_at", "data", "precision",
            "config_hash", "recipe_hash", "num_parameters", "unsupervised", "supervised", "timings_s", "final_test_acc",
            "test_acc_at_best_val", "max_test_acc", "mean_test_acc_last_half", "best_val_epoch", "best_val_acc",
            "epochs", "competition", "epochs_option")


def _seed_key(record: dict) -> tuple:
    return group_key(record) + (record["seed"],)


def collect(runs: Path) -> list[str]:
    """Add every finished full-data seed of the current protocol under ``runs``
    (``<variant>/<group>/seed<k>/results.json``) to ``docs/results/<variant>.json``, keeping the seeds already
    there; a seed collected again (same group, same seed) replaces its earlier copy. Runs of earlier protocols
    are left out (the committed files keep the copies they have). Returns the variants written."""
    STORE.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[dict]] = {}
    old = reduced = 0
    for path in sorted(Path(runs).glob("*/*/seed*/results.json")):
        record = json.loads(path.read_text())
        if not record.get("complete") or record.get("quick") or record["data"]["source"] != "full":
            continue
        if run_protocol(record) < PROTOCOL_VERSION:  # made by earlier code: the history keeps its own copies
            old += 1
            continue
        data = record["data"]
        sizes = dataset_info(data.get("dataset", "cifar10")).sizes  # (50,000, 10,000) for CIFAR-10
        if data["n_train"] + data["n_val"] != sizes[0] or data["n_test"] != sizes[1]:  # --limit-train/--limit-test
            reduced += 1
            continue
        config = record.get("config") or {}  # a contrastive preset's epochs are under "training"
        preset_epochs = (config.get("supervised") or config.get("training") or {}).get("epochs")
        if preset_epochs is not None and record["supervised"]["epochs"] != preset_epochs:
            record["epochs_option"] = record["supervised"]["epochs"]  # run with --epochs: the command says so
        name = variant_name({"name": record["preset"], "original": record["original"], "change": record.get("change"),
                             "data": data})
        found.setdefault(name, []).append(record)
    if old:
        print(f"left out {old} finished run(s) of earlier protocols (docs/results/ keeps those it had)")
    if reduced:
        print(f"left out {reduced} finished run(s) on part of the data (--limit-train / --limit-test)")
    written = []
    for name, records in sorted(found.items()):
        path = STORE / f"{name}.json"
        stored = json.loads(path.read_text()) if path.is_file() else {}
        merged = {_seed_key(r): r for r in stored_runs(stored)}  # the earlier seeds, each with its variant's data
        merged.update({_seed_key(r): r for r in records})
        newest = records[-1]
        out = {k: newest.get(k) for k in VARIANT_KEYS}
        out["runs"] = [{k: r[k] for k in RUN_KEYS if k in r}
                       for r in sorted(merged.values(), key=lambda r: (_seed_key(r)[3:5], str(r.get("recipe_hash")),
                                                                      r["seed"]))]
        path.write_text(json.dumps(out, indent=1) + "\n")
        print(f"collected {name}: seeds {sorted({r['seed'] for r in records})} "
              f"({len(out['runs'])} seed record(s) in {path.name})")
        written.append(name)
    return written


# ----- the table --------------------------------------------------------------------------------------------
def _fmt(group: dict, metric: str) -> str:
    value = group[metric]
    return f"{value['mean']:.2f} ± {value['std']:.2f}" if group["n"] >= 2 else f"{value['mean']:.2f}"


def _variant(group: dict) -> str:
    """`` (original)``, `` (changed: {...})`` or nothing, after the preset's name."""
    dataset = group.get("dataset", "cifar10")
    parts = (["original"] if group["original"] else []) + (
        [f"on {dataset_info(dataset).title}"] if dataset != "cifar10" else []) + (
        [f"changed: `{json.dumps(group['change'])}`"] if group.get("change") else [])
    return f" ({'; '.join(parts)})" if parts else ""


def _seed_flags(seeds: list[int]) -> str:
    """``--seeds 3`` for seeds 0, 1, 2; ``--first-seed 3 --seeds 2`` for 3, 4; one flag set per run of
    consecutive seeds otherwise."""
    spans, start = [], seeds[0]
    for prev, cur in zip(seeds, seeds[1:] + [None]):
        if cur != prev + 1:
            spans.append((start, prev - start + 1))
            start = cur
    flags = [(f" --first-seed {s}" if s else "") + (f" --seeds {n}" if n > 1 or s else "") for s, n in spans]
    return flags[0] if len(flags) == 1 else " {" + ", ".join(f.strip() or "--seeds 1" for f in flags) + "}"


def command(group: dict) -> str:
    """The command that makes (or, run again, reads back) the group's seeds."""
    dataset = group.get("dataset", "cifar10")
    flags = (" --original" if group["original"] else "") + (f" --dataset {dataset}" if dataset != "cifar10" else "") + (
        f" --change '{json.dumps(group['change'])}'" if group.get("change") else "")
    seeds = _seed_flags(group["seeds"])
    epochs = {r.get("epochs_option") for r in group["records"]} - {None}
    flags += "".join(f" --epochs {e}" for e in sorted(epochs))
    if group["protocol"] < PROTOCOL_VERSION:  # as it was run then: no --source, no --precision yet
        return f"`python -m hebblib reproduce --preset {group['preset']}{flags}{seeds} --data ROOT`"
    name = group["precision"].split()[0]  # 'bf16 (all layers)': run with --precision bf16 before 2026-12
    then = " (with the code of its day: bf16 in every layer)" if name != group["precision"] else ""
    return (f"`python -m hebblib reproduce --preset {group['preset']}{flags}{seeds} --source full --data ROOT "
            f"--precision {name}`{then}")


def _wall_and_speed(group: dict) -> str:
    records = group["records"]
    if not records:
        return "—"
    # the sum of the phases: a run resumed from its phase-1 checkpoint counts that phase's recorded time too
    wall = sum(sum(t for phase, t in r["timings_s"].items() if phase != "total") for r in records) / len(records)
    speeds = [r["unsupervised"].get("images_per_s") for r in records]
    if all(speeds):
        speed = f"{sum(speeds) / len(speeds):.0f} img/s Hebbian"
    else:  # an end-to-end run (backprop, hybrid, contrastive): its training images/s (the epochs' own times)
        n_train = records[0]["data"]["n_train"]
        seconds = sum(e.get("train_seconds", e.get("seconds", 0.0)) for r in records for e in r["epochs"])
        images = sum(n_train * len(r["epochs"]) for r in records)
        mode = (records[0].get("supervised") or {}).get("mode", "end_to_end")
        speed = (f"{images / seconds:.0f} img/s {'backprop' if mode == 'end_to_end' else mode}" if seconds
                 else "no Hebbian phase")
    return f"{wall / 60:.0f} min ({speed})"


def _device(record: dict) -> str:
    """``cpu (2 threads)``, with the CPU's model and speed flags where the record has them (since they are
    recorded: older seeds say only the device)."""
    cpu = record.get("cpu")
    if not cpu or not record["device"].startswith("cpu"):
        return record["device"]
    return f"{record['device']} on {cpu['model']} ({' '.join(cpu['flags']) or 'no flags of note'})"


def _devices(group: dict) -> str:
    return "; ".join(dict.fromkeys(_device(r) for r in group["records"])) or "—"


def _protocol(group: dict) -> str:
    return f"v{group['protocol']}" + ("" if group["current"] else " (old)")


def table_row(group: dict) -> str:
    published = f"{group['published']:.1f}" if group.get("published") is not None else "—"
    if group.get("published") is not None and group.get("published_std") is not None:  # the source's mean ± std
        published = f"{group['published']:.2f} ± {group['published_std']:.2f}"
    gap = "" if group["gap"] is None else signed(group["gap"])
    beyond = {None: "n/a", True: "yes", False: "no"}[group["gap_beyond_2std"]]
    seeds = f"{group['n']} ({', '.join(map(str, group['seeds']))})"
    return (f"| `{group['preset']}`{_variant(group)} | {published} | {_fmt(group, 'final_test_acc')} | "
            f"{_fmt(group, 'test_acc_at_best_val')} | {_fmt(group, 'max_test_acc')} | {gap} | {beyond} | {seeds} | "
            f"{_protocol(group)} | {group['precision']} | {group['zca_fit']} | {_devices(group)} | "
            f"{_wall_and_speed(group)} | {command(group)} |")


TABLE_HEAD = ("| preset | published | final | at best val | max | gap | \\|gap\\| > 2 std | seeds | protocol | precision "
              "| ZCA fit | device | wall time | command |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")


def _per_layer(values: list, fmt: str) -> str:
    return " / ".join("—" if v is None else format(v, fmt) for v in values)


def diagnostics_row(group: dict) -> str | None:
    """One row of the competition table: per layer (in order, ``/``-separated) the mean over the group's
    seeds of the win-rate entropy, the units that never win, the units never active and the radius."""
    records = [r for r in group["records"] if r.get("competition")]
    if not records:
        return None
    layers = list(records[0]["competition"]["layers"])

    def mean(key, name):
        values = [r["competition"]["layers"][name][key] for r in records]
        return None if any(v is None for v in values) else sum(values) / len(values)

    units = [records[0]["competition"]["layers"][name]["units"] for name in layers]
    radius = " / ".join(f"{mean('radius_mean', n):.2f} ± {mean('radius_std', n):.2f}" for n in layers)
    return (f"| `{group['preset']}`{_variant(group)} | {_protocol(group)}, {group['precision']} | {len(records)} | "
            f"{' / '.join(layers)} | {_per_layer(units, 'd')} | {_per_layer([mean('win_entropy', n) for n in layers], '.3f')} | "
            f"{_per_layer([mean('dead_never_win', n) for n in layers], '.1f')} | "
            f"{_per_layer([mean('never_active', n) for n in layers], '.1f')} | {radius} |")


def _mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}"
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.2f} ± {std:.2f}"


def flip_row(group: dict) -> str | None:
    """For a group whose runs averaged the logits over each image and its mirror image
    (``supervised.flip_average``): the final and best-validation test accuracies with the averaging (the
    run's own numbers) beside the same head's one-view accuracies (``test_acc_plain``, its best epoch chosen
    by ``val_acc_plain``): the averaging's share, measured on the same trained head. None for other groups."""
    records = group["records"]
    if not records or any("test_acc_plain" not in (r.get("epochs") or [{}])[-1] for r in records):
        return None

    def at_best(record, val, test):  # the first epoch of the best validation accuracy, as the report
        return max(record["epochs"], key=lambda e: e[val])[test]

    cells = [[r["epochs"][-1]["test_acc"] for r in records], [r["epochs"][-1]["test_acc_plain"] for r in records],
             [at_best(r, "val_acc", "test_acc") for r in records],
             [at_best(r, "val_acc_plain", "test_acc_plain") for r in records]]
    gain = [a - b for a, b in zip(cells[0], cells[1])]
    return (f"| `{group['preset']}`{_variant(group)} | {_protocol(group)}, {group['precision']} | {group['n']} | "
            + " | ".join(_mean_std(c) for c in cells) + f" | {_mean_std(gain)} |")


def _section(rows: list, title: str, intro: str) -> str:
    """``## title``, ``intro`` (text ending in the table's header lines) and the rows that are not None; empty
    when every row is None."""
    rows = [row for row in rows if row]
    return f"\n\n## {title}\n\n{intro}" + "\n".join(rows) if rows else ""


def render() -> None:
    """Write docs/results.md: the current protocol's groups (or, for a variant not yet run under it, its
    latest earlier group, marked old), the superseded groups in a history section, the competition
    diagnostics, the chapters' experiments, then docs/results_notes.md."""
    main, history = [], []
    for path in sorted(STORE.glob("*.json")):
        groups = stored_groups(json.loads(path.read_text()))
        if not groups:
            continue
        shown = [g for g in groups if g["current"]] or [headline_group(groups)]
        main += shown
        history += [g for g in groups if all(g is not s for s in shown)]
    protocols = "; ".join(f"**v{v}**: {text}" for v, text in PROTOCOLS.items())
    header = (
        "# Results on the full CIFAR-10\n\n"
        "Measured by `python -m hebblib reproduce` on all 50,000 training images (45,000 train / 5,000 "
        "validation, stratified) and the 10,000 test images; one unsupervised epoch, then the preset's "
        "linear classifier. Test accuracies in %: after the final classifier epoch, at the epoch with the best "
        "validation accuracy, and the maximum over epochs (the measure of the published README figures, "
        "which were picked on the test set).\n\n"
        "With several seeds a cell is the **mean ± sample standard deviation** (n − 1 in the denominator) over "
        "the seeds; one seed shows its value alone. *Gap* = mean final − published. *|gap| > 2 std* says "
        "whether the gap exceeds twice that standard deviation (n/a for one seed: no spread is measured). "
        "Seeds are averaged only when they share the preset and its variant, the protocol version, the "
        "precision and the recipe (every setting of the run, hashed: `recipe_hash` in each record). "
        f"Protocols: {protocols}. The seed runs use seeds 0, 1 and 2 for every preset "
        "(`python scripts/seed_runs.py`). A variant not yet run under the current protocol shows its "
        "earlier row, marked *old*; superseded rows are listed under *History*. The JSON behind every row "
        "(every seed collected, of every protocol) is in `docs/results/`; `python scripts/results_table.py "
        "render` rewrites this page from it.\n\n" + TABLE_HEAD)
    body = "\n".join(table_row(g) for g in main)
    if history:
        body += ("\n\n## History: rows of earlier protocols, superseded by a current one\n\n" + TABLE_HEAD
                 + "\n".join(table_row(g) for g in history))
    body += _section(
        [diagnostics_row(g) for g in main], "Competition at the end of the Hebbian phase",
        "Recorded by every run since protocol v2 (`competition` in its JSON; "
        "`hebblib.diagnostics.competition_diagnostics`): the trained network in eval mode on the first "
        "1,000 training images, unaugmented; at every image and position the winner is the unit (output "
        "channel) with the largest response. Per Hebbian layer, in order and `/`-separated, means over "
        "the row's seeds: the normalised entropy of the win rates (1: every unit wins equally often), the "
        "units that win nowhere, the units whose output after the block's activation is never positive "
        "(— where no activation follows the layer), and the weight norm ‖W_o‖ (mean ± spread over units). "
        "`python scripts/diagnostics_figure.py` draws them.\n\n"
        "| preset | protocol | seeds | layers | units | win entropy | never win | never active | ‖W_o‖ |\n"
        "|---|---|---|---|---|---|---|---|---|\n")
    body += _section(
        [flip_row(g) for g in main], "Flip averaging: the same heads with and without it",
        "For the runs whose read-out classifies each validation and test image by the logits averaged over "
        "the image and its mirror image (`supervised.flip_average`, e.g. `softhebb_flip`), each epoch also "
        "records the same head's accuracy on the image alone (`test_acc_plain`, `val_acc_plain`). Test "
        "accuracies in %, mean ± sample std over the row's seeds: final epoch with and without averaging, "
        "then at the epoch of the best validation accuracy (each chosen by its own validation accuracy), "
        "and the gain of the averaging at the final epoch.\n\n"
        "| preset | protocol | seeds | final, averaged | final, one view | at best val, averaged | "
        "at best val, one view | gain (final) |\n|---|---|---|---|---|---|---|---|\n")
    chapters = []
    for path in sorted((STORE / "chapters").glob("*.json")):
        c = json.loads(path.read_text())
        for key, published in c.get("rows", {}).items():  # an experiment without a published figure: none
            chapters.append(f"| {c['title']}: `{key}` | {published:.2f} | {c[key]:.2f} | {c[key] - published:+.1f} | "
                            f"{c['setting']} | {c['device']} | {c['wall_s'] / 60:.0f} min | `{c['command']}` |")
    if chapters:
        body += (
            "\n\n## The chapters' own experiments on the full CIFAR-10\n\n"
            "Written by `python scripts/chapter_full.py CHAPTER` to `docs/results/chapters/`; the chapters print "
            "them beside their quick-mode numbers. Test accuracies in %, after the last read-out epoch (one "
            "seed each).\n\n"
            "| experiment | published | measured | gap | setting | device | wall time | command |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(chapters))
    notes_path = DOCS / "results_notes.md"
    notes = notes_path.read_text() if notes_path.is_file() else ""
    (DOCS / "results.md").write_text(header + body + "\n\n" + notes)
    print(f"wrote docs/results.md ({len(main)} rows, {len(history)} in the history)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "collect":
        collect(Path(sys.argv[2]))
    elif sys.argv[1:] == ["render"]:
        render()
    else:
        print(__doc__)
        sys.exit(2)
