"""Presynaptic competition (seed 000 §3.3.8, eqs 39–42, after Lagani 2024).

Weights are read as resistances and turned into admittances ``m = 1 / (|w| + 1e-6)`` (eq 39), which
then compete for a fixed budget along one dimension; the result replaces ``w`` in the forward pass:

    linear   w_eff = m / (Σ m + ε)                (40)
    softmax  w_eff = exp(m) / Σ exp(m)            (41)
    lp_norm  w_eff = m / sqrt(Σ m²)               (42)

The competition runs over the ``output`` units, the ``input`` channels, the ``spatial`` taps of each
(output, input) pair, or ``global``-ly over all entries.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import check_choice

KINDS = ("linear", "softmax", "lp_norm")
DIMS = {"output": (0,), "input": (1,), "spatial": (2, 3), "global": (0, 1, 2, 3)}


def check_presynaptic(kind: str, dim: str) -> None:
    check_choice("presynaptic kind", kind, KINDS)
    check_choice("presynaptic dim", dim, DIMS)


def presynaptic_weights(weight: torch.Tensor, kind: str = "lp_norm", dim: str = "spatial", eps: float = 1e-6):
    """Effective weights after presynaptic competition (weight shaped (out, in, kh, kw))."""
    check_presynaptic(kind, dim)
    dims = DIMS[dim]
    m = 1.0 / (weight.abs() + eps)
    if kind == "linear":
        return m / (m.sum(dim=dims, keepdim=True) + eps)
    if kind == "lp_norm":
        return m / m.pow(2).sum(dim=dims, keepdim=True).sqrt().clamp_min(eps)
    flat = m.movedim(dims, tuple(range(-len(dims), 0)))  # softmax over the chosen dims together
    shape = flat.shape
    soft = F.softmax(flat.reshape(*shape[: -len(dims)], -1), dim=-1).reshape(shape)
    return soft.movedim(tuple(range(-len(dims), 0)), dims)
