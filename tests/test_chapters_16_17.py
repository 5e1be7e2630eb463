"""Chapters 16–17 and the library they read networks with (hebblib.interpret): a unit's box against the
gradient's support, the competition recorder against the layers' own win counts, top-activating patches
against the response recomputed from the patch, the next batch's change against a step that lowers the
loss, full-data runs found under runs/; the capstone's design check with right and wrong designs; the demos
at their extreme values."""
from __future__ import annotations

import io
import json

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from hebblib import interpret
from hebblib.chapters import ch16_interpretability as ch16
from hebblib.chapters import ch17_capstone as ch17
from hebblib.notebook import check_exercise
from hebblib.presets import build_model, get_preset
from hebblib.training import train_hebbian

matplotlib.use("Agg")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def png(fig: Figure) -> bytes:
    assert isinstance(fig, Figure) and fig.axes
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def tiny_net(name: str = "hard_basic", width: float = 0.0625):
    preset = get_preset(name)
    preset["model"]["width_factor"] = width
    torch.manual_seed(0)
    return build_model(preset)


def data(n: int = 64, normalization: str = "standardize"):
    from hebblib.training import load_splits

    train, val, test = load_splits({"normalization": normalization}, source="subset", limit_train=max(n, 100),
                                   limit_test=40)
    return train, val, test


# ----- where a unit looks ------------------------------------------------------------------------------------
def gradient_box(model, target_index, i, j, size=32):
    """The bounding box (top, left, bottom, right) of the input pixels on which unit (i, j) of the output of
    ``model[:target_index + 1]`` depends (all weights positive, average pools: every pixel in the box counts)."""
    x = torch.zeros(1, 3, size, size, requires_grad=True)
    out = model[: target_index + 1](x)
    out[0, :, i, j].sum().backward()
    rows, cols = torch.nonzero(x.grad[0].abs().sum(0) > 0, as_tuple=True)
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


@pytest.mark.parametrize("i, j", [(0, 0), (3, 5), (7, 7), (2, 0)])
def test_unit_box_is_the_support_of_the_units_gradient(i, j):
    model = nn.Sequential(nn.Conv2d(3, 2, 5, padding=2), nn.AvgPool2d(4, 2, 1), nn.Conv2d(2, 2, 3, padding=1),
                          nn.AvgPool2d(4, 2, 1), nn.Conv2d(2, 2, 3, padding=1))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0)
    geometry = interpret.unit_geometry(model, model[4])
    assert geometry["rf"] == (26, 26) and geometry["jump"] == (4, 4)
    top, left, h, w = interpret.unit_box(geometry, i, j)
    box = (max(top, 0), max(left, 0), min(top + h, 32) - 1, min(left + w, 32) - 1)
    assert box == gradient_box(model, 4, i, j)


def test_exercise_solution_matches_the_library_and_the_softhebb_network(capsys):
    cases = ch16.unit_box_cases()
    assert check_exercise("unit box", ch16.unit_box_solution, ch16.unit_box_solution, cases) is ch16.unit_box_solution
    for case in cases:
        assert torch.equal(ch16.unit_box_solution(*case), ch16.library_unit_box(*case))
    net = tiny_net("soft")
    for k, layer in enumerate(("conv1", "conv2", "conv3")):  # the model's own modules give the same geometry
        geometry = interpret.unit_geometry(net, f"stages.{k}.act")
        expected = ch16.unit_box_solution(2, 3, ch16.SOFTHEBB_WINDOWS[layer]).tolist()
        assert list(interpret.unit_box(geometry, 2, 3)[:3]) == expected
    assert [ch16.unit_box_solution(0, 0, w)[2].item() for w in ch16.SOFTHEBB_WINDOWS.values()] == [5, 12, 26]
    no_padding = lambda i, j, layers: ch16.unit_box_solution(i, j, [(k, s, 0) for k, s, _ in layers])  # noqa: E731
    capsys.readouterr()
    assert check_exercise("unit box", no_padding, ch16.unit_box_solution, cases) is ch16.unit_box_solution
    assert "✗ unit box: not yet — on case 1 of" in capsys.readouterr().out


