"""A second dataset (issue 23): Fashion-MNIST (and MNIST / STL-10 where they can be had) through the same pipeline.

Most tests use tiny real data: images of the Fashion-MNIST subset that ships with hebblib, written into a
temporary data root in the files' own format. The tests on ``full_fashion`` need the whole Fashion-MNIST: on a
Debian machine ``apt-get install dataset-fashion-mnist`` (CI's ``.ci/run`` installs it); elsewhere they are
skipped with that reason, except on CI (``CI=true``), where a missing dataset is an error.
"""
from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hebblib.cli import main
from hebblib.config import DataConfig, PresetConfig
from hebblib.data import DeviceDataset
from hebblib.data import datasets as ds
from hebblib.presets import build_model, get_preset, on_dataset, preset_config, variant_name
from hebblib.training import load_splits, resolve_source, run_preset

ROOT = Path(__file__).resolve().parents[1]


# ----- tiny real data in the files' own format ------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    """An idx file (MNIST's format) of a uint8 array: magic 0x00000803 / 0x00000801, the sizes big-endian."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def tiny_fashion(tmp_path, monkeypatch):
    """A data root with 100 training and 20 test Fashion-MNIST images (from the shipped subset) in
    ``FashionMNIST/raw/`` as .gz idx files; the registry is told these are the split sizes and Debian's folder is
    left out of the search, so only this root counts."""
    images, labels = ds.load_dataset_subset("fashion_mnist", train=True)
    test_images, test_labels = ds.load_dataset_subset("fashion_mnist", train=False)
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    for prefix, x, y in (("train", images[:100], labels[:100]), ("t10k", test_images[:20], test_labels[:20])):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x[:, 0].numpy(), compress=True)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y.numpy().astype(np.uint8), compress=True)
    info = dataclasses.replace(ds.DATASETS["fashion_mnist"], sizes=(100, 20), system_folders=())
    monkeypatch.setitem(ds.DATASETS, "fashion_mnist", info)
    ds._read_split.cache_clear()
    yield {"root": tmp_path / "data", "train": (images[:100], labels[:100]),
           "test": (test_images[:20], test_labels[:20])}
    ds._read_split.cache_clear()


@pytest.fixture
def no_fashion(tmp_path, monkeypatch):
    """Fashion-MNIST in no folder searched (Debian's left out), and no download."""
    monkeypatch.setitem(ds.DATASETS, "fashion_mnist", dataclasses.replace(ds.DATASETS["fashion_mnist"], system_folders=()))
    monkeypatch.setattr(ds, "_try_download", lambda name, root, timeout_s=30.0: None)
    return tmp_path / "empty"


def test_registry_shapes_and_a_bad_name():
    assert ds.dataset_info("fashion_mnist").shape == (1, 28, 28)
    assert ds.dataset_info("stl10").shape == (3, 96, 96) and ds.dataset_info("cifar10").shape == (3, 32, 32)
    assert len(ds.dataset_info("fashion_mnist").classes) == 10
    with pytest.raises(ValueError, match="unknown dataset 'fmnist'.*'cifar10'.*'fashion_mnist'"):
        ds.dataset_info("fmnist")


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip_and_a_corrupt_header(tmp_path, compress):
    images, _ = ds.load_dataset_subset("fashion_mnist", train=False)
    array = images[:7, 0].numpy()
    write_idx(tmp_path / "x-idx3-ubyte", array, compress)
    path = tmp_path / ("x-idx3-ubyte.gz" if compress else "x-idx3-ubyte")
    back = ds.read_idx(path)
    assert back.shape == (7, 28, 28) and np.array_equal(back, array) and back.flags.writeable
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x03" + bytes(12))  # 0x0D: float32, not unsigned bytes
    with pytest.raises(ValueError, match="not an idx file of unsigned bytes"):
        ds.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + bytes(3))
    with pytest.raises(ValueError, match=r"promises \[10\] values, the file holds 3"):
        ds.read_idx(tmp_path / "short")


def test_full_split_read_from_the_torchvision_layout(tiny_fashion):
    images, labels = ds.load_full("fashion_mnist", True, tiny_fashion["root"], download=False)
    assert images.dtype == torch.uint8 and images.shape == (100, 1, 28, 28) and labels.dtype == torch.int64
    assert torch.equal(images, tiny_fashion["train"][0]) and torch.equal(labels, tiny_fashion["train"][1])
    test_images, _ = ds.load_dataset("fashion_mnist", False, tiny_fashion["root"], source="full")
    assert torch.equal(test_images, tiny_fashion["test"][0])
    images[0] = 0  # the caller's own copy: the cached arrays are untouched
    assert torch.equal(ds.load_full("fashion_mnist", True, tiny_fashion["root"])[0], tiny_fashion["train"][0])


