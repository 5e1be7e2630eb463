"""The feature extraction's fast path keeps its values.

* bf16: a frozen layer picks its own kernel (oneDNN's convolution below a fan-in, the patches' matrix product
  above); the soft network's features on real CIFAR-10 images against the kernels a learning layer uses (the
  path before) and against fp32, within tolerances that a wrong sign of one layer's weights exceeds.
* fp32: the cached features are bit for bit ``model.features`` of each batch.
* The one-pass check of the features: a NaN or an infinity anywhere is still an error, a value beyond float16's
  range still switches the cache to bfloat16.
"""
from __future__ import annotations

import pytest
import torch

from hebblib import training
from hebblib.classifier import extract_features
from hebblib.errors import HebbianDivergenceError
from hebblib.layers import FROZEN_MATMUL_MIN_FAN_IN, compute_precision
from hebblib.presets import build_model, resolve_preset
from hebblib.update import low_precision_kernel

# bf16 features of the soft network (relative Frobenius difference over 64 subset images). Measured: the frozen
# kernels against the learning layers' kernels 0 (conv2 gives the same bits) to 3e-5 (accumulation order);
# bf16 against fp32 ~4e-3. A wrong sign of conv2's weights moves the features by ~1.
KERNEL_TOLERANCE = 1e-3
BF16_TOLERANCE = 2e-2


def _relative(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.fixture(scope="module")
def soft_and_data():
    split, _, _ = training.load_splits({"normalization": "standardize"}, source="subset", limit_train=200)
    train = split.subset(torch.arange(64))
    torch.manual_seed(0)
    model = build_model(resolve_preset("soft"))
    model.train()
    with torch.no_grad():  # BatchNorm's running statistics of real images (the update is never applied)
        model.features(train.get(slice(0, 64))[0])
    model.eval()
    return model, train


def _features(model, data, precision, kernels=None):
    layers = list(model.hebbian_layers().values())
    for layer in layers:
        layer.low_precision_kernel = None if kernels is None else kernels(layer)
    try:
        return extract_features(model, data, batch_size=32, dtype=torch.float32, progress=False,
                                precision=precision)
    finally:
        for layer in layers:
            layer.low_precision_kernel = None


def test_frozen_layers_pick_the_convolution_below_the_fan_in():
    model = build_model(resolve_preset("soft")).eval()
    x = torch.zeros(1, 96, 10, 10)
    with compute_precision(model, torch.bfloat16):
        conv2, conv3 = model.hebbian_layers()["conv2"], model.hebbian_layers()["conv3"]
        assert conv2.weight[0].numel() < FROZEN_MATMUL_MIN_FAN_IN <= conv3.weight[0].numel()
        assert conv2._low_precision_kernel(x) == "conv" and conv3._low_precision_kernel(x) == "matmul"
        conv2.train()  # a learning layer shares its patches with the update
        assert conv2._low_precision_kernel(x) == "matmul"


def test_bf16_features_follow_the_learning_kernels_and_fp32(soft_and_data):
    model, data = soft_and_data
    fast = _features(model, data, "bf16")
    before = _features(model, data, "bf16", lambda layer: low_precision_kernel("cpu", layer.weight[0].numel()))
    exact = _features(model, data, "fp32")
    assert _relative(fast, before) < KERNEL_TOLERANCE
    assert _relative(fast, exact) < BF16_TOLERANCE
    conv2 = model.hebbian_layers()["conv2"]
    with torch.no_grad():
        conv2.weight.neg_()
        try:
            wrong = _features(model, data, "fp32")
        finally:
            conv2.weight.neg_()
    assert _relative(wrong, exact) > BF16_TOLERANCE  # the tolerances separate right from wrong


def test_fp32_features_are_the_models_bits(soft_and_data):
    model, data = soft_and_data
    cached = _features(model, data, "fp32")
    with torch.no_grad():
        plain = torch.cat([model.features(data.get(slice(s, s + 32))[0]) for s in (0, 32)])
    assert torch.equal(cached, plain)


class _Constant(torch.nn.Module):
    num_features = 3

    def __init__(self, value):
        super().__init__()
        self.value = value

    def features(self, x):
        out = torch.ones(len(x), 3)
        out[-1, 1] = self.value
        return out


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_feature_anywhere_is_an_error(soft_and_data, value):
    _, data = soft_and_data
    with pytest.raises(HebbianDivergenceError, match="non-finite features"):
        extract_features(_Constant(value), data, batch_size=16, progress=False, dtype=torch.float32)


def test_a_large_negative_feature_switches_the_cache_to_bfloat16(soft_and_data):
    _, data = soft_and_data
    with pytest.warns(UserWarning, match="exceed the float16 range"):
        feats = extract_features(_Constant(-1e6), data, batch_size=16, progress=False)
    assert feats.dtype == torch.bfloat16 and float(feats.float().min()) == pytest.approx(-1e6, rel=1e-2)
    assert float(extract_features(_Constant(-6e4), data, batch_size=16, progress=False).float().min()) == -60000
