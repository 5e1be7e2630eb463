"""The experiment scripts under scripts/: argument handling and one tiny real run on the shipped subset."""
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
BENCHMARKS = SCRIPTS.parent / "benchmarks"


def load_script(name: str, folder: Path = SCRIPTS):
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
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


def _record(preset: str, seed: int, final: float, *, published=75.3, original=False, change=None, protocol=2,
            precision="bf16", recipe="0123abcd", normalization="zca", epochs=None, unsupervised=None,
            competition=None) -> dict:
    """A finished full-data seed as ``run_preset`` writes it to results.json (``protocol=None``: a record of
    the code before protocol versions, which had no precision either)."""
    epochs = epochs or [{"epoch": 1, "lr": 1e-3, "train_loss": 1.0, "train_acc": 50.0, "val_acc": 50.0,
                         "test_acc": final - 0.5},
                        {"epoch": 2, "lr": 1e-3, "train_loss": 1.0, "train_acc": 50.0, "val_acc": 51.0,
                         "test_acc": final}]
    tests = [e["test_acc"] for e in epochs]
    unsupervised = unsupervised or {"images": 45000, "seconds": 900.0, "images_per_s": 50.0}
    data = {"source": "full", "normalization": normalization, "n_train": 45000, "n_val": 5000, "n_test": 10000,
            "split_seed": 0}
    if protocol is not None:
        data["protocol"] = protocol
    record = {"preset": preset, "original": original, "change": change, "published": published, "source": "README",
              "description": "d", "seed": seed, "device": "cpu (2 threads)", "torch_version": "x", "quick": False,
              "complete": True, "data": data, "recipe_hash": recipe if protocol is not None else None,
              "run_dir": f"/somewhere/{preset}/full-n50000-{recipe}/seed{seed}", "config_hash": f"k{seed}",
              "timings_s": {"data": 1.0, "unsupervised": unsupervised["seconds"], "features": 0.0,
                            "supervised": sum(e.get("seconds", 60.0) for e in epochs), "total": 0.0},
              "unsupervised": unsupervised, "epochs": epochs, "num_parameters": 1, "final_test_acc": tests[-1],
              "test_acc_at_best_val": tests[-1], "max_test_acc": max(tests), "best_val_epoch": len(epochs),
              "competition": competition}
    if protocol is not None:  # precision "bf16-all": a record of the first bf16 path (every layer in bf16)
        record["precision"] = {"requested": "auto", "name": precision.split("-")[0], "reason": "test",
                               **({"fp32_below_fan_in": 128} if precision == "bf16" else {})}
    return record


def _write_run(runs: Path, record: dict, variant: str | None = None) -> None:
    """Write ``record`` where ``run_preset`` leaves it: ``runs/<variant>/full-n50000-<recipe>/seed<k>/``."""
    from hebblib.presets import variant_name

    variant = variant or variant_name({"name": record["preset"], "original": record["original"],
                                       "change": record.get("change")})
    seed_dir = runs / variant / f"full-n50000-{record['recipe_hash'] or '0123abcd'}" / f"seed{record['seed']}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    (seed_dir / "results.json").write_text(json.dumps(record))


@pytest.fixture
def table(tmp_path, monkeypatch):
    """The results_table script writing into tmp_path/docs."""
    script = load_script("results_table")
    monkeypatch.setattr(script, "DOCS", tmp_path / "docs")
    monkeypatch.setattr(script, "STORE", tmp_path / "docs" / "results")
    return script


def _row(text: str, start: str, section: str | None = None) -> str:
    if section is not None:
        text = text.split(section, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in text.splitlines() if line.startswith(start)]
    assert len(rows) == 1, rows
    return rows[0]


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip("|").split(" | ")]


HEAD = ["preset", "published", "final", "at best val", "max", "gap", "2std", "seeds", "protocol", "precision",
        "zca", "device", "wall", "command"]


