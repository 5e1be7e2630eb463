"""The building blocks of the architectures (spec nimmo-thesis §2, §1.17, §1.18; miconi-lunelli-manzali §1.5).

Every block maps a feature map to a feature map:

    ConvBlock                 pool(act(conv(norm(x))))                       (Nimmo, SoftHebb, Lagani, Miconi)
    DepthwiseSeparableBlock   pool(act(pw(BN(dw(BN(x))))))                   (no activation between dw and pw)
    ResidualBlock             Triangle(main(x) + shortcut(x)), then pool     (MobileNet-like inverted bottleneck)
"""
from __future__ import annotations

import torch
from torch import nn

from ..activations import Triangle
from ..layers import HebbianConv2d


class SampleStandardize(nn.Module):
    """Per-sample standardisation over all channels and positions (Miconi 2021 §2.3):
    ``x ← (x − mean_{c,h,w} x) / (std_{c,h,w} x + eps)``."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, x.dim()))
        return (x - x.mean(dim=dims, keepdim=True)) / (x.std(dim=dims, keepdim=True) + self.eps)


def make_pool(spec) -> nn.Module:
    """``None`` → identity; ``("max"|"avg", kernel, stride, padding)`` → the pooling layer."""
    if spec is None:
        return nn.Identity()
    kind, kernel, stride, padding = spec
    if kind == "max":
        return nn.MaxPool2d(kernel, stride, padding)
    if kind == "avg":
        return nn.AvgPool2d(kernel, stride, padding)
    raise ValueError(f"unknown pool kind {kind!r}; valid choices: 'avg', 'max'")


def activate_and_pool(act: nn.Module, pool: nn.Module, u: torch.Tensor) -> torch.Tensor:
    """``pool(act(u))``, computed faster where that changes nothing:

    * a Triangle of power p followed by a max-pool takes the power *after* the pool. ``t ↦ t^p`` is
      increasing on t ≥ 0, so ``max_window(t^p) = (max_window t)^p`` exactly (the same element is picked),
      and the costly fractional power runs on the pooled map, a quarter of the size for a stride-2 pool;
    * on the CPU the max-pool runs on a channels-last copy of its input (several times faster there than
      the channel-first kernel; the pooled map goes back to the input's layout).
    """
    if not isinstance(pool, nn.MaxPool2d) or act._forward_hooks or act._forward_pre_hooks:
        return pool(act(u))  # hooks on the activation (receptive fields, recorders) must see it called
    power = act.power if isinstance(act, Triangle) else 1.0
    return pool_then_power(pool, act.base(u) if isinstance(act, Triangle) else act(u), power)


def pool_then_power(pool: nn.Module, base: torch.Tensor, power: float) -> torch.Tensor:
    """``pool(base ** power)`` for ``base ≥ 0``: after a max-pool the power runs on the pooled map (see
    :func:`activate_and_pool`), which on the CPU is taken channels-last; any other pool sees the power first."""
    if not isinstance(pool, nn.MaxPool2d):
        return pool(base if power == 1.0 else base.pow(power))
    if base.device.type == "cpu" and base.dim() == 4:
        channels_last = base.is_contiguous(memory_format=torch.channels_last)
        pooled = pool(base.contiguous(memory_format=torch.channels_last))
        pooled = pooled if channels_last else pooled.contiguous()
    else:
        pooled = pool(base)
    return pooled if power == 1.0 else pooled.pow(power)


def centred_triangle(conv: nn.Module, act: nn.Module) -> bool:
    """Whether ``act(conv(x))`` may be computed as ``relu(conv(x, centred=True)) ** p``: the Triangle's channel
    mean taken out by centring the filters (:meth:`hebblib.layers.HebbianConv2d.forward`), which saves the
    mean's and the subtraction's passes over the activity. Only for a Triangle after a frozen Hebbian
    convolution that allows it, under ``torch.no_grad()``, with no hooks on either module to see the
    intermediate result."""
    hooked = any(m._forward_hooks or m._forward_pre_hooks for m in (conv, act))
    return isinstance(act, Triangle) and isinstance(conv, HebbianConv2d) and not hooked and conv.can_centre()


def conv_act_pool(conv: nn.Module, act: nn.Module, pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``pool(act(conv(x)))``: with the Triangle from centred filters where :func:`centred_triangle` allows it,
    else :func:`activate_and_pool` of the convolution's output."""
    if centred_triangle(conv, act):
        return pool_then_power(pool, conv(x, centred=True).relu_(), act.power)
    return activate_and_pool(act, pool, conv(x))


class ConvBlock(nn.Module):
    """``pool(act(conv(norm(x))))``. With ``subtract_threshold`` the conv's adaptive thresholds θ are
    removed from the output before the activation, as Miconi's triangle output ``relu(u − θ − mean)``."""

    def __init__(self, norm: nn.Module, conv: nn.Module, act: nn.Module, pool: nn.Module,
                 subtract_threshold: bool = False):
        super().__init__()
        self.norm, self.conv, self.act, self.pool = norm, conv, act, pool
        self.subtract_threshold = bool(subtract_threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # θ as this batch found it: a learning layer's competition adapts θ during the conv's forward, and
        # Miconi's code transmits relu(u − θ − mean) with the θ of the batch, updating θ after it (spec §1.6)
        theta = getattr(self.conv.competition, "threshold", None) if self.subtract_threshold else None
        theta = theta.clone() if theta is not None and theta.numel() else None
        if theta is None:
            return conv_act_pool(self.conv, self.act, self.pool, self.norm(x))
        u = self.conv(self.norm(x))
        if theta.numel() == u.shape[1]:
            u = u - theta.view(1, -1, *([1] * (u.dim() - 2)))
        return activate_and_pool(self.act, self.pool, u)


class DepthwiseSeparableBlock(nn.Module):
    """``BN → depthwise k×k → BN → pointwise 1×1 → act → pool`` (spec §1.17, Tables 9–10)."""

    def __init__(self, channels: int, depthwise: nn.Module, pointwise: nn.Module, act: nn.Module, pool: nn.Module):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(channels, affine=False)
        self.depthwise = depthwise
        self.norm2 = nn.BatchNorm2d(channels, affine=False)
        self.pointwise = pointwise
        self.act, self.pool = act, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_act_pool(self.pointwise, self.act, self.pool, self.norm2(self.depthwise(self.norm1(x))))


class ResidualBlock(nn.Module):
    """Hebbian inverted bottleneck (spec §1.18, thesis §3.3.11):

        main     = BN → 1×1 expand → Triangle(p) → BN → k×k depthwise → Triangle(p) → BN → 1×1 project
        shortcut = BN → 1×1 conv   (identity when the channel count does not change)
        out      = pool(Triangle(p)(main + shortcut))

    Every conv learns locally; nothing flows through the skip except activity.
    """

    def __init__(self, in_channels: int, hidden: int, expand: nn.Module, depthwise: nn.Module, project: nn.Module,
                 shortcut: nn.Module | None, power: float, pool: nn.Module):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels, affine=False)
        self.expand, self.act1 = expand, Triangle(power)
        self.norm2 = nn.BatchNorm2d(hidden, affine=False)
        self.depthwise, self.act2 = depthwise, Triangle(power)
        self.norm3 = nn.BatchNorm2d(hidden, affine=False)
        self.project = project
        if shortcut is not None:
            self.shortcut_norm, self.shortcut = nn.BatchNorm2d(in_channels, affine=False), shortcut
        else:
            self.shortcut_norm, self.shortcut = nn.Identity(), nn.Identity()
        self.act, self.pool = Triangle(power), pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = self.act1(self.expand(self.norm1(x)))
        main = self.act2(self.depthwise(self.norm2(main)))
        main = self.project(self.norm3(main))
        return activate_and_pool(self.act, self.pool, main + self.shortcut(self.shortcut_norm(x)))


class LinearBlock(nn.Module):
    """``act(linear(norm(flatten(x))))`` then an optional output norm (the Krotov–Hopfield stack's last
    Hebbian layer and its ``BN(affine=False)`` before the classifier, spec miconi-lunelli-manzali §3.6)."""

    def __init__(self, in_features: int, linear: nn.Module, act: nn.Module, out_norm: nn.Module | None = None):
        super().__init__()
        self.norm = nn.BatchNorm1d(in_features, affine=False)
        self.linear, self.act = linear, act
        self.out_norm = out_norm if out_norm is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_norm(self.act(self.linear(self.norm(x.flatten(1)))))
