"""The bad-input battery (issue 19, item 5): one test per defect it found, each written to fail before the fix.

Every bad value must be one clear error (a ValueError, or exit status 2 at the command line) that names the
value and what is allowed, raised before any training starts; files written by two processes at once must
not collide; a damaged checkpoint is reported, not silently dropped.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from hebblib import HebbianConv2d, HebbianLinear, training
from hebblib import competitions as comp
from hebblib.cli import main
from hebblib.presets import change_preset, get_preset
from hebblib.results import format_accuracy, load_checkpoint, save_checkpoint, summarize_runs, write_json

ROOT = Path(__file__).resolve().parents[1]
TINY_ARGS = ["--quick", "--limit-train", "256", "--limit-test", "200", "--no-progress", "--no-download"]


class TrainingStarted(Exception):
    """Raised by a stand-in for the Hebbian phase: a bad input must be refused before this point."""


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise TrainingStarted("the Hebbian phase started although an input was invalid")

    monkeypatch.setattr(training, "train_hebbian", refuse)


def exit_code(args) -> int:
    """``main(args)``'s exit status, whether it returns it or argparse exits."""
    try:
        return main(args)
    except SystemExit as done:
        return done.code


# ----- --epochs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("epochs", ["0", "-1"])
def test_epochs_below_one_is_a_usage_error_before_training(epochs, tmp_path, capsys, no_training):
    # before: 0 silently ran the preset's epochs, -1 failed only after the Hebbian phase
    code = exit_code(["reproduce", "--preset", "lagani_short", "--epochs", epochs, "--out", str(tmp_path),
                      *TINY_ARGS])
    err = capsys.readouterr().err
    assert code == 2 and "--epochs" in err and epochs in err and "Traceback" not in err


def test_run_preset_rejects_zero_classifier_epochs_before_training(tmp_path, no_training):
    with pytest.raises(ValueError, match=r"supervised_epochs must be an int >= 1.*got 0"):
        training.run_preset("lagani_short", out=tmp_path, quick=True, supervised_epochs=0, progress=False)


# ----- the typed configuration: mistakes that were accepted silently ---------------------------------
@pytest.mark.parametrize("change, path, hint", [
    ({"unsupervised": {"epoch": 3}}, "unsupervised.epoch", "'epochs'"),
    ({"supervised": {"learning_rate": 0.1}}, "supervised.learning_rate", "'lr'"),
    ({"hebbian": {"lr": "fast"}}, "hebbian.lr", "'fast'"),
    ({"hebbian": {"lr": -0.1}}, "hebbian.lr", "-0.1"),
    ({"hebbian": {"lr": math.inf}}, "hebbian.lr", "inf"),
    ({"supervised": {"lr": math.inf}}, "supervised.lr", "inf"),
    ({"unsupervised": {"epochs": 1.5}}, "unsupervised.epochs", "1.5"),
])
@pytest.mark.parametrize("preset", ["lagani_short", "soft"])
def test_a_bad_change_is_one_error_naming_the_key_path(preset, change, path, hint):
    with pytest.raises(ValueError) as info:
        change_preset(get_preset(preset), change)
    assert path in str(info.value) and hint in str(info.value)


def test_a_shared_setting_that_every_layer_overrides_is_refused():
    # soft sets lr per layer; a change of the shared lr would be recorded but not used
    with pytest.raises(ValueError, match=r"hebbian\.lr.*layers\[0\]\.lr"):
        change_preset(get_preset("soft"), {"hebbian": {"lr": 0.05}})


@pytest.mark.parametrize("preset, change", [
    ("soft", '{"hebbian": {"lr": "fast"}}'),  # before: accepted, ignored, recorded as applied
    ("lagani_short", '{"hebbian": {"lr": "fast"}}'),  # before: a TypeError traceback, exit status 1
    ("lagani_short", '{"hebbian": {"lr": Infinity}}'),  # before: accepted
    ("soft", '{"hebbian": {"lr": -0.1}}'),  # before: accepted, ignored
])
def test_a_bad_lr_change_exits_2_before_training(preset, change, tmp_path, capsys, no_training):
    code = exit_code(["reproduce", "--preset", preset, "--change", change, "--out", str(tmp_path), *TINY_ARGS])
    err = capsys.readouterr().err
    assert code == 2 and "hebbian.lr" in err and "Traceback" not in err


# ----- checkpoints ---------------------------------------------------------------------------------
_EXECUTED = []