def test_results_table_names_changed_variants_and_measures_backprop_speed(table, tmp_path):
    change = {"hebbian": {"rule": {"theta_init": 0.0}}}
    _write_run(tmp_path / "runs", _record("bcm", 0, 70.0, change=change))
    epochs = [{"epoch": 1, "lr": 1e-3, "train_loss": 1.0, "train_acc": 50.0, "val_acc": 50.0, "test_acc": 60.0,
               "seconds": 500.0},
              {"epoch": 2, "lr": 1e-3, "train_loss": 1.0, "train_acc": 50.0, "val_acc": 50.0, "test_acc": 65.0,
               "seconds": 400.0}]
    _write_run(tmp_path / "runs", _record("backprop", 0, 65.0, published=77.0, normalization="standardize",
                                          epochs=epochs, unsupervised={"images": 0, "seconds": 0.0,
                                                                       "images_per_s": None}))
    table.collect(tmp_path / "runs")
    from hebblib.presets import variant_name
    stored = sorted(p.name for p in (tmp_path / "docs" / "results").glob("*.json"))
    assert stored == ["backprop.json", variant_name({"name": "bcm", "original": False, "change": change}) + ".json"]
    assert stored[1].startswith("bcm-change-")
    table.render()
    text = (tmp_path / "docs" / "results.md").read_text()
    row = _row(text, "| `bcm`")
    assert 'changed: `{"hebbian": {"rule": {"theta_init": 0.0}}}`' in row and "50 img/s Hebbian" in row
    assert """--change '{"hebbian": {"rule": {"theta_init": 0.0}}}'""" in row and "| -5.3 |" in row
    row = _row(text, "| `backprop`")
    assert "100 img/s backprop" in row  # 2 epochs × 45,000 images in 900 s
    assert "| 65.00 |" in row and "| -12.0 |" in row
    assert "/somewhere" not in (tmp_path / "docs" / "results" / "backprop.json").read_text()  # no run folder


def test_three_seeds_give_mean_sample_std_the_gap_and_its_two_std_flag(table, tmp_path):
    import statistics

    for seed, final in enumerate((70.0, 71.0, 73.0)):
        _write_run(tmp_path / "runs", _record("bcm", seed, final, published=75.3))
    for seed, final in enumerate((74.0, 75.0, 77.0)):
        _write_run(tmp_path / "runs", _record("hard_basic", seed, final, published=74.8))
    table.collect(tmp_path / "runs")
    table.render()
    text = (tmp_path / "docs" / "results.md").read_text()
    cells = dict(zip(HEAD, _cells(_row(text, "| `bcm`"))))
    std = statistics.stdev([70.0, 71.0, 73.0])  # n − 1: 1.53 (the population std would be 1.25)
    assert cells["final"] == f"71.33 ± {std:.2f}" == "71.33 ± 1.53"
    assert cells["gap"] == "-4.0" and cells["2std"] == "yes"  # |−3.97| > 3.06
    assert cells["seeds"] == "3 (0, 1, 2)" and cells["protocol"] == "v2" and cells["precision"] == "bf16"
    assert cells["zca"] == "train (45,000)"
    assert cells["command"] == ("`python -m hebblib reproduce --preset bcm --seeds 3 --source full --data ROOT "
                                "--precision bf16`")
    cells = dict(zip(HEAD, _cells(_row(text, "| `hard_basic`"))))
    assert cells["final"] == "75.33 ± 1.53" and cells["gap"] == "+0.5" and cells["2std"] == "no"
    assert "(n − 1 in the denominator)" in text


def test_the_zca_column_names_the_v1_fit_when_a_v2_run_asks_for_it():
    from hebblib.results import zca_fit

    assert zca_fit(_record("hard_basic", 0, 74.6)) == "train (45,000)"
    record = _record("hard_basic", 0, 74.6, change={"data": {"zca_fit": "train_and_val"}})
    assert zca_fit(record) == "train+val (50,000)"  # a stored record: its change says it
    record = _record("hard_basic", 0, 74.6)
    record["config"] = {"data": {"normalization": "zca", "zca_fit": "train_and_val"}}
    assert zca_fit(record) == "train+val (50,000)"  # a run's own record: its recipe says it


def test_runs_of_the_first_bf16_path_are_a_group_of_their_own(table):
    """bf16 records without ``fp32_below_fan_in`` (every layer was bf16 then) are labelled so and never
    averaged with runs of today's bf16 path; their command says which --precision it was."""
    from hebblib.results import group_runs

    records = [_record("bcm", 0, 73.0, precision="bf16-all"), _record("bcm", 1, 74.0, precision="bf16-all"),
               _record("bcm", 2, 75.0, precision="bf16")]
    groups = group_runs(records)
    assert sorted((g["precision"], g["n"]) for g in groups) == [("bf16", 1), ("bf16 (all layers)", 2)]
    old = next(g for g in groups if g["n"] == 2)
    assert table.command(old).endswith("--precision bf16` (with the code of its day: bf16 in every layer)")


