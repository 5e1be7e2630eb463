"""The experiment scripts under scripts/: argument handling and one tiny real run on the shipped subset."""
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reduced_compare_runs_a_changed_preset(capsys):
    script = load_script("reduced_compare")
    change = {"rule": {"theta_init": 0.0}}
    assert script.main(["bcm", "--original", "bcm", "--width", "0.25", "--blocks", "1", "--train", "120",
                        "--probe-epochs", "1", "--change", json.dumps(change)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith('changed: {"rule": {"theta_init": 0.0}}')
    assert lines[1].startswith("bcm ") and lines[2].startswith("bcm (original)")
    assert "max" in lines[1] and "final" in lines[1]


def test_reduced_compare_on_full_data_uses_more_than_the_subset(capsys):
    from hebblib.data import cifar10_available

    if not cifar10_available():
        pytest.skip("full CIFAR-10 not available (set HEBBLIB_DATA to a folder holding cifar-10-batches-py/)")
    script = load_script("reduced_compare")
    # 2,100 training images: more than the subset holds, so only the full data can serve them
    assert script.main(["hard_basic", "--width", "0.25", "--blocks", "1", "--train", "2100", "--test", "100",
                        "--source", "full", "--probe-epochs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "2100 full images" in lines[0] and lines[1].startswith("hard_basic ")


def test_reduced_compare_rejects_an_unknown_preset(capsys):
    script = load_script("reduced_compare")
    with pytest.raises(SystemExit) as exit_info:
        script.main(["not_a_preset"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'not_a_preset'" in capsys.readouterr().err


def test_ch06_ablation_lists_its_variants(capsys):
    script = load_script("ch06_ablation")
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--variants", "bogus"])
    assert exit_info.value.code == 2
    assert "choose from 'unit', 'randn', 'random', 'unit_crop', 'unit_ep3'" in capsys.readouterr().err


def _fake_full_run(runs: Path, variant: str, summary: dict, epochs: list, unsupervised: dict) -> None:
    """A finished full-data run as ``run_preset`` and ``reproduce`` leave it under ``runs/``."""
    seed_dir = runs / variant / "full-n50000-0123abcd" / "seed0"
    seed_dir.mkdir(parents=True)
    metrics = {"final_test_acc": epochs[-1]["test_acc"], "test_acc_at_best_val": epochs[-1]["test_acc"],
               "max_test_acc": max(e["test_acc"] for e in epochs), "best_val_epoch": len(epochs)}
    result = {"seed": 0, "device": "cpu (2 threads)", "torch_version": "x", "quick": False, "complete": True,
              "timings_s": {"data": 1.0, "unsupervised": unsupervised.get("seconds", 0.0), "features": 0.0,
                            "supervised": sum(e.get("seconds", 60.0) for e in epochs), "total": 0.0},
              "unsupervised": unsupervised, "epochs": epochs, "num_parameters": 1, **metrics}
    (seed_dir / "results.json").write_text(json.dumps(result))
    summary = {**summary, "data": {"source": "full", "n_train": 45000}, "seeds": [0],
               **{k: {"mean": v, "std": 0.0, "values": [v]} for k, v in metrics.items() if k != "best_val_epoch"}}
    (seed_dir.parent / "summary.json").write_text(json.dumps(summary))


def test_results_table_names_changed_variants_and_measures_backprop_speed(tmp_path, monkeypatch, capsys):
    script = load_script("results_table")
    monkeypatch.setattr(script, "DOCS", tmp_path / "docs")
    monkeypatch.setattr(script, "STORE", tmp_path / "docs" / "results")
    change = {"hebbian": {"rule": {"theta_init": 0.0}}}
    epoch = {"epoch": 1, "lr": 1e-3, "train_loss": 1.0, "train_acc": 50.0, "val_acc": 50.0}
    _fake_full_run(tmp_path / "runs", "bcm-change-x", {"preset": "bcm", "original": False, "change": change,
                                                       "published": 75.3},
                   [{**epoch, "test_acc": 70.0}], {"images": 45000, "seconds": 900.0, "images_per_s": 50.0})
    _fake_full_run(tmp_path / "runs", "backprop", {"preset": "backprop", "original": False, "published": 77.0},
                   [{**epoch, "test_acc": 60.0, "seconds": 500.0}, {**epoch, "epoch": 2, "test_acc": 65.0,
                                                                    "seconds": 400.0}],
                   {"images": 0, "seconds": 0.0, "images_per_s": None})
    script.collect(tmp_path / "runs")
    from hebblib.presets import variant_name
    stored = sorted(p.name for p in (tmp_path / "docs" / "results").glob("*.json"))
    assert stored == ["backprop.json", variant_name({"name": "bcm", "original": False, "change": change}) + ".json"]
    assert stored[1].startswith("bcm-change-")
    script.render()
    table = (tmp_path / "docs" / "results.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| `bcm`"))
    assert 'changed: `{"hebbian": {"rule": {"theta_init": 0.0}}}`' in row and "50 img/s Hebbian" in row
    assert """--change '{"hebbian": {"rule": {"theta_init": 0.0}}}'""" in row and "| -5.3 |" in row
    row = next(line for line in table.splitlines() if line.startswith("| `backprop`"))
    assert "100 img/s backprop" in row  # 2 epochs × 45,000 images in 900 s
    assert "| 65.00 |" in row and "| -12.0 |" in row
