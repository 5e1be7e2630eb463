"""Where does bf16 lose accuracy: in the Hebbian phase or in the features? Takes the Hebbian phase of a
finished run (its trained weights, read back, nothing retrained) and runs the rest of that run's pipeline
(features of every split, then the same classifier with the same seeds) in another precision.

    python scripts/feature_precision.py runs/seeds/soft/full-n50000-c2355862/seed0 --precision bf16 --threads 2

Prints the run's own final test accuracy beside the one with the features in ``--precision``; with the
run's own precision the two must agree (the pipeline is deterministic on the CPU), which the script checks
when asked (``--precision`` equal to the run's). ``--out FILE`` writes the row as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def measure(run_dir: Path, precision: str, root=None, keep_fp32=()) -> dict:
    """The run in ``run_dir`` with its Hebbian weights, its features and classifier in ``precision``
    (``keep_fp32``: names of layers whose products stay fp32)."""
    import tempfile

    from hebblib import training
    from hebblib.results import load_checkpoint, precision_label, summarize_history

    record = training.finished_linear_record(run_dir)
    checkpoint = load_checkpoint(run_dir / "unsupervised.pt", record["config_hash"])
    if checkpoint is None:
        raise FileNotFoundError(f"{run_dir}: no unsupervised.pt written for this run")
    with tempfile.TemporaryDirectory() as scratch:
        run = training.plan_like(record, root=root, out=scratch, precision=precision, resume=False)
        started = time.perf_counter()
        training.prepare_data(run, notice=None)
        training.run_folder(run)
        model = training.initial_model(run)
        model.load_state_dict(checkpoint["model"])
        model.to(run.device)
        unknown = sorted(set(keep_fp32) - set(model.hebbian_layers()))
        if unknown:
            raise ValueError(f"--fp32-layers {', '.join(unknown)}: no such Hebbian layer; valid names: "
                             f"{', '.join(model.hebbian_layers())}")
        for name in keep_fp32:  # compute_precision leaves these layers' products in fp32
            model.hebbian_layers()[name].fp32_only = True
        run.unsupervised = checkpoint["stats"]
        history = training.train_classifier(run, model)
    summary = summarize_history(history)
    row = {"run": str(run_dir), "preset": record["preset"], "seed": record["seed"],
           "hebbian_precision": precision_label(record),
           "feature_precision": run.precision.name, "fp32_layers": sorted(keep_fp32),
           "final_test_acc_run": record["final_test_acc"],
           "final_test_acc": summary["final_test_acc"], "test_acc_at_best_val": summary["test_acc_at_best_val"],
           "features_s": run.timings["features"], "seconds": time.perf_counter() - started}
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the seed folder of a finished run (…/seedK)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), required=True, help="of the features")
    parser.add_argument("--data", metavar="ROOT", default=None, help="CIFAR-10 root (default $HEBBLIB_DATA)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--fp32-layers", nargs="*", default=[], metavar="LAYER",
                        help="Hebbian layers (e.g. conv1) whose products stay fp32 in a bf16 run")
    parser.add_argument("--out", type=Path, default=None, help="write the row as JSON here")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    row = measure(args.run, args.precision, args.data or os.environ.get("HEBBLIB_DATA"), args.fp32_layers)
    kept = f" (fp32 in {', '.join(row['fp32_layers'])})" if row["fp32_layers"] else ""
    print(f"{row['preset']} seed {row['seed']}: Hebbian phase {row['hebbian_precision']}, features and classifier "
          f"{row['feature_precision']}{kept}: final test {row['final_test_acc']:.2f} % (the run itself: "
          f"{row['final_test_acc_run']:.2f} %), at best val {row['test_acc_at_best_val']:.2f} %; features "
          f"{row['features_s']:.0f} s, {row['seconds']:.0f} s in all", flush=True)
    if args.out:
        args.out.write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
