"""The small real CIFAR-10 subset shipped inside the package (``hebblib/data/cifar10_subset.npz``, so a pip
install carries it too), and ``load_cifar`` to pick a source.

Selection rule (applied by ``scripts/make_subset.py``, which regenerates the file from the full data):

* train: the first 200 images of each class, in file order of data_batch_1 .. data_batch_5
  (index i = position in the 50,000 training images) -> 2,000 images;
* test: the first 50 images of each class, in file order of test_batch -> 500 images.

Within each split the kept images stay in file order (the classes are interleaved as in the originals).
The file stores, per split, ``<split>_images`` (uint8 N x 3 x 32 x 32, CHW), ``<split>_labels`` (int64 N)
and ``<split>_indices`` (int64 N, the positions in the full split), plus ``classes``.
"""
from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import check_choice
from ..runtime import is_quick
from .cifar import DATA_ENV, data_root, load_cifar10

SUBSET_FILE = "cifar10_subset.npz"
SUBSET_PER_CLASS = {"train": 200, "test": 50}
SOURCES = ("auto", "full", "subset")


def subset_path() -> Path:
    """Where the shipped subset lives: beside this module, ``hebblib/data/cifar10_subset.npz`` (package data,
    so it is there in a clone, an editable install and a plain ``pip install`` alike)."""
    return Path(__file__).resolve().with_name(SUBSET_FILE)


def first_per_class(labels, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` samples of every class, returned in file order.

    Raises ``ValueError`` when a class has fewer than ``per_class`` samples.
    """
    labels = np.asarray(labels)
    keep = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has only {len(members)} samples, fewer than per_class={per_class}")
        keep.append(members[:per_class])
    return np.sort(np.concatenate(keep))


def write_or_check_subset(path: Path, arrays: dict[str, np.ndarray], check: bool = False) -> int:
    """Write a subset's ``arrays`` to ``path`` (compressed ``.npz``), or with ``check`` compare them with the
    file already there. Prints one line; returns 0 (written, or the file matches) or 1 (the file differs).
    Two writes of the same arrays differ only by the zip's timestamps, so the check compares the arrays."""
    path = Path(path)
    if check:
        with np.load(path, allow_pickle=False) as old:
            same = set(old.files) == set(arrays) and all(np.array_equal(old[k], v) for k, v in arrays.items())
        print(f"{path.name}: {'matches' if same else 'DIFFERS FROM'} the selection rule")
        return 0 if same else 1
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    sizes = ", ".join(f"{s}: {len(arrays[f'{s}_labels'])}" for s in SUBSET_PER_CLASS)
    print(f"wrote {path.name} ({sizes} images, {path.stat().st_size / 1e6:.2f} MB)")
    return 0


@functools.lru_cache(maxsize=2)
def _read_subset(path: str, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with np.load(path, allow_pickle=False) as f:
        return (
            torch.from_numpy(f[f"{split}_images"]),
            torch.from_numpy(f[f"{split}_labels"]).long(),
            torch.from_numpy(f[f"{split}_indices"]).long(),
        )


def load_subset(train: bool = True, with_indices: bool = False):
    """The shipped subset: ``(images, labels)`` in the format of ``load_cifar10`` (uint8 NCHW, int64).

    With ``with_indices=True`` a third tensor gives each image's position in the full split.
    """
    path = subset_path()
    if path.is_file():
        images, labels, indices = _read_subset(str(path), "train" if train else "test")
    else:  # a package built without its data: apply the same rule to the full data
        try:
            full_images, full_labels = load_cifar10(train)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"the CIFAR-10 subset that ships with hebblib is missing (expected {path}), and the full "
                f"CIFAR-10 to rebuild it from is not under {data_root().resolve()} either. Reinstall hebblib "
                f"with its package data (pip install --force-reinstall of the project's repository, or "
                f"pip install -e . in a clone), or put cifar-10-batches-py/ under that folder (or set "
                f"{DATA_ENV}=<folder>)."
            ) from None
        indices = torch.from_numpy(first_per_class(full_labels.numpy(), SUBSET_PER_CLASS["train" if train else "test"]))
        images, labels = full_images[indices], full_labels[indices]
    out = (images.clone(), labels.clone(), indices.clone())
    return out if with_indices else out[:2]


def load_cifar(
    train: bool = True,
    root: str | os.PathLike | None = None,
    source: str = "auto",
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 from the chosen source, as uint8 N x 3 x 32 x 32 images and int64 labels.

    ``source``: "full" = the whole split (``load_cifar10``); "subset" = the shipped subset;
    "auto" = the subset in quick mode (``HEBBLIB_QUICK=1``), else the full data, falling back to the
    subset with a warning when the full data is not found (after one download attempt if ``download``).
    """
    check_choice("source", source, SOURCES)
    if source == "subset" or (source == "auto" and is_quick()):
        return load_subset(train)
    if source == "full":
        return load_cifar10(train, root, download)
    try:
        return load_cifar10(train, root, download)
    except FileNotFoundError:
        warnings.warn(
            f"full CIFAR-10 not found at {data_root(root).resolve()}; using the shipped subset "
            f"({SUBSET_PER_CLASS['train' if train else 'test']} images per class). Set {DATA_ENV} "
            f"or pass root= to use the full data.",
            stacklevel=2,
        )
        return load_subset(train)

