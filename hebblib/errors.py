"""Exceptions with messages a student can act on."""
from __future__ import annotations

import math
import numbers


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


def number_problem(value, *, minimum=None, maximum=None, above: bool = False, below: bool = False,
                   integer: bool = False) -> str | None:
    """None when ``value`` is a finite number (an int with ``integer``; never a bool) within the bounds
    (``above``/``below``: strictly), else what it must be, e.g. ``'must be a finite number >= 0'``."""
    bounds = ([f"{'>' if above else '>='} {minimum:g}"] if minimum is not None else []) + \
             ([f"{'<' if below else '<='} {maximum:g}"] if maximum is not None else [])
    need = f"must be {'an int' if integer else 'a finite number'}" + (" " + " and ".join(bounds) if bounds else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if integer else numbers.Real):
        return need
    if not math.isfinite(value):
        return need
    if minimum is not None and (value <= minimum if above else value < minimum):
        return need
    if maximum is not None and (value >= maximum if below else value > maximum):
        return need
    return None


def check_number(name: str, value, **bounds) -> None:
    """``ValueError`` naming ``value`` unless it is a finite number within ``bounds`` (see :func:`number_problem`)."""
    problem = number_problem(value, **bounds)
    if problem:
        raise ValueError(f"{name} {problem}, got {value!r}")


def check_positive(name: str, value, allow_zero: bool = False) -> None:
    """``ValueError`` unless ``value`` is a finite number > 0 (>= 0 with ``allow_zero``); a string, NaN or
    inf is refused here too, not left to fail later with a TypeError or to train on."""
    check_number(name, value, minimum=0, above=not allow_zero)
