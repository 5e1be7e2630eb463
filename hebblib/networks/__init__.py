"""Hebbian CNN architectures: blocks ``BN(affine=False) → HebbianConv2d → Triangle(p) → pool`` stacked into a
:class:`HebbianNet` with a ``Dropout(0.5) → Linear(F, 10)`` head.

    net = build_network("softhebb", layers=[{"lr": 0.1}, {"lr": 0.08}, {"lr": 0.05}],
                        defaults={"rule": "instar", "competition": "hard_wta", "activation": "cosine"})
    net.features(x)        # flattened last pooled map (N, net.num_features)
    net(x)                 # class scores
    net.apply_updates()    # W += lr · ΔW in every Hebbian layer after a training-mode forward

``layers`` is one dict of :class:`hebblib.HebbianConv2d` keyword arguments per stage, merged over
``defaults`` (see :mod:`hebblib.networks.settings`).
"""
from __future__ import annotations

from ..errors import choice_error
from .blocks import ConvBlock, DepthwiseSeparableBlock, LinearBlock, ResidualBlock, SampleStandardize
from .contrastive import ContrastiveNet, contrastive_conv, contrastive_mlp  # Lunelli (seed 003)
from .net import HebbianNet
from .nimmo import (backprop_softhebb, hardhebb, hardhebb_depthwise, lagani_deep, lagani_short, softhebb,
                    softhebb_depthwise, softhebb_residual)
from .others import krotov_hopfield, miconi
from .settings import merge_settings

ARCHITECTURES = {
    "softhebb": softhebb,
    "hardhebb": hardhebb,
    "lagani_short": lagani_short,
    "lagani_deep": lagani_deep,
    "softhebb_depthwise": softhebb_depthwise,
    "hardhebb_depthwise": hardhebb_depthwise,
    "softhebb_residual": softhebb_residual,
    "backprop_softhebb": backprop_softhebb,
    "miconi": miconi,
    "krotov_hopfield": krotov_hopfield,
}

# Trainable parameters with the default width and the 10-class head (spec nimmo-thesis §2, recomputed;
# miconi and krotov_hopfield computed here). tests/test_networks.py asserts every one.
PARAMETER_COUNTS = {
    "softhebb": 5_893_162,
    "hardhebb": 6_031_402,
    "lagani_short": 386_986,
    "lagani_deep": 804_394,
    "softhebb_depthwise": 883_978,
    "hardhebb_depthwise": 1_022_218,
    "softhebb_residual": 4_030_378,
    "backprop_softhebb": 5_893_162,
    "miconi": 905_510,
    "krotov_hopfield": 1_475_554,
}


def available_architectures() -> list[str]:
    """Names accepted by :func:`build_network`."""
    return list(ARCHITECTURES)


def build_network(name: str, layers=None, defaults=None, **options) -> HebbianNet:
    """Build architecture ``name`` with per-stage Hebbian ``layers`` settings over ``defaults``;
    ``options`` go to the build function (``width_factor``, ``dropout``, ``generator``, ...)."""
    if name not in ARCHITECTURES:
        raise choice_error("architecture", name, ARCHITECTURES)
    return ARCHITECTURES[name](layers, defaults, **options)


__all__ = [
    "HebbianNet", "ConvBlock", "DepthwiseSeparableBlock", "ResidualBlock", "LinearBlock", "SampleStandardize",
    "ARCHITECTURES", "PARAMETER_COUNTS", "available_architectures", "build_network", "merge_settings",
    "softhebb", "hardhebb", "lagani_short", "lagani_deep", "softhebb_depthwise", "hardhebb_depthwise",
    "softhebb_residual", "backprop_softhebb", "miconi", "krotov_hopfield",
]