def test_one_seed_shows_no_spread_and_no_two_std_verdict(table, tmp_path):
    _write_run(tmp_path / "runs", _record("bcm", 1, 72.0))
    table.collect(tmp_path / "runs")
    table.render()
    cells = dict(zip(HEAD, _cells(_row((tmp_path / "docs" / "results.md").read_text(), "| `bcm`"))))
    assert cells["final"] == "72.00" and "±" not in cells["at best val"] + cells["max"]
    assert cells["2std"] == "n/a" and cells["seeds"] == "1 (1)" and cells["gap"] == "-3.3"
    assert "--first-seed 1 --seeds 1 --source full" in cells["command"]


def test_seeds_are_grouped_only_within_protocol_precision_and_recipe(table, tmp_path, capsys):
    """The committed one-seed row of the old protocol stays in the file and moves to the history; fp32 and
    bf16 seeds, and seeds of another recipe, are separate rows; nothing is averaged across them."""
    store = tmp_path / "docs" / "results"
    store.mkdir(parents=True)
    old = _record("bcm", 0, 73.07, protocol=None)
    legacy = {k: old[k] for k in ("preset", "original", "published", "source", "data")}
    legacy.update({"seeds": [0], "final_test_acc": {"mean": 73.07, "std": 0.0, "values": [73.07]},
                   "runs": [{k: old[k] for k in ("seed", "device", "torch_version", "timings_s", "unsupervised",
                                                 "final_test_acc", "test_acc_at_best_val", "max_test_acc",
                                                 "best_val_epoch", "epochs", "num_parameters")}]})
    (store / "bcm.json").write_text(json.dumps(legacy))  # the format committed before protocol versions
    runs = tmp_path / "runs"
    for seed, final in enumerate((70.0, 72.0)):
        _write_run(runs, _record("bcm", seed, final))                                      # v2, bf16
    _write_run(runs, _record("bcm", 0, 60.0, precision="fp32", recipe="fp32fp32"))        # v2, fp32
    _write_run(runs, _record("bcm", 2, 50.0, recipe="99999999"), variant="bcm")          # another recipe
    _write_run(runs, {**_record("bcm", 0, 10.0, protocol=None), "recipe_hash": "01d01d01"})  # v1, left out
    table.collect(runs)
    assert "left out 1 finished run(s) of earlier protocols" in capsys.readouterr().out
    stored = json.loads((store / "bcm.json").read_text())
    assert len(stored["runs"]) == 5 and sum(r["final_test_acc"] == 73.07 for r in stored["runs"]) == 1
    table.render()
    text = (tmp_path / "docs" / "results.md").read_text()
    main = text.split("## History")[0]
    rows = [dict(zip(HEAD, _cells(line))) for line in main.splitlines() if line.startswith("| `bcm`")]
    assert sorted((r["final"], r["precision"], r["seeds"]) for r in rows) == [
        ("50.00", "bf16", "1 (2)"), ("60.00", "fp32", "1 (0)"), ("71.00 ± 1.41", "bf16", "2 (0, 1)")]
    history = dict(zip(HEAD, _cells(_row(text, "| `bcm`", "## History"))))
    assert history["final"] == "73.07" and history["protocol"] == "v1 (old)" and history["2std"] == "n/a"
    assert history["zca"] == "train+val (50,000)" and history["precision"] == "fp32"
    assert history["command"] == "`python -m hebblib reproduce --preset bcm --data ROOT`"
    # collecting the same runs again changes nothing; a seed run again replaces its earlier copy
    table.collect(runs)
    assert json.loads((store / "bcm.json").read_text()) == stored
    _write_run(runs, _record("bcm", 1, 74.0))
    table.collect(runs)
    table.render()
    assert "| 72.00 ± 2.83 |" in (tmp_path / "docs" / "results.md").read_text()


def test_a_variant_without_current_seeds_keeps_its_old_row_in_the_main_table(table, tmp_path):
    store = tmp_path / "docs" / "results"
    store.mkdir(parents=True)
    (store / "temporal.json").write_text(json.dumps(
        {"preset": "temporal", "original": False, "published": 74.6, "source": "README",
         "runs": [{k: v for k, v in _record("temporal", 0, 74.73, published=74.6, protocol=None).items()}]}))
    table.render()
    text = (tmp_path / "docs" / "results.md").read_text()
    assert "## History" not in text
    cells = dict(zip(HEAD, _cells(_row(text, "| `temporal`"))))
    assert cells["protocol"] == "v1 (old)" and cells["final"] == "74.73" and cells["2std"] == "n/a"


