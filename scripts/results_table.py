"""Collect finished full-data runs into docs/results/ and render docs/results.md.

    python scripts/results_table.py collect RUNS_DIR   # copy each full-data summary (+ its seeds' results)
    python scripts/results_table.py render             # write docs/results.md from docs/results/*.json

Every number in the table comes from those JSON files, which the training pipeline wrote.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hebblib.presets import variant_name  # noqa: E402

DOCS = ROOT / "docs"
STORE = DOCS / "results"


def collect(runs: Path) -> None:
    STORE.mkdir(parents=True, exist_ok=True)
    for summary_path in sorted(runs.glob("*/*/summary.json")):
        summary = json.loads(summary_path.read_text())
        if summary["data"]["source"] != "full":
            continue
        seeds = []
        for seed_dir in sorted(summary_path.parent.glob("seed*")):
            result_path = seed_dir / "results.json"
            if result_path.is_file():
                r = json.loads(result_path.read_text())
                if r.get("complete") and not r.get("quick"):
                    seeds.append({k: r[k] for k in ("seed", "device", "torch_version", "timings_s", "unsupervised",
                                                     "final_test_acc", "test_acc_at_best_val", "max_test_acc",
                                                     "best_val_epoch", "epochs", "num_parameters")})
        if not seeds:
            continue
        summary["runs"] = seeds
        name = variant_name({"name": summary["preset"], "original": summary["original"],
                             "change": summary.get("change")})
        (STORE / f"{name}.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(f"collected {name}: {len(seeds)} seed(s)")


def _fmt(metric: dict) -> str:
    if len(metric["values"]) > 1:
        return f"{metric['mean']:.2f} ± {metric['std']:.2f}"
    return f"{metric['mean']:.2f}"


def _variant(summary: dict) -> str:
    """`` (original)``, `` (changed: {...})`` or nothing, after the preset's name."""
    parts = (["original"] if summary["original"] else []) + (
        [f"changed: `{json.dumps(summary['change'])}`"] if summary.get("change") else [])
    return f" ({'; '.join(parts)})" if parts else ""


def _speed(run: dict, n_train: int) -> str:
    """The Hebbian epoch's images/s; for an end-to-end run, its training images/s (the epochs' own times)."""
    if run["unsupervised"].get("images_per_s"):
        return f"{run['unsupervised']['images_per_s']:.0f} img/s Hebbian"
    seconds = sum(epoch.get("seconds", 0.0) for epoch in run["epochs"])
    return f"{n_train * len(run['epochs']) / seconds:.0f} img/s backprop" if seconds else "no Hebbian phase"


def render() -> None:
    rows = []
    for path in sorted(STORE.glob("*.json")):
        s = json.loads(path.read_text())
        runs = s["runs"]
        flags = (" --original" if s["original"] else "") + (
            f" --change '{json.dumps(s['change'])}'" if s.get("change") else "")
        seeds = f" --seeds {len(s['seeds'])}" if len(s["seeds"]) > 1 else ""
        command = f"`python -m hebblib reproduce --preset {s['preset']}{flags}{seeds} --data ROOT`"
        # the sum of the phases: a run resumed from its phase-1 checkpoint counts that phase's recorded time too
        wall = sum(sum(t for phase, t in r["timings_s"].items() if phase != "total") for r in runs) / len(runs)
        speed = _speed(runs[0], s["data"]["n_train"])
        published = f"{s['published']:.1f}" if s.get("published") is not None else "—"
        gap = s["final_test_acc"]["mean"] - s["published"] if s.get("published") is not None else None
        rows.append(
            f"| `{s['preset']}`{_variant(s)} | {published} | "
            f"{_fmt(s['final_test_acc'])} | {_fmt(s['test_acc_at_best_val'])} | {_fmt(s['max_test_acc'])} | "
            f"{'' if gap is None else f'{gap:+.1f}'} | {len(s['seeds'])} | {runs[0]['device']} | "
            f"{wall / 60:.0f} min ({speed}) | {command} |"
        )
    header = (
        "# Results on the full CIFAR-10\n\n"
        "Measured by `python -m hebblib reproduce` on all 50,000 training images (45,000 train / 5,000 "
        "validation, stratified) and the 10,000 test images; one unsupervised epoch, then the preset's "
        "linear classifier. Test accuracies in %: after the final classifier epoch, at the epoch with the best "
        "validation accuracy, and the maximum over epochs (the measure of the published README figures, "
        "which were picked on the test set). *Gap* = final − published. The JSON behind every row is in "
        "`docs/results/`; `python scripts/results_table.py render` rewrites this table from it.\n\n"
        "| preset | published | final | at best val | max | gap | seeds | device | wall time | command |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    chapters = []
    for path in sorted((STORE / "chapters").glob("*.json")):
        c = json.loads(path.read_text())
        for key, published in c["rows"].items():
            chapters.append(f"| {c['title']}: `{key}` | {published:.2f} | {c[key]:.2f} | {c[key] - published:+.1f} | "
                            f"{c['setting']} | {c['device']} | {c['wall_s'] / 60:.0f} min | `{c['command']}` |")
    if chapters:
        header_chapters = (
            "\n\n## The chapters' own experiments on the full CIFAR-10\n\n"
            "Written by `python scripts/chapter_full.py CHAPTER` to `docs/results/chapters/`; the chapters print "
            "them beside their quick-mode numbers. Test accuracies in %, after the last read-out epoch.\n\n"
            "| experiment | published | measured | gap | setting | device | wall time | command |\n"
            "|---|---|---|---|---|---|---|---|\n")
        rows.append(header_chapters + "\n".join(chapters))
    notes_path = DOCS / "results_notes.md"
    notes = notes_path.read_text() if notes_path.is_file() else ""
    (DOCS / "results.md").write_text(header + "\n".join(rows) + "\n\n" + notes)
    print(f"wrote docs/results.md ({len(rows)} rows)")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "collect" and len(sys.argv) == 3:
        collect(Path(sys.argv[2]))
    elif sys.argv[1:] == ["render"]:
        render()
    else:
        print(__doc__)
        sys.exit(2)