# ----- the competition recorder ---------------------------------------------------------------------------------
def test_recorder_counts_what_the_layers_count():
    net = tiny_net("hard_basic")
    for layer in net.hebbian_layers().values():
        layer.reset_statistics()
    train, _, _ = data(96, "standardize")
    recorder = interpret.CompetitionRecorder()
    train_hebbian(net, train, epochs=1, batch_size=16, augment=False, progress=False, callback=recorder)
    recorder.finish()
    batches = -(-len(train) // 16)
    assert recorder.images == [min(16 * (b + 1), len(train)) for b in range(batches)]
    totals = recorder.total_counts()
    for name, layer in net.hebbian_layers().items():  # the layer's own win_counts, counted inside its update
        assert len(recorder.windows[name]) == batches
        torch.testing.assert_close(totals[name], layer.win_counts.double().cpu())
    entropy = recorder.entropy()
    assert all(0 <= h <= 1 for values in entropy.values() for h in values)
    assert not recorder._handles  # finish() removed its hooks


def test_recorder_counts_every_site_of_a_backprop_network():
    from hebblib.classifier import train_end_to_end

    net = tiny_net("backprop")
    train, val, test = data(64)
    recorder = interpret.CompetitionRecorder(every=2).start(net)
    train_end_to_end(net, train, val, test, epochs=2, batch_size=16, augment=False, progress=False, hook=recorder)
    recorder.finish()
    assert list(recorder.windows) == ["conv1", "conv2", "conv3"]
    sizes = {"conv1": 32 * 32, "conv2": 16 * 16, "conv3": 8 * 8}  # softhebb: pad 2/1/1, pools 4/2/1 twice
    for name, counts in recorder.total_counts().items():
        assert counts.sum() == 2 * len(train) * sizes[name]  # two epochs, every site once; no eval pass counted
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        interpret.CompetitionRecorder(every=0)


# ----- patches, updates, full-data runs -------------------------------------------------------------------------
def test_top_patches_hold_the_response_they_are_ranked_by():
    conv = nn.Conv2d(3, 4, 5, stride=1, padding=0, bias=False)
    model = nn.Sequential(conv)
    images = torch.rand(30, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    responses = interpret.max_responses(model, conv, images)
    geometry = interpret.unit_geometry(model, conv)
    assert responses["size"] == (12, 12)
    for channel in range(4):
        patches, values, order = interpret.top_patches(images, responses, geometry, channel, k=5)
        assert patches.shape == (5, 3, 5, 5) and bool((values[:-1] >= values[1:]).all())
        recomputed = (patches * conv.weight[channel].detach()).flatten(1).sum(1)  # the unit's response, by hand
        torch.testing.assert_close(recomputed, values)
        assert torch.equal(order, responses["values"][:, channel].topk(5).indices)
    with pytest.raises(ValueError, match=r"channel 4 out of range: the layer has 4 channels"):
        interpret.top_patches(images, responses, geometry, 4)


def test_layer_updates_leave_the_network_and_point_downhill():
    import torch.nn.functional as F

    net = tiny_net("hard_basic")
    x, _ = data(40)[0].get(slice(0, 16))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    hebbian = interpret.layer_updates(net.eval(), x)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # nothing moved, no stats
    twin = tiny_net("hard_basic")  # the same weights; ΔW from one training forward, by the layers themselves
    twin.train()
    with torch.no_grad():
        twin.features(x)
    for name, layer in twin.hebbian_layers().items():
        torch.testing.assert_close(hebbian[name], layer.delta_w)
    bp = tiny_net("backprop")
    x, y = data(40)[0].get(slice(0, 32))
    steps = interpret.layer_updates(bp, x, y)
    layers = interpret.competing_layers(bp)
    loss = lambda: float(F.cross_entropy(bp.train()(x), y).detach())  # noqa: E731
    torch.manual_seed(1)
    start = loss()
    with torch.no_grad():
        for name, layer in layers.items():
            layer.weight += 1e-3 * steps[name] / steps[name].norm()
    torch.manual_seed(1)  # the same dropout mask
    assert loss() < start
    with pytest.raises(ValueError, match="pass y"):
        interpret.layer_updates(bp, x)


def test_full_data_network_is_found_only_for_the_current_recipe(tmp_path):
    from hebblib.results import PROTOCOL_VERSION, save_checkpoint, write_json

    assert interpret.full_data_run("soft", out=tmp_path) is None
    net = tiny_net("soft", 1.0)
    run_dir = tmp_path / "soft" / "full-n50000-abcdef12" / "seed0"
    record = {"complete": True, "quick": False, "config": get_preset("soft"), "config_hash": "k1",
              "data": {"source": "full", "protocol": PROTOCOL_VERSION}, "supervised": {"mode": "linear"},
              "run_dir": "elsewhere"}
    write_json(run_dir / "results.json", record)
    save_checkpoint(run_dir / "unsupervised.pt", {"config_hash": "k1", "model": net.state_dict(), "stats": {}})
    model, found = interpret.full_data_network("soft", out=tmp_path)
    assert found["run_dir"] == str(run_dir)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), net.state_dict().values()))
    changed = json.loads(json.dumps(record))
    changed["config"]["layers"][0]["lr"] = 0.5  # another recipe: not this preset's run
    write_json(run_dir / "results.json", changed)
    assert interpret.full_data_run("soft", out=tmp_path) is None
    write_json(run_dir / "results.json", {**record, "data": {"source": "subset", "protocol": PROTOCOL_VERSION}})
    assert interpret.full_data_run("soft", out=tmp_path) is None
    assert interpret.full_data_command("optimal", 2) == "python -m hebblib reproduce --preset optimal --first-seed 2"


