"""The image datasets a preset can run on: CIFAR-10 (the default), Fashion-MNIST, MNIST and STL-10.

    images, labels = load_dataset("fashion_mnist", train=True)    # uint8 N x 1 x 28 x 28, int64 N
    info = dataset_info("fashion_mnist")                          # shape, classes, mean/std, sizes, files
    python -m hebblib reproduce --preset soft --dataset fashion_mnist

Every dataset comes as uint8 N x C x H x W images and int64 labels, the format of :func:`load_cifar10`, so
the rest of the pipeline (normalisation, ZCA, batching, the networks, which take their input shape from
:attr:`DatasetInfo.shape`) does not care which one it is. Where the files are looked for, in order:

* ``<root>/<folder>/`` in torchvision's layout (``root``: the ``root=`` argument or ``--data``, else
  ``$HEBBLIB_DATA``, else ``data/``): ``FashionMNIST/raw/`` and ``MNIST/raw/`` with the four idx files (the
  ``.gz`` or the unpacked ones), ``stl10_binary/`` with ``train_X.bin`` ...;
* for Fashion-MNIST also ``/usr/share/datasets/fashion-mnist/``, where Debian's package puts them
  (``apt-get install dataset-fashion-mnist``), so on a Debian machine nothing has to be pointed anywhere.

When they are in neither place and ``download`` is true, torchvision downloads them into ``<root>/<folder>``
(one try, 30 s timeout); when that fails a :class:`DatasetNotFoundError` names every folder searched and how
to get the files. A small real subset of Fashion-MNIST ships with the package
(``hebblib/data/fashion_mnist_subset.npz``: the first 200 training and 50 test images of each class, the
rule of the CIFAR-10 subset), for quick mode and offline runs.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import check_choice
from ..runtime import is_quick
from .cifar import (CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, DATA_ENV, cifar10_available, data_root, download_once,
                    load_cifar10)
from .subset import SUBSET_PER_CLASS, SOURCES, first_per_class, load_cifar

DEFAULT_DATASET = "cifar10"
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist package
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")
STL10_FILES = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the pipeline needs to know of a dataset: ``shape`` (C, H, W) of one image, the ``classes``,
    per-channel ``mean`` and ``std`` on the [0, 1] scale (``normalization='standardize'``), the split
    ``sizes`` (train, test), the ``folder`` under the data root (torchvision's layout) and its ``files``,
    other ``system_folders`` searched, ``subset_file`` (package data, or None) and ``how_to_get``."""

    name: str
    title: str
    shape: tuple[int, int, int]
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    sizes: tuple[int, int]
    folder: str
    files: tuple[str, ...]
    how_to_get: str
    system_folders: tuple[str, ...] = ()
    subset_file: str | None = None
    layout: str = "cifar"  # 'cifar', 'idx' (MNIST's files) or 'stl10' (binary arrays)


FASHION_MNIST_CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                         "ankle boot")
# Mean and std (population, over all pixels) of the training images on the [0, 1] scale, float64 from the
# files; tests/test_datasets.py recomputes them where the full data is present.
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.286041,), (0.353024,)
MNIST_MEAN, MNIST_STD = (0.130660,), (0.308108,)
# STL-10: Nimmo's data.py (spec nimmo-thesis §3), not recomputed here (the files are not on this machine).
STL10_MEAN, STL10_STD = (0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713)

