"""Competition diagnostics at the end of the Hebbian phase (hebblib.diagnostics.competition_diagnostics):
a layer with known weights and inputs whose winners are counted by hand, and a tiny real run whose record
is recomputed stage by stage, with NumPy, from its saved network."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from hebblib import training
from hebblib.diagnostics import competition_diagnostics
from hebblib.layers import HebbianConv2d
from hebblib.networks.blocks import ConvBlock
from hebblib.networks.net import HebbianNet
from hebblib.presets import get_preset

TINY = dict(quick=True, limit_train=256, limit_test=200, supervised_epochs=1, progress=False)


def _known_net() -> HebbianNet:
    """One 1×1 Hebbian conv, 3 inputs → 4 units, followed by a ReLU: W_0 = 2·e_0, W_1 = e_1, W_2 = e_2,
    W_3 = −(1, 1, 1); radii 2, 1, 1, √3."""
    layer = HebbianConv2d(3, 4, 1, name="conv1")
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[2.0, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, -1]]).view(4, 3, 1, 1))
    return HebbianNet([ConvBlock(nn.Identity(), layer, nn.ReLU(), nn.Identity())], input_shape=(3, 4, 4))


def _checkerboard(n: int) -> torch.Tensor:
    """n images 4×4: at even (h + w) x = (1, .5, .1), so u = (2, .5, .1, −1.6) and unit 0 wins; at odd
    (h + w) x = (.1, 3, .2), u = (.2, 3, .2, −3.3) and unit 1 wins. Unit 2 is active (u > 0) but never
    wins; unit 3 is never active."""
    even = (torch.arange(4).view(4, 1) + torch.arange(4).view(1, 4)) % 2 == 0
    x = torch.where(even, torch.tensor([1.0, 0.5, 0.1]).view(3, 1, 1), torch.tensor([0.1, 3.0, 0.2]).view(3, 1, 1))
    return x.expand(n, 3, 4, 4).clone()


def test_known_winners_give_the_hand_counted_entropy_dead_units_and_radii():
    net = _known_net()
    record = competition_diagnostics(net, _checkerboard(5), batch_size=2)  # 3 batches: counts add up
    layer = record["layers"]["conv1"]
    assert record["evaluation"]["images"] == 5
    # 5 images × 8 sites each for units 0 and 1, none for 2 and 3: p = (1/2, 1/2, 0, 0)
    assert layer["sites"] == 80 and layer["units"] == 4
    assert layer["win_entropy"] == pytest.approx(math.log(2) / math.log(4))  # 0.5
    assert layer["effective_units"] == pytest.approx(2.0) and layer["max_win_rate"] == pytest.approx(0.5)
    assert layer["dead_never_win"] == 2 and layer["never_active"] == 1
    radii = np.array([2.0, 1.0, 1.0, math.sqrt(3)])
    assert layer["radius_mean"] == pytest.approx(radii.mean()) and layer["radius_std"] == pytest.approx(radii.std())
    assert (layer["radius_min"], layer["radius_max"]) == pytest.approx((1.0, 2.0))


def test_one_winner_everywhere_is_entropy_zero_and_the_net_is_left_as_it_was():
    net = _known_net()
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = _checkerboard(3)
    x[:, 1] = 0.0  # unit 0 wins every site; units 1 and 2 stay at 0 (never active after the ReLU), 3 below
    layer = competition_diagnostics(net, x)["layers"]["conv1"]
    assert layer["win_entropy"] == 0.0 and layer["dead_never_win"] == 3 and layer["never_active"] == 2
    assert net.training  # the mode is restored, no update accumulated, no weight moved
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, before[key], msg=key)
    assert not any(m._forward_hooks for m in net.modules())


def test_bad_number_of_images_is_one_clear_error():
    with pytest.raises(ValueError, match="images must be an int >= 1, got 0"):
        competition_diagnostics(_known_net(), _checkerboard(2), images=0)


def _numpy_entropy(counts: np.ndarray) -> float:
    p = counts / counts.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(len(counts)))


@pytest.mark.parametrize("name", ["soft", "hard_basic"])
def test_a_tiny_runs_record_holds_the_diagnostics_recomputed_stage_by_stage(tmp_path, name):
    preset = get_preset(name)
    preset["model"]["width_factor"] = 0.25
    result = training.run_preset(preset, out=tmp_path, **TINY)
    recorded = result["competition"]
    assert recorded is not None and result["recipe_hash"] in result["run_dir"]
    model = training.hebbian_network(result).eval()
    assert list(recorded["layers"]) == list(model.hebbian_layers())
    # the same first training images, from the run's own split
    run = training.plan_run(preset, out=tmp_path, **TINY)
    training.prepare_data(run)
    n = recorded["evaluation"]["images"]
    assert n == min(1000, len(run.train))
    x = run.train.get(slice(0, n))[0]
    with torch.no_grad():
        for stage in model.stages:  # every soft / hard_basic stage is a ConvBlock: norm → conv → act → pool
            u = stage.conv(stage.norm(x))
            y = stage.act(u)
            x = stage(x)
            layer = recorded["layers"][stage.conv.name]
            winners = u.numpy().argmax(axis=1).ravel()
            counts = np.bincount(winners, minlength=u.shape[1]).astype(float)
            assert layer["sites"] == counts.sum() == n * u.shape[2] * u.shape[3]
            assert layer["dead_never_win"] == int((counts == 0).sum())
            assert layer["win_entropy"] == pytest.approx(_numpy_entropy(counts), abs=1e-9)
            assert layer["never_active"] == int((y.numpy() <= 0).all(axis=(0, 2, 3)).sum())
            norms = np.linalg.norm(stage.conv.weight.numpy().reshape(u.shape[1], -1), axis=1)
            assert layer["radius_mean"] == pytest.approx(norms.mean(), rel=1e-6)
            assert layer["radius_std"] == pytest.approx(norms.std(), rel=1e-5)
