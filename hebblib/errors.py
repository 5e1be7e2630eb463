"""Exceptions with messages a student can act on."""
from __future__ import annotations


class HebbianDivergenceError(FloatingPointError):
    """Raised when a layer's weights become non-finite or explode during Hebbian training.

    Names the layer and the update step, so a run stops where it went wrong instead of
    silently training on NaNs.
    """


def choice_error(kind: str, value, choices) -> ValueError:
    """``ValueError`` naming a bad option value and listing the valid ones."""
    listed = ", ".join(repr(c) for c in sorted(choices))
    return ValueError(f"unknown {kind} {value!r}; valid choices: {listed}")


def check_choice(kind: str, value, choices) -> None:
    if value not in choices:
        raise choice_error(kind, value, choices)


def check_positive(name: str, value, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a number {bound}, got {value!r}")
