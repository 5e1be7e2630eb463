"""Test-time flip averaging, measured on finished full-data runs: the run's own trained network and linear
classifier, evaluated on the validation and test images as they are and with the classifier's logits
averaged over each image and its mirror image. Nothing is retrained; the test set selects nothing.

    python scripts/flip_average.py runs/seeds/soft/full-n50000-c2355862/seed0 [RUN_DIR ...] --threads 2

For each run it prints the accuracies both ways and checks that the plain test accuracy equals the run's own
``final_test_acc`` (the same weights, features and arithmetic, so the two must agree); ``--out FILE`` writes
the rows as JSON. A candidate change toward issue 21's preset above SoftHebb's 80.3 %: it needs the features
of the mirrored validation and test images (15,000 more images), nothing else.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def measure(run_dir: Path, root=None) -> dict:
    """The run in ``run_dir`` (its ``results.json``, ``unsupervised.pt``, ``supervised.pt``) evaluated with
    and without flip averaging."""
    import torch

    from hebblib.classifier import extract_features
    from hebblib.results import load_checkpoint, run_precision
    from hebblib.training import finished_linear_record, hebbian_network, plan_like, prepare_data

    result = finished_linear_record(run_dir)
    head = load_checkpoint(run_dir / "supervised.pt", result["config_hash"])
    if head is None:
        raise FileNotFoundError(f"{run_dir}: no supervised.pt written for this run")
    model = hebbian_network(result)
    model.classifier.load_state_dict(head["state"])
    model.eval()
    _, val, test = prepare_data(plan_like(result, root=root), notice=None)  # the run's own splits
    precision = run_precision(result)
    row = {"run": str(run_dir), "preset": result["preset"], "seed": result["seed"], "precision": precision,
           "final_test_acc": result["final_test_acc"]}
    started = time.perf_counter()
    with torch.no_grad():
        for name, split in (("val", val), ("test", test)):
            plain = extract_features(model, split, progress=False, precision=precision, desc=f"{name} features")
            mirror = extract_features(model, split, flip=True, progress=False, precision=precision,
                                      desc=f"mirrored {name} features")
            logits = model.classifier(plain.float())
            both = (logits + model.classifier(mirror.float())) / 2
            row[f"{name}_acc"] = 100.0 * (logits.argmax(1) == split.labels).float().mean().item()
            row[f"{name}_acc_flip_average"] = 100.0 * (both.argmax(1) == split.labels).float().mean().item()
    row["seconds"] = time.perf_counter() - started
    row["plain_matches_run"] = round(row["test_acc"], 2) == round(result["final_test_acc"], 2)  # stored to 0.01
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="seed folders of finished runs (…/seedK)")
    parser.add_argument("--data", metavar="ROOT", default=None, help="CIFAR-10 root (default $HEBBLIB_DATA)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    root = args.data or os.environ.get("HEBBLIB_DATA")
    rows = []
    for run_dir in args.runs:
        row = measure(run_dir, root)
        rows.append(row)
        print(f"{row['preset']} seed {row['seed']} ({row['precision']}): val {row['val_acc']:.2f} → "
              f"{row['val_acc_flip_average']:.2f} %, test {row['test_acc']:.2f} → {row['test_acc_flip_average']:.2f} % "
              f"(plain test = the run's final {row['final_test_acc']:.2f} %: {row['plain_matches_run']}; "
              f"{row['seconds']:.0f} s)", flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
