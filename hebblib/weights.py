"""Weight initialisation and the weight transforms applied before the forward pass."""
from __future__ import annotations

import math

import torch
from torch import nn

from .errors import check_choice

INITS = ("softhebb", "kaiming_uniform", "normal", "unit_norm", "positive_softhebb", "randn")


def init_weight(weight: torch.Tensor, method: str = "softhebb", fan_in: int | None = None,
                std: float = 0.01, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``weight`` (out, in, kh, kw) in place and return it.

    * ``softhebb``: ``W = 25 / sqrt(fan_in) · N(0, 1)`` (seed 000 §4.1; SoftHebb's wide radius range)
    * ``kaiming_uniform``: the PyTorch default for ``nn.Conv2d``, ``U(±1/sqrt(fan_in))``
    * ``normal``: ``N(0, std²)``
    * ``unit_norm``: ``N(0, 1)`` rows scaled to unit L2 norm (Miconi)
    * ``positive_softhebb``: ``|softhebb|`` (Dale's principle)
    * ``randn``: ``N(0, 1)`` entries (biopytorch's ``torch.randn``, Manzali's Krotov–Hopfield layers)
    """
    check_choice("init method", method, INITS)
    fan_in = fan_in or weight[0].numel()
    with torch.no_grad():
        if method == "kaiming_uniform":
            bound = 1.0 / math.sqrt(fan_in)
            weight.uniform_(-bound, bound, generator=generator)
            return weight
        weight.normal_(0.0, 1.0, generator=generator)
        if method in ("softhebb", "positive_softhebb"):
            weight.mul_(25.0 / math.sqrt(fan_in))
        elif method == "normal":
            weight.mul_(std)
        elif method == "unit_norm":
            weight.div_(filter_norms(weight).view(-1, *([1] * (weight.dim() - 1))))
        if method == "positive_softhebb":
            weight.abs_()
    return weight


def filter_norms(weight: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """The p-norm of each unit's weights, ``(Σ |W_o|^p)^(1/p)`` over all but the first dim."""
    return weight.reshape(weight.shape[0], -1).norm(p=p, dim=1)


def normalize_filters(weight: torch.Tensor) -> torch.Tensor:
    """``W_o / ‖W_o‖`` (a zero filter is left as it is)."""
    norms = filter_norms(weight)
    norms = torch.where(norms > 0, norms, torch.ones_like(norms))
    return weight / norms.view(-1, *([1] * (weight.dim() - 1)))


def lebesgue_transform(weight: torch.Tensor, p: float) -> torch.Tensor:
    """Krotov–Hopfield p-inner-product weights ``sgn(W) |W|^(p−1)`` (p = 2 gives W itself)."""
    if p == 2:
        return weight
    return weight.sign() * weight.abs().pow(p - 1)


def pruning_mask(shape, fraction: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fixed random binary mask with the given fraction of zeros (Miconi's 'massive pruning')."""
    if not 0 <= fraction < 1:
        raise ValueError(f"prune fraction must be in [0, 1), got {fraction!r}")
    return (torch.rand(shape, generator=generator) >= fraction).float()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
