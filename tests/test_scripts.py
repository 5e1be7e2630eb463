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
