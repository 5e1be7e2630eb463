"""The networks of Lunelli's contrastive Hebbian experiments (seed 003 §5.3, §6; spec miconi-lunelli-manzali §2.8).

    contrastive_mlp()                    3072 → 2000 → 2000 → 2000 → 2000 → 10, tanh          (§5.3.1)
    contrastive_conv(width_factor=F)     SoftHebb's conv stack without BatchNorm or Triangle, tanh, channels
                                         96·F^(l−1); two hidden FC layers, each dividing its input by 4 (at
                                         most 1024 units); dropout 0.3/0.1/0 for F = 4/2/1 after the convs (§6.2)

        F   channels          flattened   hidden FC      weights       C's
        4   96, 384, 1536     24,576      1024, 256      31,077,920    29,667
        2   96, 192, 384       6,144      1024, 256       7,392,800     9,699
        1   96, 96, 96         1,536       384, 96          800,736     3,011
        MLP (4 × 2000)                                   18,164,000    19,082

Each hidden layer learns by the contrastive rule on its own (activated, pre-pooling) output and the output
layer by Hebbian descent (:mod:`hebblib.contrastive`); ``learning="backprop"`` builds the same network from
``nn.Conv2d``/``nn.Linear`` (no bias, the same initial weights) for the backprop baselines.
"""
from __future__ import annotations

import torch
from torch import nn

from ..contrastive import (ACTIVATIONS, LEARNING, NEURON_CENTRIC_TYPES, PADDING_MODES, ContrastiveConv2d,
                           ContrastiveLinear, _default_weight)
from ..dropout import FastDropout
from ..errors import HebbianDivergenceError, check_choice
from .blocks import make_pool

# (kernel, padding, pool) per conv stage: SoftHebb's demo.py / presets.json 4SoftHebbCnnCIFAR (spec §2.8)
CONV_STAGES = ((5, 2, ("max", 4, 2, 1)), (3, 1, ("max", 4, 2, 1)), (3, 1, ("avg", 2, 2, 0)))
BASE_CHANNELS = 96
DROPOUT_BY_WIDTH = {4: 0.3, 2: 0.1, 1: 0.0}  # §6.2: "0.3 for F-4, 0.1 for F-2, none for F-1"
# (weights, C's) of each preset network, from the table above; tests/test_contrastive.py checks them
PARAMETER_COUNTS = {"conv_f4": (31_077_920, 29_667), "conv_f2": (7_392_800, 9_699), "conv_f1": (800_736, 3_011),
                    "mlp": (18_164_000, 19_082)}


def conv_channels(width_factor: int) -> list[int]:
    """Output channels of the three conv layers: ``96 · F^(l−1)`` (the width factor multiplies each layer's
    channels by F relative to the previous one, §5.3.2): 96/384/1536 at F = 4."""
    if not isinstance(width_factor, int) or isinstance(width_factor, bool) or width_factor < 1:
        raise ValueError(f"width_factor must be an int >= 1, got {width_factor!r}")
    return [BASE_CHANNELS * width_factor ** i for i in range(len(CONV_STAGES))]


