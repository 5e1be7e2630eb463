"""The frozen network's forward pass (feature extraction): the Triangle's channel mean taken out by centring
the filters, channels-last activity on the CPU, checked against the blocks written out with plain torch ops."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hebblib.activations import Triangle
from hebblib.layers import HebbianConv2d
from hebblib.networks import build_network
from hebblib.networks.blocks import ConvBlock, DepthwiseSeparableBlock, centred_triangle


def _input(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def _plain_conv(layer, x):
    """``u = W ⊛ pad(x)`` from the layer's effective weights, without the layer's forward."""
    ph, pw = layer.padding
    mode = "constant" if layer.padding_mode == "zeros" else layer.padding_mode
    x = F.pad(x, [pw, pw, ph, ph], mode=mode) if ph or pw else x
    w = layer.effective_weight()
    if layer.lebesgue_p != 2:
        w = w.sign() * w.abs().pow(layer.lebesgue_p - 1)
    return F.conv2d(x, w, stride=layer.stride, dilation=layer.dilation, groups=layer.groups)


LAYERS = {
    "plain": dict(padding=2, padding_mode="reflect"),
    "stride and dilation": dict(stride=2, dilation=2, padding=1),
    "dale": dict(padding=1, dale=True),
    "weight_norm": dict(weight_norm=True),
    "lebesgue_p=3": dict(lebesgue_p=3.0),
    "presynaptic": dict(padding=1, presynaptic={"kind": "softmax", "dim": "input"}),
}


@pytest.mark.parametrize("settings", list(LAYERS.values()), ids=list(LAYERS))
@pytest.mark.parametrize("mode", ["eval", "train, not plastic"])
def test_centred_output_is_the_output_minus_its_channel_mean(settings, mode):
    torch.manual_seed(0)
    layer = HebbianConv2d(5, 7, 3, **settings).double()
    layer.train(mode != "eval")
    layer.plastic = mode == "eval"  # a plastic layer in eval mode does not learn either
    x = _input(2, 5, 9, 11)
    with torch.no_grad():
        u = _plain_conv(layer, x)
        centred = layer(x, centred=True)
        plain = layer(x)
    # the subtraction of the mean over the OUTPUT channels (dim 1) at each position, not over positions
    torch.testing.assert_close(centred, u - u.mean(1, keepdim=True), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(plain, u, rtol=1e-12, atol=1e-12)
    assert centred.abs().sum() < u.abs().sum()  # something was taken out: a centring that did nothing fails
    assert layer.delta_w.abs().sum() == 0  # no update accumulated


@pytest.mark.parametrize("case, build, expected", [
    ("learning", lambda: HebbianConv2d(4, 6, 3).train(), "the layer learns in this call"),
    ("cosine", lambda: HebbianConv2d(4, 6, 3, activation="cosine").eval(), "activation='cosine'"),
    ("groups", lambda: HebbianConv2d(4, 6, 3, groups=2).eval(), "groups=2"),
    ("surround", lambda: HebbianConv2d(4, 6, 3, surround={"size": 3, "sigma_e": 0.8, "sigma_i": 1.1}).eval(),
     "surround modulation"),
])
def test_centred_refuses_a_layer_it_does_not_hold_for(case, build, expected):
    layer = build()
    before = layer.weight.detach().clone()
    with torch.no_grad(), pytest.raises(ValueError, match=f"centred=True needs a frozen dot-product.*{expected}"):
        layer(torch.randn(1, 4, 6, 6), centred=True)
    assert torch.equal(layer.weight, before) and layer.delta_w.abs().sum() == 0  # refused before any work


def test_centred_refuses_under_autograd():
    # the Triangle's channel mean is a constant to backprop; the mean of centred filters is not
    layer = HebbianConv2d(4, 6, 3).eval()
    with pytest.raises(ValueError, match="gradients are enabled"):
        layer(torch.randn(1, 4, 6, 6), centred=True)


def _reference_features(net, x):
    """Each block of a soft-type network written out: ``pool(relu(u − mean_o u) ** p)`` in the usual layout."""
    for stage in net.stages:
        if isinstance(stage, ConvBlock):
            u = _plain_conv(stage.conv, stage.norm(x))
        else:
            assert isinstance(stage, DepthwiseSeparableBlock)
            u = _plain_conv(stage.pointwise, stage.norm2(_plain_conv(stage.depthwise, stage.norm1(x))))
        assert isinstance(stage.act, Triangle)
        x = stage.pool(torch.relu(u - u.mean(1, keepdim=True)) ** stage.act.power)
    return x.reshape(len(x), -1)


@pytest.mark.parametrize("architecture", ["softhebb", "hardhebb", "softhebb_depthwise", "lagani_short"])
def test_frozen_features_equal_the_blocks_written_out(architecture):
    net = build_network(architecture, width_factor=0.25, generator=torch.Generator().manual_seed(1)).double().eval()
    for stage in net.stages:  # non-trivial BatchNorm statistics
        for norm in (m for m in stage.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
    x = _input(3, 3, 32, 32)
    with torch.no_grad():
        assert all(centred_triangle(s.conv if isinstance(s, ConvBlock) else s.pointwise, s.act) for s in net.stages)
        fast = net.features(x)
        reference = _reference_features(net, x)
    torch.testing.assert_close(fast, reference, rtol=1e-10, atol=1e-10)
    with torch.enable_grad():  # under autograd the path without centring: the same values
        torch.testing.assert_close(net.features(x), reference, rtol=1e-10, atol=1e-10)


def test_float32_frozen_features_stay_near_float64():
    net64 = build_network("softhebb", width_factor=0.25, generator=torch.Generator().manual_seed(2)).double().eval()
    net32 = build_network("softhebb", width_factor=0.25, generator=torch.Generator().manual_seed(2)).eval()
    x = _input(4, 3, 32, 32)
    with torch.no_grad():
        reference, fast = _reference_features(net64, x), net32.features(x.float())
    assert ((fast.double() - reference).norm() / reference.norm()).item() < 1e-5


def test_eval_activity_is_channels_last_on_the_cpu_and_training_keeps_the_usual_layout():
    layer = HebbianConv2d(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        frozen = layer.eval()(x)
        learning = layer.train()(x)
    assert frozen.is_contiguous(memory_format=torch.channels_last)
    assert learning.is_contiguous()
    torch.testing.assert_close(frozen, learning, rtol=1e-6, atol=1e-6)


def test_a_hooked_conv_or_activation_sees_the_uncentred_activity():
    # the receptive-field and recording tools hook the conv or the activation: they must see u itself
    net = build_network("softhebb", width_factor=0.25, generator=torch.Generator().manual_seed(3)).double().eval()
    x = _input(2, 3, 32, 32)
    stage = net.stages[0]
    seen = []
    handle = stage.conv.register_forward_hook(lambda module, inputs, output: seen.append(output))
    with torch.no_grad():
        assert not centred_triangle(stage.conv, stage.act)
        hooked = net.features(x)
        handle.remove()
        assert centred_triangle(stage.conv, stage.act)
        plain = net.features(x)
    torch.testing.assert_close(seen[0], _plain_conv(stage.conv, stage.norm(x)), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hooked, plain, rtol=1e-10, atol=1e-10)
