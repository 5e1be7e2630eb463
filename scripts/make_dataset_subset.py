"""Rebuild the shipped subset of a dataset other than CIFAR-10 (package data), deterministically.

    python scripts/make_dataset_subset.py fashion_mnist [--root FOLDER] [--check]

Writes ``hebblib/data/<name>_subset.npz`` (the file ``hebblib.data.datasets.DATASETS[name].subset_file``) with
the rule of the CIFAR-10 subset (``scripts/make_subset.py``): the first 200 training images and the first 50
test images of each class, kept in file order, with their positions in the full split. ``--check`` compares
the existing file with a fresh selection instead of writing it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hebblib.data.datasets import DATASETS, load_full, subset_file_path  # noqa: E402
from hebblib.data.subset import SUBSET_PER_CLASS, first_per_class, write_or_check_subset  # noqa: E402


def build(name: str, root=None) -> dict[str, np.ndarray]:
    arrays = {"classes": np.array(DATASETS[name].classes)}
    for split, per_class in SUBSET_PER_CLASS.items():
        images, labels = load_full(name, train=split == "train", root=root, download=False)
        keep = first_per_class(labels.numpy(), per_class)
        arrays[f"{split}_images"] = images.numpy()[keep]  # uint8 N x C x H x W
        arrays[f"{split}_labels"] = labels.numpy()[keep].astype(np.int64)
        arrays[f"{split}_indices"] = keep.astype(np.int64)
    return arrays


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shipped = [n for n, info in DATASETS.items() if info.subset_file and info.layout != "cifar"]
    parser.add_argument("dataset", choices=shipped)
    parser.add_argument("--root", default=None, help="data root (default: HEBBLIB_DATA or data/; Debian's folder "
                                                     "is searched too)")
    parser.add_argument("--check", action="store_true", help="verify the existing file instead of writing it")
    args = parser.parse_args(argv)
    arrays = build(args.dataset, args.root)
    return write_or_check_subset(subset_file_path(args.dataset), arrays, args.check)


if __name__ == "__main__":
    raise SystemExit(main())