# ----- chapter 16 on small quick networks ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nets():
    return {name: ch16.train_quick(name) for name in ch16.NETWORKS}


def test_chapter16_reads_three_networks(nets):
    assert all(t.blocks == ["conv1", "conv2", "conv3"] for t in nets.values())
    assert nets["backprop"].history and nets["soft"].history is None
    r = ch16.readout(nets)
    deltas = ch16.updates(nets, batch=16)
    shares = ch16.ltp_shares(deltas)
    assert all(0 <= a <= 1 and 0 <= b <= 1 for per in shares.values() for a, b in per.values())
    for fig in (ch16.ltp_ltd_figure(deltas), ch16.entropy_figure(nets), ch16.win_rate_figure(nets)):
        png(fig)
    table = ch16.win_rate_table(nets)
    for (name, layer), part in table.groupby(["network", "layer"]):  # win rate × units averages 1
        assert part["relative win rate"].mean() == pytest.approx(1.0)
    patches, values = ch16.top_patches(r, "soft", "conv2", 3)
    assert patches.shape == (8, 3, 12, 12) and bool((values[:-1] >= values[1:]).all())


def test_full_mode_reads_a_checkpoint_and_replays_the_competition(nets, monkeypatch, capsys):
    """load_full with the run and the data stood in for: the network of the record, a replayed recorder, the
    win rates of the network as it is (unchanged by counting), and the record's number in the summary."""
    import dataclasses

    from hebblib.training import load_splits

    trained = nets["soft"]
    record = {"run_dir": "runs/soft/full-n50000-x/seed0", "supervised": {"mode": "linear"}, "max_test_acc": 75.5}
    monkeypatch.setattr(interpret, "full_data_network", lambda name, seed=0: (trained.model, record))
    monkeypatch.setattr(ch16, "load_splits", lambda data, **kw: load_splits(data, source="subset", limit_train=200,
                                                                            limit_test=100))
    quick = {name: ch16.quick_preset(name) for name in ch16.NETWORKS}
    monkeypatch.setattr(ch16, "get_preset", lambda name: quick[name])
    full = ch16.load_full("soft", replay=64)
    assert full.model is trained.model and full.info["replayed"] and "replay of its first" in full.origin
    assert full.recorder.images[-1] == 64
    before = {k: v.clone() for k, v in full.model.state_dict().items()}
    table = ch16.win_rate_table({"soft": full})
    assert all(torch.equal(v, full.model.state_dict()[k]) for k, v in before.items())
    assert table.groupby("layer")["relative win rate"].mean().tolist() == pytest.approx([1.0, 1.0, 1.0])
    png(ch16.entropy_figure({"soft": full}))
    capsys.readouterr()
    probes = {"soft": {layer: [{"val_acc": 1.0, "test_acc": 20.0}] for layer in full.blocks}}
    ch16.summary({"soft": full}, probes)
    first = capsys.readouterr().out.splitlines()[0]
    assert "measured 75.5%" in first and "far below" not in first
    no_record = dataclasses.replace(trained, recorder=None)
    assert len(ch16.win_rate_table({"soft": no_record})) == sum(
        layer.out_channels for layer in interpret.competing_layers(trained.model).values())


