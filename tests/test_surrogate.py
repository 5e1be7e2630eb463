"""Miconi's surrogate-gradient formulation (seed 002 App. A) against the direct Hebbian update.

The gradient of the surrogate loss, evaluated at the real (post-competition) output ŷ, must be minus
the Hebbian update: for plain Hebb Σ ŷ x, for Instar Σ ŷ (x − w), for Oja Σ ŷ (x − ŷ w).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import reference_hebbian as ref
from reference_hebbian import single_thread  # noqa: F401  (a fixture)
from hebblib import HebbianConv2d, HebbianLinear
from hebblib.surrogate import surrogate_loss, surrogate_update

pytestmark = pytest.mark.usefixtures("single_thread")

SURROGATE_RULES = ["hebb", "instar", "oja"]
COMPETITIONS = {"binary_wta": {"name": "hard_wta", "binary": True}, "none": "none"}
GEOMETRIES = {
    "plain": ({}, (2, 3, 5, 5)),
    "stride2_padding1": ({"stride": 2, "padding": 1}, (2, 3, 6, 5)),
    "reflect_dilation2": ({"padding": 2, "padding_mode": "reflect", "dilation": 2}, (2, 3, 5, 6)),
    "groups3": ({"groups": 3, "padding": 1}, (2, 3, 4, 4)),
}


def generator(seed):
    return torch.Generator().manual_seed(seed)


def inputs(shape, seed):
    return torch.randn(*shape, generator=generator(seed), dtype=torch.float64)


def assert_close(actual, expected, tol=1e-9):
    expected = expected.detach()
    torch.testing.assert_close(actual.detach(), expected, rtol=tol, atol=tol * (1 + float(expected.abs().max())))


def layer_pair(rule, competition, **kwargs):
    common = dict(rule=rule, competition=competition, init="unit_norm", update_norm="none", **kwargs)
    direct = HebbianConv2d(3, 6, 3, generator=generator(0), **common).double()
    surrogate = HebbianConv2d(3, 6, 3, update_via="surrogate", generator=generator(0), **common).double()
    assert torch.equal(direct.weight, surrogate.weight)
    return direct, surrogate


@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("competition", list(COMPETITIONS))
@pytest.mark.parametrize("rule", SURROGATE_RULES)
def test_layer_surrogate_equals_direct_update(rule, competition, geometry):
    kwargs, shape = GEOMETRIES[geometry]
    direct, surrogate = layer_pair(rule, COMPETITIONS[competition], **kwargs)
    for step in range(2):
        x = inputs(shape, 10 + step)
        assert_close(surrogate(x), direct(x))
        assert direct.delta_w.abs().max() > 0
        assert_close(surrogate.delta_w, direct.delta_w)
        direct.apply_update(0.05)
        surrogate.apply_update(0.05)
        assert_close(surrogate.weight, direct.weight)


@pytest.mark.parametrize("rule", SURROGATE_RULES)
def test_linear_surrogate_equals_direct_update(rule):
    common = dict(rule=rule, competition={"name": "hard_wta", "binary": True}, init="unit_norm", update_norm="none")
    direct = HebbianLinear(5, 4, generator=generator(1), **common).double()
    surrogate = HebbianLinear(5, 4, update_via="surrogate", generator=generator(1), **common).double()
    x = inputs((7, 5), 12)
    direct(x)
    surrogate(x)
    assert_close(surrogate.delta_w, direct.delta_w)


@pytest.mark.parametrize("rule", SURROGATE_RULES)
def test_surrogate_update_equals_loop_reference(rule):
    """surrogate_update on its own against −Σ ŷ(x − ·) written with loops (reference_hebbian)."""
    x_padded = ref.pad(inputs((2, 4, 5, 6), 13), 1, "reflect")
    weight = inputs((4, 2, 3, 3), 14)
    u = ref.activation(x_padded, weight, stride=2, groups=2)
    y_hat = ref.per_site(u, ref.hard_wta, groups=2, binary=True) if rule != "hebb" else u
    s = {"hebb": None, "instar": y_hat, "oja": y_hat * y_hat}[rule]
    expected = ref.hebbian_update(x_padded, weight, y_hat, s, stride=2, groups=2)
    assert_close(surrogate_update(x_padded, weight, y_hat, rule, stride=2, groups=2), expected)


def test_miconi_style_numeric_check():
    """In the spirit of HebbGrad_CheckHebb.ipynb: Oja, stride so the map is 3x3, k-WTA binary (k=1);
    w.grad[f, 0, 1, 1] from the surrogate loss equals −Σ_b Σ_positions ŷ (x − ŷ w), computed in NumPy."""
    batch, filters, stride = 5, 4, 3
    x = inputs((batch, 2, 9, 9), 15)  # (9 − 3) / 3 + 1 = 3 output rows and columns
    weight = (0.5 * inputs((filters, 2, 3, 3), 16)).requires_grad_(True)
    prelim = F.conv2d(x, weight, stride=stride)
    assert prelim.shape == (batch, filters, 3, 3)
    y_hat = (prelim == prelim.max(dim=1, keepdim=True).values).to(x.dtype).detach()  # binary WTA
    surrogate_loss(x, weight, y_hat, "oja", stride=stride).backward()

    xs, w, yh = x.numpy(), weight.detach().numpy(), y_hat.numpy()
    for f in range(filters):
        by_hand = 0.0
        for b in range(batch):
            for h in range(3):
                for v in range(3):
                    pixel = xs[b, 0, h * stride + 1, v * stride + 1]  # tap (channel 0, row 1, column 1)
                    by_hand += yh[b, f, h, v] * (pixel - yh[b, f, h, v] * w[f, 0, 1, 1])
        assert float(weight.grad[f, 0, 1, 1]) == pytest.approx(-by_hand, rel=1e-12, abs=1e-12)
    # the whole tensor: the gradient is exactly minus the direct update
    direct = ref.hebbian_update(x, weight.detach(), y_hat, y_hat * y_hat, stride=stride)
    assert_close(weight.grad, -direct)
    # and an SGD step on the loss applies W + lr·ΔW
    with torch.no_grad():
        stepped = weight - 0.1 * weight.grad
    assert_close(stepped, weight.detach() + 0.1 * direct)


def test_binary_outputs_make_oja_equal_instar():
    """ŷ ∈ {0, 1} gives ŷ² = ŷ, so Oja ≡ Instar exactly (Miconi; spec Part 1.2)."""
    x_padded, weight = inputs((3, 3, 5, 5), 17), inputs((5, 3, 3, 3), 18)
    y_hat = ref.per_site(ref.activation(x_padded, weight), ref.hard_wta, binary=True)
    assert torch.equal(y_hat * y_hat, y_hat)
    assert_close(surrogate_update(x_padded, weight, y_hat, "oja"), surrogate_update(x_padded, weight, y_hat, "instar"))
    assert not torch.allclose(surrogate_update(x_padded, weight, y_hat, "hebb"),
                              surrogate_update(x_padded, weight, y_hat, "instar"))


def test_surrogate_gradient_ignores_the_real_output_graph():
    # ŷ is detached: a graph attached to it must not leak into the gradient
    x, weight = inputs((2, 3, 5, 5), 19), inputs((4, 3, 3, 3), 20)
    y_hat = F.conv2d(x, weight.clone().requires_grad_(True)).relu()
    delta = surrogate_update(x, weight, y_hat, "oja")
    expected = ref.hebbian_update(x, weight, y_hat.detach(), y_hat.detach() ** 2)
    assert_close(delta, expected)


def test_surrogate_rejects_unsupported_settings():
    with pytest.raises(ValueError, match="rule .softhebb."):
        HebbianConv2d(3, 4, 3, rule="softhebb", update_via="surrogate")
    with pytest.raises(ValueError, match="activation"):
        HebbianConv2d(3, 4, 3, rule="instar", activation="cosine", update_via="surrogate")
    with pytest.raises(ValueError, match="surrogate rule"):
        surrogate_update(inputs((1, 1, 3, 3), 0), inputs((1, 1, 3, 3), 1), inputs((1, 1, 1, 1), 2), "bcm")
