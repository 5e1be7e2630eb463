"""Tests for hebblib.data: data root, CIFAR-10 loading and its error, the shipped subset, ZCA,
DeviceDataset batching, and the toy generators. Tests that need the full CIFAR-10 are skipped unless
HEBBLIB_DATA points at a folder holding cifar-10-batches-py/."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from hebblib.data import cifar as cifar_module
from hebblib.data import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    ZCA,
    CIFAR10NotFoundError,
    DeviceDataset,
    cifar10_available,
    correlated_gaussian_2d,
    covariance_spectrum,
    data_root,
    first_per_class,
    fit_zca,
    gaussian_cloud,
    gaussian_clusters,
    image_patches,
    load_cifar,
    load_cifar10,
    load_subset,
    off_diagonal_ratio,
    pixel_covariance,
)


@pytest.fixture
def full_root():
    root = os.environ.get("HEBBLIB_DATA")
    if not root or not cifar10_available(root):
        pytest.skip("full CIFAR-10 not available (set HEBBLIB_DATA to a folder holding cifar-10-batches-py/)")
    return root


@pytest.fixture
def no_quick(monkeypatch):
    monkeypatch.delenv("HEBBLIB_QUICK", raising=False)


# ---------------------------------------------------------------------------------------------- data root

def test_data_root_prefers_argument_then_env_then_repo(monkeypatch, tmp_path):
    monkeypatch.setenv("HEBBLIB_DATA", str(tmp_path / "from_env"))
    assert data_root(tmp_path / "from_arg") == tmp_path / "from_arg"
    assert data_root() == tmp_path / "from_env"
    monkeypatch.delenv("HEBBLIB_DATA")
    default = data_root()
    assert default.name == "data" and (default.parent / "hebblib" / "data" / "cifar.py").is_file()


# ------------------------------------------------------------------------------------ missing CIFAR-10

def test_missing_data_error_names_root_files_and_remedy(tmp_path):
    with pytest.raises(CIFAR10NotFoundError) as info:
        load_cifar10(train=True, root=tmp_path, download=False)
    err = info.value
    assert isinstance(err, FileNotFoundError)
    assert err.__cause__ is None and err.__suppress_context__  # raised `from None`: one message, no chain
    msg = str(err)
    assert str(tmp_path.resolve()) in msg
    for name in ("cifar-10-batches-py", "data_batch_1", "data_batch_5", "test_batch", "batches.meta"):
        assert name in msg
    assert "HEBBLIB_DATA" in msg and "root=" in msg and "cs.toronto.edu" in msg


def test_failed_download_is_caught_and_reported(tmp_path, monkeypatch):
    import torchvision

    calls = []

    def no_network(*args, **kwargs):
        calls.append(kwargs.get("download"))
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", no_network)
    monkeypatch.setattr(cifar_module, "_FAILED_DOWNLOADS", set())
    with pytest.raises(CIFAR10NotFoundError, match="missing data_batch_1"):
        load_cifar10(root=tmp_path, download=True)
    assert calls == [True]
    with pytest.raises(CIFAR10NotFoundError):  # a second call does not wait on the network again
        load_cifar10(root=tmp_path, download=True)
    assert calls == [True]


def test_auto_source_falls_back_to_subset_with_warning(tmp_path, no_quick):
    with pytest.warns(UserWarning, match="not found at .*using the shipped subset"):
        images, labels = load_cifar(train=False, root=tmp_path, source="auto", download=False)
    assert images.shape == (500, 3, 32, 32)
    with pytest.raises(CIFAR10NotFoundError):
        load_cifar(train=False, root=tmp_path, source="full", download=False)
    with pytest.raises(ValueError, match="unknown source 'tiny'.*'auto'.*'full'.*'subset'"):
        load_cifar(source="tiny")


def test_quick_mode_uses_subset_without_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("HEBBLIB_QUICK", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images, labels = load_cifar(train=True, root=tmp_path)
    assert images.shape == (2000, 3, 32, 32)


# ---------------------------------------------------------------------------------------- full CIFAR-10

def test_full_cifar10_shapes_dtypes_balance(full_root):
    for train, n in ((True, 50_000), (False, 10_000)):
        images, labels = load_cifar10(train, root=full_root, download=False)
        assert images.shape == (n, 3, 32, 32) and images.dtype == torch.uint8
        assert labels.shape == (n,) and labels.dtype == torch.int64
        assert torch.bincount(labels).tolist() == [n // 10] * 10
    assert len(CIFAR10_CLASSES) == 10 and CIFAR10_CLASSES[0] == "airplane" and CIFAR10_CLASSES[9] == "truck"


def test_full_cifar10_is_chw_and_cached_copy(full_root):
    import pickle

    images, _ = load_cifar10(True, root=full_root, download=False)
    with open(os.path.join(full_root, "cifar-10-batches-py", "data_batch_1"), "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"]  # rows are R plane, G plane, B plane (CHW)
    assert np.array_equal(images[:5].reshape(5, -1).numpy(), raw[:5])
    images[0] = 0  # the caller's copy: the in-process cache must not change
    again, _ = load_cifar10(True, root=full_root, download=False)
    assert np.array_equal(again[0].reshape(-1).numpy(), raw[0])


def test_mean_std_constants_match_training_data(full_root):
    images, _ = load_cifar10(True, root=full_root, download=False)
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    for chunk in images.split(5000):  # exact integer sums, chunk by chunk to keep memory small
        c = chunk.to(torch.int64).transpose(0, 1).reshape(3, -1)
        total += c.sum(1).double()
        squares += (c * c).sum(1).double()
    count = images.shape[0] * 32 * 32
    mean = total / count / 255
    std = (squares / count / 255**2 - mean**2).sqrt()
    assert torch.allclose(mean, torch.tensor(CIFAR10_MEAN, dtype=torch.float64), atol=2e-6)
    assert torch.allclose(std, torch.tensor(CIFAR10_STD, dtype=torch.float64), atol=2e-6)
    assert torch.allclose(mean * 255, torch.tensor([125.31, 122.95, 113.87], dtype=torch.float64), atol=0.01)


# -------------------------------------------------------------------------------------------------- subset

def test_subset_is_balanced_and_in_file_order():
    for train, per_class in ((True, 200), (False, 50)):
        images, labels, indices = load_subset(train, with_indices=True)
        assert images.dtype == torch.uint8 and images.shape == (10 * per_class, 3, 32, 32)
        assert labels.dtype == torch.int64 and torch.bincount(labels).tolist() == [per_class] * 10
        assert torch.all(indices[1:] > indices[:-1])


def test_first_per_class_rule():
    labels = np.array([2, 0, 0, 1, 2, 0, 1, 2, 1])
    assert first_per_class(labels, 2).tolist() == [0, 1, 2, 3, 4, 6]
    with pytest.raises(ValueError, match="class 0 has only 3 samples"):
        first_per_class(labels, 4)


def test_subset_matches_full_data_at_stored_indices(full_root):
    for train, per_class in ((True, 200), (False, 50)):
        full_images, full_labels = load_cifar10(train, root=full_root, download=False)
        images, labels, indices = load_subset(train, with_indices=True)
        assert indices.tolist() == first_per_class(full_labels.numpy(), per_class).tolist()
        assert torch.equal(images, full_images[indices]) and torch.equal(labels, full_labels[indices])


# ----------------------------------------------------------------------------------------------------- ZCA

def _crops(size=8):
    """The subset's training images cropped to size x size: n = 2000 > D = 3*size^2, so Sigma is full rank."""
    return load_subset(True)[0][:, :, :size, :size].contiguous()