def test_collect_keeps_the_competition_diagnostics_and_render_tabulates_them(table, tmp_path):
    def competition(entropy):
        layer = {"units": 4, "sites": 80, "win_entropy": entropy, "effective_units": 2.0, "max_win_rate": 0.5,
                 "dead_never_win": 2, "never_active": 1, "radius_p": 2.0, "radius_mean": 1.5, "radius_std": 0.25,
                 "radius_min": 1.0, "radius_max": 2.0}
        return {"evaluation": {"images": 1000}, "layers": {"conv1": layer, "conv2": {**layer, "never_active": None}}}

    for seed, entropy in enumerate((0.5, 0.7)):
        _write_run(tmp_path / "runs", _record("soft", seed, 76.0 + seed, published=79.2,
                                              competition=competition(entropy)))
    table.collect(tmp_path / "runs")
    stored = json.loads((tmp_path / "docs" / "results" / "soft.json").read_text())
    assert [r["competition"]["layers"]["conv1"]["win_entropy"] for r in stored["runs"]] == [0.5, 0.7]
    table.render()
    row = _row((tmp_path / "docs" / "results.md").read_text(), "| `soft`", "## Competition")
    assert _cells(row)[3:] == ["conv1 / conv2", "4 / 4", "0.600 / 0.600", "2.0 / 2.0", "1.0 / —",
                               "1.50 ± 0.25 / 1.50 ± 0.25"]


def test_group_runs_against_an_independent_mean_and_sample_std():
    import statistics

    from hebblib.results import group_runs, published_gap

    values = [71.2, 70.4, 72.9]
    groups = group_runs([_record("bcm", s, v) for s, v in enumerate(values)])
    (group,) = groups
    assert group["final_test_acc"]["mean"] == pytest.approx(statistics.mean(values))
    assert group["final_test_acc"]["std"] == pytest.approx(statistics.stdev(values))
    assert group["gap"] == pytest.approx(statistics.mean(values) - 75.3) and group["gap_beyond_2std"] is True
    assert published_gap({"mean": 75.0, "std": 0.2, "values": [74.8, 75.2]}, 75.3)["gap_beyond_2std"] is False
    assert published_gap({"mean": 75.0, "std": 0.0, "values": [75.0]}, 70.0)["gap_beyond_2std"] is None
    assert published_gap({"mean": 75.0, "std": 0.0, "values": [75.0, 75.0]}, None) == {"gap": None,
                                                                                       "gap_beyond_2std": None}
    with pytest.raises(ValueError, match="seed repeated"):
        group_runs([_record("bcm", 0, 70.0), _record("bcm", 0, 71.0)])


def test_chapters_print_the_current_protocols_mean_and_std_or_one_labelled_seed(table, tmp_path, monkeypatch,
                                                                                 capsys):
    """hebblib.notebook.report_committed_preset, which the chapters call, reads what collect wrote."""
    from hebblib import results
    from hebblib.notebook import report_committed_preset

    monkeypatch.setattr(results, "measured_results_dir", lambda: tmp_path / "docs" / "results")
    store = tmp_path / "docs" / "results"
    store.mkdir(parents=True)
    (store / "bcm.json").write_text(json.dumps({"preset": "bcm", "original": False, "published": 75.3,
                                                "runs": [_record("bcm", 0, 73.07, protocol=None)]}))
    report_committed_preset("bcm", 75.3, "README")
    line = capsys.readouterr().out.strip()
    assert "committed full-data run (one seed)" in line and "measured 73.1%" in line and "±" not in line
    assert "old protocol v1, ZCA fitted on train+val (50,000) images" in line
    runs = tmp_path / "runs"
    _write_run(runs, _record("bcm", 0, 72.0))
    table.collect(runs)
    report_committed_preset("bcm", 75.3, "README")
    line = capsys.readouterr().out.strip()  # the current protocol's one seed, not the old one
    assert "(one seed)" in line and "measured 72.0%" in line and "protocol v2, bf16" in line and "old" not in line
    for seed, final in ((1, 70.0), (2, 73.0)):
        _write_run(runs, _record("bcm", seed, final))
    table.collect(runs)
    full = results.full_data_accuracy("bcm")
    assert (full["seeds"], full["current"], full["final"]) == (3, True, pytest.approx(71.6667, abs=1e-4))
    report_committed_preset("bcm", 75.3, "README")
    line = capsys.readouterr().out.strip()
    assert "committed full-data runs (3 seeds)" in line
    assert "measured 71.7 ± 1.5% (mean ± sample std of 3 seeds)" in line  # stdev(72, 70, 73) = 1.53
    assert "difference of the mean -3.6 points" in line and "published 75.3% (README)" in line
    assert "± 0.0" not in line


