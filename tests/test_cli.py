"""``python -m hebblib``: list-presets, reproduce, and the exit status and message of every user error.

One test runs the real command in a subprocess; the others call ``hebblib.cli.main`` in-process (the same
code path, without paying for a fresh interpreter and torch import each time).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hebblib.cli import main
from hebblib.presets import CONTRASTIVE_PRESETS, PRESETS

ROOT = Path(__file__).resolve().parents[1]


def test_unknown_preset_exits_2_with_the_list_in_a_real_process():
    run = subprocess.run([sys.executable, "-m", "hebblib", "reproduce", "--preset", "best"], cwd=ROOT,
                         env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "unknown preset 'best'" in run.stderr and "optimal" in run.stderr and "softhebb_paper" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def test_list_presets_shows_each_published_number_and_source(capsys):
    assert main(["list-presets"]) == 0
    out = capsys.readouterr().out
    for name, preset in PRESETS.items():
        line = next(l for l in out.splitlines() if l.startswith(name + " "))
        published = "—" if preset["published"] is None else f"{preset['published']:.1f} %"
        assert published in line and preset["source"][:20] in line
    for name, preset in CONTRASTIVE_PRESETS.items():  # published as the thesis gives it: mean ± std over seeds
        line = next(l for l in out.splitlines() if l.startswith(name + " "))
        published = ("—" if preset["published"] is None
                     else f"{preset['published']:.2f} ± {preset['published_std']:.2f} %")
        assert published in line and "Lunelli (2024)" in line and preset["source"].split(", ")[-1] in line
    assert "contrastive_conv_f1 " in out and "66.78 ± 0.52 %" in out


def test_missing_data_exits_2_with_the_data_layer_message(tmp_path, capsys):
    code = main(["reproduce", "--preset", "soft", "--source", "full", "--data", str(tmp_path), "--no-download"])
    err = capsys.readouterr().err
    assert code == 2 and "CIFAR-10 not found" in err and str(tmp_path) in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_exits_2(capsys):
    assert main(["reproduce", "--preset", "soft", "--device", "cuda", "--quick"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_reproduce_falls_back_to_the_subset_with_a_notice_and_resumes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HEBBLIB_QUICK", "0")  # not quick: the missing full data must trigger the fallback
    monkeypatch.setenv("HEBBLIB_DATA", str(tmp_path / "nothing"))  # the default root (no --data) falls back
    args = ["reproduce", "--preset", "lagani_short", "--no-download",
            "--limit-train", "256", "--limit-test", "200", "--epochs", "1", "--out", str(tmp_path / "runs"),
            "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "notice: the full CIFAR-10 was not found" in out and "shipped subset" in out
    assert "published 59.7 %" in out and "measured" in out and "not comparable" in out
    assert "±" not in out  # one seed: no spread
    assert list((tmp_path / "runs" / "lagani_short").glob("*/seed0/results.json"))
    assert main(args) == 0
    assert "finished earlier; read back" in capsys.readouterr().out


def test_a_changed_preset_runs_in_its_own_folder_and_records_the_change(tmp_path, capsys):
    change = '{"hebbian": {"rule": {"theta_init": 0.0}}}'
    args = ["reproduce", "--preset", "bcm", "--quick", "--limit-train", "256", "--limit-test", "200", "--epochs", "1",
            "--out", str(tmp_path), "--no-progress", "--change", change]
    assert main(args) == 0
    assert 'changed by {"hebbian": {"rule": {"theta_init": 0.0}}}' in capsys.readouterr().out
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert folder.name.startswith("bcm-change-")  # not the unchanged preset's runs/bcm
    (result,) = folder.glob("*/seed0/results.json")
    recorded = json.loads(result.read_text())
    assert recorded["change"] == {"hebbian": {"rule": {"theta_init": 0.0}}}
    assert recorded["config"]["hebbian"]["rule"] == {"name": "bcm", "theta_init": 0.0}


@pytest.mark.parametrize("change, message", [
    ("{theta: 0}", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
])
def test_a_malformed_change_is_a_usage_error(change, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "--preset", "bcm", "--change", change])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    ('{"hebian": {}}', "unknown preset key to change 'hebian'"),
    ('{"hebbian": {"rule": {"theta_start": 0.0}}}', "unknown option 'theta_start' for rule 'bcm'"),
])
def test_a_change_naming_an_unknown_setting_exits_2(change, message, tmp_path, capsys):
    args = ["reproduce", "--preset", "bcm", "--quick", "--limit-train", "256", "--limit-test", "200", "--epochs", "1",
            "--out", str(tmp_path), "--no-progress", "--change", change]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# ----- Lunelli's contrastive presets through the same command ---------------------------------------------------
TINY_MLP = '{"model": {"hidden": [32, 16]}}'  # the contrastive MLP at a test's size


def _load_results_table(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("results_table", ROOT / "scripts" / "results_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, "DOCS", tmp_path / "docs")
    monkeypatch.setattr(script, "STORE", tmp_path / "docs" / "results")
    return script


def test_a_contrastive_preset_runs_resumes_and_becomes_a_results_row(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    args = ["reproduce", "--preset", "contrastive_mlp", "--quick", "--limit-train", "100", "--limit-test", "40",
            "--epochs", "1", "--out", str(runs), "--no-progress", "--change", TINY_MLP]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "contrastive_mlp (contrastive learning, changed by" in out and "1 training epochs" in out
    assert "published 42.17 ± 0.38 %" in out and "images/s contrastive training" in out and "not comparable" in out
    (result_path,) = runs.glob("contrastive_mlp-change-*/subset-n100-*/seed0/results.json")
    record = json.loads(result_path.read_text())
    assert record["complete"] and record["change"] == {"model": {"hidden": [32, 16]}}
    assert record["supervised"]["mode"] == "contrastive" and record["unsupervised"]["images_per_s"] is None
    assert record["recipe_hash"] == result_path.parent.parent.name.rsplit("-", 1)[-1]
    assert main(args) == 0  # run again: read back, not trained again
    assert "finished earlier; read back" in capsys.readouterr().out

    # scripts/results_table.py reads it as it reads every preset's runs (relabelled as a full-data run)
    record["data"].update(source="full", n_train=45000, n_val=5000, n_test=10000)
    record["quick"] = False
    result_path.write_text(json.dumps(record))
    table = _load_results_table(tmp_path, monkeypatch)
    assert len(table.collect(runs)) == 1
    table.render()
    text = (tmp_path / "docs" / "results.md").read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| `contrastive_mlp`")]
    assert "| 42.17 ± 0.38 |" in row and "img/s contrastive" in row and "changed:" in row
    gap = record["final_test_acc"] - 42.17
    assert f"| {gap:+.1f} |" in row
    assert (f"--preset contrastive_mlp --change '{TINY_MLP}' --epochs 1 --source full --data ROOT --precision fp32"
            in row)  # 1 of the preset's 100 training epochs: the command says so


@pytest.mark.parametrize("change, message", [
    ('{"training": {"epochs": 0}}', "training.epochs = 0: must be an int >= 1"),
    ('{"model": {"activation": "sigmoid"}}', "model.activation = 'sigmoid': valid choices: 'tanh', 'relu'"),
    ('{"optimiser": {"lr": 0.1}}', "change.optimiser = {'lr': 0.1}: not a preset key to change"),
])
def test_a_bad_contrastive_change_exits_2_before_any_work(change, message, tmp_path, capsys, monkeypatch):
    import hebblib.training as training

    monkeypatch.setattr(training, "load_splits", lambda *a, **k: pytest.fail("data was read"))
    code = main(["reproduce", "--preset", "contrastive_conv_f1", "--quick", "--out", str(tmp_path), "--change", change])
    err = capsys.readouterr().err
    assert code == 2 and f"contrastive preset 'contrastive_conv_f1': {message}" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("flags, message", [
    (["--original"], "--original does not apply to the contrastive preset 'contrastive_mlp'"),
    (["--precision", "bf16"], "--precision bf16 does not apply to the contrastive preset 'contrastive_mlp': its "
                              "layers compute in fp32 only"),
])
def test_contrastive_presets_refuse_options_they_cannot_honour(flags, message, capsys):
    assert main(["reproduce", "--preset", "contrastive_mlp", "--quick", *flags]) == 2
    assert message in capsys.readouterr().err


def test_unknown_preset_lists_the_contrastive_presets_too(capsys):
    assert main(["reproduce", "--preset", "contrastive_cnn"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'contrastive_cnn'" in err and "contrastive_conv_f1 " in err and "soft " in err


def test_hebbian_from_is_refused_where_it_cannot_apply(tmp_path, capsys):
    assert main(["reproduce", "--preset", "soft", "--quick", "--parallel", "2", "--hebbian-from", str(tmp_path)]) == 2
    assert "--hebbian-from applies to one-process runs" in capsys.readouterr().err
    assert main(["reproduce", "--preset", "softhebb_flip", "--quick", "--out", str(tmp_path / "runs"),
                 "--hebbian-from", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
