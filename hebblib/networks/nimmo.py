"""The architectures of Nimmo's thesis and code (spec nimmo-thesis §2, parameter counts recomputed there).

    function              spec   stages (out channels)                    parameters (with the head)
    softhebb              §2.1   96 → 384 → 1536, pad 2/1/1                 5,893,162
    hardhebb              §2.2   96 → 384 → 1536, no padding                6,031,402
    lagani_short          §2.3   96 → 128 → 192, no padding                   386,986
    lagani_deep           §2.4   96 → 128 → 192 → 256                         804,394
    softhebb_depthwise    §2.5   conv 96, dw+pw 384, dw+pw 1536              883,978
    hardhebb_depthwise    §2.6   as above without padding (thesis Dale run)  1,022,218
    softhebb_residual     §2.7   stem 96, two inverted-bottleneck blocks    4,030,378
    backprop_softhebb     §2.8   softhebb's shape, nn.Conv2d + ReLU          5,893,162

Every block is ``pool(Triangle(p)(HebbianConv2d(BN(x))))`` with ``BN = BatchNorm2d(affine=False)``; the
Hebbian convs pad with ``reflect`` as the original code does (SoftHebb too), the backprop twin with zeros.
"""
from __future__ import annotations

import torch
from torch import nn

from ..activations import Triangle
from ..layers import HebbianConv2d
from .blocks import ConvBlock, DepthwiseSeparableBlock, ResidualBlock, make_pool
from .net import INPUT_SHAPE, HebbianNet, input_channels
from .settings import known_roles, layer_kwargs, stage_settings

# (out_channels, kernel, padding, Triangle power, pool) per stage; pool = (kind, kernel, stride, padding).
SOFTHEBB_STAGES = ((96, 5, 2, 0.7, ("max", 4, 2, 1)), (384, 3, 1, 1.4, ("max", 4, 2, 1)),
                   (1536, 3, 1, 1.0, ("avg", 2, 2, 0)))
HARDHEBB_STAGES = ((96, 5, 0, 0.7, ("max", 2, 2, 0)), (384, 3, 0, 1.4, None), (1536, 3, 0, 1.0, ("avg", 2, 2, 0)))
LAGANI_SHORT_STAGES = ((96, 5, 0, 1.0, ("max", 2, 2, 0)), (128, 3, 0, 1.0, None), (192, 3, 0, 1.0, ("avg", 2, 2, 0)))
LAGANI_DEEP_STAGES = LAGANI_SHORT_STAGES + ((256, 3, 0, 1.0, None),)

HEBBIAN_BUILTIN = {"padding_mode": "reflect"}  # thesis code and SoftHebb pad Hebbian convs by reflection
DEPTHWISE_ROLES = ("depthwise", "pointwise")
RESIDUAL_ROLES = ("expand", "depthwise", "project", "shortcut")


def scale_width(channels: int, width_factor: float) -> int:
    if not (isinstance(width_factor, (int, float)) and width_factor > 0):
        raise ValueError(f"width_factor must be a number > 0, got {width_factor!r}")
    return max(1, int(round(channels * width_factor)))


def hebbian_conv(in_ch, out_ch, kernel, padding, settings, *, name, role=None, groups=1, builtin=None,
                 generator=None) -> HebbianConv2d:
    """One ``HebbianConv2d`` from a stage's merged settings; a bad setting names the layer."""
    kwargs = layer_kwargs(settings, role, kernel_size=kernel, builtin=builtin or HEBBIAN_BUILTIN)
    try:
        return HebbianConv2d(in_ch, out_ch, kernel, padding=padding, groups=groups, name=name,
                             generator=generator, **kwargs)
    except (TypeError, ValueError) as err:
        raise type(err)(f"layer {name!r}: {err}") from None


def _plain_net(stage_specs, architecture, layers, defaults, *, width_factor, num_classes, dropout, head_init,
               input_shape, generator) -> HebbianNet:
    settings = stage_settings(layers, defaults, len(stage_specs), architecture)
    stages, in_ch = [], input_channels(input_shape)
    for i, ((out_ch, kernel, pad, power, pool), s) in enumerate(zip(stage_specs, settings), start=1):
        known_roles(s.get("sublayers"), (), f"{architecture} stage {i}")
        out_ch = scale_width(out_ch, width_factor)
        conv = hebbian_conv(in_ch, out_ch, kernel, pad, s, name=f"conv{i}", generator=generator)
        stages.append(ConvBlock(nn.BatchNorm2d(in_ch, affine=False), conv, Triangle(power), make_pool(pool)))
        in_ch = out_ch
    return HebbianNet(stages, num_classes=num_classes, dropout=dropout, head_init=head_init,
                      input_shape=input_shape, architecture=architecture, generator=generator)


