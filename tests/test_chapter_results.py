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

    from hebblib.chapters.ch11_depthwise import print_full_figure

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