def test_zca_whitens_training_data_to_identity():
    images = _crops(8)
    zca = ZCA(eps=1e-8).fit(images)
    _, cov = pixel_covariance(zca(images.float() / 255))
    off = cov - torch.diag(cov.diagonal())
    assert torch.allclose(cov.diagonal(), torch.ones(192, dtype=torch.float64), atol=0.01)
    assert off.abs().max() < 0.01
    assert off_diagonal_ratio(images) > 0.5 and off_diagonal_ratio(zca(images.float() / 255)) < 0.01


def test_zca_with_eps_matches_independent_numpy_formula():
    # Whitened covariance = U diag(S / (S + eps)) U^T; computed here with numpy, independently of the fit.
    images = _crops(8)
    eps = 1e-3
    x = images.reshape(len(images), -1).numpy().astype(np.float64) / 255
    sigma = np.cov(x, rowvar=False)
    s, u = np.linalg.eigh(sigma)
    expected = (u * (s / (s + eps))) @ u.T
    _, cov = pixel_covariance(ZCA(eps).fit(images)(images.float() / 255))
    assert np.allclose(cov.numpy(), expected, atol=2e-4)
    assert torch.allclose(covariance_spectrum(images), torch.from_numpy(np.sort(s)[::-1].copy()), atol=1e-9)


