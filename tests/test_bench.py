"""The benchmark runs end to end on the shipped subset and reports every path, window and layer (no timing
assertions: CI checks that the numbers exist and relate as defined, not how fast anything is)."""
from __future__ import annotations

import warnings

import pytest
import torch

from hebblib import bench as bench_module
from hebblib.bench import PATHS, WINDOWS, bench, format_report, measured_peak, slow_dtypes, subnormals
from hebblib.runtime import denormals_flushed


@pytest.fixture(scope="module")
def report():
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bench("soft", device="cpu", quick=True, batches=1, batch_size=16, rounds=1, warm_batches=1,
                       classifier_epochs=1, print_fn=lines.append)
    return result, "\n".join(lines)


def test_every_path_and_window_is_measured_against_the_naive_baseline(report):
    result, _ = report
    for window in WINDOWS:
        rows = result["unsupervised"][window]
        assert list(rows) == result["paths"] == [p for p in PATHS if p not in result["left_out"]]
        assert rows["naive"]["speedup"] == 1.0
        for path, row in rows.items():
            assert row["img_s"] > 0
            assert row["speedup"] == pytest.approx(row["img_s"] / rows["naive"]["img_s"])
            assert row["peak_dtype"] == ("bf16" if path == "bf16" else "fp32")  # the peak of the dtype used
            peak = result["peak_flop_s"][row["peak_dtype"]]
            assert row["fraction_of_peak"] == pytest.approx(row["flop_s"] / peak)
            # the fastest round is at least the mean of the rounds, and the peak the fastest of its probes
            assert row["best_img_s"] >= row["img_s"] * (1 - 1e-9)
            assert row["best_fraction_of_peak"] == pytest.approx(row["best_img_s"] * result["flops_per_image"] / peak)
            assert peak == max(result["peak_probes_flop_s"][row["peak_dtype"]])
            assert set(row["layers"]) == {"conv1", "conv2", "conv3"}
            assert all(t["forward"] > 0 and t["update"] > 0 for t in row["layers"].values())


def test_the_report_says_what_ran_where(report):
    result, text = report
    assert result["default_path"] == ("bf16" if result["precision"]["name"] == "bf16" else "fp32+ftz+patches")
    assert result["precision"]["requested"] == "fp32" and result["precision"]["reason"]
    assert result["threads"] == torch.get_num_threads()
    assert isinstance(result["subnormals_flush_everywhere"], bool)
    for needle in ("CPU:", "flags:", "threads", "load average", "subnormals flushed", "precision fp32 →",
                   "initial window", "steady window", "← default", "feature extraction: fp32"):
        assert needle in text
    assert format_report(result) in text
    assert set(result["classifier_extract_img_s"]) == {"fp32", "bf16"} - set(result["left_out"])
    # a probe of the peaks before every round and one after the last
    assert all(len(v) == result["rounds"] + 1 for v in result["peak_probes_flop_s"].values())
    assert set(result["peak_probes_flop_s"]) == {"fp32", "bf16"} - set(result["left_out"])


def test_a_precision_the_hardware_is_slow_at_is_measured_and_named():
    rates = {torch.float32: 100e9, torch.bfloat16: 1e9}
    probe = lambda device, dtype, size, repeats: rates[dtype]  # noqa: E731
    slow = slow_dtypes(torch.device("cpu"), probe=probe)
    assert list(slow) == ["bf16"] and "1.0 GFLOP/s" in slow["bf16"] and "100.0" in slow["bf16"]
    rates[torch.bfloat16] = 400e9  # an AMX chip: bf16 faster than fp32
    assert slow_dtypes(torch.device("cpu"), probe=probe) == {}
    rates[torch.bfloat16] = 49e9  # just under half of fp32's speed
    assert list(slow_dtypes(torch.device("cpu"), probe=probe)) == ["bf16"]


def test_a_slow_precision_is_left_out_of_the_bench_and_said(monkeypatch):
    monkeypatch.setattr(bench_module, "slow_dtypes", lambda device: {"bf16": "a probe said so"})
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bench("soft", device="cpu", quick=True, batches=1, batch_size=8, rounds=1, warm_batches=1,
                       classifier_epochs=1, print_fn=lines.append)
    text = "\n".join(lines)
    assert result["left_out"] == {"bf16": "a probe said so"}
    assert "bf16" not in result["paths"] and "bf16" not in result["unsupervised"]["steady"]
    assert set(result["peak_probes_flop_s"]) == {"fp32"} and set(result["classifier_extract_img_s"]) == {"fp32"}
    assert "left out: the bf16 path (a probe said so)" in text and "`--precision bf16` runs it" in text
    assert "bf16 products: " in text and result["bf16_products"] in text


def test_the_bench_leaves_the_flush_state_as_it_found_it(report):
    assert not denormals_flushed()
    with subnormals(True, torch.device("cpu")):
        pass
    assert not denormals_flushed()


def test_peak_is_measured_per_dtype():
    assert measured_peak(torch.device("cpu"), torch.float32, size=64, repeats=1) > 0
    assert measured_peak(torch.device("cpu"), torch.bfloat16, size=64, repeats=1) > 0


def test_the_fp32_paths_form_their_products_as_they_say(monkeypatch):
    """``fp32+ftz``: conv2d_weight in every layer; ``fp32+ftz+patches``: soft's conv3 (3,456 inputs a filter)
    from patches, conv1 and conv2 by conv2d_weight; the layers' own choice comes back after each."""
    from hebblib import layers as layers_module
    from hebblib.bench import _train_window
    from hebblib.presets import build_model, resolve_preset

    calls = []
    for name in ("hebbian_term", "hebbian_term_from_patches"):
        real = getattr(layers_module, name)
        monkeypatch.setattr(layers_module, name, lambda *a, _real=real, _name=name, **k: (
            calls.append((_name, tuple(a[2]))), _real(*a, **k))[1])
    torch.manual_seed(0)
    model = build_model(resolve_preset("soft"))
    batch = [torch.randn(2, 3, 32, 32)]
    conv3 = (1536, 384, 3, 3)
    for path, conv3_term in (("fp32+ftz", "hebbian_term"), ("fp32+ftz+patches", "hebbian_term_from_patches")):
        calls.clear()
        _train_window(model, batch, path, torch.device("cpu"))
        assert [c for c in calls if c[1] == conv3] == [(conv3_term, conv3)]
        assert {c[0] for c in calls if c[1] != conv3} == {"hebbian_term"} and len(calls) == 3
        assert all("fp32_kernel" not in layer.__dict__ for layer in model.hebbian_layers().values())