def test_seed_runs_runs_presets_by_seeds_skips_finished_and_resumes_interrupted(tmp_path, monkeypatch, capsys):
    script = load_script("seed_runs")
    assert script.SEEDS == (0, 1, 2) and "optimal-original" in script.SEED_PRESETS
    out, log = tmp_path / "runs", tmp_path / "seed.log"
    argv = ["lagani_short", "--seeds", "0", "2", "--quick", "--limit-train", "256", "--limit-test", "200",
            "--epochs", "1", "--change", '{"model": {"width_factor": 0.25}}', "--threads", "1", "--out", str(out),
            "--log", str(log), "--no-collect"]
    assert script.main(argv) == 0
    results = {int(p.parent.name[4:]): json.loads(p.read_text()) for p in out.glob("*/*/seed*/results.json")}
    assert sorted(results) == [0, 2] and all(r["complete"] for r in results.values())
    assert {r["device"] for r in results.values()} == {"cpu (1 threads)"}  # --threads reached the runs
    text = log.read_text()
    assert text.count("start lagani_short seed") == 2 and "0 finished earlier, 2 run now, 0 failed" in text
    # run again: nothing starts
    monkeypatch.setattr(script.subprocess, "run", lambda *a, **k: pytest.fail("a finished run was started again"))
    assert script.main(argv) == 0
    assert "skip lagani_short seed 2: finished earlier" in log.read_text()
    # an interrupted run (its Hebbian checkpoint written, no results) goes on from the checkpoint
    monkeypatch.undo()
    (next(out.glob("*/*/seed2")) / "results.json").unlink()
    assert script.main(argv) == 0
    text = log.read_text()
    assert "1 finished earlier, 1 run now, 0 failed" in text and "Hebbian phase resumed from its checkpoint" in text
    again = json.loads(next(out.glob("*/*/seed2/results.json")).read_text())
    assert again["final_test_acc"] == results[2]["final_test_acc"]


def test_seed_runs_rejects_an_unknown_preset_and_bad_threads(capsys):
    script = load_script("seed_runs")
    with pytest.raises(SystemExit) as exit_info:
        script.main(["sofft", "--no-collect"])
    assert exit_info.value.code == 2 and "unknown preset 'sofft'; valid: " in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        script.main(["soft", "--threads", "0", "--no-collect"])
    assert exit_info.value.code == 2 and "--threads must be >= 1, got 0" in capsys.readouterr().err


def _competition(entropy: float, never_active=1) -> dict:
    layer = {"units": 4, "sites": 80, "win_entropy": entropy, "effective_units": 2.0, "max_win_rate": 0.5,
             "dead_never_win": 2, "never_active": never_active, "radius_p": 2.0, "radius_mean": 1.5,
             "radius_std": 0.25, "radius_min": 1.0, "radius_max": 2.0}
    return {"evaluation": {"images": 1000}, "layers": {"conv1": layer, "conv2": {**layer, "never_active": None}}}


