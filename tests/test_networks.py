"""Architectures: exact parameter counts, shapes, per-layer settings, the Hebbian-layer API."""
from __future__ import annotations

import pytest
import torch

from hebblib.activations import Triangle
from hebblib.networks import (ARCHITECTURES, PARAMETER_COUNTS, build_network, merge_settings, miconi,
                              krotov_hopfield, softhebb, softhebb_depthwise)

# Spec nimmo-thesis §2 (recomputed there; thesis states 5,893,162 and 883,978) and the brief.
EXPECTED = {
    "softhebb": (5_893_162, 24_576),
    "hardhebb": (6_031_402, 38_400),
    "lagani_short": (386_986, 4_800),
    "lagani_deep": (804_394, 2_304),
    "softhebb_depthwise": (883_978, 24_576),
    "hardhebb_depthwise": (1_022_218, 38_400),
    "softhebb_residual": (4_030_378, 24_576),
    "backprop_softhebb": (5_893_162, 24_576),
    "miconi": (905_510, 1_600),
    "krotov_hopfield": (1_475_554, 300),
}


def test_every_architecture_is_counted():
    assert set(EXPECTED) == set(ARCHITECTURES) == set(PARAMETER_COUNTS)
    assert {k: v[0] for k, v in EXPECTED.items()} == PARAMETER_COUNTS


@pytest.mark.parametrize("name", list(EXPECTED))
def test_parameter_count_and_feature_size(name):
    net = build_network(name)
    params, features = EXPECTED[name]
    assert net.num_parameters() == params
    assert net.num_features == features
    assert net.classifier.in_features == features


@pytest.mark.parametrize("name", list(EXPECTED))
def test_forward_shapes_and_one_update(name):
    torch.manual_seed(0)
    net = build_network(name, width_factor=0.125)
    x = torch.randn(4, 3, 32, 32)
    net.train()
    with torch.no_grad():
        feats = net.features(x)
    assert feats.shape == (4, net.num_features)
    before = {n: layer.weight.detach().clone() for n, layer in net.hebbian_layers().items()}
    net.apply_updates()
    for n, layer in net.hebbian_layers().items():
        assert torch.isfinite(layer.weight).all()
        assert not torch.equal(before[n], layer.weight), f"{name}: layer {n} did not learn"
    net.eval()
    assert net(x).shape == (4, 10)


def test_eval_mode_does_not_learn():
    net = softhebb(width_factor=0.125).eval()
    with torch.no_grad():
        net.features(torch.randn(2, 3, 32, 32))
    assert all(float(layer.delta_w.abs().sum()) == 0 for layer in net.hebbian_layers().values())


def test_layer_names_and_width_factor():
    net = softhebb_depthwise(width_factor=0.25)
    layers = net.hebbian_layers()
    assert list(layers) == ["conv1", "conv2.depthwise", "conv2.pointwise", "conv3.depthwise", "conv3.pointwise"]
    assert layers["conv1"].out_channels == 24 and layers["conv3.pointwise"].out_channels == 384
    assert layers["conv2.depthwise"].groups == 24
    assert net.stage_of("conv3.depthwise") == 2


def test_per_layer_settings_merge_over_defaults():
    net = softhebb(layers=[{"lr": 0.1, "competition": {"temperature": 2.0}}, {"lr": 0.08}, {"lr": 0.05}],
                   defaults={"rule": "softhebb", "competition": "soft_wta", "activation": "cosine"},
                   width_factor=0.125)
    layers = net.hebbian_layers()
    assert [layers[n].lr for n in ("conv1", "conv2", "conv3")] == [0.1, 0.08, 0.05]
    assert layers["conv1"].competition.temperature == 2.0 and layers["conv2"].competition.temperature == 1.0
    assert all(layer.activation == "cosine" and layer.rule.name == "softhebb" for layer in layers.values())
    assert all(layer.padding_mode == "reflect" for layer in layers.values())


def test_merge_settings_string_then_dict():
    merged = merge_settings({"rule": "bcm", "lr": 0.1}, {"rule": {"theta_rate": 0.3}})
    assert merged == {"rule": {"name": "bcm", "theta_rate": 0.3}, "lr": 0.1}