def test_zca_fit_uses_chw_order():
    # Channel c has mean 0.2, 0.5, 0.8 and channel 2 copies channel 0: an HWC flattening in the fit would put
    # the means in the wrong places and leave the applied (CHW) result far from white.
    g = torch.Generator().manual_seed(0)
    n, h, w = 3000, 4, 4
    base = torch.rand(n, h, w, generator=g) * 0.2
    noise = lambda: torch.rand(n, h, w, generator=g) * 0.05  # noqa: E731
    images = torch.stack([0.1 + base, 0.45 + noise() * 2, 0.675 + base + noise()], dim=1)
    zca = ZCA(eps=1e-6).fit(images)
    means = zca.mean.view(3, h, w).mean(dim=(1, 2))
    assert torch.allclose(means, torch.tensor([0.2, 0.5, 0.8]), atol=0.01)
    _, cov = pixel_covariance(zca(images))
    assert torch.allclose(cov, torch.eye(3 * h * w, dtype=torch.float64), atol=0.02)
    channels_last = images.contiguous(memory_format=torch.channels_last)
    assert torch.allclose(zca(channels_last), zca(images), atol=1e-6)


def test_zca_inverse_state_dict_and_errors():
    images = _crops(4)
    zca = ZCA(1e-3).fit(images)
    x = images[:10].float() / 255
    assert torch.allclose(zca.inverse(zca(x)), x, atol=1e-4)
    restored = ZCA(1e-3)
    restored.load_state_dict(zca.state_dict())
    assert torch.equal(restored(x), zca(x))
    with pytest.raises(RuntimeError, match="not fitted"):
        ZCA()(x)
    with pytest.raises(ValueError, match=r"C\*H\*W = 48.*\(10, 3, 8, 8\)"):
        zca(torch.zeros(10, 3, 8, 8))
    with pytest.raises(ValueError, match="eps must be a number > 0"):
        ZCA(eps=0)


def test_zca_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.delenv("HEBBLIB_CACHE", raising=False)
    images = _crops(4)
    first = fit_zca(images, eps=1e-3, root=tmp_path)
    files = list((tmp_path / "cache").glob("zca_*.pt"))
    assert len(files) == 1

    def refit(*args, **kwargs):
        raise AssertionError("fit_zca refitted although a cached matrix exists")

    monkeypatch.setattr(ZCA, "fit", refit)
    second = fit_zca(images, eps=1e-3, root=tmp_path)
    assert torch.equal(first.matrix, second.matrix) and torch.equal(first.mean, second.mean)
    assert second.eps == 1e-3
    monkeypatch.undo()
    fit_zca(images, eps=1e-2, root=tmp_path)  # another eps, another key
    fit_zca(images[:-1], eps=1e-3, root=tmp_path)  # other images, another key
    assert len(list((tmp_path / "cache").glob("zca_*.pt"))) == 3


# ------------------------------------------------------------------------------------------- DeviceDataset

