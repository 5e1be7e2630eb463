"""Manzali (2021, seed 004): the Krotov–Hopfield stack from 1 to 5 layers (``krotov_hopfield(depth=...)``,
presets ``manzali_1`` ... ``manzali_5``), checked against his slides' numbers and an independent formulation of
the rule on unfolded patches (spec miconi-lunelli-manzali §3.2, §3.4, §3.6, §3.7)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hebblib.data import load_subset
from hebblib.networks import build_network, krotov_hopfield
from hebblib.presets import build_model, get_preset
from hebblib.training import layer_settings

TABLE_1 = {1: (2.0, 9, 0.08, 0.2, 66.21), 2: (8.0, 3, 0.34, 0.25, 65.22), 3: (8.0, 5, 0.25, 0.05, 63.08),
           4: (8.0, 7, 0.235, 0.1, 58.86), 5: (8.0, 2, 0.335, 0.1, 45.45)}  # p, k, Δ, dropout, test % (spec §3.7)


def independent_count(depth: int) -> int:
    """Hebbian weights + the 10-class head, from the layer shapes by hand: 32 → conv5 28 → pool 14 → conv3 12 →
    conv3 10 → pool 5 → conv3 3; the linear layer 2,304 → 300 (spec §3.6)."""
    convs = [96 * 3 * 25, 128 * 96 * 9, 192 * 128 * 9, 256 * 192 * 9]
    features = [96 * 14 * 14, 128 * 12 * 12, 192 * 5 * 5, 256 * 3 * 3, 300]
    hebbian = sum(convs[:depth]) + (2304 * 300 if depth == 5 else 0)
    return hebbian + features[depth - 1] * 10 + 10


@pytest.mark.parametrize("depth, slides", [(1, 195_000), (2, 302_000), (3, 387_000), (4, 804_000), (5, 1_475_000)])
def test_parameter_counts_match_the_slides(depth, slides):
    net = krotov_hopfield(depth=depth)
    assert net.num_parameters() == independent_count(depth)
    assert abs(net.num_parameters() - slides) / slides < 0.002  # the slides round: 195k ... 1.475M
    assert len(net.hebbian_layers()) == depth


def test_a_shallower_stack_is_the_first_stages_of_the_deep_one():
    deep = krotov_hopfield(depth=5, generator=torch.Generator().manual_seed(3))
    for depth in (1, 2, 3, 4):
        shallow = krotov_hopfield(depth=depth, generator=torch.Generator().manual_seed(3))
        for name, layer in shallow.hebbian_layers().items():
            assert torch.equal(layer.weight, deep.hebbian_layers()[name].weight)
        assert isinstance(shallow.stages[-1], torch.nn.BatchNorm2d)  # Manzali's BN before the head
        assert not shallow.stages[-1].affine


@pytest.mark.parametrize("depth", [0, 6, 2.0, True, "3"])
def test_a_bad_depth_names_the_value_and_the_range(depth):
    with pytest.raises(ValueError, match=f"depth must be an int from 1 to 5, got {depth!r}"):
        krotov_hopfield(depth=depth)


def test_layers_list_has_one_dict_per_stage_of_the_depth():
    with pytest.raises(ValueError, match="krotov_hopfield has 2 stages, so layers needs 2 dicts; got 5"):
        krotov_hopfield(depth=2, layers=[{}] * 5)
    assert len(krotov_hopfield(depth=2, layers=[{"lr": 0.01}, {}]).hebbian_layers()) == 2


@pytest.mark.parametrize("depth", sorted(TABLE_1))
def test_presets_carry_table_1(depth):
    p, k, delta, dropout, published = TABLE_1[depth]
    preset = get_preset(f"manzali_{depth}")
    assert preset["published"] == published and preset["model"]["depth"] == depth
    net = build_model(preset)
    used = layer_settings(net)
    assert len(used) == depth
    for record in used.values():
        assert record["lebesgue_p"] == p and record["competition"] == {"name": "krotov", "k": k, "delta": delta}
        assert record["rule"]["name"] == "softhebb"
    assert preset["hebbian"]["init"] == "randn"  # biopytorch's torch.randn
    assert net.dropout.p == dropout
    assert [r["update_norm"] for r in used.values()][:min(depth, 4)] == ["per_filter"] * min(depth, 4)


def test_a_training_step_of_the_second_layer_follows_the_rule_on_unfolded_patches():
    """Layer 2 of ``manzali_2`` (p = 8, k = 3, Δ = 0.34) after one batch of real images: the currents
    ``I = <W_μ, x>_p`` with ``sgn(W)|W|^(p−1)``, per patch the top unit g = 1 and the k-th g = −Δ, ΔW = Σ g x −
    (Σ g I) W, divided by its largest entry per kernel, W += lr ΔW (spec §3.2, §3.4; biopytorch's max-norm)."""
    p, k, delta = TABLE_1[2][:3]
    net = build_model(get_preset("manzali_2")).double()
    images, _ = load_subset(train=True)
    x = images[:8].double() / 255.0
    layer = net.hebbian_layers()["conv2"]
    seen = {}
    layer.register_forward_pre_hook(lambda module, args: seen.setdefault("x", args[0].detach().clone()))
    W0 = layer.weight.detach().clone()
    net.train()
    with torch.no_grad():
        net.features(x)
    net.apply_updates()
    patches = F.unfold(seen["x"], 3).transpose(1, 2).reshape(-1, W0[0].numel())  # one row per patch of each image
    W = W0.flatten(1)
    currents = patches @ (W.sign() * W.abs().pow(p - 1)).T  # (patches, units)
    order = currents.topk(k, dim=1).indices
    g = torch.zeros_like(currents)
    g.scatter_(1, order[:, :1], 1.0)
    g.scatter_(1, order[:, k - 1:k], -delta)
    dW = g.T @ patches - (g * currents).sum(0)[:, None] * W
    dW = dW / dW.abs().amax(dim=1, keepdim=True).clamp_min(1e-30)  # a unit that never ranks: ΔW = 0
    expected = (W + layer.lr * dW).view_as(W0)
    torch.testing.assert_close(layer.weight.detach(), expected, rtol=1e-7, atol=1e-9)
    assert (layer.weight.detach() - W0).abs().max() > 1e-3  # the step is large enough to be seen


def test_depth_is_a_model_option_and_input_shape_is_not():
    from hebblib.presets import change_preset, preset_config

    assert preset_config(change_preset(get_preset("manzali_5"), {"model": {"depth": 3}})).model.options["depth"] == 3
    with pytest.raises(ValueError, match="input_shape"):
        preset_config(change_preset(get_preset("manzali_5"), {"model": {"input_shape": [1, 28, 28]}}))
    net = build_network("krotov_hopfield", depth=5, input_shape=(1, 28, 28))  # 28 → ... → 2 × 2 before the linear
    assert net.hebbian_layers()["fc5"].in_features == 256 * 2 * 2


# ----- chapter 6 prints the measured curve beside the published one -------------------------------------------
def test_chapter6_depth_curve_from_committed_runs(tmp_path, capsys):
    import io
    import json

    from hebblib.chapters import ch06_krotov_hopfield as ch6

    rows = ch6.depth_curve(tmp_path)  # nothing committed there
    assert [r["published"] for r in rows] == [66.21, 65.22, 63.08, 58.86, 45.45]
    assert all(r["measured"] is None for r in rows)
    ch6.depth_lines(rows)
    out = capsys.readouterr().out
    assert out.count("not measured yet") == 5 and "seed_runs.py manzali_1" in out
    run = {"seed": 0, "final_test_acc": 60.0, "test_acc_at_best_val": 61.5, "max_test_acc": 62.0,
           "data": {"protocol": 2}, "recipe_hash": "abc"}
    (tmp_path / "manzali_2.json").write_text(json.dumps({"preset": "manzali_2", "published": 65.22, "runs": [run]}))
    rows = ch6.depth_curve(tmp_path)
    assert rows[1]["measured"] == 61.5 and rows[1]["final"] == 60.0 and rows[0]["measured"] is None
    ch6.depth_lines(rows)
    out = capsys.readouterr().out
    assert "       2     65.22%    61.50%  60.00%    -3.7" in out and out.count("not measured yet") == 4
    assert rows[1]["seeds"] == 1 and rows[1]["measured_std"] is None and "missing depths and seeds" in out
    # three seeds of one depth: the mean, the sample std (of the best-validation column) and the count
    runs = [{**run, "seed": seed, "test_acc_at_best_val": acc, "final_test_acc": acc - 1}
            for seed, acc in ((0, 62.0), (1, 63.0), (2, 64.5))]
    (tmp_path / "manzali_3.json").write_text(json.dumps({"preset": "manzali_3", "published": 63.08, "runs": runs}))
    three = ch6.depth_curve(tmp_path)
    assert three[2]["seeds"] == 3 and three[2]["measured"] == pytest.approx(63.1667, abs=1e-4)
    assert three[2]["measured_std"] == pytest.approx(1.2583, abs=1e-4)  # sample std (n − 1), not 1.0274
    assert three[2]["final_std"] == pytest.approx(1.2583, abs=1e-4) and three[1]["measured_std"] is None
    ch6.depth_lines(three)
    out = capsys.readouterr().out
    assert "       3     63.08%    63.17%  62.17%    +0.1    1.26      3" in out
    assert "       2     65.22%    61.50%  60.00%    -3.7              1" in out
    buffers = []
    for r in (ch6.depth_curve(tmp_path / "none"), rows, three):
        buffer = io.BytesIO()
        ch6.depth_figure(r).savefig(buffer, format="png", dpi=30)
        buffers.append(buffer.getvalue())
    assert len(set(buffers)) == 3  # the measured point is drawn, and the second depth with its error bar