def fc_sizes(in_features: int, layers: int = 2, reduction: int = 4, maximum: int = 1024) -> list[int]:
    """Widths of the hidden FC layers: each ``min(previous // reduction, maximum)`` (Fig. 6.9's "reduces the
    dimensionality by a factor of 4, to a maximum of 1024")."""
    for name, value in (("fc_layers", layers), ("fc_reduction", reduction), ("fc_max", maximum)):
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "fc_layers" else 1):
            raise ValueError(f"{name} must be an int >= {0 if name == 'fc_layers' else 1}, got {value!r}")
    sizes, width = [], in_features
    for _ in range(layers):
        width = min(width // reduction, maximum)
        if width < 1:
            raise ValueError(f"fc_reduction={reduction} leaves no unit after {len(sizes)} FC layer(s) of "
                             f"{in_features} features")
        sizes.append(width)
    return sizes


def _pooled(size: int, pool) -> int:
    _, kernel, stride, padding = pool
    return (size + 2 * padding - kernel) // stride + 1


class ContrastiveNet(nn.Module):
    """A feed-forward stack (``body``) whose plastic layers are found by type. ``learning`` says how it trains:
    'contrastive' (local rules, backprop into the C's) or 'backprop' (the weights by backprop)."""

    def __init__(self, body: nn.Sequential, *, learning: str, architecture: str):
        super().__init__()
        check_choice("learning", learning, LEARNING)
        self.body, self.learning, self.architecture = body, learning, architecture

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def plastic_layers(self) -> dict:
        """``{name: layer}`` of the layers that learn by a local rule (empty for a backprop network)."""
        return {m.name: m for m in self.modules() if isinstance(m, NEURON_CENTRIC_TYPES)}

    def begin_step(self) -> None:
        """Every layer: ``W ← constrain(W + η C ⊙ M)`` inside the graph (the single-forward-pass scheme)."""
        for layer in self.plastic_layers().values():
            layer.begin_step()

    def local_updates(self, labels: torch.Tensor) -> dict:
        """Every layer: commit its weights, compute its next ΔW; returns ``{name: local loss}`` (tensors)."""
        return {name: layer.local_update(labels) for name, layer in self.plastic_layers().items()}

    @torch.no_grad()
    def check_finite(self, where: str = "") -> None:
        """:class:`HebbianDivergenceError` naming the first layer whose weights or C's are not finite."""
        layers = self.plastic_layers()
        tensors = ([(f"layer {name!r} weights", layer.weight) for name, layer in layers.items()]
                   + [(f"layer {name!r} learning-rate multipliers {key}", p) for name, layer in layers.items()
                      for key, p in layer.named_parameters()]
                   if layers else [(f"parameter {name!r}", p) for name, p in self.named_parameters()])
        finite = torch.stack([torch.isfinite(t).all() for _, t in tensors])
        if not bool(finite.all()):  # one host sync
            what = tensors[int((~finite).nonzero()[0])][0]
            raise HebbianDivergenceError(f"{where + ': ' if where else ''}{what} are not finite (NaN or inf)")

    def num_parameters(self) -> int:
        """Synaptic weights (the rule's for a contrastive network, the optimiser's for a backprop one)."""
        layers = self.plastic_layers()
        if layers:
            return sum(layer.weight.numel() for layer in layers.values())
        return sum(p.numel() for p in self.parameters())

    def num_rate_parameters(self) -> int:
        """The C's, the only parameters backprop trains in a contrastive network (0 for a backprop one)."""
        return sum(p.numel() for p in self.parameters()) if self.plastic_layers() else 0

    def extra_repr(self) -> str:
        return f"architecture={self.architecture!r}, learning={self.learning!r}"


def _activation_module(activation: str) -> nn.Module:
    check_choice("activation", activation, ACTIVATIONS)
    return nn.Tanh() if activation == "tanh" else nn.ReLU()


def _linear(in_f, out_f, *, learning, output, activation, eta, momentum, label_smoothing, name, generator):
    if learning == "contrastive":
        return ContrastiveLinear(in_f, out_f, rule="hebbian_descent" if output else "contrastive",
                                 activation=activation, eta=eta, momentum=momentum,
                                 label_smoothing=0.0 if output else label_smoothing, name=name, generator=generator)
    layer = nn.Linear(in_f, out_f, bias=False)
    with torch.no_grad():
        layer.weight.copy_(_default_weight((out_f, in_f), generator))
    return layer if output else nn.Sequential(layer, _activation_module(activation))


def _conv(in_ch, out_ch, kernel, padding, *, learning, activation, eta, momentum, label_smoothing, padding_mode,
          name, generator):
    if learning == "contrastive":
        return ContrastiveConv2d(in_ch, out_ch, kernel, padding=padding, padding_mode=padding_mode,
                                 activation=activation, eta=eta, momentum=momentum, label_smoothing=label_smoothing,
                                 name=name, generator=generator)
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=padding, bias=False, padding_mode=padding_mode)
    with torch.no_grad():
        conv.weight.copy_(_default_weight((out_ch, in_ch, kernel, kernel), generator))
    return nn.Sequential(conv, _activation_module(activation))


def _check_learning(learning, activation, dropout, padding_mode="reflect"):
    check_choice("learning", learning, LEARNING)
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("padding_mode", padding_mode, PADDING_MODES)
    if not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0 <= dropout < 1):
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")