def test_mnist_read_from_the_torchvision_layout(tmp_path, monkeypatch):
    """MNIST's unpacked idx files in ``MNIST/raw/`` (as torchvision leaves them): the images and labels written."""
    g = np.random.default_rng(0)
    train_x, test_x = g.integers(0, 256, (6, 28, 28), dtype=np.uint8), g.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    train_y, test_y = np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8), np.array([2, 6, 5], dtype=np.uint8)
    raw = tmp_path / "MNIST" / "raw"
    for prefix, x, y in (("train", train_x, train_y), ("t10k", test_x, test_y)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x, compress=False)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y, compress=False)
    monkeypatch.setitem(ds.DATASETS, "mnist", dataclasses.replace(ds.DATASETS["mnist"], sizes=(6, 3)))
    ds._read_split.cache_clear()
    try:
        images, labels = ds.load_full("mnist", True, tmp_path, download=False)
        assert images.shape == (6, 1, 28, 28) and torch.equal(images[:, 0], torch.from_numpy(train_x))
        assert labels.tolist() == [3, 1, 4, 1, 5, 9]
        assert ds.load_full("mnist", False, tmp_path, download=False)[1].tolist() == [2, 6, 5]
    finally:
        ds._read_split.cache_clear()


def test_stl10_read_from_its_binary_layout(tmp_path, monkeypatch):
    """STL-10's ``stl10_binary/*.bin``: each image stored channel by channel, column-major (so read back it is
    transposed), labels 1..10 on disk and 0..9 here."""
    g = np.random.default_rng(1)
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    written = {}
    for split, n in (("train", 4), ("test", 2)):
        images = g.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)  # N x C x H x W, as hebblib returns them
        labels = g.integers(1, 11, n).astype(np.uint8)
        images.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")  # column-major per channel on disk
        labels.tofile(folder / f"{split}_y.bin")
        written[split] = images, labels
    monkeypatch.setitem(ds.DATASETS, "stl10", dataclasses.replace(ds.DATASETS["stl10"], sizes=(4, 2)))
    ds._read_split.cache_clear()
    try:
        for split, train in (("train", True), ("test", False)):
            images, labels = ds.load_full("stl10", train, tmp_path, download=False)
            assert images.shape == (len(written[split][0]), 3, 96, 96)
            assert torch.equal(images, torch.from_numpy(written[split][0]))
            assert labels.tolist() == (written[split][1].astype(np.int64) - 1).tolist()
    finally:
        ds._read_split.cache_clear()


def test_wrong_split_size_is_a_clear_error(tiny_fashion, monkeypatch):
    monkeypatch.setitem(ds.DATASETS, "fashion_mnist", dataclasses.replace(ds.DATASETS["fashion_mnist"], sizes=(60_000, 20)))
    with pytest.raises(FileNotFoundError, match="expected 60000 images of shape \\(1, 28, 28\\).*found images \\(100, "):
        ds.load_full("fashion_mnist", True, tiny_fashion["root"])


def test_missing_dataset_names_every_folder_and_how_to_get_it(no_fashion, monkeypatch):
    monkeypatch.setitem(ds.DATASETS, "fashion_mnist", dataclasses.replace(
        ds.DATASETS["fashion_mnist"], system_folders=(str(no_fashion / "debian"),)))
    with pytest.raises(ds.DatasetNotFoundError) as caught:
        ds.load_full("fashion_mnist", True, no_fashion)
    text = str(caught.value)
    assert "Fashion-MNIST not found" in text and str(no_fashion.resolve() / "FashionMNIST" / "raw") in text
    assert str(no_fashion / "debian") in text and "apt-get install dataset-fashion-mnist" in text
    assert "train-images-idx3-ubyte[.gz]" in text and "root=<folder>" in text
    assert "--data <folder>" in caught.value.message("cli") and "--source subset" in caught.value.message("cli")
    assert not no_fashion.exists() or not any(no_fashion.rglob("*.gz"))


def test_auto_falls_back_to_the_subset_only_for_the_default_root(no_fashion, monkeypatch):
    monkeypatch.setenv("HEBBLIB_DATA", str(no_fashion))
    source, notice = resolve_source("auto", None, quick=False, dataset="fashion_mnist")
    assert source == "subset" and "full Fashion-MNIST was not found" in notice and "NOT comparable" in notice
    with pytest.raises(ds.DatasetNotFoundError):  # a root the caller named must hold it
        resolve_source("auto", no_fashion, quick=False, dataset="fashion_mnist")
    with pytest.raises(ds.DatasetNotFoundError):
        resolve_source("full", None, quick=False, dataset="fashion_mnist")
    assert resolve_source("auto", None, quick=True, dataset="fashion_mnist") == ("subset", None)


