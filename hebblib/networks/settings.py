"""Per-layer Hebbian settings: a list of dicts merged over shared defaults.

Every architecture takes ``layers`` (one dict per *stage*, i.e. per conv block) and ``defaults`` (a dict
for every Hebbian layer). The settings of one layer are

    builder defaults  ⊕  defaults  ⊕  layers[i]  ⊕  layers[i]["sublayers"][role]

where ``⊕`` is :func:`merge_settings` (later wins; nested dicts such as ``rule``/``competition`` merge key
by key). ``sublayers`` addresses the Hebbian layers inside one stage by role, e.g. ``{"depthwise": {...},
"pointwise": {...}}`` in a depthwise-separable stage or ``"expand"/"depthwise"/"project"/"shortcut"`` in a
residual one. The keys are the keyword arguments of :class:`hebblib.HebbianConv2d` (``rule``,
``competition``, ``activation``, ``lr``, ``surround``, ...).
"""
from __future__ import annotations

import copy
import inspect

from ..layers import HebbianConv2d, HebbianLinear

# Set by the architecture itself; a preset may not override them.
STRUCTURAL_KEYS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                   "in_features", "out_features", "name", "generator")
CONV_KEYS = tuple(k for k in inspect.signature(HebbianConv2d).parameters if k not in STRUCTURAL_KEYS)
LINEAR_KEYS = tuple(k for k in inspect.signature(HebbianLinear).parameters if k not in STRUCTURAL_KEYS)
SETTING_KEYS = tuple(sorted(set(CONV_KEYS) | {"sublayers"}))


def merge_settings(base: dict | None, override: dict | None) -> dict:
    """``base`` updated by ``override`` (both left untouched). Nested dicts merge recursively; a string
    merged with a dict that has no ``"name"`` keeps the string as its name, so ``{"rule": "bcm"}`` merged
    with ``{"rule": {"theta_rate": 0.3}}`` gives ``{"rule": {"name": "bcm", "theta_rate": 0.3}}``."""
    out = copy.deepcopy(dict(base or {}))
    for key, value in (override or {}).items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, str) and "name" not in value:
            old = {"name": old}
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = merge_settings(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def stage_settings(layers, defaults, num_stages: int, architecture: str) -> list[dict]:
    """One merged settings dict per stage; checks the list length and the keys."""
    if layers is None:
        layers = [{}] * num_stages
    if isinstance(layers, dict):
        raise ValueError(f"{architecture}: layers must be a list of {num_stages} dicts (one per stage), got a dict")
    layers = list(layers)
    if len(layers) != num_stages:
        raise ValueError(f"{architecture} has {num_stages} stages, so layers needs {num_stages} dicts; "
                         f"got {len(layers)}")
    check_keys(defaults or {}, f"{architecture} defaults")
    merged = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict):
            raise ValueError(f"{architecture} layers[{i}] must be a dict, got {layer!r}")
        check_keys(layer, f"{architecture} layers[{i}]")
        merged.append(merge_settings(defaults, layer))
    return merged


def check_keys(settings: dict, where: str) -> None:
    bad = sorted(set(settings) - set(SETTING_KEYS))
    if bad:
        raise ValueError(f"{where}: unknown Hebbian setting(s) {bad}; valid keys: {', '.join(SETTING_KEYS)}")


def layer_kwargs(settings: dict, role: str | None, *, kernel_size: int = 1, linear: bool = False,
                 builtin: dict | None = None) -> dict:
    """The keyword arguments for one Hebbian layer of a stage.

    ``builtin`` holds the architecture's own defaults (lowest priority). The surround (DoG) modulation is
    dropped on 1×1 convs and linear layers: the original applies it only where the kernel is not 1×1
    (spec nimmo-thesis §1.16)."""
    settings = dict(settings)
    sublayers = settings.pop("sublayers", None) or {}
    if not isinstance(sublayers, dict):
        raise ValueError(f"sublayers must be a dict of role -> settings, got {sublayers!r}")
    out = merge_settings(builtin, settings)
    if role is not None and role in sublayers:
        check_keys(sublayers[role], f"sublayers[{role!r}]")
        out = merge_settings(out, sublayers[role])
    out.pop("sublayers", None)
    if linear or kernel_size == 1:
        out.pop("surround", None)
    if linear:
        out.pop("padding_mode", None)
        bad = sorted(set(out) - set(LINEAR_KEYS))
        if bad:
            raise ValueError(f"setting(s) {bad} do not apply to a HebbianLinear layer; valid: {', '.join(LINEAR_KEYS)}")
    return out


def known_roles(sublayers: dict | None, roles: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(sublayers or {}) - set(roles))
    if unknown:
        raise ValueError(f"{where}: unknown sublayer role(s) {unknown}; this stage has {', '.join(roles)}")
