"""Rebuild hebblib/data/cifar10_subset.npz (package data) from the full CIFAR-10, deterministically.

    python scripts/make_subset.py [--root FOLDER] [--check]

Rule (see hebblib/data/subset.py): the first 200 images of each class of the training batches and the
first 50 of each class of test_batch, kept in file order. ``--check`` compares the existing file with a
fresh selection instead of writing it (the zip bytes differ between runs only by timestamps; the arrays
are identical).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hebblib.data.cifar import CIFAR10_CLASSES, load_cifar10  # noqa: E402
from hebblib.data.subset import SUBSET_PER_CLASS, first_per_class, subset_path, write_or_check_subset  # noqa: E402


def build(root=None) -> dict[str, np.ndarray]:
    arrays = {"classes": np.array(CIFAR10_CLASSES)}
    for split, per_class in SUBSET_PER_CLASS.items():
        images, labels = load_cifar10(train=split == "train", root=root, download=False)
        keep = first_per_class(labels.numpy(), per_class)
        arrays[f"{split}_images"] = images.numpy()[keep]  # uint8 N x 3 x 32 x 32
        arrays[f"{split}_labels"] = labels.numpy()[keep].astype(np.int64)
        arrays[f"{split}_indices"] = keep.astype(np.int64)
    return arrays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--root", default=None, help="data root holding cifar-10-batches-py/ (default: HEBBLIB_DATA or data/)"
    )
    parser.add_argument("--check", action="store_true", help="verify the existing file instead of writing it")
    args = parser.parse_args()
    arrays = build(args.root)
    return write_or_check_subset(subset_path(), arrays, args.check)


if __name__ == "__main__":
    raise SystemExit(main())