def test_unit_demo_redraws_for_every_control_and_refuses_bad_values(nets):
    r = ch16.readout(nets)
    last = ch16.smallest_width(nets) - 1
    images = {png(ch16.unit_demo(net, layer, unit, r)) for net, layer, unit in
              [("soft", "conv1", 0), ("optimal", "conv1", 0), ("backprop", "conv1", 0), ("soft", "conv3", 0),
               ("soft", "conv1", last)]}
    assert len(images) == 5
    with pytest.raises(ValueError, match="unknown network 'bcm'"):
        ch16.unit_demo("bcm", "conv1", 0, r)
    with pytest.raises(ValueError, match=r"unit 99 out of range"):
        ch16.unit_demo("soft", "conv1", 99, r)


# ----- chapter 17: the design check ---------------------------------------------------------------------------
def test_design_check_accepts_the_reference_and_a_preset(capsys):
    cases = ch17.design_cases()
    reference = ch17.design_check(ch17.design_solution)
    assert check_exercise("your network", reference, reference, cases) is reference
    assert capsys.readouterr().out.strip() == f"✓ your network: correct on {len(cases)} test cases."
    optimal = ch17.design_check(lambda: get_preset("optimal"))
    assert check_exercise("your network", optimal, reference, cases) is optimal
    assert ch17.checked_preset(optimal)["name"] == "optimal"


@pytest.mark.parametrize("design, phrases", [
    (ch17.broken_design, ["your function raised ValueError: preset 'my_network': layers[0].rule = 'instarr': "
                          "unknown rule; valid choices: 'anti_hebb', 'bcm'"]),
    (lambda: {**ch17.starting_point(), "unsupervised": {"epochs": 1, "batch_size": 64, "epoch": 3}},
     ["unsupervised.epoch = 3: not a setting; valid keys:"]),
    (lambda: {**ch17.starting_point(), "layers": [{"lr": 0.0}, {"lr": 0.0}, {"lr": 0.0}]},
     ["did not change", "conv1, conv2, conv3"]),
    (lambda: "hard_basic", ["your design returns str, expected a preset dict"]),
    (lambda: get_preset("backprop"), ["a Hebbian design learns without labels first"]),
])
def test_design_check_stops_a_wrong_design_with_the_reason(design, phrases, capsys):
    reference = ch17.design_check(ch17.design_solution)
    assert check_exercise("your network", ch17.design_check(design), reference, ch17.design_cases()) is reference
    message = capsys.readouterr().out
    assert message.startswith("✗ your network: not yet — on case 1 of 2"), message
    for phrase in phrases:
        assert phrase in message, (phrase, message)


