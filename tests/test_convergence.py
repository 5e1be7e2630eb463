"""What each rule is known to converge to, and the guards that stop a run that diverges.

Instar + hard WTA → cluster means (online k-means); Oja → the unit-norm first principal component;
Sanger → the top principal components in order; SoftHebb with the radius schedule → unit norm;
Dale → non-negative weights; BCM's θ → E[y²]; every rule stays finite over long runs with
update normalisation; plain Hebb without it blows up and the NaN guard names the layer and step.
"""
from __future__ import annotations

import math

import pytest
import torch

from reference_hebbian import single_thread  # noqa: F401  (a fixture)
from hebblib import HebbianConv2d, HebbianDivergenceError, HebbianLinear, available_rules

pytestmark = pytest.mark.usefixtures("single_thread")


def generator(seed):
    return torch.Generator().manual_seed(seed)


def rotation(dim, seed):
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator(seed), dtype=torch.float64))
    return q


def gaussian_pool(variances, n, seed):
    """n zero-mean samples with the given variances along random orthogonal axes; returns (pool, PCs as
    columns ordered by decreasing eigenvalue of the pool's second-moment matrix)."""
    dim = len(variances)
    std = torch.tensor(variances, dtype=torch.float64).sqrt()
    pool = (torch.randn(n, dim, generator=generator(seed), dtype=torch.float64) * std) @ rotation(dim, seed + 1).T
    _, vectors = torch.linalg.eigh(pool.T @ pool / n)
    return pool, vectors.flip(1)


def abs_cos(a, b):
    return float((a @ b).abs() / (a.norm() * b.norm()))


def test_instar_hard_wta_finds_cluster_means():
    angles = [0.0, 2 * math.pi / 3, 4 * math.pi / 3]  # equal-norm centres: the dot-product winner is the nearest
    centres = 3.0 * torch.tensor([[math.cos(a), math.sin(a)] for a in angles], dtype=torch.float64)
    gen = generator(0)
    labels = torch.arange(3).repeat(200)
    points = centres[labels] + 0.3 * torch.randn(600, 2, generator=gen, dtype=torch.float64)
    layer = HebbianLinear(2, 3, rule="instar", competition={"name": "hard_wta", "binary": True},
                          update_norm="none", lr=0.01).double()
    with torch.no_grad():  # start near the data, units in a shuffled order
        layer.weight.copy_(centres[[2, 0, 1]] + 0.8 * torch.randn(3, 2, generator=gen, dtype=torch.float64))
    for _ in range(300):
        layer(points[torch.randint(0, 600, (32,), generator=gen)])
        layer.apply_update()
    means = torch.stack([points[labels == k].mean(dim=0) for k in range(3)])
    for unit, k in enumerate([2, 0, 1]):
        assert float((layer.weight.detach()[unit] - means[k]).norm()) < 0.1


def test_oja_finds_unit_norm_first_principal_component():
    pool, pcs = gaussian_pool([3.0, 1.0, 0.5], 1000, seed=1)
    gen = generator(2)
    layer = HebbianLinear(3, 1, rule="oja", competition="none", update_norm="none", init="normal").double()
    with torch.no_grad():
        layer.weight.normal_(0, 0.3, generator=gen)
    for step in range(300):
        layer(pool[torch.randint(0, 1000, (50,), generator=gen)])
        layer.apply_update(0.002 if step < 200 else 0.0005)
    w = layer.weight.detach()[0]
    assert abs_cos(w, pcs[:, 0]) > 0.99
    assert abs(float(w.norm()) - 1) < 0.02


def test_sanger_finds_top_three_components_in_order():
    pool, pcs = gaussian_pool([5.0, 3.0, 1.5, 0.5, 0.2], 2000, seed=3)
    gen = generator(4)
    layer = HebbianLinear(5, 3, rule="sanger", competition="none", update_norm="none", init="normal").double()
    with torch.no_grad():
        layer.weight.normal_(0, 0.3, generator=gen)
    for step in range(400):
        layer(pool[torch.randint(0, 2000, (100,), generator=gen)])
        layer.apply_update(0.002 if step < 300 else 0.0003)
    weights = layer.weight.detach()
    for unit in range(3):
        assert abs_cos(weights[unit], pcs[:, unit]) > 0.99, f"unit {unit}"
        assert abs(float(weights[unit].norm()) - 1) < 0.02


