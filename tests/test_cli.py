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
from hebblib.presets import PRESETS

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
        assert f"{preset['published']:.1f} %" in line and preset["source"][:20] in line


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