def test_surround_is_dropped_on_pointwise_convs():
    net = softhebb_depthwise(defaults={"surround": {"size": 5, "sigma_e": 1.2, "sigma_i": 1.4}}, width_factor=0.125)
    layers = net.hebbian_layers()
    assert layers["conv2.depthwise"].surround is not None
    assert layers["conv2.pointwise"].surround is None


def test_sublayer_settings_by_role():
    net = softhebb_depthwise(layers=[{}, {"sublayers": {"depthwise": {"lr": 0.5}}}, {}], width_factor=0.125)
    layers = net.hebbian_layers()
    assert layers["conv2.depthwise"].lr == 0.5 and layers["conv2.pointwise"].lr == 0.1


@pytest.mark.parametrize("kwargs, match", [
    ({"layers": [{}, {}]}, "3 stages"),
    ({"defaults": {"learning_rate": 0.1}}, "unknown Hebbian setting.*valid keys"),
    ({"layers": [{}, {"sublayers": {"pointwise": {}}}, {}]}, "unknown sublayer role"),
    ({"defaults": {"activation": "sine"}}, "layer 'conv1'.*activation"),
    ({"width_factor": 0}, "width_factor"),
])
def test_bad_settings_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        softhebb(**kwargs)


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(ValueError, match="softhebb_residual"):
        build_network("resnet")


def test_backprop_twin_has_no_hebbian_layers_and_trains_by_gradient():
    net = build_network("backprop_softhebb", width_factor=0.125)
    assert net.hebbian_layers() == {}
    loss = net(torch.randn(2, 3, 32, 32)).sum()
    loss.backward()
    assert net.stages[0].conv.weight.grad is not None


def test_miconi_pruning_triangle_and_unit_norm():
    net = miconi(width_factor=0.25)
    layers = net.hebbian_layers()
    assert layers["conv1"].mask is None
    for name in ("conv2", "conv3"):
        assert 0.97 < 1 - float(layers[name].mask.mean()) < 1.0
    net.train()
    with torch.no_grad():
        out = net.features(torch.randn(8, 3, 32, 32))
    net.apply_updates()
    assert (out >= 0).all()
    for layer in layers.values():  # unit norm, except units whose every weight was pruned (small widths)
        radius = layer.radius(2)
        alive = radius > 0
        assert alive.float().mean() > 0.8
        assert torch.allclose(radius[alive], torch.ones_like(radius[alive]), atol=1e-4)


def test_krotov_hopfield_stack():
    net = krotov_hopfield(width_factor=0.25)
    layers = net.hebbian_layers()
    assert list(layers) == ["conv1", "conv2", "conv3", "conv4", "fc5"]
    assert layers["fc5"].competition.name == "krotov" and layers["fc5"].lebesgue_p == 8
    assert layers["conv1"].update_norm == "per_filter" and layers["fc5"].update_norm == "global_max"


@pytest.mark.parametrize("act", [Triangle(0.7), Triangle(1.4), Triangle(1.0), torch.nn.ReLU()])
@pytest.mark.parametrize("pool", [torch.nn.MaxPool2d(4, 2, 1), torch.nn.MaxPool2d(2), torch.nn.AvgPool2d(2, 2, 0)])
def test_activate_and_pool_equals_pool_of_act(act, pool):
    # the power taken after the max-pool and the channels-last pool must not change the values or gradients
    from hebblib.networks.blocks import activate_and_pool

    u = torch.randn(3, 8, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a, b = u.clone().requires_grad_(), u.clone().requires_grad_()
    fast, reference = activate_and_pool(act, pool, a), pool(act(b))
    assert fast.is_contiguous() and fast.shape == reference.shape
    torch.testing.assert_close(fast, reference, rtol=1e-12, atol=1e-12)
    weights = torch.randn_like(reference)
    (fast * weights).sum().backward()
    (reference * weights).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)


def test_activate_and_pool_still_calls_a_hooked_activation():
    # forward hooks on the activation (e.g. the receptive-field tools) must fire
    from hebblib.networks.blocks import activate_and_pool

    act, pool, seen = Triangle(0.7), torch.nn.MaxPool2d(2), []
    act.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    out = activate_and_pool(act, pool, torch.randn(1, 4, 6, 6))
    assert seen == [torch.Size([1, 4, 6, 6])] and out.shape == (1, 4, 3, 3)