def test_shipped_subset_is_balanced_and_greyscale():
    images, labels = ds.load_dataset("fashion_mnist", train=True, source="subset")
    assert images.shape == (2000, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(torch.bincount(labels), torch.full((10,), 200))
    test_images, test_labels = ds.load_dataset("fashion_mnist", train=False, source="subset")
    assert test_images.shape == (500, 1, 28, 28) and torch.equal(torch.bincount(test_labels), torch.full((10,), 50))
    # a dataset without a shipped subset and without its files: one clear error
    with pytest.raises(ds.DatasetNotFoundError, match="no subset of it ships with hebblib"):
        ds.load_dataset("stl10", train=True, root=ROOT / "does-not-exist", source="subset")


def test_device_dataset_standardises_with_the_dataset_statistics():
    images, labels = ds.load_dataset("fashion_mnist", train=False, source="subset")
    info = ds.dataset_info("fashion_mnist")
    data = DeviceDataset(images, labels, "standardize", device="cpu", mean=info.mean, std=info.std)
    x, _ = data.get(torch.arange(10))
    expected = (images[:10].double() / 255 - info.mean[0]) / info.std[0]
    torch.testing.assert_close(x.double(), expected, rtol=1e-5, atol=1e-5)
    assert data.subset(torch.arange(3)).mean == info.mean  # kept by subsets and splits
    with pytest.raises(ValueError, match="one mean and std per channel: got 1 channels, 3 means"):
        DeviceDataset(images, labels, "standardize", device="cpu")  # CIFAR-10's RGB statistics


def test_config_validates_the_dataset_and_keeps_cifar10_hashes():
    with pytest.raises(ValueError, match="data.dataset = 'fmnist': valid choices: 'cifar10', 'fashion_mnist'"):
        DataConfig.from_dict({"normalization": "none", "dataset": "fmnist"})
    assert "dataset" not in DataConfig.from_dict({"normalization": "zca"}).to_dict()  # CIFAR-10 as before
    assert DataConfig.from_dict({"normalization": "none", "dataset": "mnist"}).to_dict()["dataset"] == "mnist"
    preset = on_dataset(get_preset("soft"), "fashion_mnist")
    assert preset_config(preset).data.dataset == "fashion_mnist"
    assert PresetConfig.from_dict(preset).to_dict()["data"]["dataset"] == "fashion_mnist"


def test_on_dataset_names_the_variant_and_drops_the_cifar10_number():
    soft = on_dataset(get_preset("soft"), "fashion_mnist")
    assert variant_name(soft) == "soft-fashion_mnist" and variant_name(get_preset("soft")) == "soft"
    assert soft["published"] is None and "no published Fashion-MNIST number" in soft["source"]
    assert get_preset("soft")["published"] == 79.2  # the original preset is untouched
    optimal_mnist = on_dataset(get_preset("optimal"), "mnist")
    assert optimal_mnist["published"] == 98.0 and "Nimmo" in optimal_mnist["source"]
    assert on_dataset(get_preset("soft"), "cifar10") == get_preset("soft")
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        on_dataset(get_preset("soft"), "svhn")


@pytest.mark.parametrize("name", ["soft", "optimal", "backprop", "miconi", "manzali_5", "depthwise", "residual"])
def test_networks_are_built_for_28x28_greyscale(name):
    preset = on_dataset(get_preset(name), "fashion_mnist")
    preset["model"] = {**preset["model"], "width_factor": 0.125}
    net = build_model(preset)
    assert net.input_shape == (1, 28, 28)
    first = next(m for m in net.modules() if hasattr(m, "in_channels"))  # HebbianConv2d or nn.Conv2d
    assert first.in_channels == 1
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises((RuntimeError, ValueError)):  # built for 1 channel: an RGB image does not fit
        net(torch.zeros(2, 3, 28, 28))


def test_splits_of_the_dataset(tiny_fashion):
    train, val, test = load_splits({"normalization": "zca", "dataset": "fashion_mnist"}, root=tiny_fashion["root"],
                                   source="full")
    assert (len(train), len(val), len(test)) == (90, 10, 20) and train.images.shape[1:] == (1, 28, 28)
    assert train.zca is not None and train.zca.mean.numel() == 784


def test_a_run_on_fashion_mnist_records_its_dataset_and_becomes_its_own_row(tmp_path, monkeypatch):
    preset = on_dataset(get_preset("soft"), "fashion_mnist")
    preset["model"] = {"width_factor": 0.125}
    result = run_preset(preset, quick=True, limit_train=200, limit_test=100, supervised_epochs=1, out=tmp_path / "runs",
                        progress=False)
    assert result["data"]["dataset"] == "fashion_mnist" and result["published"] is None
    assert Path(result["run_dir"]).parts[-3] == "soft-fashion_mnist"
    assert 0 <= result["final_test_acc"] <= 100
    # collected as a full-data run of its dataset (60,000 / 10,000 images), into its own results file
    path = Path(result["run_dir"]) / "results.json"
    record = json.loads(path.read_text())
    record["data"].update(source="full", n_train=54000, n_val=6000, n_test=10000)
    record["quick"] = False
    path.write_text(json.dumps(record))
    spec = importlib.util.spec_from_file_location("results_table", ROOT / "scripts" / "results_table.py")
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    monkeypatch.setattr(table, "DOCS", tmp_path / "docs")
    monkeypatch.setattr(table, "STORE", tmp_path / "docs" / "results")
    assert table.collect(tmp_path / "runs") == ["soft-fashion_mnist"]
    table.render()
    row = next(line for line in (tmp_path / "docs" / "results.md").read_text().splitlines()
               if line.startswith("| `soft`"))  # the results row (the competition table's row comes after it)
    assert "(on Fashion-MNIST)" in row and "--preset soft --dataset fashion_mnist" in row
    record["data"].update(n_train=45000, n_val=5000)  # CIFAR-10's sizes: not a full Fashion-MNIST run
    path.write_text(json.dumps(record))
    (tmp_path / "docs" / "results" / "soft-fashion_mnist.json").unlink()
    assert table.collect(tmp_path / "runs") == []


def test_cli_dataset_option(tmp_path, capsys, no_fashion):
    assert main(["reproduce", "--preset", "soft", "--dataset", "fashion_mnist", "--quick", "--limit-train", "200",
                 "--limit-test", "100", "--epochs", "1", "--out", str(tmp_path / "runs"), "--no-progress",
                 "--change", '{"model": {"width_factor": 0.125}}']) == 0
    out = capsys.readouterr().out
    assert "fashion_mnist subset data" in out and "published: no number" in out
    with pytest.raises(SystemExit) as code:
        main(["reproduce", "--preset", "soft", "--dataset", "fmnist"])
    assert code.value.code == 2 and "invalid choice: 'fmnist'" in capsys.readouterr().err
    assert main(["reproduce", "--preset", "soft", "--dataset", "fashion_mnist", "--data", str(no_fashion),
                 "--source", "full", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "Fashion-MNIST not found" in err and "--data <folder>" in err and "Traceback" not in err
    assert main(["reproduce", "--preset", "contrastive_mlp", "--dataset", "fashion_mnist"]) == 2
    assert "--dataset fashion_mnist does not apply to the contrastive preset" in capsys.readouterr().err


# ----- the whole Fashion-MNIST: install-or-skip ---------------------------------------------------------------
@pytest.fixture(scope="module")
def full_fashion():
    """The whole Fashion-MNIST, or a skip saying how to get it (a failure on CI, which installs it)."""
    if not ds.dataset_available("fashion_mnist"):
        message = ("the full Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist (Debian/Ubuntu), "
                   "or put FashionMNIST/raw/ under the data root")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: .ci/run installs it; a missing dataset is an error, not a skip)",
                        pytrace=False)
        pytest.skip(message)
    return ds.find_files("fashion_mnist")


def test_full_fashion_mnist_sizes_statistics_and_subset_rule(full_fashion):
    images, labels = ds.load_full("fashion_mnist", True, download=False)
    assert images.shape == (60_000, 1, 28, 28) and torch.equal(torch.bincount(labels), torch.full((10,), 6000))
    pixels = images.double() / 255
    assert abs(pixels.mean().item() - ds.FASHION_MNIST_MEAN[0]) < 1e-6
    assert abs(pixels.std(unbiased=False).item() - ds.FASHION_MNIST_STD[0]) < 1e-6
    test_images, test_labels = ds.load_full("fashion_mnist", False, download=False)
    assert test_images.shape == (10_000, 1, 28, 28) and torch.equal(torch.bincount(test_labels), torch.full((10,), 1000))
    with np.load(ds.subset_file_path("fashion_mnist")) as shipped:  # the shipped subset follows its rule
        for split, (x, y) in (("train", (images, labels)), ("test", (test_images, test_labels))):
            index = torch.from_numpy(shipped[f"{split}_indices"])
            assert torch.equal(torch.from_numpy(shipped[f"{split}_images"]), x[index])
            assert torch.equal(torch.from_numpy(shipped[f"{split}_labels"]), y[index])