def _mark_executed():
    _EXECUTED.append("code ran while loading a checkpoint")
    return "marker"


class _Payload:
    def __reduce__(self):
        return _mark_executed, ()


def test_checkpoints_load_weights_only(tmp_path):
    path = tmp_path / "unsupervised.pt"
    torch.save({"config_hash": "abc", "model": {"w": torch.ones(2)}, "extra": _Payload()}, path)
    _EXECUTED.clear()
    with pytest.warns(UserWarning, match="unsupervised.pt"):
        assert load_checkpoint(path, "abc") is None  # refused: it holds more than tensors and plain data
    assert not _EXECUTED
    save_checkpoint(path, {"config_hash": "abc", "model": {"w": torch.ones(2)}, "stats": {"images": 3}})
    assert torch.equal(load_checkpoint(path, "abc")["model"]["w"], torch.ones(2))


def test_a_truncated_checkpoint_is_reported_by_name(tmp_path):
    path = tmp_path / "seed0" / "unsupervised.pt"
    save_checkpoint(path, {"config_hash": "abc", "model": {"w": torch.randn(1000)}})
    path.write_bytes(path.read_bytes()[:300])
    with pytest.warns(UserWarning, match=r"seed0.unsupervised\.pt.*training again"):
        assert load_checkpoint(path, "abc") is None


def test_a_checkpoint_of_another_configuration_is_ignored_quietly(tmp_path):
    path = tmp_path / "unsupervised.pt"
    save_checkpoint(path, {"config_hash": "abc", "model": {}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_checkpoint(path, "other") is None


# ----- atomic writes from two processes ------------------------------------------------------------
WRITER = textwrap.dedent("""
    import sys, time
    import torch
    from hebblib.results import save_checkpoint, write_json
    folder, start = sys.argv[1], float(sys.argv[2])
    while time.time() < start:
        pass
    failures = 0
    for i in range(150):
        try:
            write_json(folder + "/results.json", {"values": list(range(2000)), "i": i})
            if i % 5 == 0:
                save_checkpoint(folder + "/unsupervised.pt", {"config_hash": "k", "w": torch.ones(5000)})
        except OSError:
            failures += 1
    print(failures)
""")


def test_two_processes_writing_one_run_folder_do_not_collide(tmp_path):
    import time

    start = str(time.time() + 4.0)  # both start writing at the same moment, after their imports
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), start], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [w.communicate(timeout=180) for w in writers]
    assert all(w.returncode == 0 for w in writers), outputs
    assert [int(out.strip()) for out, _ in outputs] == [0, 0], outputs
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "temporary files left behind"


def test_temporary_files_have_unique_names_in_the_target_folder(tmp_path, monkeypatch):
    sources = []
    replace = os.replace

    def record(src, dst):
        sources.append(Path(src))
        return replace(src, dst)

    monkeypatch.setattr(os, "replace", record)
    for _ in range(2):
        write_json(tmp_path / "results.json", {"a": 1})
        save_checkpoint(tmp_path / "unsupervised.pt", {"config_hash": "k"})
    assert len(set(sources)) == 4 and all(s.parent == tmp_path for s in sources)


# ----- layer arguments and inputs ------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"lr": "fast"}, r"lr must be a finite number >= 0, got 'fast'"),  # before: TypeError
    ({"lr": math.inf}, r"lr must be a finite number >= 0, got inf"),  # before: accepted
    ({"lr": math.nan}, r"lr must be a finite number >= 0, got nan"),
    ({"kernel_size": 0}, r"kernel_size must be an int >= 1 \(or a pair of them\), got 0"),  # before: ZeroDivisionError
    ({"padding": -1}, r"padding must be an int >= 0 \(or a pair of them\), got -1"),  # before: accepted
    ({"stride": 0}, r"stride must be an int >= 1 \(or a pair of them\), got 0"),
    ({"dilation": (1, 0)}, r"dilation must be an int >= 1 \(or a pair of them\), got \(1, 0\)"),
])
def test_bad_conv_arguments_are_value_errors(kwargs, match):
    args = {"in_channels": 3, "out_channels": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        HebbianConv2d(**args)


def test_bad_linear_lr_is_a_value_error():
    with pytest.raises(ValueError, match="lr must be a finite number >= 0, got 'fast'"):
        HebbianLinear(8, 4, lr="fast")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.int64])
