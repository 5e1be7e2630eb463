"""Hebbian updates as gradients (Miconi 2021, seed 002 App. A).

A surrogate output ỹ(w) is built so that the gradient of a loss, evaluated at the layer's real
(possibly non-differentiable) output ŷ, is minus the Hebbian update:

    loss = −Σ ŷ · ỹ(w)        (the same gradient as Miconi's  −½ Σ ỹ²  with ỹ's values set to ŷ)

    plain Hebb   ỹ = w·x                  −∂loss/∂w = Σ ŷ x
    Instar       ỹ = w·x − ½‖w‖²          −∂loss/∂w = Σ ŷ (x − w)
    Oja          ỹ = w·x − ½ ŷ ‖w‖²       −∂loss/∂w = Σ ŷ (x − ŷ w)

Autograd then does all the patch bookkeeping of a convolution, and any torch optimiser applies the
update (descending the loss ascends the Hebbian objective).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import check_choice
from .rules import SURROGATE_RULES


def surrogate_output(x: torch.Tensor, weight: torch.Tensor, y_real: torch.Tensor, rule: str,
                     stride=1, dilation=1, groups=1) -> torch.Tensor:
    """ỹ(w) for a convolution of the (already padded) input ``x`` with ``weight``."""
    check_choice("surrogate rule", rule, SURROGATE_RULES)
    current = F.conv2d(x, weight, stride=stride, dilation=dilation, groups=groups)
    if rule == "hebb":
        return current
    half_sq_norm = 0.5 * weight.pow(2).sum(dim=(1, 2, 3)).view(1, -1, 1, 1)
    if rule == "instar":
        return current - half_sq_norm
    return current - half_sq_norm * y_real.detach()


def surrogate_loss(x, weight, y_real, rule, stride=1, dilation=1, groups=1) -> torch.Tensor:
    """The scalar loss whose gradient with respect to ``weight`` is minus the Hebbian update."""
    return -(y_real.detach() * surrogate_output(x, weight, y_real, rule, stride, dilation, groups)).sum()


def surrogate_update(x, weight, y_real, rule, stride=1, dilation=1, groups=1) -> torch.Tensor:
    """The Hebbian update ΔW obtained by autograd on :func:`surrogate_loss`."""
    with torch.enable_grad():
        w = weight.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(surrogate_loss(x.detach(), w, y_real, rule, stride, dilation, groups), w)
    return -grad