DATASETS = {
    "cifar10": DatasetInfo(
        "cifar10", "CIFAR-10", (3, 32, 32), CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, (50_000, 10_000),
        "cifar-10-batches-py", ("data_batch_1 .. data_batch_5", "test_batch", "batches.meta"),
        "download the 'CIFAR-10 python version' from https://www.cs.toronto.edu/~kriz/cifar.html",
        subset_file="cifar10_subset.npz"),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", "Fashion-MNIST", (1, 28, 28), FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD,
        (60_000, 10_000), "FashionMNIST/raw", MNIST_FILES,
        "on Debian/Ubuntu `apt-get install dataset-fashion-mnist` (hebblib finds it there); elsewhere "
        "torchvision downloads it (github.com/zalandoresearch/fashion-mnist) when the network allows",
        system_folders=(DEBIAN_FASHION_MNIST,), subset_file="fashion_mnist_subset.npz", layout="idx"),
    "mnist": DatasetInfo(
        "mnist", "MNIST", (1, 28, 28), tuple(str(d) for d in range(10)), MNIST_MEAN, MNIST_STD, (60_000, 10_000),
        "MNIST/raw", MNIST_FILES,
        "torchvision downloads it when the network allows (torchvision.datasets.MNIST(root, download=True))",
        layout="idx"),
    "stl10": DatasetInfo(
        "stl10", "STL-10", (3, 96, 96), ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship",
                                         "truck"), STL10_MEAN, STL10_STD, (5_000, 8_000),
        "stl10_binary", STL10_FILES,
        "torchvision downloads it (2.6 GB) when the network allows (torchvision.datasets.STL10(root, download=True))",
        layout="stl10"),
}
DATASET_NAMES = tuple(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` (one of :data:`DATASET_NAMES`); else a ``ValueError`` listing them."""
    check_choice("dataset", name, DATASETS)
    return DATASETS[name]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not in any folder searched and could not be downloaded. ``str(err)`` tells a
    Python user how to point hebblib at the data (``root=``); ``err.message("cli")`` says it for the command
    line (``--data``), like :class:`~hebblib.data.CIFAR10NotFoundError`."""

    def __init__(self, name: str, searched: list[Path], problem: str):
        self.name, self.searched, self.problem = name, [Path(p) for p in searched], problem
        super().__init__(self.message("python"))

    def message(self, via: str = "python") -> str:
        info = DATASETS[self.name]
        point = "--data <folder> on the command line" if via == "cli" else "the argument root=<folder>"
        subset = ("--source subset (or --quick)" if via == "cli" else f"load_dataset({self.name!r}, source='subset')")
        folders = "\n".join(f"    {p}/" for p in self.searched)
        files = ", ".join(f + "[.gz]" if info.layout == "idx" else f for f in info.files)
        lines = [f"{info.title} not found: {self.problem}.", f"  searched folders:\n{folders}",
                 f"  expected files:   {files}",
                 f"How to get it: {info.how_to_get}; or put the files under <root>/{info.folder}/ and point hebblib "
                 f"at <root> with {point} or the environment variable {DATA_ENV}=<root>."]
        if info.subset_file:
            lines.append(f"For quick offline runs, {subset} uses the small subset shipped with hebblib.")
        return "\n".join(lines)


def search_folders(name: str, root=None) -> list[Path]:
    """The folders searched for dataset ``name``, in order: ``<root>/<folder>``, then the system ones."""
    info = dataset_info(name)
    return [data_root(root).resolve() / info.folder] + [Path(p) for p in info.system_folders]


def _idx_path(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_files(name: str, root=None) -> Path | None:
    """The first folder of :func:`search_folders` that holds every file of ``name``, or None."""
    info = dataset_info(name)
    if info.layout == "cifar":
        folder = data_root(root).resolve()
        return folder / info.folder if cifar10_available(folder) else None
    for folder in search_folders(name, root):
        if info.layout == "idx" and all(_idx_path(folder, f) for f in info.files):
            return folder
        if info.layout == "stl10" and all((folder / f).is_file() for f in info.files):
            return folder
    return None


def dataset_available(name: str, root=None) -> bool:
    """True when the full dataset ``name`` is in one of the folders searched (no download is tried)."""
    return find_files(name, root) is not None


def read_idx(path) -> np.ndarray:
    """An idx file (LeCun's MNIST format, unpacked or ``.gz``) as a uint8 array of its dimensions."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes (its header is {data[:4]!r})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if len(data) != 4 + 4 * ndim + int(np.prod(dims)):
        raise ValueError(f"{path}: the header promises {dims} values, the file holds {len(data) - 4 - 4 * ndim}")
    return np.frombuffer(bytearray(data), dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)  # writable


@functools.lru_cache(maxsize=4)
def _read_split(name: str, folder: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    info, folder = DATASETS[name], Path(folder)
    if info.layout == "idx":
        prefix = "train" if train else "t10k"
        images = read_idx(_idx_path(folder, f"{prefix}-images-idx3-ubyte"))[:, None]  # N x 1 x 28 x 28
        labels = read_idx(_idx_path(folder, f"{prefix}-labels-idx1-ubyte"))
    else:  # STL-10's binary arrays: N x 3 x 96 x 96 stored column-major per image (torchvision transposes too)
        split = "train" if train else "test"
        images = np.fromfile(folder / f"{split}_X.bin", dtype=np.uint8).reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
        labels = np.fromfile(folder / f"{split}_y.bin", dtype=np.uint8).astype(np.int64) - 1  # 1..10 -> 0..9
    expected = info.sizes[0 if train else 1]
    if images.shape[0] != expected or labels.shape[0] != expected or tuple(images.shape[1:]) != info.shape:
        raise ValueError(f"{info.title} in {folder}: expected {expected} images of shape {info.shape} with as many "
                         f"labels, found images {tuple(images.shape)} and {labels.shape[0]} labels")
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64))


def _try_download(name: str, root: Path, timeout_s: float = 30.0) -> None:
    """Ask torchvision to download dataset ``name`` into ``root``; any failure is swallowed (reported by the
    caller, which finds the files still missing)."""
    import torchvision

    fetch = {"fashion_mnist": lambda folder: torchvision.datasets.FashionMNIST(folder, train=True, download=True),
             "mnist": lambda folder: torchvision.datasets.MNIST(folder, train=True, download=True),
             "stl10": lambda folder: torchvision.datasets.STL10(folder, split="train", download=True)}.get(name)
    if fetch is not None:
        download_once(name, root, fetch, timeout_s)


def load_full(name: str, train: bool = True, root=None, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole split of dataset ``name``: uint8 N x C x H x W images and int64 labels, from the first folder
    that holds its files (:func:`search_folders`), after one download attempt into ``<root>/<folder>`` when
    none does and ``download``; else :class:`DatasetNotFoundError` (for CIFAR-10:
    :class:`~hebblib.data.CIFAR10NotFoundError`). Cached in the process; the caller gets its own copy."""
    info = dataset_info(name)
    if info.layout == "cifar":
        return load_cifar10(train, root, download)
    folder = find_files(name, root)
    if folder is None and download:
        _try_download(name, data_root(root).resolve())
        folder = find_files(name, root)
    if folder is None:
        raise DatasetNotFoundError(name, search_folders(name, root), "its files are in none of the folders searched")
    try:
        images, labels = _read_split(name, str(folder), bool(train))
    except (OSError, ValueError, EOFError) as err:
        raise DatasetNotFoundError(name, [folder], f"the files in {folder} cannot be read ({err})") from None
    return images.clone(), labels.clone()


def subset_file_path(name: str) -> Path | None:
    """Where the shipped subset of ``name`` lives (beside this module), or None when none is shipped."""
    info = dataset_info(name)
    return Path(__file__).resolve().with_name(info.subset_file) if info.subset_file else None


@functools.lru_cache(maxsize=4)
def _read_subset_file(path: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(path, allow_pickle=False) as f:
        return torch.from_numpy(f[f"{split}_images"]), torch.from_numpy(f[f"{split}_labels"]).long()


def load_dataset_subset(name: str, train: bool = True, root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The small subset of ``name``: the shipped file when there is one, else the first 200 training / 50 test
    images of every class taken from the full data (the rule of ``scripts/make_subset.py``)."""
    path = subset_file_path(name)
    split = "train" if train else "test"
    if path is not None and path.is_file():
        images, labels = _read_subset_file(str(path), split)
        return images.clone(), labels.clone()
    try:
        images, labels = load_full(name, train, root, download=False)
    except FileNotFoundError as err:
        raise DatasetNotFoundError(name, search_folders(name, root), "no subset of it ships with hebblib, and the "
                                   "full data to take one from is missing") from err
    keep = torch.from_numpy(first_per_class(labels.numpy(), SUBSET_PER_CLASS[split]))
    return images[keep], labels[keep]


def load_dataset(name: str = DEFAULT_DATASET, train: bool = True, root=None, source: str = "auto",
                 download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Dataset ``name`` from the chosen ``source``, as uint8 N x C x H x W images and int64 labels.

    ``source``: "full" = the whole split (:func:`load_full`); "subset" = the small subset
    (:func:`load_dataset_subset`); "auto" = the subset in quick mode (``HEBBLIB_QUICK=1``), else the full data,
    falling back to the subset with a warning when the full data is not found. CIFAR-10 goes through
    :func:`~hebblib.data.load_cifar`, exactly as before datasets were a choice."""
    info = dataset_info(name)
    check_choice("source", source, SOURCES)
    if info.layout == "cifar":
        return load_cifar(train, root, source, download)
    if source == "subset" or (source == "auto" and is_quick()):
        return load_dataset_subset(name, train, root)
    if source == "full":
        return load_full(name, train, root, download)
    try:
        return load_full(name, train, root, download)
    except FileNotFoundError:
        warnings.warn(f"full {info.title} not found in {', '.join(map(str, search_folders(name, root)))}; using the "
                      f"subset ({SUBSET_PER_CLASS['train' if train else 'test']} images per class). Set {DATA_ENV} "
                      f"or pass root= to use the full data.", stacklevel=2)
        return load_dataset_subset(name, train, root)


__all__ = ["DATASETS", "DATASET_NAMES", "DEFAULT_DATASET", "DatasetInfo", "DatasetNotFoundError", "dataset_info",
           "dataset_available", "find_files", "search_folders", "read_idx", "load_full", "load_dataset",
           "load_dataset_subset", "subset_file_path", "FASHION_MNIST_CLASSES"]