def test_input_of_another_dtype_is_a_value_error(dtype):
    layer = HebbianConv2d(3, 4, 3)
    x = torch.ones(2, 3, 8, 8, dtype=dtype)
    with pytest.raises(ValueError, match=rf"input dtype {dtype}.*{torch.float32}"):
        layer(x)
    with pytest.raises(ValueError, match=rf"input dtype {dtype}.*{torch.float32}"):
        HebbianLinear(8, 4)(torch.ones(2, 8, dtype=dtype))


def test_a_double_layer_takes_double_input():
    layer = HebbianConv2d(3, 4, 3).double()
    assert layer(torch.ones(2, 3, 8, 8, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("padding", [0, 1])
def test_a_kernel_larger_than_the_image_is_a_value_error(padding):
    layer = HebbianConv2d(3, 4, 5, padding=padding)
    with pytest.raises(ValueError, match=r"kernel .*5.* larger than the .*input"):
        layer(torch.ones(2, 3, 2, 2))


# ----- the data root -------------------------------------------------------------------------------
def _no_network(monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise RuntimeError("no network in this test")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)


def test_an_explicit_data_folder_without_cifar10_is_an_error_and_creates_nothing(tmp_path, capsys, monkeypatch,
                                                                                  no_training):
    _no_network(monkeypatch)
    monkeypatch.setenv("HEBBLIB_QUICK", "0")
    root = tmp_path / "not-cifar"
    code = exit_code(["reproduce", "--preset", "lagani_short", "--data", str(root), "--out", str(tmp_path / "runs"),
                      "--limit-train", "256", "--limit-test", "200", "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and str(root) in err and "--data" in err and "root=" not in err
    assert not root.exists()  # before: the folder was created (download attempt) and the subset used


def test_the_default_data_root_still_falls_back_to_the_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("HEBBLIB_DATA", str(tmp_path / "nothing"))
    source, notice = training.resolve_source("auto", None, quick=False, download=False)
    assert source == "subset" and "shipped subset" in notice


def test_an_explicit_root_in_python_is_an_error_too(tmp_path):
    from hebblib.data import CIFAR10NotFoundError

    with pytest.raises(CIFAR10NotFoundError, match="root="):
        training.resolve_source("auto", tmp_path / "nothing", quick=False, download=False)
    assert not (tmp_path / "nothing").exists()


# ----- one seed: no spread -------------------------------------------------------------------------
def test_a_one_seed_summary_prints_no_spread():
    record = {"preset": "p", "original": False, "data": {}, "seed": 0, "final_test_acc": 72.314,
              "test_acc_at_best_val": 71.0, "max_test_acc": 73.0, "mean_test_acc_last_half": 72.0}
    assert format_accuracy(summarize_runs([record]), "final_test_acc") == "72.31 %"  # before: "72.31 ± 0.00 %"
    two = summarize_runs([record, {**record, "seed": 1, "final_test_acc": 70.314}])
    assert format_accuracy(two, "final_test_acc") == "71.31 ± 1.41 %"


# ----- Krotov–Hopfield ties ------------------------------------------------------------------------
def test_krotov_ranking_breaks_exact_ties_at_the_lowest_index():
    torch.manual_seed(0)
    layer = HebbianLinear(16, 64, competition={"name": "krotov", "k": 2, "delta": 0.4}, activation="dot")
    with torch.no_grad():
        layer.weight[:] = 0.01 * torch.randn(64, 16)
        strongest = torch.rand(16) + 1.0
        for o in (5, 9, 30, 63):  # duplicated filters: exactly equal currents
            layer.weight[o] = strongest
    x = torch.rand(32, 16) + 0.5  # positive: the duplicated filters give the largest current
    u = layer.eval()(x)
    assert (u[:, 5] == u[:, 63]).all()
    g = layer.competition(u)
    expected = torch.zeros_like(u)
    expected[:, 5], expected[:, 9] = 1.0, -0.4  # first and second of the tied units, by index
    assert torch.equal(g, expected)


def test_krotov_ranking_without_ties_matches_a_sort():
    g = torch.Generator().manual_seed(1)
    u = torch.randn(6, 12, 3, 3, generator=g)
    ranked = u.argsort(dim=1, descending=True)
    y = comp.KrotovRanking(k=3, delta=0.25)(u)
    expected = torch.zeros_like(u).scatter_(1, ranked[:, :1], 1.0).scatter_(1, ranked[:, 2:3], -0.25)
    assert torch.equal(y, expected)
