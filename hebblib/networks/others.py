"""Two networks from the other sources (spec miconi-lunelli-manzali §1.5–1.8 and §3.6).

``miconi``: Miconi (2021), 100 → 196 → 400 channels, no padding, AvgPool 2 after each layer,
per-sample standardisation before each layer, 400×2×2 = 1,600 features (905,510 parameters with the head).
Plasticity: Instar with a *binary* winner-take-all behind adaptive thresholds θ (rate 3.0, target k/N);
the transmitted output is the Triangle of ``u − θ`` (dense activations, sparse plasticity, §1.6); 99 % of the
weights of layers ≥ 2 are pruned by a fixed random mask; every unit is renormalised to norm 1 after each step.
The update is Miconi's summed (not max-normalised) one with his per-layer lr 1e-4 / 1e-4 / 1e-3.

``krotov_hopfield``: the Manzali/biopytorch stack after Amato et al. (2019): BN → conv 96 5×5 → ReLU →
MaxPool 2, 128 3×3, 192 3×3 → MaxPool 2, 256 3×3, then BN1d → HebbianLinear 2304→300 → ReLU → BN1d, then the
head (1,475,554 parameters; the slide's 1.475M counts no head bias). Krotov–Hopfield rule: ranking
competition (winner +1, k-th −Δ), p-norm currents ``sgn(W)|W|^(p−1)·x``, decay ``(Σ g·I)·W`` (the
``softhebb`` rule form), ΔW max-normalised per filter in the convs and over the layer in the linear layer.
Defaults from the saved 5-layer model: p = 8, k = 2, Δ = 0.335; lr 0.007 (conv) / 0.1 (linear), the start
values of the source's exponential schedules (constant here).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..activations import Triangle
from ..layers import HebbianLinear
from .blocks import ConvBlock, LinearBlock, SampleStandardize, make_pool
from .net import INPUT_SHAPE, HebbianNet, input_channels
from .nimmo import hebbian_conv, scale_width
from .settings import known_roles, layer_kwargs, stage_settings

MICONI_STAGES = ((100, 5), (196, 3), (400, 3))
MICONI_BUILTIN = {
    "rule": "instar",
    "competition": {"name": "adaptive_threshold", "k": 1, "rate": 3.0, "binary": True},
    "activation": "dot", "init": "unit_norm", "renormalize": True, "update_norm": "none",
}
MICONI_LR = (1e-4, 1e-4, 1e-3)  # [CODE] LR = [0.001/B, 0.001/B, 0.01/B] × 10 with B = 100
MICONI_PRUNE = (0.0, 0.99, 0.99)  # [CODE] PROBAMASKS; layer 1 is never pruned

KH_CONV_STAGES = ((96, 5, ("max", 2, 2, 0)), (128, 3, None), (192, 3, ("max", 2, 2, 0)), (256, 3, None))
KH_BUILTIN = {
    "rule": "softhebb", "competition": {"name": "krotov", "k": 2, "delta": 0.335}, "lebesgue_p": 8.0,
    "activation": "dot", "update_norm": "per_filter", "lr": 0.007, "init": "unit_norm",
}
KH_LINEAR_BUILTIN = {"update_norm": "global_max", "lr": 0.1}


class BinaryWTA(nn.Module):
    """1 for the most active channel at each position, 0 elsewhere (Miconi's default, untriangled output)."""

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return F.one_hot(u.argmax(dim=1), u.shape[1]).movedim(-1, 1).to(u.dtype)


def miconi(layers=None, defaults=None, *, width_factor: float = 1.0, triangle: bool = True,
           num_classes: int = 10, dropout: float = 0.5, head_init: str = "default", input_shape=INPUT_SHAPE,
           generator: torch.Generator | None = None) -> HebbianNet:
    """Miconi's 3-layer network (spec §1.5–1.6). ``triangle=False`` transmits the binary WTA output instead
    (his 'default network', 34.5 % against 64.55 % with triangle + pruning)."""
    settings = stage_settings(layers, defaults, 3, "miconi")
    stages, in_ch = [], input_channels(input_shape)
    for i, ((out_ch, kernel), s) in enumerate(zip(MICONI_STAGES, settings), start=1):
        known_roles(s.get("sublayers"), (), f"miconi stage {i}")
        builtin = {**MICONI_BUILTIN, "lr": MICONI_LR[i - 1], "prune_fraction": MICONI_PRUNE[i - 1]}
        out_ch = scale_width(out_ch, width_factor)
        conv = hebbian_conv(in_ch, out_ch, kernel, 0, s, name=f"conv{i}", builtin=builtin, generator=generator)
        act = Triangle(1.0) if triangle else BinaryWTA()
        stages.append(ConvBlock(SampleStandardize(), conv, act, make_pool(("avg", 2, 2, 0)), subtract_threshold=True))
        in_ch = out_ch
    return HebbianNet(stages, num_classes=num_classes, dropout=dropout, head_init=head_init,
                      input_shape=input_shape, architecture="miconi", generator=generator)


def krotov_hopfield(layers=None, defaults=None, *, width_factor: float = 1.0, hidden: int = 300, depth: int = 5,
                    num_classes: int = 10, dropout: float = 0.5, head_init: str = "default", input_shape=INPUT_SHAPE,
                    generator: torch.Generator | None = None) -> HebbianNet:
    """The Krotov–Hopfield stack of the Manzali slides (spec §3.6): 4 Hebbian convs + a ``hidden``-unit
    Hebbian linear layer (5 stages; the last stage's settings go to the linear layer).

    ``depth`` (1 to 5): the first ``depth`` stages only, as Manzali attached his classifier after any of them
    (Table 1); ``layers`` then holds ``depth`` dicts. Below 5 the last conv stage's output is standardised by a
    ``BatchNorm2d(affine=False)`` before the head (his ``BN → Flatten → Dropout → Linear``); at 5 the linear
    stage's ``BatchNorm1d`` does it."""
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= len(KH_CONV_STAGES) + 1:
        raise ValueError(f"krotov_hopfield depth must be an int from 1 to {len(KH_CONV_STAGES) + 1}, got {depth!r}")
    settings = stage_settings(layers, defaults, depth, "krotov_hopfield")
    stages, in_ch = [], input_channels(input_shape)
    for i, ((out_ch, kernel, pool), s) in enumerate(zip(KH_CONV_STAGES, settings[:4]), start=1):
        known_roles(s.get("sublayers"), (), f"krotov_hopfield stage {i}")
        out_ch = scale_width(out_ch, width_factor)
        conv = hebbian_conv(in_ch, out_ch, kernel, 0, s, name=f"conv{i}", builtin=KH_BUILTIN, generator=generator)
        stages.append(ConvBlock(nn.BatchNorm2d(in_ch, affine=False), conv, nn.ReLU(), make_pool(pool)))
        in_ch = out_ch
    if depth <= len(KH_CONV_STAGES):
        return HebbianNet(stages + [nn.BatchNorm2d(in_ch, affine=False)], num_classes=num_classes, dropout=dropout,
                          head_init=head_init, input_shape=input_shape, architecture="krotov_hopfield",
                          generator=generator)
    flat = _flat_size(stages, input_shape)  # 256 × 3 × 3 for 32 × 32 inputs (32 → 28 → 14 → 12 → 10 → 5 → 3)
    known_roles(settings[4].get("sublayers"), (), "krotov_hopfield stage 5")
    kwargs = layer_kwargs(settings[4], None, linear=True, builtin={**KH_BUILTIN, **KH_LINEAR_BUILTIN})
    try:
        linear = HebbianLinear(flat, hidden, name="fc5", generator=generator, **kwargs)
    except (TypeError, ValueError) as err:
        raise type(err)(f"layer 'fc5': {err}") from None
    stages.append(LinearBlock(flat, linear, nn.ReLU(), nn.BatchNorm1d(hidden, affine=False)))
    return HebbianNet(stages, num_classes=num_classes, dropout=dropout, head_init=head_init,
                      input_shape=input_shape, architecture="krotov_hopfield", generator=generator)


@torch.no_grad()
def _flat_size(stages, input_shape) -> int:
    """The number of values the conv ``stages`` give for one image of ``input_shape`` (eval mode: no update)."""
    x = torch.zeros(2, *input_shape)
    for stage in stages:
        was = stage.training
        stage.eval()
        x = stage(x)
        stage.train(was)
    return x[0].numel()
