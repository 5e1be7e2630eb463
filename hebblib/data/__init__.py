"""Data for hebblib: CIFAR-10 (full or the shipped subset), other datasets (Fashion-MNIST, MNIST, STL-10:
:mod:`hebblib.data.datasets`), ZCA whitening, on-device batching, toy data.

    images, labels = load_cifar(train=True)                   # uint8 N x 3 x 32 x 32, int64 N
    train = DeviceDataset.from_cifar(True, normalization="zca")
    for x, y in train.batches(64): ...                         # float batches on the GPU when there is one
"""
from .cifar import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR10NotFoundError,
    cifar10_available,
    data_root,
    load_cifar10,
)
from .device_dataset import NORMALIZATIONS, DeviceDataset
from .datasets import (DATASET_NAMES, DATASETS, DEFAULT_DATASET, DatasetInfo, DatasetNotFoundError,
                       dataset_available, dataset_info, load_dataset)
from .subset import first_per_class, load_cifar, load_subset, subset_path
from .toy import correlated_gaussian_2d, gaussian_cloud, gaussian_clusters, image_patches
from .zca import ZCA, covariance_spectrum, fit_zca, off_diagonal_ratio, pixel_covariance

__all__ = [
    "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR10NotFoundError", "cifar10_available",
    "data_root", "load_cifar10",
    "NORMALIZATIONS", "DeviceDataset",
    "DATASET_NAMES", "DATASETS", "DEFAULT_DATASET", "DatasetInfo", "DatasetNotFoundError", "dataset_available",
    "dataset_info", "load_dataset",
    "first_per_class", "load_cifar", "load_subset", "subset_path",
    "correlated_gaussian_2d", "gaussian_cloud", "gaussian_clusters", "image_patches",
    "ZCA", "covariance_spectrum", "fit_zca", "off_diagonal_ratio", "pixel_covariance",
]