def test_diagnostics_figure_draws_the_presets_that_have_diagnostics(tmp_path, capsys):
    import numpy as np

    from hebblib.results import group_runs

    script = load_script("diagnostics_figure")
    store = tmp_path / "results"
    store.mkdir()
    soft = [_record("soft", s, 76.0, published=79.2, competition=_competition(e)) for s, e in ((0, 0.5), (1, 0.7))]
    (store / "soft.json").write_text(json.dumps({"preset": "soft", "original": False, "runs": soft}))
    (store / "bcm.json").write_text(json.dumps({"preset": "bcm", "original": False,
                                                "runs": [_record("bcm", 0, 73.0, protocol=None)]}))
    series = script.series(group_runs(soft)[0])
    np.testing.assert_allclose(series["win_entropy"][0], [0.6, 0.6])
    np.testing.assert_allclose(series["win_entropy"][1], [np.std([0.5, 0.7], ddof=1)] * 2)
    np.testing.assert_allclose(series["dead_never_win"][0], [0.5, 0.5])  # 2 of 4 units
    assert series["never_active"][0][0] == 0.25 and np.isnan(series["never_active"][0][1])
    out = tmp_path / "fig.png"
    assert script.main(["--store", str(store), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "1 preset row(s)" in capsys.readouterr().out  # bcm: an old-protocol record, not drawn
    with pytest.raises(SystemExit, match="no run with competition diagnostics found"):
        script.main(["--store", str(store), "--out", str(out), "--all-protocols", "--runs", str(tmp_path / "none")])


def test_collect_leaves_out_reduced_runs_and_names_a_changed_classifier_length(table, tmp_path, capsys):
    runs = tmp_path / "runs"
    reduced = _record("bcm", 0, 60.0)
    reduced["data"] = {**reduced["data"], "n_train": 1800, "n_val": 200}
    _write_run(runs, reduced)
    short = {**_record("optimal", 0, 70.0, published=76.0, recipe="5e5e5e5e"),
             "config": {"supervised": {"epochs": 20}}, "supervised": {"epochs": 5}}
    _write_run(runs, short)
    assert table.collect(runs) == ["optimal"]
    assert "left out 1 finished run(s) on part of the data" in capsys.readouterr().out
    table.render()
    cells = dict(zip(HEAD, _cells(_row((tmp_path / "docs" / "results.md").read_text(), "| `optimal`"))))
    assert cells["command"] == ("`python -m hebblib reproduce --preset optimal --epochs 5 --source full "
                                "--data ROOT --precision bf16`")


def test_chapters_report_fp32_before_bf16_at_equal_seeds_and_name_the_dataset(table, tmp_path, monkeypatch, capsys):
    from hebblib import results
    from hebblib.notebook import report_full_data

    monkeypatch.setattr(results, "measured_results_dir", lambda: tmp_path / "docs" / "results")
    runs = tmp_path / "runs"
    for seed, (bf16, fp32) in enumerate(((75.5, 76.3), (75.6, 76.1))):
        _write_run(runs, _record("soft", seed, bf16, precision="bf16", recipe="bbbb"))
        _write_run(runs, _record("soft", seed, fp32, precision="fp32", recipe="ffff"))
    _write_run(runs, _record("soft", 2, 75.4, precision="bf16", recipe="bbbb"))
    table.collect(runs)
    full = results.full_data_accuracy("soft")
    assert (full["precision"], full["seeds"]) == ("bf16", 3)  # more seeds first
    _write_run(runs, _record("soft", 2, 76.0, precision="fp32", recipe="ffff"))
    table.collect(runs)
    full = results.full_data_accuracy("soft")
    assert (full["precision"], full["seeds"], full["dataset"]) == ("fp32", 3, "cifar10")  # then the default, fp32
    report_full_data("soft", full, 79.2)
    assert "on all of CIFAR-10" in capsys.readouterr().out
    report_full_data("soft", {**full, "dataset": "fashion_mnist"}, None)
    line = capsys.readouterr().out
    assert "on all of Fashion-MNIST" in line and "CIFAR-10" not in line


def test_flip_averaging_section_sets_each_head_beside_its_one_view(table, tmp_path):
    def epochs(averaged, plain, val_averaged, val_plain):
        return [{"epoch": i + 1, "lr": 1e-3, "train_loss": 1.0, "train_acc": 50.0, "val_acc": va, "test_acc": a,
                 "val_acc_plain": vp, "test_acc_plain": p}
                for i, (a, p, va, vp) in enumerate(zip(averaged, plain, val_averaged, val_plain))]

    # seed 0: averaged test 80 / 81 (final), one view 79 / 79.5; the one view's best val is epoch 1
    _write_run(tmp_path / "runs", _record("softhebb_flip", 0, 81.0, published=80.3,
                                          epochs=epochs((80.0, 81.0), (79.0, 79.5), (80.0, 82.0), (81.0, 80.0))))
    _write_run(tmp_path / "runs", _record("softhebb_flip", 1, 82.0, published=80.3,
                                          epochs=epochs((81.0, 82.0), (80.0, 80.5), (80.0, 82.0), (79.0, 80.0))))
    _write_run(tmp_path / "runs", _record("bcm", 0, 73.0))  # no flip averaging: no row there
    table.collect(tmp_path / "runs")
    table.render()
    text = (tmp_path / "docs" / "results.md").read_text()
    section = text.split("## Flip averaging", 1)[1].split("\n## ", 1)[0]
    cells = _cells(_row(section, "| `softhebb_flip`"))
    assert cells[2:] == ["2", "81.50 ± 0.71", "80.00 ± 0.71", "81.50 ± 0.71", "79.75 ± 1.06", "1.50 ± 0.00"]  # (79.0, 80.5)
    assert "`bcm`" not in section


def _finished_quick_run(tmp_path, name: str, supervised_epochs: int) -> dict:
    """A finished quick run of ``name`` at a quarter of its width (256 training, 200 test images)."""
    from hebblib import training
    from hebblib.presets import get_preset

    preset = get_preset(name)
    preset["model"]["width_factor"] = 0.25
    return training.run_preset(preset, out=tmp_path, quick=True, limit_train=256, limit_test=200,
                               supervised_epochs=supervised_epochs, progress=False)


def test_feature_precision_reproduces_a_run_in_its_own_precision(tmp_path):
    """scripts/feature_precision.py reruns a finished run's features and classifier on its trained Hebbian
    weights: in the run's own precision it must give the run's own numbers."""
    result = _finished_quick_run(tmp_path, "lagani_short", supervised_epochs=2)
    script = load_script("feature_precision")
    row = script.measure(Path(result["run_dir"]), "fp32")
    assert row["final_test_acc"] == result["final_test_acc"] and row["feature_precision"] == "fp32"
    assert row["test_acc_at_best_val"] == result["test_acc_at_best_val"]
    assert script.measure(Path(result["run_dir"]), "bf16")["feature_precision"] == "bf16"


def test_feature_precision_keeps_named_layers_in_fp32_and_names_bad_ones(tmp_path):
    result = _finished_quick_run(tmp_path, "soft", supervised_epochs=1)
    script = load_script("feature_precision")
    # every layer kept in fp32 inside a bf16 pass: the fp32 numbers again
    row = script.measure(Path(result["run_dir"]), "bf16", keep_fp32=("conv1", "conv2", "conv3"))
    assert row["final_test_acc"] == result["final_test_acc"] and row["fp32_layers"] == ["conv1", "conv2", "conv3"]
    with pytest.raises(ValueError, match="--fp32-layers conv9: no such Hebbian layer; valid names: conv1, conv2, conv3"):
        script.measure(Path(result["run_dir"]), "bf16", keep_fp32=("conv9",))

    errors = {tuple(r["bf16_layers"]): r["relative_error"]
              for r in load_script("bf16_layer_error").measure(Path(result["run_dir"]), images=20)}
    assert len(errors) == 7 and all(e > 0 for e in errors.values())  # conv1 too: the script sets the floor aside
    assert errors[("conv1", "conv2", "conv3")] > errors[("conv3",)]
    from hebblib import layers, update
    assert layers.BF16_MIN_FAN_IN == update.BF16_MIN_FAN_IN == 128  # restored after the script


def test_flip_average_script_reproduces_the_runs_one_view_accuracy(tmp_path):
    result = _finished_quick_run(tmp_path, "lagani_short", supervised_epochs=2)
    script = load_script("flip_average")
    row = script.measure(Path(result["run_dir"]))  # the run's own data source: the shipped subset here
    assert row["plain_matches_run"] and 0 <= row["test_acc_flip_average"] <= 100


def test_seed_runs_passes_compile_to_each_run_and_finds_its_own_folder():
    script = load_script("seed_runs")
    args = script.build_parser().parse_args(["soft", "--compile", "--source", "full"])
    assert script.command("soft", False, args, 1)[-1] == "--compile"
    assert script.run_options(args, 1)["compile"] is True
    plain = script.build_parser().parse_args(["soft", "--source", "full"])
    assert "--compile" not in script.command("soft", False, plain, 1) and "compile" not in script.run_options(plain, 1)


def test_temporal_median_benchmark_reports_equal_values(capsys):
    bench = load_script("bench_temporal_median", BENCHMARKS)
    assert bench.main(["--window", "5", "--batch", "2", "--rounds", "1", "--dtype", "fp32", "--steps", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = lines[2:5]
    assert [row.split()[0] for row in rows] == ["conv1", "conv2", "conv3"]
    assert all(row.split()[4] == "True" for row in rows)  # the column that compares the two medians
    assert len(lines) == 6 and lines[5].startswith("whole Hebbian step of temporal, batch 2")


def test_peak_trace_prints_every_probe_and_rejects_bad_settings(capsys):
    trace = load_script("peak_trace", BENCHMARKS)
    assert trace.main(["--dtype", "fp32", "--threads", "1", "--seconds", "0.01", "--pause", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("CPU:") and lines[1].startswith("fp32: 1 probes, GFLOP/s min ")
    assert len(lines[2].split()) == 1 and float(lines[2]) > 0  # the probes, one number each
    with pytest.raises(SystemExit):
        trace.main(["--seconds", "0"])
    assert "--seconds > 0" in capsys.readouterr().err


def test_profile_step_prints_the_step_and_the_products_share(capsys):
    profile_step = load_script("profile_step", BENCHMARKS)
    assert profile_step.main(["--eager", "--precision", "bf16", "--batch", "16", "--batches", "2", "--warmup", "1",
                              "--threads", "1", "--rows", "5"]) == 0
    out = capsys.readouterr().out
    assert "soft train, bf16, eager, batch 16:" in out and " img/s" in out
    assert "matrix products:" in out and "aten::mm" in out  # soft's conv2 and conv3 form bf16 products as mm
    with pytest.raises(SystemExit):
        profile_step.main(["--batches", "0"])
    assert "--batches must be >= 1, got 0" in capsys.readouterr().err


def test_bf16_emulation_bench_prints_the_three_kinds_and_rejects_bad_settings(capsys):
    script = load_script("bench_bf16_emulation", BENCHMARKS)
    from hebblib import update
    before = update.bf16_products
    assert script.main(["--sizes", "32", "64", "--native-up-to", "32", "--repeats", "1", "--threads", "1"]) == 0
    assert update.bf16_products == before  # restored
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("CPU:") and "bf16 products by default:" in lines[0]
    small, large = lines[2].split(), lines[3].split()
    assert small[0] == "32" and all(float(v) > 0 for v in small[1:4])
    assert large[0] == "64" and large[2] == "(skipped)" and float(large[3]) > 0
    with pytest.raises(SystemExit):
        script.main(["--sizes", "0"])
    assert "--sizes, --repeats and --threads must be >= 1" in capsys.readouterr().err


def test_results_table_names_the_cpu_of_the_seeds_that_recorded_it(table, tmp_path):
    # an older seed without the CPU says only its device; a newer one names model and speed flags
    _write_run(tmp_path / "runs", _record("bcm", 0, 70.0))
    _write_run(tmp_path / "runs", {**_record("bcm", 1, 71.0),
                                   "cpu": {"model": "AMD EPYC", "flags": ["avx2", "fma"]}})
    table.collect(tmp_path / "runs")
    stored = json.loads(next((tmp_path / "docs" / "results").glob("bcm*.json")).read_text())
    assert [run.get("cpu") for run in stored["runs"]] == [None, {"model": "AMD EPYC", "flags": ["avx2", "fma"]}]
    table.render()
    device = _cells(_row((tmp_path / "docs" / "results.md").read_text(), "| `bcm`"))[HEAD.index("device")]
    assert device == "cpu (2 threads); cpu (2 threads) on AMD EPYC (avx2 fma)"


def test_probe_parts_bench_times_each_pair_and_rejects_bad_settings(capsys):
    parts = load_script("bench_probe_parts", BENCHMARKS)
    assert parts.main(["--threads", "1", "--rounds", "1", "--reps", "1", "--width", "40"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "; 1 thread(s); allocator " in lines[0] and lines[0].endswith("; 1 rounds")
    assert [line.split(" before")[0].strip() for line in lines[1:]] == ["dropout of a batch", "Adam step",
                                                                      "scoring 15,000 rows"]
    assert all(line.endswith("x") and float(line.split()[-1][:-1]) > 0 for line in lines[1:])
    with pytest.raises(SystemExit):
        parts.main(["--reps", "0"])
    assert "--reps must be >= 1, got 0" in capsys.readouterr().err


def test_frozen_features_bench_times_three_ways_and_rejects_bad_settings(capsys, tmp_path):
    bench = load_script("bench_frozen_features", BENCHMARKS)
    assert bench.main(["--threads", "1", "--rounds", "1", "--images", "6", "--batch", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "; 1 thread(s); allocator " in lines[0] and "6 subset test images in batches of 4" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["channels-first", "channels-last", "default"]
    assert lines[1].split()[3] == "1.00x"
    distances = [float(line.split()[-1]) for line in lines[1:]]
    assert all(0 < d < 1e-5 for d in distances)  # fp32 against the float64 blocks: each way computes them
    for argv, message in ((["--images", "0"], "--images must be >= 1, got 0"),
                          (["--preset", "depthwise"], "--preset depthwise: its network has blocks other than"),
                          (["--checkpoint", str(tmp_path / "missing.pt")], "missing.pt: no such file")):
        with pytest.raises(SystemExit):
            bench.main(argv)
        assert message in capsys.readouterr().err