def _indexed_dataset(n=103, classes=10, **kwargs):
    """Images whose pixel (0,0,0) and (0,0,1) encode their index; left half dark, right half bright."""
    images = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    images[:, :, :, 16:] = 200
    index = torch.arange(n)
    images[:, 0, 0, 0] = (index % 256).to(torch.uint8)
    images[:, 0, 0, 1] = (index // 256).to(torch.uint8)
    labels = index % classes
    return DeviceDataset(images, labels, device="cpu", **kwargs), index


def _decode(x):
    return (x[:, 0, 0, 0] * 255).round().long() + 256 * (x[:, 0, 0, 1] * 255).round().long()


def test_batches_cover_each_sample_once_in_shuffled_order():
    data, index = _indexed_dataset()
    seen, labels = [], []
    for x, y in data.batches(16, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32) and x.max() <= 1.0
        seen.append(_decode(x))
        labels.append(y)
    seen, labels = torch.cat(seen), torch.cat(labels)
    assert sorted(seen.tolist()) == index.tolist()
    assert not torch.equal(seen, index)  # shuffled
    assert torch.equal(labels, seen % 10)  # x and y stay paired

    def order(seed):
        return torch.cat([y for _, y in data.batches(16, generator=torch.Generator().manual_seed(seed))])

    assert torch.equal(order(0), labels) and not torch.equal(order(1), labels)  # the seed fixes the order
    assert len(list(data.batches(16, drop_last=True))) == 103 // 16
    assert [len(y) for _, y in data.batches(50, shuffle=False)] == [50, 50, 3]
    assert len(data) == 103


def test_flips_only_with_augment_and_reproducible():
    data, _ = _indexed_dataset()

    def flipped(**kwargs):
        # a flipped image has its bright half on the left
        return torch.cat([x[:, 1, 5, 0] > 0.5 for x, _ in data.batches(32, shuffle=False, **kwargs)])

    assert not flipped().any() and not flipped(augment=False).any()
    a = flipped(augment=True, generator=torch.Generator().manual_seed(1))
    b = flipped(augment=True, generator=torch.Generator().manual_seed(1))
    c = flipped(augment=True, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 25 < int(a.sum()) < 78  # about half of 103
    augmenting, _ = _indexed_dataset(augment=True)
    assert any(x[:, 1, 5, 0].gt(0.5).any() for x, _ in augmenting.batches(103))


def test_split_is_stratified_disjoint_and_val_not_augmented():
    data, index = _indexed_dataset(n=500, augment=True)
    train, val = data.split(val_fraction=0.2, seed=0)
    assert torch.bincount(val.labels).tolist() == [10] * 10
    assert torch.bincount(train.labels).tolist() == [40] * 10
    ids = lambda d: set(_decode(d.get(slice(None))[0]).tolist())  # noqa: E731
    assert ids(train).isdisjoint(ids(val)) and ids(train) | ids(val) == set(index.tolist())
    assert train.augment and not val.augment
    again, _ = data.split(0.2, seed=0)
    assert torch.equal(again.labels, train.labels) and ids(again) == ids(train)
    with pytest.raises(ValueError, match="val_fraction"):
        data.split(1.5)


def test_subset_by_class_and_by_indices():
    data, _ = _indexed_dataset(n=100)
    small = data.subset(3)
    assert len(small) == 30 and torch.bincount(small.labels).tolist() == [3] * 10
    picked = data.subset([5, 7, 9])
    assert _decode(picked.get(slice(None))[0]).tolist() == [5, 7, 9]
    with pytest.raises(ValueError, match="indices"):
        data.subset([0, 100])


def test_normalizations_and_argument_errors():
    images, labels = load_subset(False)
    raw = images[:8].float() / 255
    standard = DeviceDataset(images, labels, "standardize", device="cpu")
    x, _ = standard.get(torch.arange(8))
    mean, std = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    assert torch.allclose(x, (raw - mean) / std)
    zca = ZCA()
    zca.mean, zca.matrix = torch.full((3072,), 0.5), 2 * torch.eye(3072)
    whitened = DeviceDataset(images, labels, "zca", zca=zca, device="cpu")
    assert torch.allclose(whitened.get(torch.arange(8))[0], 2 * (raw - 0.5))
    with pytest.raises(ValueError, match="unknown normalization 'zcaa'.*'none'.*'standardize'.*'zca'"):
        DeviceDataset(images, labels, "zcaa")
    with pytest.raises(ValueError, match="needs a fitted ZCA"):
        DeviceDataset(images, labels, "zca")
    with pytest.raises(ValueError, match=r"uint8 tensor N x C x H x W.*\(3, 32, 32\)"):
        DeviceDataset(images[0], labels)
    with pytest.raises(ValueError, match=r"one label per image \(500\).*\(499,\)"):
        DeviceDataset(images, labels[:-1])


def test_from_cifar_fits_zca_on_training_images(monkeypatch, tmp_path):
    import hebblib.data.device_dataset as dd

    seen = {}

    def fake_fit(images, eps, root=None):
        seen["n"], seen["eps"] = len(images), eps
        zca = ZCA(eps)
        zca.mean, zca.matrix = torch.zeros(3072), torch.eye(3072)
        return zca

    monkeypatch.setattr(dd, "fit_zca", fake_fit)
    test = DeviceDataset.from_cifar(train=False, source="subset", normalization="zca", device="cpu", zca_eps=0.01)
    assert seen == {"n": 2000, "eps": 0.01}  # the training subset, not the 500 test images
    assert len(test) == 500 and not test.augment
    train = DeviceDataset.from_cifar(train=True, source="subset", device="cpu")
    assert train.augment and train.normalization == "none"


# ------------------------------------------------------------------------------------------------ toy data

@pytest.mark.parametrize("r", [-0.9, 0.0, 0.6, 1.0])
def test_correlated_gaussian_2d_has_requested_correlation(r):
    x = correlated_gaussian_2d(20_000, correlation=r, seed=0)
    assert x.shape == (20_000, 2) and x.dtype == torch.float32
    assert abs(float(torch.corrcoef(x.T)[0, 1]) - r) < 0.02 if r != 1.0 else torch.allclose(x[:, 0], x[:, 1])
    assert torch.equal(x, correlated_gaussian_2d(20_000, correlation=r, seed=0))
    with pytest.raises(ValueError, match="correlation must be in"):
        correlated_gaussian_2d(10, correlation=1.5)


def test_gaussian_cloud_3d_mean_and_covariance():
    mean = [1.0, -2.0, 0.5]
    cov = [[2.0, 0.8, 0.0], [0.8, 1.0, -0.3], [0.0, -0.3, 0.5]]
    x = gaussian_cloud(50_000, mean, cov, seed=3)
    assert torch.allclose(x.mean(0), torch.tensor(mean), atol=0.03)
    assert torch.allclose(torch.cov(x.T), torch.tensor(cov), atol=0.05)
    with pytest.raises(ValueError, match="positive semi-definite"):
        gaussian_cloud(10, [0, 0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match=r"cov must be 2 x 2.*\(3, 3\)"):
        gaussian_cloud(10, [0, 0], cov)


def test_gaussian_clusters_means_and_ids():
    centers = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 3.0]])
    points, ids = gaussian_clusters(3000, centers, std=0.3, seed=0)
    assert points.shape == (3000, 2) and ids.dtype == torch.int64
    assert torch.bincount(ids).tolist() == [1000] * 3
    for k in range(3):
        assert torch.allclose(points[ids == k].mean(0), centers[k], atol=0.05)
        assert torch.allclose(points[ids == k].std(0), torch.tensor([0.3, 0.3]), atol=0.02)
    points, ids = gaussian_clusters(100, 4, dim=3, seed=1)
    assert points.shape == (100, 3) and set(ids.tolist()) == {0, 1, 2, 3}