def test_softhebb_radius_schedule_drives_norms_to_one():
    gen = generator(5)
    layer = HebbianConv2d(3, 8, 3, padding=1, rule="softhebb", competition="soft_wta", lr_schedule="radius",
                          lr=0.05, generator=generator(6)).double()
    start = float((layer.radius() - 1).abs().mean())
    assert start > 5  # the softhebb init has a wide radius range
    for _ in range(150):
        layer(torch.randn(8, 3, 6, 6, generator=gen, dtype=torch.float64))
        layer.apply_update()
    end = float((layer.radius() - 1).abs().mean())
    assert end < 0.05 * start, (start, end)


@pytest.mark.parametrize("dale", [True, "relu"])
def test_dale_weights_stay_non_negative(dale):
    def train(dale_mode):
        layer = HebbianConv2d(3, 6, 3, rule="instar", competition="soft_wta", lr=0.2, dale=dale_mode,
                              generator=generator(7))
        gen = generator(8)
        for _ in range(30):
            layer(torch.randn(4, 3, 5, 5, generator=gen))
            layer.apply_update()
            if dale_mode:
                assert float(layer.weight.detach().min()) >= 0
        return layer

    assert float(train(False).weight.detach().min()) < 0  # without Dale the same run has negative weights
    layer = train(dale)
    if dale == "relu":
        assert int((layer.weight == 0).sum()) > 0  # clipping, not reflection


def test_bcm_theta_tracks_mean_squared_output():
    layer = HebbianLinear(4, 3, rule={"name": "bcm", "theta_rate": 0.1}, competition="none", lr=0.0).double()
    gen = generator(9)
    with torch.no_grad():  # E[y²] of the fixed weights on a large sample (not through the layer: no θ update)
        sample = torch.randn(20000, 4, generator=gen, dtype=torch.float64)
        expected = torch.nn.functional.linear(sample, layer.weight).pow(2).mean(dim=0)
    for scale in (1.0, 2.0):  # θ follows E[y²] when the input statistics change
        for _ in range(150):
            layer(scale * torch.randn(64, 4, generator=gen, dtype=torch.float64))
        theta = layer.rule.theta
        torch.testing.assert_close(theta, scale ** 2 * expected, rtol=0.12, atol=0.0)


@pytest.mark.parametrize("rule", available_rules())
def test_long_runs_stay_finite_with_global_max(rule):
    layer = HebbianConv2d(3, 6, 3, padding=1, rule=rule, competition="hard_wta", update_norm="global_max",
                          lr=0.1, generator=generator(10))
    gen = generator(11)
    for _ in range(300):
        layer(torch.randn(4, 3, 6, 6, generator=gen))
        layer.apply_update()  # raises HebbianDivergenceError on NaN or |W| > 1e6
    assert torch.isfinite(layer.weight).all()
    assert int(layer.num_updates) == 300


def test_divergence_guard_names_layer_and_step():
    layer = HebbianLinear(4, 3, rule="hebb", competition="none", update_norm="none", lr=10.0, name="runaway",
                          explode_threshold=1e4, generator=generator(12))
    gen = generator(13)
    with pytest.raises(HebbianDivergenceError) as caught:
        for _ in range(100):
            layer(torch.randn(16, 4, generator=gen))
            layer.apply_update()
    message = str(caught.value)
    assert "runaway" in message and f"step {int(layer.num_updates)}" in message and "exploded" in message
    assert 1 <= int(layer.num_updates) < 100


def test_divergence_guard_catches_non_finite_weights():
    layer = HebbianConv2d(3, 4, 3, name="conv1", generator=generator(14))
    layer(torch.randn(2, 3, 5, 5, generator=generator(15)))
    layer.apply_update()
    with torch.no_grad():
        layer.weight[1, 0, 0, 0] = float("nan")
    with pytest.raises(HebbianDivergenceError, match=r"'conv1'.*non-finite.*step 2"):
        layer.apply_update()


def test_divergence_guard_respects_check_every_and_no_threshold():
    layer = HebbianLinear(3, 2, rule="hebb", competition="none", check_every=3, generator=generator(16))
    with torch.no_grad():
        layer.weight.fill_(float("inf"))
    layer.apply_update()
    layer.apply_update()  # checks run on every third step only (no host sync in between)
    with pytest.raises(HebbianDivergenceError, match="step 3"):
        layer.apply_update()
    unlimited = HebbianLinear(3, 2, explode_threshold=None, generator=generator(17))
    with torch.no_grad():
        unlimited.weight.fill_(1e12)
    unlimited.apply_update()  # huge but finite is allowed without a threshold