def test_config_error_and_command_line():
    assert ch17.config_error(ch17.design_solution()) == "valid"
    assert "layers[0].rule = 'instarr': unknown rule" in ch17.config_error(ch17.broken_design())
    args = ch17.cli_arguments("soft", quick=True, out="somewhere")
    from hebblib.cli import build_parser

    parsed = build_parser().parse_args(args)  # the command line takes them as they are
    assert parsed.seeds == 3 and parsed.quick and parsed.change == {"model": {"width_factor": ch17.QUICK_WIDTH}}
    assert ch17.command_line(ch17.cli_arguments("soft", quick=False)) == \
        "python -m hebblib reproduce --preset soft --seeds 3 --device auto"


def fake_summary():
    runs = []
    for seed, shift in ((0, 0.0), (1, 2.0), (2, -1.0)):
        epochs = [{"epoch": e, "test_acc": 40 + shift + e, "val_acc": 41 + shift + (0, 2, 1)[e - 1]} for e in (1, 2, 3)]
        runs.append({"seed": seed, "epochs": epochs})
    summary = {"preset": "hard_basic", "seeds": [0, 1, 2], "runs": runs, "data": {"source": "subset"}}
    for key, values in (("final_test_acc", [43, 45, 42]), ("test_acc_at_best_val", [42, 44, 41]),
                        ("max_test_acc", [43, 45, 42])):
        summary[key] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)), "values": values}
    return summary


def test_measure_demo_marks_the_epoch_of_each_measure():
    summary = fake_summary()
    assert [ch17._measure_epoch(summary["runs"][0], m) for m in ch17.MEASURES] == [3, 2, 3]
    images = {png(ch17.measure_demo(m, s, summary)) for m, s in
              [("final_test_acc", 0), ("test_acc_at_best_val", 0), ("max_test_acc", 0), ("final_test_acc", 2)]}
    assert len(images) == 4
    png(ch17.seeds_figure(summary))
    with pytest.raises(ValueError, match="unknown measure 'mean'"):
        ch17.measure_demo("mean", 0, summary)
    with pytest.raises(ValueError, match="seed 5 was not run"):
        ch17.measure_demo("final_test_acc", 5, summary)


def test_umap_compiled_code_is_cached_on_disk():
    import umap.umap_

    from hebblib.plots import embedding

    embedding.cache_umap_compilation()
    for function in (umap.umap_.smooth_knn_dist, umap.umap_.compute_membership_strengths):
        assert type(function._cache).__name__ != "NullCache"  # numba writes and reads its compiled code
    assert embedding.cache_umap_compilation() == 0  # once per process


def test_second_dataset_lines_name_the_dataset_and_the_command(tmp_path, monkeypatch, capsys):
    import hebblib.results as results

    monkeypatch.setattr(results, "measured_results_dir", lambda: tmp_path)
    run = {"published": None, "source": "", "max_test_acc": 50.0, "num_parameters": 105_718, "quick": True,
           "data": {"n_train": 721, "n_test": 400, "source": "subset"}, "preset_dict": {"model": {"width_factor": 0.125}},
           "supervised": {"mode": "linear", "epochs": 10}}
    summary = {"preset": "soft", "seeds": [0, 1], "data": {"dataset": "fashion_mnist"},
               "final_test_acc": {"mean": 90.0, "std": 0.5, "values": [89.5, 90.5]},
               "max_test_acc": {"mean": 91.0, "std": 0.4, "values": [90.7, 91.3]},
               "test_acc_at_best_val": {"mean": 90.5, "std": 0.3, "values": [90.3, 90.7]}}
    (tmp_path / "soft-fashion_mnist.json").write_text(json.dumps(summary))
    ch17.print_second_dataset({name: run for name in ch17.SECOND_PRESETS})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("soft on Fashion-MNIST (this run: 1×28×28 input, 105,718 parameters): measured 50.0%")
    assert lines[3].startswith("soft on all of Fashion-MNIST, committed full-data runs (2 seeds, mean ± sample std), "
                               "final epoch: 90.0 ± 0.5%")
    assert "CIFAR-10" not in "\n".join(lines)
    assert lines[4] == ("optimal on all of Fashion-MNIST: not measured yet "
                        "(`python -m hebblib reproduce --preset optimal --dataset fashion_mnist --seeds 3`)")
