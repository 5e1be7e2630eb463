"""Learning rules: from the post-synaptic signal ``y`` (after competition) and the activation ``u``
to the two factors of the general Hebbian update

    ΔW[o] = Σ_{n,p} r[n,o,p] · x_patch[n,p]  −  ( Σ_{n,p} s[n,o,p] ) · W[o]

(sum over the batch n and output positions p). Each rule returns ``(r, s)``; ``s = None`` means no
decay term. A rule may instead override :meth:`Rule.decay` when its decay mixes units (Sanger).

    rule        r              s           source
    hebb        y              —           seed 000 eq (18)
    anti_hebb   −y             —           seed 000 eq (31)
    instar      y              y           Grossberg, seed 000 eq (19)
    oja         y              y²          Oja (1982); Miconi's surrogate form
    softhebb    y              y·u         SoftHebb (Journé et al. 2023), Krotov–Hopfield normalisation
    sanger      y              Σ_{j≤o} y_o y_j W_j   seed 000 eq (24) (Sanger's GHA)
    bcm         y (y − θ)      —           seed 000 eq (23), θ = running mean of y²
"""
from __future__ import annotations

import torch
from torch import nn

from .distributed import LOCAL
from .errors import check_options, choice_error


def sum_per_unit(t: torch.Tensor) -> torch.Tensor:
    """Σ over every dimension but the units' (dim 1): the batch and all positions."""
    return t.sum(dim=[d for d in range(t.dim()) if d != 1])


class Rule(nn.Module):
    name = "base"
    # reductions over the batch go through the reducer: the identity in one process, sums over the processes
    # of a data-parallel run (hebblib.distributed)
    reducer = LOCAL

    def factors(self, y: torch.Tensor, u: torch.Tensor):
        raise NotImplementedError

    def forward(self, y, u):
        return self.factors(y, u)

    def decay(self, y: torch.Tensor, u: torch.Tensor, s: torch.Tensor | None, weight: torch.Tensor):
        """The decay term ``(Σ_{n,p} s[n,o,p]) · W[o]``, shaped like ``weight`` (None: no decay)."""
        if s is None:
            return None
        return sum_per_unit(s).view(-1, *([1] * (weight.dim() - 1))) * weight


class Hebb(Rule):
    """Plain Hebb: Δw = η y x. Weights grow without bound."""

    name = "hebb"

    def factors(self, y, u):
        return y, None


class AntiHebb(Rule):
    """Anti-Hebbian: Δw = −η y x (decorrelates units)."""

    name = "anti_hebb"

    def factors(self, y, u):
        return -y, None


class Instar(Rule):
    """Grossberg's Instar: Δw = η y (x − w). The weights move to the centroid of what the unit responds to."""

    name = "instar"

    def factors(self, y, u):
        return y, y


class Oja(Rule):
    """Oja: Δw = η y (x − y w). Converges to the unit-norm first principal component (no competition)."""

    name = "oja"

    def factors(self, y, u):
        return y, y * y


class SoftHebbRule(Rule):
    """SoftHebb / Krotov–Hopfield form: Δw = η y (x − u w), with y the competition's output and u the
    unit's activation (its 'current'). The fixed point has ‖w‖ = 1."""

    name = "softhebb"

    def factors(self, y, u):
        return y, y * u


class Sanger(Rule):
    """Sanger's generalised Hebbian algorithm: Δw_o = η y_o (x − Σ_{j≤o} y_j w_j).
    Unit o learns the o-th principal component. Needs ungrouped weights."""

    name = "sanger"

    def factors(self, y, u):
        return y, None

    def decay(self, y, u, s, weight):
        units = y.shape[1]
        flat_y = y.transpose(0, 1).reshape(units, -1)
        products = torch.tril(flat_y @ flat_y.T)  # [o, j] = Σ_{n,p} y_o y_j for j ≤ o
        return (products @ weight.reshape(units, -1)).view_as(weight)


class BCM(Rule):
    """Bienenstock–Cooper–Munro: Δw = η x y (y − θ), with a sliding threshold per unit

        θ_o ← (1 − τ) θ_o + τ · mean_{n,p} y_o²      (seed 000 §3.3.6; τ = ``theta_rate``)

    updated before the update is computed, as in the original code. No decay term.
    """

    name = "bcm"

    def __init__(self, theta_rate: float = 0.5, theta_init: float = 1.0):
        super().__init__()
        if not (0 < theta_rate <= 1):
            raise ValueError(f"bcm theta_rate must be in (0, 1], got {theta_rate!r}")
        self.theta_rate, self.theta_init = float(theta_rate), float(theta_init)
        self.register_buffer("theta", torch.empty(0))

    def factors(self, y, u):
        units = y.shape[1]
        if self.theta.numel() != units:
            self.theta = torch.full((units,), self.theta_init, device=y.device, dtype=y.dtype)
        mean_sq = self.reducer.mean(sum_per_unit(y * y), y.numel() // units)  # over the whole global batch
        self.theta.mul_(1 - self.theta_rate).add_(self.theta_rate * mean_sq)
        theta = self.theta.view(1, units, *([1] * (y.dim() - 2)))
        return y * (y - theta), None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "theta"
        if key in state_dict:
            self.theta = torch.empty_like(state_dict[key], device=self.theta.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self):
        return f"theta_rate={self.theta_rate}, theta_init={self.theta_init}"


RULES = {cls.name: cls for cls in (Hebb, AntiHebb, Instar, Oja, SoftHebbRule, Sanger, BCM)}
SURROGATE_RULES = ("hebb", "instar", "oja")


def available_rules() -> list[str]:
    """Names accepted by ``rule=`` (for dropdowns and error messages)."""
    return sorted(RULES)


def make_rule(spec) -> Rule:
    """Build a rule from a name, a dict ``{"name": ..., **options}`` or an instance."""
    if isinstance(spec, Rule):
        return spec
    options = {}
    if isinstance(spec, dict):
        options = dict(spec)
        spec = options.pop("name", None)
    if spec not in RULES:
        raise choice_error("rule", spec, RULES)
    check_options(f"rule {spec!r}", RULES[spec], options)
    return RULES[spec](**options)
