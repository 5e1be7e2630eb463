"""A whole image dataset held on one device, batched without a DataLoader.

CIFAR-10 is 150 MB as uint8, so it fits on any GPU. Keeping it there as uint8 and converting each batch to
float on the device (plus flips and normalisation) removes the CPU workers and host-device copies that
dominate small-network training. Per epoch, the sample order and the flip decisions are drawn once from
the generator and moved to the device in one copy; the batch loop itself never waits on the host.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import torch

from ..errors import check_choice
from ..runtime import get_device
from .cifar import CIFAR10_MEAN, CIFAR10_STD
from .subset import load_cifar
from .zca import ZCA, fit_zca

NORMALIZATIONS = ("none", "standardize", "zca")


def epoch_draws(n: int, device, generator: torch.Generator | None = None, *, shuffle: bool = True,
                flip: bool = False) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """One epoch's random draws over ``n`` rows, in the order every trainer of the library makes them, so that
    one seed gives one epoch whichever trainer runs it: the order of the rows (a permutation with ``shuffle``,
    else None: in order), then with ``flip`` which rows are shown mirrored (each with probability ½, else
    None). Drawn from ``generator`` on its own device, returned on ``device``."""
    rng_device = generator.device if generator is not None else device
    order = torch.randperm(n, generator=generator, device=rng_device).to(device) if shuffle else None
    flips = (torch.rand(n, generator=generator, device=rng_device) < 0.5).to(device) if flip else None
    return order, flips


class DeviceDataset:
    """Images (uint8 N x C x H x W) and labels (int64 N) on ``device``; batches come out as float.

    ``normalization``: "none" -> pixels on [0, 1]; "standardize" -> (x - mean) / std per channel, with the
    dataset's ``mean`` and ``std`` (default CIFAR-10's; :class:`hebblib.data.datasets.DatasetInfo` holds them
    for the others); "zca" -> ``zca(x)`` with a fitted :class:`ZCA`. ``augment`` is the default for
    :meth:`batches`: random horizontal flips with probability 1/2 (the thesis' RandomHorizontalFlip).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        normalization: str = "none",
        zca: ZCA | None = None,
        augment: bool = False,
        device: str | torch.device | None = None,
        mean: Sequence[float] = CIFAR10_MEAN,
        std: Sequence[float] = CIFAR10_STD,
    ):
        if images.dim() != 4 or images.dtype != torch.uint8:
            raise ValueError(
                f"images must be a uint8 tensor N x C x H x W, "
                f"got dtype {images.dtype} and shape {tuple(images.shape)}"
            )
        if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"labels must be a 1-D tensor with one label per image ({images.shape[0]}), "
                f"got shape {tuple(labels.shape)}"
            )
        check_choice("normalization", normalization, NORMALIZATIONS)
        if normalization == "zca" and zca is None:
            raise ValueError("normalization='zca' needs a fitted ZCA: pass zca=fit_zca(train_images)")
        if normalization == "standardize" and not images.shape[1] == len(mean) == len(std):
            raise ValueError(f"normalization='standardize' needs one mean and std per channel: got {images.shape[1]} "
                             f"channels, {len(mean)} means and {len(std)} stds (pass the dataset's mean= and std=)")
        self.device = get_device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.normalization = normalization
        self.zca = zca.to(self.device) if zca is not None else None
        self.augment = bool(augment)
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        self._mean = torch.tensor(self.mean, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(self.std, device=self.device).view(1, -1, 1, 1)

    @classmethod
    def from_cifar(
        cls,
        train: bool = True,
        root: str | os.PathLike | None = None,
        source: str = "auto",
        normalization: str = "none",
        device: str | torch.device | None = None,
        zca_eps: float = 1e-3,
        augment: bool | None = None,
    ) -> "DeviceDataset":
        """CIFAR-10 (see ``load_cifar`` for ``source``) on ``device``. The ZCA, if asked for, is fitted on
        the training images of the same source (cached on disk); ``augment`` defaults to ``train``."""
        check_choice("normalization", normalization, NORMALIZATIONS)
        images, labels = load_cifar(train, root, source)
        zca = None
        if normalization == "zca":  # fitted where the data will live: seconds on a GPU, a minute on a CPU
            train_images = images if train else load_cifar(True, root, source)[0]
            zca = fit_zca(train_images.to(get_device(device)), zca_eps, root=root)
        return cls(images, labels, normalization, zca, train if augment is None else augment, device)

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1 if len(self) else 0

    def __repr__(self) -> str:
        return (
            f"DeviceDataset(n={len(self)}, shape={tuple(self.images.shape[1:])}, normalization="
            f"{self.normalization!r}, augment={self.augment}, device={str(self.device)!r})"
        )

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0
        if self.normalization == "standardize":
            return (x - self._mean) / self._std
        if self.normalization == "zca":
            return self.zca(x)
        return x

    def get(self, index, flip: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ``(x, y)`` for ``index`` (int tensor or slice); ``flip`` is an optional bool mask."""
        x = self.images[index]
        if flip is not None:
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)  # horizontal flip of chosen images
        return self._normalize(x), self.labels[index]

    def batches(
        self,
        batch_size: int,
        shuffle: bool = True,
        augment: bool | None = None,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of ``(x, y)`` batches on the device. ``augment=None`` uses the dataset's default.

        With a seeded ``generator`` (CPU or on the data's device) the order and flips are reproducible.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        augment = self.augment if augment is None else augment
        n = len(self)
        order, flips = epoch_draws(n, self.device, generator, shuffle=shuffle, flip=augment)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            index = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            flip = flips[start:start + batch_size] if flips is not None else None
            yield self.get(index, flip)

    def _like(self, index: torch.Tensor, augment: bool | None = None) -> "DeviceDataset":
        """A new dataset with the samples at ``index`` and the same settings."""
        index = index.to(self.device)
        return DeviceDataset(
            self.images[index], self.labels[index], self.normalization, self.zca,
            self.augment if augment is None else augment, self.device, self.mean, self.std,
        )

    def subset(self, n_per_class_or_indices: int | Sequence[int] | torch.Tensor) -> "DeviceDataset":
        """The first ``n`` samples of every class (an int), or the samples at the given indices."""
        arg = n_per_class_or_indices
        if isinstance(arg, int):
            if arg < 1:
                raise ValueError(f"n_per_class must be >= 1, got {arg}")
            keep = [torch.nonzero(self.labels == c).flatten()[:arg] for c in self.labels.unique()]
            index = torch.cat(keep).sort().values
        else:
            index = torch.as_tensor(arg, dtype=torch.int64, device=self.device)
            if index.dim() != 1 or (len(index) and (index.min() < -len(self) or index.max() >= len(self))):
                raise ValueError(f"indices must be a 1-D sequence of ints in [0, {len(self)}), got {arg!r}")
        return self._like(index)

    def split_indices(self, val_fraction: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(train_index, val_index)`` of :meth:`split` (CPU int64, ascending)."""
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
        generator = torch.Generator().manual_seed(seed)
        labels = self.labels.cpu()
        is_val = torch.zeros(len(self), dtype=torch.bool)
        for c in labels.unique():
            members = torch.nonzero(labels == c).flatten()
            chosen = members[torch.randperm(len(members), generator=generator)]
            is_val[chosen[: round(val_fraction * len(members))]] = True
        return torch.nonzero(~is_val).flatten(), torch.nonzero(is_val).flatten()

    def split(self, val_fraction: float = 0.1, seed: int = 0) -> tuple["DeviceDataset", "DeviceDataset"]:
        """Stratified ``(train, val)`` split: each class gives round(val_fraction * count) samples to val.

        The validation part is never augmented; both keep the original sample order.
        """
        train_index, val_index = self.split_indices(val_fraction, seed)
        return self._like(train_index), self._like(val_index, augment=False)