def test_image_patches_come_from_images_and_whiten():
    # image pixel value = its column: an unwhitened patch's rows count up by one
    columns = torch.arange(32, dtype=torch.uint8).expand(4, 3, 32, 32).contiguous()
    patches = image_patches(50, size=5, images=columns, whiten=False, seed=0).view(50, 3, 5, 5)
    steps = (patches[..., 1:] - patches[..., :-1]) * 255
    assert torch.allclose(steps, torch.ones_like(steps), atol=1e-4)
    natural = image_patches(5000, size=5, whiten=False, seed=0)
    white = image_patches(5000, size=5, whiten=True, seed=0)
    assert natural.shape == white.shape == (5000, 75) and 0 <= natural.min() and natural.max() <= 1
    assert off_diagonal_ratio(natural) > 0.5 and off_diagonal_ratio(white) < 0.05
    with pytest.raises(ValueError, match=r"size must be an int in \[1, 32\]"):
        image_patches(10, size=40, images=columns)


def test_zca_cache_skips_read_only_root(tmp_path, monkeypatch):
    import hebblib.data.zca as zca_module

    monkeypatch.delenv("HEBBLIB_CACHE", raising=False)
    monkeypatch.setattr(zca_module, "repo_root", lambda: tmp_path / "repo")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o555)  # like a shared, read-only copy of CIFAR-10
    try:
        fit_zca(_crops(4), root=shared)
        assert not (shared / "cache").exists()
        assert len(list((tmp_path / "repo" / "data" / "cache").glob("zca_*.pt"))) == 1
        monkeypatch.setenv("HEBBLIB_CACHE", str(tmp_path / "mine"))
        fit_zca(_crops(4), eps=0.5, root=shared)
        assert len(list((tmp_path / "mine").glob("zca_*.pt"))) == 1
    finally:
        shared.chmod(0o755)


