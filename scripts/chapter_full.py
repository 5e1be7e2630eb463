"""Run a chapter's own full-data experiment and commit its figures to docs/results/chapters/.

    python scripts/chapter_full.py ch04 [--hebbian-epochs N] [--probe-epochs N]
    python scripts/chapter_full.py ch06 [--hebbian-epochs N] [--probe-epochs N] [--readout flip|crop_flip|none] [--init unit_norm|randn]

The chapters print the committed figure beside their own quick-mode number (hebblib.notebook.print_full_result).
Needs the full CIFAR-10 under $HEBBLIB_DATA (or data/).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time

import torch

from hebblib.results import save_chapter_result
from hebblib.runtime import describe_device
from hebblib.training import resolve_source

EXPERIMENTS = ("ch04", "ch06")


def run_ch04(args) -> tuple[str, dict]:
    from hebblib.chapters import ch04_conv_hebbian_layer as ch4

    result = ch4.run_experiment(args.hebbian_epochs, args.probe_epochs, source="full", progress=True)
    setting = (f"{result['epochs']} Hebbian epoch(s) over {result['n_train']:,} images, Adam probe "
               f"{len(result['trained_run']['history'])} epochs")
    return ch4.FULL_RESULT, {
        "title": "Chapter 4: Miconi's layer 1 (quadrant probe), random weights vs Hebbian-trained",
        "rows": {"random": ch4.PUBLISHED["random"], "trained": ch4.PUBLISHED["trained"]},
        "source": ch4.PUBLISHED_SOURCE,
        "setting": setting, "random": result["random"], "trained": result["trained"],
        "random_at_best_val": result["random_run"]["test_acc_at_best_val"],
        "trained_at_best_val": result["trained_run"]["test_acc_at_best_val"],
        "n_train": result["n_train"], "n_test": result["n_test"], "hebbian_epochs": result["epochs"],
        "history": {"random": result["random_run"]["history"], "trained": result["trained_run"]["history"]}}


def run_ch06(args) -> tuple[str, dict]:
    from hebblib.chapters import ch06_krotov_hopfield as ch6

    result = ch6.run_one_layer(args.hebbian_epochs, args.probe_epochs, source="full", progress=True,
                               readout=args.readout, init=args.init)
    setting = (f"{result['epochs_run']} Hebbian epoch(s) over {result['n_train']:,} images ({result['init']} init), "
               f"SGD read-out ({result['readout']}) {len(result['history'])} epochs")
    return ch6.FULL_RESULT, {
        "title": "Chapter 6: one Krotov–Hopfield conv layer + linear read-out",
        "rows": {"final_test_acc": ch6.MANZALI_TABLE[1]}, "source": ch6.MANZALI_SOURCE,
        "setting": setting, "final_test_acc": result["final_test_acc"],
        "test_acc_at_best_val": result["test_acc_at_best_val"], "best_val_acc": result["best_val_acc"],
        "sphere_distance": result["hebbian_history"][-1]["distance"], "readout": result["readout"],
        "n_train": result["n_train"], "n_test": result["n_test"], "hebbian_epochs": result["epochs_run"],
        "init": result["init"],
        "history": result["history"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapter", choices=EXPERIMENTS)
    parser.add_argument("--hebbian-epochs", type=int, default=None)
    parser.add_argument("--probe-epochs", type=int, default=None)
    parser.add_argument("--readout", choices=("flip", "crop_flip", "none"), default=None, help="ch06 only")
    parser.add_argument("--init", choices=("unit_norm", "randn"), default=None, help="ch06 only (default randn)")
    args = parser.parse_args(argv)
    source, notice = resolve_source("auto", quick=False)
    if source != "full":
        print(f"the full CIFAR-10 is needed: {notice}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    name, record = {"ch04": run_ch04, "ch06": run_ch06}[args.chapter](args)
    record.update({"command": "python scripts/chapter_full.py " + " ".join(map(shlex.quote, sys.argv[1:] if argv is None else argv)),
                   "device": describe_device(), "torch": torch.__version__,
                   "wall_s": time.perf_counter() - start})
    path = save_chapter_result(name, record)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
