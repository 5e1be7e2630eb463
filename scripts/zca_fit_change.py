"""What protocol v2 changed in the data: the ZCA fitted on the 45,000 images that train (``data.zca_fit =
'train'``, the default) against the fit of protocol v1, which also saw the 5,000 validation images
(``'train_and_val'``). Nothing is trained: both whitenings are fitted on the full CIFAR-10 training set
with the presets' split (seed 0) and applied to the same images.

    python scripts/zca_fit_change.py --data ROOT [--json FILE]

Prints the relative difference of the two whitening matrices and means, and of the whitened validation
and test images (root-mean-square of the difference over that of the v2 images), per split. The accuracy
effect is a training run apart: ``python -m hebblib reproduce --preset hard_basic --source full --precision
fp32 --change '{"data": {"zca_fit": "train_and_val"}}'`` beside the same preset without the change.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def _rel(a, b) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def measure(root=None, eps: float = 1e-3) -> dict:
    import torch

    from hebblib.training import load_splits

    splits = {}
    for fit in ("train", "train_and_val"):
        splits[fit] = load_splits({"normalization": "zca", "zca_eps": eps, "zca_fit": fit}, root=root, source="full")
    (train, val, test), (_, old_val, old_test) = splits["train"], splits["train_and_val"]
    new, old = train.zca, old_val.zca
    row = {"eps": eps, "n_fit_v2": len(train), "n_fit_v1": len(train) + len(val),
           "matrix_rel_diff": _rel(old.matrix, new.matrix), "mean_rel_diff": _rel(old.mean, new.mean)}
    with torch.no_grad():
        for name, a, b in (("val", val, old_val), ("test", test, old_test)):
            idx = torch.arange(min(len(a), 5000))
            x_new, x_old = a.get(idx)[0], b.get(idx)[0]
            row[f"{name}_whitened_rel_rms_diff"] = _rel(x_old, x_new)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", metavar="ROOT", default=None, help="CIFAR-10 root (default $HEBBLIB_DATA)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    row = measure(args.data or os.environ.get("HEBBLIB_DATA"))
    print(f"ZCA fitted on {row['n_fit_v2']:,} training images (v2) vs {row['n_fit_v1']:,} (v1, validation included), "
          f"eps {row['eps']:g}:")
    print(f"  whitening matrix: relative difference {row['matrix_rel_diff']:.2e}; mean: {row['mean_rel_diff']:.2e}")
    for name in ("val", "test"):
        print(f"  whitened {name} images (5,000): RMS of the difference / RMS of the v2 images = "
              f"{row[name + '_whitened_rel_rms_diff']:.2e}")
    if args.json:
        args.json.write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