def test_zca_of_the_splits_is_fitted_on_the_training_part_only(tmp_path):
    """The whitening of load_splits sees every training image except the validation split: its mean is
    the mean of the images that train, not of train + validation (a leak the old fit had)."""
    from hebblib.training import load_splits
    from hebblib.data.subset import load_cifar

    train, val, test = load_splits({"normalization": "zca", "zca_eps": 1e-3}, root=tmp_path, source="subset",
                                   val_size=50)
    assert len(val) == 50 and len(train) + len(val) == len(load_cifar(True, tmp_path, "subset")[0])
    train_mean = train.images.double().div(255).flatten(1).mean(0)
    all_mean = torch.cat([train.images, val.images]).double().div(255).flatten(1).mean(0)
    assert torch.allclose(train.zca.mean.double(), train_mean, atol=1e-6)
    assert not torch.allclose(train.zca.mean.double(), all_mean, atol=1e-6)
    assert val.zca is train.zca and test.zca is train.zca
    # whitened training images have (nearly) zero mean; the validation images keep their own offset
    assert train.get(slice(None))[0].flatten(1).mean(0).abs().max() < 1e-4


def test_zca_fit_train_and_val_restores_the_old_fit(tmp_path):
    """``zca_fit='train_and_val'`` (protocol v1, kept to measure the change): the whitening's mean is that of
    train + validation, the split itself is the default's; an unknown choice is refused by the config."""
    from hebblib.config import DataConfig
    from hebblib.training import load_splits

    cfg = {"normalization": "zca", "zca_eps": 1e-3}
    train, val, _ = load_splits(cfg, root=tmp_path, source="subset", val_size=50)
    old, old_val, _ = load_splits({**cfg, "zca_fit": "train_and_val"}, root=tmp_path, source="subset", val_size=50)
    assert torch.equal(old.images, train.images) and torch.equal(old_val.images, val.images)
    all_mean = torch.cat([train.images, val.images]).double().div(255).flatten(1).mean(0)
    assert torch.allclose(old.zca.mean.double(), all_mean, atol=1e-6)
    assert not torch.allclose(old.zca.mean.double(), train.zca.mean.double(), atol=1e-6)
    assert "zca_fit" not in DataConfig.from_dict(cfg).to_dict()  # the default: presets' hashes unchanged
    assert DataConfig.from_dict({**cfg, "zca_fit": "train_and_val"}).to_dict()["zca_fit"] == "train_and_val"
    with pytest.raises(ValueError, match="data.zca_fit.*'train_and_validation'.*train_and_val"):
        DataConfig.from_dict({**cfg, "zca_fit": "train_and_validation"})


def test_splits_without_zca_are_unchanged_by_the_zca_fix(tmp_path):
    """Standardised splits: the same images in the same order as DeviceDataset.split of all training images."""
    from hebblib.data import DeviceDataset
    from hebblib.training import load_splits

    train, val, _ = load_splits({"normalization": "standardize"}, root=tmp_path, source="subset", val_size=50)
    reference = DeviceDataset.from_cifar(True, tmp_path, "subset", "standardize")
    ref_train, ref_val = reference.split(50 / len(reference), seed=0)
    assert torch.equal(train.images, ref_train.images) and torch.equal(val.labels, ref_val.labels)
    assert train.augment and not val.augment


def test_subset_file_written_then_checked_against_the_rule(tmp_path, capsys):
    """The subset scripts' write and ``--check`` (``write_or_check_subset``): a written file matches its
    arrays; one changed label, or an array more, is reported as a difference (exit status 1)."""
    from hebblib.data.subset import write_or_check_subset

    rng = np.random.default_rng(0)
    arrays = {"classes": np.array(["a", "b"])}
    for split, n in (("train", 4), ("test", 2)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 3, 4, 4), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.arange(n, dtype=np.int64) % 2
        arrays[f"{split}_indices"] = np.arange(n, dtype=np.int64)
    path = tmp_path / "sub" / "x_subset.npz"
    assert write_or_check_subset(path, arrays) == 0
    assert "wrote x_subset.npz (train: 4, test: 2 images" in capsys.readouterr().out
    assert write_or_check_subset(path, arrays, check=True) == 0
    assert "matches" in capsys.readouterr().out
    changed = dict(arrays, test_labels=np.array([1, 1], dtype=np.int64))
    assert write_or_check_subset(path, changed, check=True) == 1
    assert "DIFFERS FROM" in capsys.readouterr().out
    assert write_or_check_subset(path, dict(arrays, extra=np.zeros(1)), check=True) == 1