def softhebb(layers=None, defaults=None, *, width_factor: float = 1.0, num_classes: int = 10, dropout: float = 0.5,
             head_init: str = "softhebb", input_shape=INPUT_SHAPE,
             generator: torch.Generator | None = None) -> HebbianNet:
    """SoftHebb's 3-layer net (Journé et al. 2023; thesis Table 5): 96→384→1536 channels (× ``width_factor``),
    Triangle 0.7/1.4/1.0, MaxPool 4/2/1, MaxPool 4/2/1, AvgPool 2/2 → 1536×4×4 = 24,576 features."""
    return _plain_net(SOFTHEBB_STAGES, "softhebb", layers, defaults, width_factor=width_factor,
                      num_classes=num_classes, dropout=dropout, head_init=head_init, input_shape=input_shape,
                      generator=generator)


def hardhebb(layers=None, defaults=None, *, width_factor: float = 1.0, num_classes: int = 10, dropout: float = 0.5,
             head_init: str = "softhebb", input_shape=INPUT_SHAPE,
             generator: torch.Generator | None = None) -> HebbianNet:
    """SoftHebb widths without padding (thesis Table 6): 1536×5×5 = 38,400 features."""
    return _plain_net(HARDHEBB_STAGES, "hardhebb", layers, defaults, width_factor=width_factor,
                      num_classes=num_classes, dropout=dropout, head_init=head_init, input_shape=input_shape,
                      generator=generator)


def lagani_short(layers=None, defaults=None, *, width_factor: float = 1.0, num_classes: int = 10,
                 dropout: float = 0.5, head_init: str = "softhebb", input_shape=INPUT_SHAPE,
                generator: torch.Generator | None = None):
    """Lagani/Amato 3-layer net (thesis Table 7): 96→128→192, Triangle 1.0, 192×5×5 = 4,800 features."""
    return _plain_net(LAGANI_SHORT_STAGES, "lagani_short", layers, defaults, width_factor=width_factor,
                      num_classes=num_classes, dropout=dropout, head_init=head_init, input_shape=input_shape,
                      generator=generator)


def lagani_deep(layers=None, defaults=None, *, width_factor: float = 1.0, num_classes: int = 10,
                dropout: float = 0.5, head_init: str = "softhebb", input_shape=INPUT_SHAPE,
                generator: torch.Generator | None = None):
    """Lagani/Amato 4-layer net (thesis Table 8): 96→128→192→256, 256×3×3 = 2,304 features."""
    return _plain_net(LAGANI_DEEP_STAGES, "lagani_deep", layers, defaults, width_factor=width_factor,
                      num_classes=num_classes, dropout=dropout, head_init=head_init, input_shape=input_shape,
                      generator=generator)


def _depthwise_net(stage_specs, architecture, layers, defaults, *, width_factor, num_classes, dropout,
                   head_init, input_shape, generator) -> HebbianNet:
    """Stage 1 a full conv; stages 2, 3: BN → depthwise k×k (competition over space) → BN → pointwise 1×1."""
    settings = stage_settings(layers, defaults, len(stage_specs), architecture)
    (out1, k1, p1, power1, pool1) = stage_specs[0]
    known_roles(settings[0].get("sublayers"), (), f"{architecture} stage 1")
    out1 = scale_width(out1, width_factor)
    c_in = input_channels(input_shape)
    conv = hebbian_conv(c_in, out1, k1, p1, settings[0], name="conv1", generator=generator)
    stages, in_ch = [ConvBlock(nn.BatchNorm2d(c_in, affine=False), conv, Triangle(power1), make_pool(pool1))], out1
    for i, ((out_ch, kernel, pad, power, pool), s) in enumerate(zip(stage_specs[1:], settings[1:]), start=2):
        known_roles(s.get("sublayers"), DEPTHWISE_ROLES, f"{architecture} stage {i}")
        out_ch = scale_width(out_ch, width_factor)
        dw = hebbian_conv(in_ch, in_ch, kernel, pad, s, name=f"conv{i}.depthwise", role="depthwise",
                          groups=in_ch, generator=generator)
        pw = hebbian_conv(in_ch, out_ch, 1, 0, s, name=f"conv{i}.pointwise", role="pointwise", generator=generator)
        stages.append(DepthwiseSeparableBlock(in_ch, dw, pw, Triangle(power), make_pool(pool)))
        in_ch = out_ch
    return HebbianNet(stages, num_classes=num_classes, dropout=dropout, head_init=head_init,
                      input_shape=input_shape, architecture=architecture, generator=generator)


def softhebb_depthwise(layers=None, defaults=None, *, width_factor: float = 1.0, num_classes: int = 10,
                       dropout: float = 0.5, head_init: str = "softhebb", input_shape=INPUT_SHAPE,
                       generator=None) -> HebbianNet:
    """Depthwise-separable SoftHebb (thesis Table 9, §3.3.10): 883,978 parameters, ×6.6 fewer than softhebb.
    Per-stage ``sublayers`` roles: ``depthwise``, ``pointwise``."""
    return _depthwise_net(SOFTHEBB_STAGES, "softhebb_depthwise", layers, defaults, width_factor=width_factor,
                          num_classes=num_classes, dropout=dropout, head_init=head_init, input_shape=input_shape,
                          generator=generator)


