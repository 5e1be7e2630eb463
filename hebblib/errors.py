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


def check_options(kind: str, cls, options: dict) -> None:
    """``ValueError`` naming the first of ``options`` that ``cls(...)`` does not take, with those it takes."""
    import inspect

    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [name for name, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in options:
        if key not in valid:
            listed = ", ".join(repr(v) for v in valid) or "none"
            raise ValueError(f"unknown option {key!r} for {kind}; valid options: {listed}")


def check_positive(name: str, value, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a number {bound}, got {value!r}")