def contrastive_mlp(hidden=(2000, 2000, 2000, 2000), *, learning: str = "contrastive", activation: str = "tanh",
                    dropout: float = 0.0, eta: float = 1e-3, momentum: float = 0.9, label_smoothing: float = 0.0,
                    in_features: int = 3 * 32 * 32, num_classes: int = 10,
                    generator: torch.Generator | None = None) -> ContrastiveNet:
    """Flatten → ``hidden`` tanh layers (each followed by dropout when ``dropout`` > 0; the CIFAR-10 runs use
    none) → a ``num_classes`` output layer. Contrastive: every linear layer's rate is ``eta`` (0.001, §6.1)."""
    _check_learning(learning, activation, dropout)
    hidden = list(hidden)
    if not hidden or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
        raise ValueError(f"hidden must be a non-empty list of ints >= 1, got {hidden!r}")
    common = dict(learning=learning, activation=activation, eta=eta, momentum=momentum,
                  label_smoothing=label_smoothing, generator=generator)
    body, width = [nn.Flatten()], in_features
    for i, units in enumerate(hidden, start=1):
        body.append(_linear(width, units, output=False, name=f"fc{i}", **common))
        if dropout:
            body.append(FastDropout(dropout))
        width = units
    body.append(_linear(width, num_classes, output=True, name="out", **common))
    return ContrastiveNet(nn.Sequential(*body), learning=learning, architecture="contrastive_mlp")


def contrastive_conv(width_factor: int = 4, *, learning: str = "contrastive", activation: str = "tanh",
                     dropout: float | None = None, eta_conv: float = 1e-4, eta_linear: float = 1e-3,
                     momentum: float = 0.9, label_smoothing: float = 0.0, fc_layers: int = 2, fc_reduction: int = 4,
                     fc_max: int = 1024, padding_mode: str = "reflect", in_channels: int = 3, image_size: int = 32,
                     num_classes: int = 10, generator: torch.Generator | None = None) -> ContrastiveNet:
    """SoftHebb's conv stack (5×5 pad 2 → MaxPool 4/2/1 → 3×3 pad 1 → MaxPool 4/2/1 → 3×3 pad 1 → AvgPool 2/2)
    with tanh and no BatchNorm, ``96·F^(l−1)`` channels, then Dropout (default 0.3/0.1/0 for F = 4/2/1) and
    ``fc_layers`` hidden FC layers (:func:`fc_sizes`) and the output layer. Contrastive rates: ``eta_conv`` for
    the convs, ``eta_linear`` for the FC layers (0.0001 and 0.001, §6.2)."""
    channels = conv_channels(width_factor)
    if dropout is None:
        if width_factor not in DROPOUT_BY_WIDTH:
            raise ValueError(f"no published dropout for width_factor={width_factor!r} (known: "
                             f"{', '.join(map(str, sorted(DROPOUT_BY_WIDTH)))}); pass dropout=")
        dropout = DROPOUT_BY_WIDTH[width_factor]
    _check_learning(learning, activation, dropout, padding_mode)
    common = dict(learning=learning, activation=activation, momentum=momentum, label_smoothing=label_smoothing,
                  generator=generator)
    body, in_ch, size = [], in_channels, image_size
    for i, ((kernel, padding, pool), out_ch) in enumerate(zip(CONV_STAGES, channels), start=1):
        body += [_conv(in_ch, out_ch, kernel, padding, eta=eta_conv, padding_mode=padding_mode, name=f"conv{i}",
                       **common), make_pool(pool)]
        in_ch, size = out_ch, _pooled(size + 2 * padding - kernel + 1, pool)
    if size < 1:
        raise ValueError(f"image_size={image_size} is too small for the three conv stages")
    width = in_ch * size * size
    body += [nn.Flatten(), FastDropout(dropout)]
    for i, units in enumerate(fc_sizes(width, fc_layers, fc_reduction, fc_max), start=1):
        body.append(_linear(width, units, output=False, eta=eta_linear, name=f"fc{i}", **common))
        width = units
    body.append(_linear(width, num_classes, output=True, eta=eta_linear, name="out", **common))
    return ContrastiveNet(nn.Sequential(*body), learning=learning, architecture=f"contrastive_conv_f{width_factor}")


__all__ = ["ContrastiveNet", "contrastive_mlp", "contrastive_conv", "conv_channels", "fc_sizes", "CONV_STAGES",
           "DROPOUT_BY_WIDTH", "PARAMETER_COUNTS"]