def hardhebb_depthwise(layers=None, defaults=None, *, width_factor: float = 1.0, num_classes: int = 10,
                       dropout: float = 0.5, head_init: str = "softhebb", input_shape=INPUT_SHAPE,
                       generator=None) -> HebbianNet:
    """Depthwise HardHebb without padding (thesis Table 10), the network of the thesis Dale run."""
    return _depthwise_net(HARDHEBB_STAGES, "hardhebb_depthwise", layers, defaults, width_factor=width_factor,
                          num_classes=num_classes, dropout=dropout, head_init=head_init, input_shape=input_shape,
                          generator=generator)


def softhebb_residual(layers=None, defaults=None, *, width_factor: float = 1.0, expansion: int = 4,
                      num_classes: int = 10, dropout: float = 0.5, head_init: str = "softhebb",
                      input_shape=INPUT_SHAPE, generator=None) -> HebbianNet:
    """SoftHebb with inverted-bottleneck residual blocks (thesis Table 11, §3.3.11; 4,030,378 parameters):
    stem 3→96 (5×5) → res 96→384 (hidden 96·e) → MaxPool 4/2/1 → res 384→1536 (hidden 384·e) → AvgPool 2/2.
    Per-stage ``sublayers`` roles: ``expand``, ``depthwise``, ``project``, ``shortcut``."""
    settings = stage_settings(layers, defaults, 3, "softhebb_residual")
    known_roles(settings[0].get("sublayers"), (), "softhebb_residual stage 1")
    c0, c1, c2 = (scale_width(c, width_factor) for c in (96, 384, 1536))
    c_in = input_channels(input_shape)
    stem = hebbian_conv(c_in, c0, 5, 2, settings[0], name="stem", generator=generator)
    stages = [ConvBlock(nn.BatchNorm2d(c_in, affine=False), stem, Triangle(0.7), make_pool(("max", 4, 2, 1)))]
    for i, (cin, cout, power, pool, s) in enumerate(
            ((c0, c1, 1.4, ("max", 4, 2, 1), settings[1]), (c1, c2, 1.0, ("avg", 2, 2, 0), settings[2])), start=1):
        known_roles(s.get("sublayers"), RESIDUAL_ROLES, f"softhebb_residual stage {i + 1}")
        hidden, name = cin * expansion, f"res{i}"
        expand = hebbian_conv(cin, hidden, 1, 0, s, name=f"{name}.expand", role="expand", generator=generator)
        dw = hebbian_conv(hidden, hidden, 3, 1, s, name=f"{name}.depthwise", role="depthwise", groups=hidden,
                          generator=generator)
        project = hebbian_conv(hidden, cout, 1, 0, s, name=f"{name}.project", role="project", generator=generator)
        shortcut = (hebbian_conv(cin, cout, 1, 0, s, name=f"{name}.shortcut", role="shortcut", generator=generator)
                    if cin != cout else None)
        stages.append(ResidualBlock(cin, hidden, expand, dw, project, shortcut, power, make_pool(pool)))
    return HebbianNet(stages, num_classes=num_classes, dropout=dropout, head_init=head_init,
                      input_shape=input_shape, architecture="softhebb_residual", generator=generator)


def backprop_softhebb(layers=None, defaults=None, *, width_factor: float = 1.0, num_classes: int = 10,
                      dropout: float = 0.5, head_init: str = "softhebb", conv_init: str = "default",
                      input_shape=INPUT_SHAPE, generator=None) -> HebbianNet:
    """The end-to-end backprop baseline of softhebb's shape (thesis §3.4.1, A.2.9; 5,893,162 parameters):
    ``nn.Conv2d`` (no bias, zero padding) and ReLU instead of Triangle. ``conv_init``: ``'default'``
    (PyTorch's, as the 2025 code) or ``'softhebb'`` (25/sqrt(fan_in)·N(0,1), as the thesis listing)."""
    if layers or defaults:
        raise ValueError("backprop_softhebb has no Hebbian layers, so it takes no layers/defaults settings")
    if conv_init not in ("default", "softhebb"):
        raise ValueError(f"unknown conv_init {conv_init!r}; valid choices: 'default', 'softhebb'")
    stages, in_ch = [], input_channels(input_shape)
    for out_ch, kernel, pad, _, pool in SOFTHEBB_STAGES:
        out_ch = scale_width(out_ch, width_factor)
        conv = nn.Conv2d(in_ch, out_ch, kernel, padding=pad, bias=False)
        if conv_init == "softhebb":
            with torch.no_grad():
                conv.weight.normal_(0.0, 25.0 / (in_ch * kernel * kernel) ** 0.5, generator=generator)
        stages.append(ConvBlock(nn.BatchNorm2d(in_ch, affine=False), conv, nn.ReLU(), make_pool(pool)))
        in_ch = out_ch
    return HebbianNet(stages, num_classes=num_classes, dropout=dropout, head_init=head_init,
                      input_shape=input_shape, architecture="backprop_softhebb", generator=generator)
