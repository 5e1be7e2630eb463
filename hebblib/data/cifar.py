"""Where the data lives, and loading the full CIFAR-10 as uint8 tensors.

The data root is, in this order: the ``root`` argument, the ``HEBBLIB_DATA`` environment variable, or the
``data/`` folder of the repository (``~/.cache/hebblib/data`` for a plain pip install). Under it torchvision's layout is expected::

    <root>/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta

(the "python version" of CIFAR-10, Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html).
"""
from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

import torch

DATA_ENV = "HEBBLIB_DATA"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
# Per-channel statistics of the 50,000 training images on the [0, 1] scale (R, G, B), computed with
# float64 from the official files; on the 0-255 scale: mean 125.31 / 122.95 / 113.87, std 62.99 / 62.09 / 66.70.
# (std is the population std over all N*H*W pixels of a channel; tests/test_data.py recomputes both.)
CIFAR10_MEAN = (0.491400, 0.482158, 0.446531)
CIFAR10_STD = (0.247032, 0.243485, 0.261588)

# (dataset, root) pairs whose download was tried and failed in this process: don't wait on the network twice.
_FAILED_DOWNLOADS: set[tuple[str, str]] = set()


class CIFAR10NotFoundError(FileNotFoundError):
    """The CIFAR-10 files are not under the data root and could not be downloaded.

    ``str(err)`` tells a Python user how to point hebblib at the data (``root=``); ``err.message("cli")`` says
    the same for the command line (``--data``)."""

    def __init__(self, root: Path, problem: str):
        self.root, self.problem = Path(root), problem
        super().__init__(self.message("python"))

    def message(self, via: str = "python") -> str:
        return _not_found_message(self.root, self.problem, via)


def repo_root() -> Path:
    """The folder that holds the ``hebblib`` package (the repository, for a clone or an editable install)."""
    return Path(__file__).resolve().parents[2]


def default_data_root() -> Path:
    """``<repo>/data`` in a clone or an editable install; for a plain pip install (Colab), whose package
    sits in site-packages, ``~/.cache/hebblib/data``, so a download never lands inside site-packages."""
    repo = repo_root()
    if (repo / "pyproject.toml").is_file():
        return repo / "data"
    return Path.home() / ".cache" / "hebblib" / "data"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$HEBBLIB_DATA``, else :func:`default_data_root`."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return default_data_root()


def missing_cifar10_files(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the expected CIFAR-10 files that are not under ``<root>/cifar-10-batches-py/``."""
    folder = data_root(root) / CIFAR10_FOLDER
    return [name for name in CIFAR10_FILES if not (folder / name).is_file()]


def cifar10_available(root: str | os.PathLike | None = None) -> bool:
    """True when every CIFAR-10 file is present under the data root (their md5s are checked on load)."""
    return not missing_cifar10_files(root)


def _not_found_message(root: Path, problem: str, via: str = "python") -> str:
    point = ("--data <folder> on the command line" if via == "cli" else "the argument root=<folder>")
    subset = ("--source subset (or --quick)" if via == "cli" else "load_cifar(source='subset')")
    return (
        f"CIFAR-10 not found: {problem}.\n"
        f"  searched data root: {root}\n"
        f"  expected folder:    {root / CIFAR10_FOLDER}/\n"
        f"  expected files:     data_batch_1 .. data_batch_5, test_batch, batches.meta\n"
        f"How to get it: download the 'CIFAR-10 python version' from {CIFAR10_URL} and unpack it under "
        f"the data root (it creates {CIFAR10_FOLDER}/), or point hebblib at an existing copy with "
        f"{point} or the environment variable {DATA_ENV}=<folder>. "
        f"For quick offline runs, {subset} uses the small subset shipped with hebblib."
    )


def check_explicit_root(root: str | os.PathLike, download: bool = True) -> None:
    """A data root the caller named must hold CIFAR-10 (after one download attempt into it when it is an
    existing folder and ``download``): else :class:`CIFAR10NotFoundError` naming it. A folder that does
    not exist is never created. (Only the default root falls back to the shipped subset.)"""
    path = data_root(root).resolve()
    if cifar10_available(path):
        return
    if not path.is_dir():
        raise CIFAR10NotFoundError(path, "the data folder given does not exist")
    load_cifar10(True, path, download=download)


def download_once(name: str, root: Path, fetch, timeout_s: float = 30.0) -> None:
    """``fetch(str(root))`` (a torchvision download of dataset ``name`` into ``root``, created first), unless it
    failed for that dataset and root before in this process. Any failure is swallowed (no network, read-only root,
    corrupted archive...): the caller finds the files still missing and reports that. Meanwhile the socket
    timeout is ``timeout_s``, so that a firewalled machine fails fast instead of hanging."""
    import warnings

    key = (name, str(root))
    if key in _FAILED_DOWNLOADS:
        return
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fetch(str(root))
    except Exception:
        _FAILED_DOWNLOADS.add(key)
    finally:
        socket.setdefaulttimeout(previous)


def _try_download(root: Path, timeout_s: float = 30.0) -> None:
    """Ask torchvision to download and unpack CIFAR-10 into ``root`` (:func:`download_once`)."""
    import torchvision

    download_once("cifar10", root, lambda folder: torchvision.datasets.CIFAR10(folder, train=True, download=True),
                  timeout_s)


@functools.lru_cache(maxsize=4)
def _read_cifar10(root: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one split with torchvision (md5-checked), as uint8 N x 3 x 32 x 32 and int64 N. Cached."""
    import torchvision

    dataset = torchvision.datasets.CIFAR10(root, train=train, download=False)
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    return images, labels


def load_cifar10(
    train: bool = True, root: str | os.PathLike | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The full CIFAR-10 split: ``images`` uint8 N x 3 x 32 x 32 (CHW, 0-255) and ``labels`` int64 N.

    N is 50,000 for ``train=True`` and 10,000 otherwise, in the order of the official files. When the
    files are missing and ``download`` is true, one download is tried; if the data is still missing a
    :class:`CIFAR10NotFoundError` says where it looked and how to get the files. Loaded arrays are cached
    in the process, so calling this again is cheap; the caller gets its own copy.
    """
    root_path = data_root(root).resolve()
    if not cifar10_available(root_path) and download:
        _try_download(root_path)
    missing = missing_cifar10_files(root_path)
    if missing:
        raise CIFAR10NotFoundError(root_path, "missing " + ", ".join(missing)) from None
    try:
        images, labels = _read_cifar10(str(root_path), bool(train))
    except RuntimeError:  # torchvision: "Dataset not found or corrupted"
        raise CIFAR10NotFoundError(root_path, "the files are there but fail torchvision's md5 check") from None
    return images.clone(), labels.clone()
