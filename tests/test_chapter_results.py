"""Committed full-data figures of the chapters' own experiments (docs/results/chapters/)."""
import hebblib.results as results
from hebblib.notebook import print_full_result


def test_chapter_result_round_trip_and_printing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(results, "chapter_results_dir", lambda: tmp_path)
    print_full_result("ch06_krotov_one_layer", "one Krotov layer", 66.21, "Manzali")
    assert "not measured yet (python scripts/chapter_full.py ch06)" in capsys.readouterr().out
    record = {"setting": "1 Hebbian epoch", "final_test_acc": 61.25, "device": "cpu", "wall_s": 1800.0}
    path = results.save_chapter_result("ch06_krotov_one_layer", record)
    assert path == tmp_path / "ch06_krotov_one_layer.json"
    assert results.chapter_result("ch06_krotov_one_layer") == record
    print_full_result("ch06_krotov_one_layer", "one Krotov layer", 66.21, "Manzali")
    out = capsys.readouterr().out
    assert "measured 61.2%" in out or "measured 61.3%" in out
    assert "published 66.2%" in out and "difference -5.0 points" in out and "30 min" in out


def test_chapters_11_13_print_the_committed_preset_figure(tmp_path, monkeypatch, capsys):
    import json

    from hebblib.experiments import print_full_figure

    monkeypatch.setattr(results, "measured_results_dir", lambda: tmp_path)
    print_full_figure("depthwise")
    assert "depthwise on all of CIFAR-10 (committed in docs/results): full-data figure not measured yet" in \
        capsys.readouterr().out
    summary = {"preset": "depthwise", "seeds": [0], "final_test_acc": {"mean": 70.5}, "max_test_acc": {"mean": 71.2},
               "test_acc_at_best_val": {"mean": 70.1}}
    (tmp_path / "depthwise.json").write_text(json.dumps(summary))
    print_full_figure("depthwise")
    out = capsys.readouterr().out
    assert "measured 70.5%" in out and "published 72.0%" in out and "difference -1.5 points" in out
    assert "max over epochs 71.2, at the best validation epoch 70.1" in out


def test_chapter13_prints_the_true_and_the_per_tap_cosine_runs(tmp_path, monkeypatch, capsys):
    import json

    from hebblib.chapters.ch13_dale import print_cosine_full_figures

    monkeypatch.setattr(results, "measured_results_dir", lambda: tmp_path)
    summary = {"preset": "dale_thesis", "seeds": [0], "final_test_acc": {"mean": 65.0},
               "max_test_acc": {"mean": 65.5}, "test_acc_at_best_val": {"mean": 64.9}}
    (tmp_path / "dale_thesis.json").write_text(json.dumps(summary))
    assert print_cosine_full_figures() is None  # no gain line while the per-tap run is missing
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("dale_thesis on all of CIFAR-10, committed full-data run")
    assert "measured 65.0%" in lines[0] and "published 62.0%" in lines[0] and "difference +3.0 points" in lines[0]
    assert lines[1] == ("dale_thesis --original on all of CIFAR-10 (committed in docs/results): "
                        "full-data figure not measured yet")
    (tmp_path / "dale_thesis-original.json").write_text(json.dumps({**summary, "final_test_acc": {"mean": 61.5}}))
    print_cosine_full_figures()
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("dale_thesis --original on all of CIFAR-10, committed full-data run")
    assert "measured 61.5%" in lines[1] and "difference -0.5 points" in lines[1]
    assert "docs/results/dale_thesis-original.json" in lines[1]
    assert lines[2] == ("· the true cosine's gain on all of CIFAR-10: 65.00 − 61.50 = +3.5 points (final epoch, "
                        "1 seed each)")
    assert print_cosine_full_figures() == 3.5  # true minus per-tap, not the other way round


def test_committed_difference_is_first_minus_second_with_what_backs_it():
    from hebblib.notebook import committed_difference

    three = {"seeds": 3, "final": 75.0, "final_std": 0.25}
    other = {"seeds": 3, "final": 72.5, "final_std": 0.5}
    assert committed_difference(three, other) == (2.5, "3 seeds each, spreads ± 0.25 and ± 0.50")
    assert committed_difference(other, three)[0] == -2.5
    one = {"seeds": 1, "final": 74.0, "final_std": None}
    assert committed_difference(three, one) == (1.0, "means of 3 and 1 seed: a rough comparison")
    assert committed_difference(one, one) == (0.0, "1 seed each")
