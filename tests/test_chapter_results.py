"""Committed full-data figures of the chapters' own experiments (docs/results/chapters/), and the committed
preset figures the saved notebooks show."""
import json
import re
from pathlib import Path

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


# ----- the committed notebooks show the committed figures ----------------------------------------------------
# nbval runs in lax mode (pyproject.toml), so an output saved in a notebook is not compared with a new run: a
# chapter built before a new seed was collected would go on showing the old figure to whoever opens it.
COMMITTED = re.compile(r"committed full-data runs? \((?:one seed|(\d+) seeds)\), final epoch: measured ([\d.]+)")
COMMITTED_FILE = re.compile(r"(docs/results/[\w.-]+\.json)\s*$")


def notebook_output_lines(path: Path) -> list[str]:
    """Every line of the saved text outputs (streams and plain-text results) of a notebook."""
    lines = []
    for cell in json.loads(path.read_text())["cells"]:
        for output in cell.get("outputs", []):
            text = output.get("text", output.get("data", {}).get("text/plain", ""))
            lines += "".join(text).splitlines()
    return lines


def stale_committed_lines(lines: list[str], directory: Path) -> list[str]:
    """The lines of :func:`hebblib.notebook.report_full_data` among ``lines`` whose seed count, final-epoch
    figure or protocol differ from the headline group of their ``docs/results`` file in ``directory`` (the
    repository's parent folder of ``docs/``), each with what it should say."""
    stale = []
    for line in lines:
        found, file = COMMITTED.search(line), COMMITTED_FILE.search(line)
        if not found or not file:
            continue
        stored = results.read_json(directory / file.group(1))
        group = results.headline_group(results.stored_groups(stored)) if stored else None
        if group is None:
            stale.append(f"{line}\n  -> {file.group(1)} has no runs")
            continue
        seeds, shown = int(found.group(1) or 1), found.group(2)
        final = f"{group['final_test_acc']['mean']:.1f}"
        protocol = (f"protocol v{group['protocol']}, {group['precision']}; " if group["current"] else
                    f"old protocol v{group['protocol']}, ")
        if (seeds, shown) != (group["n"], final) or protocol not in line:
            stale.append(f"{line}\n  -> now {group['n']} seed(s), {final} %, {protocol.strip('; ,')}")
    return stale


def test_committed_notebooks_show_the_committed_figures():
    """Rebuild the chapters named here (scripts/build_notebooks.py NN) after collecting new runs."""
    root = Path(__file__).resolve().parents[1]
    checked, stale = 0, []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        lines = notebook_output_lines(path)
        checked += sum(bool(COMMITTED.search(line)) for line in lines)
        stale += [f"{path.name}: {s}" for s in stale_committed_lines(lines, root)]
    assert checked >= 20, f"only {checked} committed full-data lines found in the notebooks' outputs"
    assert not stale, "chapters showing an older committed figure:\n" + "\n".join(stale)


def test_a_stale_committed_line_is_found(tmp_path):
    """A real committed file (dale's) copied and cut to one seed: the right line passes, a line with another
    figure, seed count or protocol is reported."""
    stored = results.read_json(results.measured_results_dir() / "dale.json")
    stored["runs"] = [dict(run, final_test_acc=70.04) for run in stored["runs"] if run["seed"] == 0
                      and results.run_protocol(run) == results.PROTOCOL_VERSION]
    assert len(stored["runs"]) == 1
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "x.json").write_text(json.dumps(stored))
    group = results.headline_group(results.stored_groups(stored))
    tail = f"; protocol v{group['protocol']}, {group['precision']}; docs/results/x.json"
    right = "x on all of CIFAR-10, committed full-data run (one seed), final epoch: measured 70.0% | max" + tail
    assert stale_committed_lines([right, "unrelated output"], tmp_path) == []
    for wrong in (right.replace("measured 70.0", "measured 69.9"),
                  right.replace("run (one seed)", "runs (3 seeds)"),
                  right.replace(f"protocol v{group['protocol']}", "old protocol v1")):
        assert len(stale_committed_lines([wrong], tmp_path)) == 1, wrong
