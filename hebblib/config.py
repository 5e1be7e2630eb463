"""Typed configuration: a preset as frozen dataclasses, one per concern, validated when it is built.

    config = preset_config("optimal")                       # hebblib.presets: a PresetConfig
    config.unsupervised.epochs, config.layers[0].lr         # 1, 0.1
    variant = config.changed({"hebbian": {"rule": {"theta_init": 0.0}}})   # applies, or raises

A preset is still written (and handed to chapters) as a plain dict; :meth:`PresetConfig.from_dict` turns it
into the structure below, and any mistake is one ``ValueError`` naming the key path, the value and what is
allowed (``unsupervised.epoch = 3: not a setting; valid keys: 'augment', 'batch_size', 'epochs', ...``),
before a network is built or an image loaded::

    PresetConfig                       name, description, published, source, protocol, original, change
      architecture, model              ModelConfig: options of the architecture's build function
      hebbian: LayerSettings           settings shared by every Hebbian layer
      layers:  (LayerSettings, ...)    one per stage (or None: the shared settings everywhere)
      data:         DataConfig         normalisation
      unsupervised: HebbianPhaseConfig the Hebbian phase
      supervised:   ClassifierConfig   the linear read-out, end-to-end backprop, or the α-hybrid
                                       (mode 'hybrid' with alpha: grad = (1 − α)·grad_BP − α·ΔW_Hebb)

:class:`RunOptions` holds the settings of one run that are not part of the recipe (seed, data source,
limits, classifier epochs override, ...). Lunelli's contrastive presets (:mod:`hebblib.contrastive`) have a
structure of their own, :class:`ContrastivePresetConfig` (network, learning, model, optimizer, training, data),
checked and changed (:func:`apply_contrastive_change`) the same way.

**Precedence** (the one rule for every Hebbian setting): a layer's settings are

    the architecture's built-in defaults ⊕ hebbian ⊕ layers[i] ⊕ layers[i].sublayers[role]

where ``⊕`` merges key by key and the right side wins (:func:`hebblib.networks.merge_settings`; ``rule`` and
``competition`` options merge option by option; a bare name such as ``"rule": "oja"`` replaces the choice
and its options). So a per-layer ``lr`` wins over ``hebbian.lr``. A *change* of a shared setting that a
layer overrides would be recorded and never used: :func:`check_change_applies` refuses it and names the
layers to change instead. A run records the settings each layer was built with (``layers_used``).
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import pathlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .errors import number_problem

SUPERVISED_MODES = ("linear", "end_to_end", "hybrid")
OPTIMIZERS = ("adam",)
SOURCES = ("auto", "full", "subset")
CHANGEABLE = ("model", "hebbian", "layers", "data", "unsupervised", "supervised")


class _Unset:
    """Marks a Hebbian setting a level leaves to the level below (it inherits)."""

    def __repr__(self):
        return "UNSET"

    def __bool__(self):
        return False

    def __deepcopy__(self, memo):
        return self


UNSET = _Unset()


# ----- errors and value checks ---------------------------------------------------------------------------
def config_error(path: str, value, expected: str) -> ValueError:
    """One ``ValueError``: ``'<path> = <value>: <what is allowed>'``."""
    return ValueError(f"{path} = {value!r}: {expected}")


def _listed(choices) -> str:
    return ", ".join(repr(c) for c in choices)


def _check_keys(values: Mapping, valid, path: str, what: str = "setting") -> None:
    if not isinstance(values, Mapping):
        raise config_error(path, values, f"must be a dict (keys: {_listed(sorted(valid))})")
    for key in values:
        if key not in valid:
            raise config_error(f"{path}.{key}", values[key], f"not a {what}; valid keys: {_listed(sorted(valid))}")


def _number(path, value, **bounds):
    problem = number_problem(value, **bounds)
    if problem:
        raise config_error(path, value, problem)


def _choice(path, value, choices):
    if isinstance(value, bool) and not any(isinstance(c, bool) for c in choices) or value not in choices:
        raise config_error(path, value, f"valid choices: {_listed(choices)}")


def _flag(path, value):
    if not isinstance(value, bool):
        raise config_error(path, value, "must be True or False")


def _text(path, value, optional=True):
    if not (isinstance(value, str) or (optional and value is None)):
        raise config_error(path, value, "must be a string" + (" or None" if optional else ""))


def _frozen(mapping) -> Mapping:
    return MappingProxyType(copy.deepcopy(dict(mapping)))


def _plain(value):
    """A JSON-able deep copy (read-only mappings and tuples back to dicts and lists)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


# ----- Hebbian layer settings ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ComponentConfig:
    """A rule or competition: its ``name`` (None: inherited) and ``options`` (merged option by option).
    ``bare``: given as a bare name (``"oja"``), which replaces the inherited choice and its options."""

    name: str | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    bare: bool = False

    def __post_init__(self):
        object.__setattr__(self, "options", _frozen(self.options))

    def __repr__(self):
        parts = ([repr(self.name)] if self.name is not None else []) + \
                ([f"options={dict(self.options)!r}"] if self.options else [])
        return f"{type(self).__name__}({', '.join(parts)})"

    @classmethod
    def from_value(cls, value, path: str) -> "ComponentConfig":
        if isinstance(value, str) or (value is None and path.endswith("competition")):  # None: no competition
            return cls(value, {}, bare=True)
        if not isinstance(value, Mapping):
            raise config_error(path, value, "must be a name or a dict {'name': ..., option: value, ...}")
        options = dict(value)
        name = options.pop("name", None)
        _text(f"{path}.name", name)
        return cls(name, options)

    def to_value(self):
        if self.bare:
            return self.name
        return ({"name": self.name} if self.name is not None else {}) | _plain(self.options)


def _registry(kind):
    if kind == "rule":
        from .rules import RULES

        return RULES
    from .competitions import COMPETITIONS

    return COMPETITIONS


def _layer_validators():
    """field -> check(path, value), for the scalar Hebbian settings (the choices come from the modules that
    use them, so the config never lists a second copy)."""
    from .layers import ACTIVATIONS, COMPETITION_AXES, DALE_MODES, LR_SCHEDULES, PADDING_MODES, UPDATE_PATHS
    from .update import UPDATE_NORMS
    from .weights import INITS

    def choice(choices):
        return lambda path, value: _choice(path, value, choices)

    def optional_positive(path, value):
        if value is not None:
            _number(path, value, minimum=0, above=True)

    return {
        "activation": choice(ACTIVATIONS),
        "competition_over": choice(COMPETITION_AXES),
        "lr": lambda p, v: _number(p, v, minimum=0),
        "lr_schedule": choice(LR_SCHEDULES),
        "radius_power": lambda p, v: _number(p, v, minimum=0),
        "update_norm": choice(UPDATE_NORMS),
        "dale": choice(DALE_MODES),
        "weight_norm": _flag,
        "lebesgue_p": lambda p, v: _number(p, v, minimum=1),
        "init": choice(INITS),
        "prune_fraction": lambda p, v: _number(p, v, minimum=0, maximum=1, below=True),
        "renormalize": _flag,
        "update_via": choice(UPDATE_PATHS),
        "explode_threshold": optional_positive,
        "check_every": lambda p, v: _number(p, v, minimum=0, integer=True),
        "padding_mode": choice(PADDING_MODES),
    }


def _check_surround(path, value):
    if value is None:
        return
    from .surround import SurroundModulation

    _check_keys(value, inspect.signature(SurroundModulation).parameters, path, "surround option")


def _check_presynaptic(path, value):
    if value is None:
        return
    from .presynaptic import DIMS, KINDS

    _check_keys(value, ("kind", "dim"), path, "presynaptic option")
    if "kind" in value:
        _choice(f"{path}.kind", value["kind"], KINDS)
    if "dim" in value:
        _choice(f"{path}.dim", value["dim"], tuple(DIMS))


@dataclasses.dataclass(frozen=True)
class LayerSettings:
    """The Hebbian settings of one level (``hebbian``, ``layers[i]`` or a sublayer role): the keyword
    arguments of :class:`hebblib.HebbianConv2d` that a preset may set, each ``UNSET`` unless this level
    sets it. ``rule`` and ``competition`` are grouped (:class:`ComponentConfig`); ``sublayers`` maps a role of
    a stage (``'depthwise'``, ``'pointwise'``, ``'expand'``, ...) to its own settings."""

    rule: Any = UNSET
    competition: Any = UNSET
    activation: Any = UNSET
    competition_over: Any = UNSET
    lr: Any = UNSET
    lr_schedule: Any = UNSET
    radius_power: Any = UNSET
    update_norm: Any = UNSET
    surround: Any = UNSET
    presynaptic: Any = UNSET
    dale: Any = UNSET
    weight_norm: Any = UNSET
    lebesgue_p: Any = UNSET
    init: Any = UNSET
    prune_fraction: Any = UNSET
    renormalize: Any = UNSET
    update_via: Any = UNSET
    explode_threshold: Any = UNSET
    check_every: Any = UNSET
    padding_mode: Any = UNSET
    sublayers: Any = UNSET

    def __post_init__(self):
        self.validate("layer")

    def __repr__(self):
        set_here = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.keys() if getattr(self, k) is not UNSET)
        return f"{type(self).__name__}({set_here})"

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def validate(self, path: str) -> None:
        """Types, ranges and choices of the settings this level sets (option names and values of the rule
        and competition are checked once the levels are merged: :func:`check_layer_settings`)."""
        checks = _layer_validators()
        for key in self.keys():
            value = getattr(self, key)
            if value is UNSET:
                continue
            where = f"{path}.{key}"
            if key in checks:
                checks[key](where, value)
            elif key in ("rule", "competition") and not isinstance(value, ComponentConfig):
                raise config_error(where, value, "must be a ComponentConfig (use LayerSettings.from_dict)")
            elif key == "surround":
                _check_surround(where, value)
            elif key == "presynaptic":
                _check_presynaptic(where, value)
            elif key == "sublayers":
                if not isinstance(value, Mapping) or not all(isinstance(v, LayerSettings) for v in value.values()):
                    raise config_error(where, value, "must map a role name to settings")

    @classmethod
    def from_dict(cls, values, path: str = "hebbian", *, allow_sublayers: bool = True) -> "LayerSettings":
        valid = cls.keys() if allow_sublayers else tuple(k for k in cls.keys() if k != "sublayers")
        _check_keys(values, valid, path, "Hebbian setting")
        fields = {}
        for key, value in values.items():
            where = f"{path}.{key}"
            if key in ("rule", "competition"):
                value = ComponentConfig.from_value(value, where)
            elif key in ("surround", "presynaptic") and value is not None:
                (_check_surround if key == "surround" else _check_presynaptic)(where, value)
                value = _frozen(value)
            elif key == "sublayers":
                if not isinstance(value, Mapping):
                    raise config_error(where, value, "must be a dict of role -> settings")
                value = MappingProxyType({role: cls.from_dict(s, f"{where}.{role}", allow_sublayers=False)
                                          for role, s in value.items()})
            fields[key] = value
        settings = cls.__new__(cls)  # validate with the real path, then freeze
        for key in cls.keys():
            object.__setattr__(settings, key, fields.get(key, UNSET))
        settings.validate(path)
        return settings

    def to_dict(self) -> dict:
        """The settings this level sets, as the dict a preset holds (round-trips through :meth:`from_dict`)."""
        out = {}
        for key in self.keys():
            value = getattr(self, key)
            if value is UNSET:
                continue
            if isinstance(value, ComponentConfig):
                value = value.to_value()
            elif key == "sublayers":
                value = {role: s.to_dict() for role, s in value.items()}
            out[key] = _plain(value)
        return out


def check_layer_settings(merged: dict, sources: dict[str, dict]) -> None:
    """Check the rule and competition of one layer's *merged* settings (names, option names, option values)
    and its surround. ``sources`` maps each level's path (``'hebbian'``, ``'layers[1]'``) to what that level
    set, so an error names the level the bad option came from."""
    from .surround import SurroundModulation

    def origin(*keys):
        found = None
        for path, level in sources.items():
            value = level
            for key in keys:
                value = value.get(key, UNSET) if isinstance(value, Mapping) else UNSET
            if value is not UNSET:
                found = f"{path}.{'.'.join(keys)}"
        return found or f"{next(iter(sources), 'hebbian')}.{'.'.join(keys)}"

    for kind in ("rule", "competition"):
        spec = merged.get(kind, UNSET)
        if spec is UNSET:
            continue
        registry = _registry(kind)
        name = spec if isinstance(spec, str) else (None if spec is None else spec.get("name"))
        if spec is None and kind == "competition":
            name = "none"
        if name is None:
            continue  # the architecture's built-in choice supplies it
        if name not in registry:
            raise config_error(origin(kind) if isinstance(spec, str) else origin(kind, "name"), name,
                               f"unknown {kind}; valid choices: {_listed(sorted(registry))}")
        options = {k: v for k, v in spec.items() if k != "name"} if isinstance(spec, Mapping) else {}
        params = inspect.signature(registry[name]).parameters.values()
        valid = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        for key, value in options.items():
            if key not in valid:
                raise config_error(origin(kind, key), value, f"unknown option {key!r} for {kind} {name!r}; valid "
                                   f"options: {_listed(valid) or 'none'}")
        try:
            registry[name](**options)
        except (TypeError, ValueError) as err:
            raise config_error(origin(kind), {"name": name, **options}, str(err)) from None
    surround = merged.get("surround")
    if isinstance(surround, Mapping):
        try:
            SurroundModulation(**surround)
        except (TypeError, ValueError) as err:
            raise config_error(origin("surround"), dict(surround), str(err)) from None


# ----- the phases ---------------------------------------------------------------------------------------
class _Section:
    """A frozen section of a preset: ``from_dict`` refuses unknown keys and missing required ones;
    construction validates every value (``validate``), naming ``<SECTION>.<key>``."""

    SECTION = ""
    REQUIRED: tuple[str, ...] = ()

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, values) -> "_Section":
        names = [f.name for f in dataclasses.fields(cls)]
        _check_keys(values, names, cls.SECTION)
        missing = [k for k in cls.REQUIRED if k not in values]
        if missing:
            raise ValueError(f"{cls.SECTION}.{missing[0]} is missing; {cls.SECTION} needs "
                             f"{_listed(cls.REQUIRED)} (optional: {_listed(k for k in names if k not in cls.REQUIRED)})")
        return cls(**values)

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


ZCA_FITS = ("train", "train_and_val")


@dataclasses.dataclass(frozen=True)
class DataConfig(_Section):
    """The images and how they are normalised before the network: ``dataset`` (one of
    :data:`hebblib.data.DATASET_NAMES`, default ``'cifar10'``; the networks take its image shape),
    ``normalization`` (one of :data:`hebblib.data.NORMALIZATIONS`), ZCA's ``zca_eps`` and ``zca_fit``: the
    images the whitening is fitted on, ``'train'`` (the default, protocol v2: the training split only) or
    ``'train_and_val'`` (protocol v1, the code before 2026-12: the validation split too, which then saw
    the images that select the classifier's epoch; kept to measure what the change did)."""

    normalization: str = "none"
    zca_eps: float = 1e-3
    dataset: str = "cifar10"
    zca_fit: str = "train"
    SECTION = "data"
    REQUIRED = ("normalization",)

    def validate(self):
        from .data import DATASET_NAMES, NORMALIZATIONS

        _choice("data.normalization", self.normalization, NORMALIZATIONS)
        _number("data.zca_eps", self.zca_eps, minimum=0, above=True)
        _choice("data.dataset", self.dataset, DATASET_NAMES)
        _choice("data.zca_fit", self.zca_fit, ZCA_FITS)

    def to_dict(self) -> dict:
        out = super().to_dict()
        if out["dataset"] == "cifar10":  # as the CIFAR-10 presets write it (and hash it): no key
            del out["dataset"]
        if out["zca_fit"] == "train":  # the default: no key, so the presets' hashes stay as they were
            del out["zca_fit"]
        return out


@dataclasses.dataclass(frozen=True)
class HebbianPhaseConfig(_Section):
    """Phase 1, unsupervised: ``epochs`` over the training images at ``batch_size``, random flips with
    ``augment``, all layers at once (or one after the other with ``layerwise``), the first
    ``warmup_batches`` updates discarded; ``precision``, the arithmetic of the layers' products in this phase
    and in the feature extraction (one of :data:`hebblib.runtime.PRECISIONS`; ``auto``: bf16 where the
    hardware is fast at it, :func:`hebblib.runtime.resolve_precision`). The default is ``fp32``: the first
    bf16 path lost 0.37 points of ``soft``'s three-seed mean; the current one (conv1 kept in fp32) 0.16, inside
    the 0.3-point tolerance, with one seed off by 0.59 (docs/performance.md); until more presets are checked,
    bf16 is asked for, not assumed."""

    epochs: int = 1
    batch_size: int = 64
    augment: bool = True
    layerwise: bool = False
    warmup_batches: int = 0
    precision: str = "fp32"
    SECTION = "unsupervised"
    REQUIRED = ("epochs", "batch_size")

    def validate(self):
        from .runtime import PRECISIONS

        _number("unsupervised.epochs", self.epochs, minimum=0, integer=True)
        _number("unsupervised.batch_size", self.batch_size, minimum=1, integer=True)
        _flag("unsupervised.augment", self.augment)
        _flag("unsupervised.layerwise", self.layerwise)
        _number("unsupervised.warmup_batches", self.warmup_batches, minimum=0, integer=True)
        _choice("unsupervised.precision", self.precision, PRECISIONS)


@dataclasses.dataclass(frozen=True)
class ClassifierConfig(_Section):
    """Phase 3: a ``Dropout(dropout) → Linear`` head on frozen features (``mode='linear'``), the whole
    network by backprop (``'end_to_end'``), or the whole network by the α-mix of backprop and the Hebbian
    layers' own updates (``'hybrid'``, :mod:`hebblib.hybrid`): Adam at ``lr``, ``epochs`` at ``batch_size``,
    the learning-rate ``schedule`` (:data:`hebblib.classifier.SCHEDULES`), random flips with ``augment``.
    ``flip_average`` (``'linear'`` only): the validation and test images are classified by the head's logits
    averaged over the image and its mirror image (the same linear head on flip-symmetrised features; the
    records keep the one-view accuracies too, as ``val_acc_plain`` and ``test_acc_plain``).

    ``alpha`` (``'hybrid'`` only, required there, in [0, 1]): every Hebbian layer's gradient is
    ``(1 − α)·grad_BP − α·ΔW_Hebb`` (:meth:`hebblib.HebbianConv2d.hebbian_grad`), both from the same forward
    pass; α = 0 is end-to-end backprop of the same network, α = 1 Hebbian updates with the head (and only
    the head) trained by backprop. Vary it with ``--change '{"supervised": {"alpha": 0.25}}'``."""

    mode: str = "linear"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    schedule: str = "nimmo_step"
    optimizer: str = "adam"
    dropout: float = 0.5
    augment: bool = True
    alpha: float | None = None
    flip_average: bool = False
    SECTION = "supervised"
    REQUIRED = ("mode", "epochs", "batch_size", "lr", "schedule")

    def validate(self):
        from .classifier import SCHEDULES

        _choice("supervised.mode", self.mode, SUPERVISED_MODES)
        _number("supervised.epochs", self.epochs, minimum=1, integer=True)
        _number("supervised.batch_size", self.batch_size, minimum=1, integer=True)
        _number("supervised.lr", self.lr, minimum=0, above=True)
        _choice("supervised.schedule", self.schedule, SCHEDULES)
        _choice("supervised.optimizer", self.optimizer, OPTIMIZERS)
        _number("supervised.dropout", self.dropout, minimum=0, maximum=1, below=True)
        _flag("supervised.augment", self.augment)
        _flag("supervised.flip_average", self.flip_average)
        if self.flip_average and self.mode != "linear":
            raise config_error("supervised.flip_average", self.flip_average, f"applies to mode 'linear' only "
                               f"(this mode is {self.mode!r}); valid choices: False, or mode 'linear'")
        if self.mode == "hybrid":
            if self.alpha is None:
                raise config_error("supervised.alpha", None, "mode 'hybrid' needs alpha, a number in [0, 1] "
                                   "(0: backprop, 1: Hebbian updates with a backprop-trained head)")
            _number("supervised.alpha", self.alpha, minimum=0, maximum=1)
        elif self.alpha is not None:
            raise config_error("supervised.alpha", self.alpha, f"applies to mode 'hybrid' only (this mode is "
                               f"{self.mode!r}); valid choices: None, or mode 'hybrid'")

    def to_dict(self) -> dict:
        out = super().to_dict()
        if out["alpha"] is None:  # as the presets without a hybrid write it (and hash it): no key
            del out["alpha"]
        if not out["flip_average"]:  # likewise: the runs before the option hash as before
            del out["flip_average"]
        return out


def model_options(architecture: str) -> tuple[str, ...]:
    """The options a preset's ``model`` may set: the keyword arguments of the architecture's build
    function, less those the pipeline passes itself (``input_shape`` comes from ``data.dataset``)."""
    from .networks import ARCHITECTURES

    params = inspect.signature(ARCHITECTURES[architecture]).parameters
    return tuple(k for k in params if k not in ("layers", "defaults", "generator", "input_shape"))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Options of the architecture's build function (``width_factor``, ``dropout``, ``num_classes``, ...)."""

    architecture: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        from .networks import ARCHITECTURES

        _choice("architecture", self.architecture, tuple(ARCHITECTURES))
        _check_keys(self.options, model_options(self.architecture), "model", f"{self.architecture} option")
        if "width_factor" in self.options:
            _number("model.width_factor", self.options["width_factor"], minimum=0, above=True)
        if "dropout" in self.options:
            _number("model.dropout", self.options["dropout"], minimum=0, maximum=1, below=True)
        object.__setattr__(self, "options", _frozen(self.options))


# ----- the whole preset ---------------------------------------------------------------------------------
PRESET_KEYS = ("name", "description", "published", "source", "protocol", "architecture", "model", "hebbian",
               "layers", "data", "unsupervised", "supervised", "original", "original_overrides", "change")


@dataclasses.dataclass(frozen=True)
class PresetConfig:
    """A preset, typed and validated: see the module docstring. Build it with :meth:`from_dict` (or
    :func:`hebblib.presets.preset_config`); :meth:`to_dict` gives the plain dict back."""

    architecture: str
    data: DataConfig
    unsupervised: HebbianPhaseConfig
    supervised: ClassifierConfig
    model: ModelConfig | None = None
    hebbian: LayerSettings | None = None
    layers: tuple[LayerSettings, ...] | None = None
    name: str = "custom"
    description: str | None = None
    published: float | None = None
    source: str | None = None
    protocol: str | None = None
    original: bool = False
    original_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    change: Mapping[str, Any] | None = None

    def __post_init__(self):
        if self.model is None:
            object.__setattr__(self, "model", ModelConfig(self.architecture))
        _text("name", self.name, optional=False)
        for key in ("description", "source", "protocol"):
            _text(key, getattr(self, key))
        if self.published is not None:
            _number("published", self.published, minimum=0, maximum=100)
        _flag("original", self.original)
        if self.model.architecture != self.architecture:
            raise config_error("model", self.model.architecture, f"built for {self.architecture!r}")
        for key, cls in (("data", DataConfig), ("unsupervised", HebbianPhaseConfig),
                         ("supervised", ClassifierConfig)):
            if not isinstance(getattr(self, key), cls):
                raise config_error(key, getattr(self, key), f"must be a {cls.__name__}")
        _check_keys(self.original_overrides, CHANGEABLE, "original_overrides", "preset key to change")
        object.__setattr__(self, "original_overrides", _frozen(self.original_overrides))
        if self.change is not None:
            _check_keys(self.change, CHANGEABLE, "change", "preset key to change")
            object.__setattr__(self, "change", _frozen(self.change))
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))
        if self.supervised.mode == "hybrid":
            if self.unsupervised.epochs:
                raise config_error("unsupervised.epochs", self.unsupervised.epochs,
                                   "a hybrid preset trains its Hebbian layers during the end-to-end epochs, "
                                   "with no Hebbian phase before them; set it to 0")
            if self.hebbian is None and self.layers is None:
                raise config_error("supervised.mode", "hybrid", "mixes the Hebbian layers' updates into "
                                   "backprop, and this preset has no Hebbian settings (hebbian, layers)")
        if self.supervised.mode == "end_to_end":
            if self.unsupervised.epochs:
                raise config_error("unsupervised.epochs", self.unsupervised.epochs,
                                   "an end_to_end preset trains by backprop only; set it to 0")
            for key in ("hebbian", "layers"):
                if getattr(self, key):
                    raise config_error(key, getattr(self, key).to_dict() if key == "hebbian" else "...",
                                       "an end_to_end preset has no Hebbian layers; set it to None")
        self._check_layers()

    def _check_layers(self):
        shared = self.hebbian.to_dict() if self.hebbian is not None else {}
        stages = list(self.layers) if self.layers is not None else [None]
        for i, layer in enumerate(stages):
            own = layer.to_dict() if layer is not None else {}
            merged = _merge(shared, own)
            where = f"layers[{i}]"
            sources = {"hebbian": shared, where: own} if layer is not None else {"hebbian": shared}
            check_layer_settings(merged, sources)
            for role, sub in (merged.get("sublayers") or {}).items():
                check_layer_settings(_merge(merged, sub), {**sources, f"{where}.sublayers.{role}": sub})

    @classmethod
    def from_dict(cls, preset: Mapping) -> "PresetConfig":
        """Validate ``preset`` (a dict as :func:`hebblib.presets.get_preset` returns) and type it. Every
        mistake is one ``ValueError`` naming the preset, the key path, the value and the valid values."""
        name = preset.get("name", "custom") if isinstance(preset, Mapping) else "custom"
        try:
            _check_keys(preset, PRESET_KEYS, "preset", "preset key")
            missing = [k for k in ("architecture", "data", "unsupervised", "supervised") if k not in preset]
            if missing:
                raise ValueError(f"{missing[0]} is missing; a preset needs 'architecture', 'data', "
                                 f"'unsupervised', 'supervised'")
            _choice("architecture", preset["architecture"], _architectures())
            layers = preset.get("layers")
            if layers is not None:
                if not isinstance(layers, (list, tuple)):
                    raise config_error("layers", layers, "must be a list with one dict per stage, or None")
                layers = tuple(LayerSettings.from_dict(layer, f"layers[{i}]") for i, layer in enumerate(layers))
            hebbian = preset.get("hebbian")
            return cls(
                architecture=preset["architecture"],
                model=ModelConfig(preset["architecture"], _mapping("model", preset.get("model") or {})),
                hebbian=None if hebbian is None else LayerSettings.from_dict(hebbian, "hebbian"),
                layers=layers,
                data=DataConfig.from_dict(preset["data"]),
                unsupervised=HebbianPhaseConfig.from_dict(preset["unsupervised"]),
                supervised=ClassifierConfig.from_dict(preset["supervised"]),
                **{k: preset[k] for k in ("name", "description", "published", "source", "protocol", "original")
                   if k in preset},
                original_overrides=_mapping("original_overrides", preset.get("original_overrides") or {}),
                change=None if preset.get("change") is None else _mapping("change", preset["change"]),
            )
        except ValueError as err:
            raise ValueError(f"preset {name!r}: {err}") from None

    def to_dict(self) -> dict:
        """The preset as a plain dict (the form chapters and ``get_preset`` use); Hebbian settings hold only
        what each level sets, the phases every field."""
        out = {"description": self.description, "published": self.published, "source": self.source,
               "protocol": self.protocol, "architecture": self.architecture, "model": _plain(self.model.options),
               "hebbian": None if self.hebbian is None else self.hebbian.to_dict(),
               "layers": None if self.layers is None else [layer.to_dict() for layer in self.layers],
               "data": self.data.to_dict(), "unsupervised": self.unsupervised.to_dict(),
               "supervised": self.supervised.to_dict(), "original_overrides": _plain(self.original_overrides),
               "name": self.name, "original": self.original}
        if self.change is not None:
            out["change"] = _plain(self.change)
        return out

    def changed(self, change: dict) -> "PresetConfig":
        """This preset with ``change`` merged in (see :func:`apply_change`): a variant that applies, or an error."""
        return PresetConfig.from_dict(apply_change(self.to_dict(), change))

    def stage_settings(self) -> list[dict]:
        """Per stage, ``hebbian ⊕ layers[i]`` (the preset's part of the precedence; one entry when the preset
        sets no per-layer list)."""
        shared = self.hebbian.to_dict() if self.hebbian is not None else {}
        if self.layers is None:
            return [shared] if self.hebbian is not None else []
        return [_merge(shared, layer.to_dict()) for layer in self.layers]


def _architectures():
    from .networks import ARCHITECTURES

    return tuple(ARCHITECTURES)


def _mapping(path, value):
    if not isinstance(value, Mapping):
        raise config_error(path, value, "must be a dict")
    return value


def _merge(base, override):
    from .networks.settings import merge_settings

    return merge_settings(base, override)


# ----- changes ------------------------------------------------------------------------------------------
def merge_change(preset: dict, change: dict) -> dict:
    """``preset`` (untouched) with ``change`` merged in key by key. A list of layers merges stage by stage
    (``{}`` leaves a stage as it is), so it must have one dict per stage."""
    out = dict(preset)
    for key, value in change.items():
        if key == "layers" and isinstance(value, (list, tuple)) and preset.get("layers") is not None:
            stages = preset["layers"]
            if len(value) != len(stages):
                raise config_error("layers", value, f"this preset has {len(stages)} stages: give one dict per "
                                   f"stage ({{}} leaves a stage as it is)")
            out[key] = [_merge(old, new) if isinstance(new, Mapping) else new for old, new in zip(stages, value)]
        elif key == "hebbian" and preset.get("hebbian") is None and value:
            raise config_error("hebbian", value, "this preset has no Hebbian layers (it trains end to end)")
        else:
            out[key] = _merge({key: preset.get(key)}, {key: value})[key]
    return out


def _leaf_paths(settings: Mapping, prefix=()):
    for key, value in settings.items():
        if isinstance(value, Mapping) and value:
            yield from _leaf_paths(value, prefix + (key,))
        else:
            yield prefix + (key,)


def _sets(settings, path, shared=None) -> bool:
    """Whether ``settings`` sets (and so overrides) the leaf ``path``: the leaf itself, or a value on the way
    that replaces everything under it (a bare name such as ``"rule": "oja"``). A dict of options without a
    ``name`` under a shared bare name (``shared``, a string) keeps that name: it does not override it."""
    value = settings
    for i, key in enumerate(path):
        if not isinstance(value, Mapping) or key not in value:
            return False
        value = value[key]
        if i < len(path) - 1 and not isinstance(value, Mapping):
            return True
    return not (isinstance(shared, str) and isinstance(value, Mapping) and "name" not in value)


def check_change_applies(preset: dict, change: dict) -> None:
    """Refuse a change that would be recorded but not used: a ``hebbian`` setting that a layer (or a layer's
    setting that one of its sublayers) sets itself, unless the same change sets that layer too."""
    shared = change.get("hebbian") or {}
    changed_layers = change.get("layers") if isinstance(change.get("layers"), (list, tuple)) else []
    layers = preset.get("layers") or []
    for path in _leaf_paths(shared):
        value = shared
        for key in path:
            value = value[key]
        hidden = []
        for i, layer in enumerate(layers):
            mine = changed_layers[i] if i < len(changed_layers) and isinstance(changed_layers[i], Mapping) else {}
            if _sets(layer, path, value) and not _sets(mine, path):
                hidden.append(f"layers[{i}].{'.'.join(path)}")
            for role, sub in (layer.get("sublayers") or {}).items():
                own = (mine.get("sublayers") or {}).get(role) or {}
                if _sets(sub, path, value) and not _sets(own, path):
                    hidden.append(f"layers[{i}].sublayers.{role}.{'.'.join(path)}")
        if hidden:
            nested = value
            for key in reversed(path):
                nested = {key: nested}
            example = json.dumps({"layers": [nested if _sets(layer, path, value) else {} for layer in layers]})
            raise config_error(f"hebbian.{'.'.join(path)}", value,
                               f"not used: {', '.join(hidden)} set their own, and a layer's setting wins over "
                               f"hebbian (hebblib.config: precedence); change those instead, e.g. {example}")
    for i, layer_change in enumerate(changed_layers):
        if not isinstance(layer_change, Mapping) or i >= len(layers):
            continue
        for path in _leaf_paths({k: v for k, v in layer_change.items() if k != "sublayers"}):
            value = layer_change
            for key in path:
                value = value[key]
            roles = [role for role, sub in (layers[i].get("sublayers") or {}).items() if _sets(sub, path, value)
                     and not _sets(((layer_change.get("sublayers") or {}).get(role) or {}), path)]
            if roles:
                raise config_error(f"layers[{i}].{'.'.join(path)}", "...",
                                   f"not used: sublayers {_listed(roles)} of this stage set their own; change "
                                   f"layers[{i}].sublayers instead")


def apply_change(preset: dict, change: dict) -> dict:
    """``preset`` with ``change`` merged in and recorded under ``"change"``, validated: every key path of the
    change must exist and its value be valid (:meth:`PresetConfig.from_dict`), and it must take effect
    (:func:`check_change_applies`). Otherwise one ``ValueError`` names it."""
    name = preset.get("name", "custom")
    if not isinstance(change, Mapping) or not change:
        raise ValueError(f"a preset change must be a non-empty dict, got {change!r}")
    try:
        for key in change:
            if key not in CHANGEABLE:
                raise ValueError(f"unknown preset key to change {key!r}; valid choices: {_listed(sorted(CHANGEABLE))}")
        out = merge_change(preset, change)
    except ValueError as err:
        raise ValueError(f"preset {name!r}: {err}") from None
    out["change"] = _merge(preset.get("change") or {}, change)
    PresetConfig.from_dict(out)  # every value valid ...
    try:
        check_change_applies(out, change)  # ... and every one used
    except ValueError as err:
        raise ValueError(f"preset {name!r}: {err}") from None
    return out


# ----- one run ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What one run adds to the recipe: ``seed``; the data ``source`` (:data:`SOURCES`) and ``root``;
    ``quick`` mode; ``limit_train``/``limit_test`` (first images of a split), ``val_size`` and
    ``split_seed`` of the validation split; ``supervised_epochs`` (overrides the preset's); and how it
    runs (``device``, ``resume``, ``stop_after``, ``deterministic``, ``download``, ``progress``, ``out``), and
    ``precision``, the arithmetic of the Hebbian phase and the feature extraction, or of the whole
    training of an end-to-end preset (one of :data:`hebblib.runtime.PRECISIONS`; None: the pipeline's
    default; the α-hybrid trains in fp32 only). ``hebbian_from``: the folder of a
    finished run (its ``seed<k>`` folder, or the folder holding it) whose Hebbian phase this run adopts
    instead of training its own, when everything but the classifier is the same
    (:func:`hebblib.training.adopt_hebbian_phase`). ``compile``: fuse the forward pass and the update of the
    Hebbian phase and the feature extraction with ``torch.compile`` (:func:`hebblib.runtime.compiled_features`;
    the same values up to rounding, a run of its own; needs a C++ compiler on the CPU, Triton on CUDA)."""

    seed: int = 0
    source: str = "auto"
    root: Any = None
    quick: bool = False
    limit_train: int | None = None
    limit_test: int | None = None
    val_size: int = 5000
    split_seed: int = 0
    supervised_epochs: int | None = None
    device: Any = None
    resume: bool = True
    stop_after: str | None = None
    deterministic: bool | None = None
    download: bool = True
    progress: bool = True
    out: Any = None
    precision: str | None = None
    hebbian_from: Any = None
    compile: bool = False

    def __post_init__(self):
        for key in ("seed", "split_seed"):
            value = getattr(self, key)
            if number_problem(value, minimum=0, integer=True):
                raise ValueError(f"{key} must be an int >= 0, got {value!r}")
        if self.source not in SOURCES:
            raise ValueError(f"unknown data source {self.source!r}; valid choices: {_listed(SOURCES)}")
        for key in ("limit_train", "limit_test"):
            value = getattr(self, key)
            if value is not None and number_problem(value, minimum=20, integer=True):
                raise ValueError(f"{key} must be an int >= 20 (or None for all images), got {value!r}")
        if number_problem(self.val_size, minimum=10, integer=True):
            raise ValueError(f"val_size must be an int >= 10, got {self.val_size!r}")
        if self.supervised_epochs is not None and number_problem(self.supervised_epochs, minimum=1, integer=True):
            raise ValueError(f"supervised_epochs must be an int >= 1 (or None for the preset's), "
                             f"got {self.supervised_epochs!r}")
        if self.stop_after not in (None, "unsupervised"):
            raise ValueError(f"unknown stop_after {self.stop_after!r}; valid choices: None, 'unsupervised'")
        if self.precision is not None:
            from .runtime import PRECISIONS

            if self.precision not in PRECISIONS:
                raise ValueError(f"unknown precision {self.precision!r}; valid choices: {_listed(PRECISIONS)}")
        if self.hebbian_from is not None and not (pathlib.Path(self.hebbian_from) / "").is_dir():
            raise ValueError(f"hebbian_from {str(self.hebbian_from)!r}: no such folder; give the folder of a finished "
                             f"run (its seed<k>/ folder, or the folder holding it)")
        for key in ("quick", "resume", "download", "progress", "compile"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{key} must be True or False, got {getattr(self, key)!r}")

    def classifier_epochs(self, supervised: ClassifierConfig, quick_cap: int) -> int:
        """The classifier epochs of this run: ``supervised_epochs`` if given, else the preset's (at most
        ``quick_cap`` in quick mode)."""
        if self.supervised_epochs is not None:
            return self.supervised_epochs
        return min(supervised.epochs, quick_cap) if self.quick else supervised.epochs


# ----- contrastive presets (Lunelli 2024; hebblib.contrastive) -------------------------------------------
CONTRASTIVE_PRESET_KEYS = ("name", "description", "published", "published_std", "source", "network", "learning",
                           "model", "optimizer", "training", "data", "change")
CONTRASTIVE_CHANGEABLE = ("model", "optimizer", "training", "data")
# model options the local rule uses and a backprop network therefore never reads
_RULE_ONLY_OPTIONS = ("eta", "eta_conv", "eta_linear", "momentum", "label_smoothing")


def contrastive_model_options(network: str, learning: str = "contrastive") -> tuple[str, ...]:
    """The options a contrastive preset's ``model`` may set: the keyword arguments of
    :func:`hebblib.networks.contrastive.contrastive_mlp` or ``contrastive_conv`` (less ``learning`` and
    ``generator``, which the run passes), without the local rule's settings for a backprop network."""
    from .networks.contrastive import contrastive_conv, contrastive_mlp

    build = contrastive_mlp if network == "mlp" else contrastive_conv
    skip = ("learning", "generator") + (_RULE_ONLY_OPTIONS if learning == "backprop" else ())
    return tuple(k for k in inspect.signature(build).parameters if k not in skip)


def _check_contrastive_model(network: str, learning: str, options: Mapping) -> None:
    from .contrastive import ACTIVATIONS, PADDING_MODES
    from .networks.contrastive import DROPOUT_BY_WIDTH

    valid = contrastive_model_options(network, learning)
    if not isinstance(options, Mapping):
        raise config_error("model", options, f"must be a dict (keys: {_listed(sorted(valid))})")
    for key, value in options.items():
        if key not in valid:
            why = ("used by the local rule only, and this network learns by backprop; valid keys: "
                   if key in _RULE_ONLY_OPTIONS and learning == "backprop" else f"not a {network} option; valid keys: ")
            raise config_error(f"model.{key}", value, why + _listed(sorted(valid)))
        path = f"model.{key}"
        if key == "hidden":
            if not isinstance(value, (list, tuple)) or not value or any(
                    number_problem(h, minimum=1, integer=True) for h in value):
                raise config_error(path, value, "must be a non-empty list of ints >= 1")
        elif key == "activation":
            _choice(path, value, ACTIVATIONS)
        elif key == "padding_mode":
            _choice(path, value, PADDING_MODES)
        elif key == "dropout":
            if value is not None:
                _number(path, value, minimum=0, maximum=1, below=True)
        elif key in ("eta", "eta_conv", "eta_linear"):
            _number(path, value, minimum=0, above=True)
        elif key == "momentum":
            _number(path, value, minimum=0, maximum=1, below=True)
        elif key == "label_smoothing":
            _number(path, value, minimum=0, maximum=1)
        elif key == "fc_layers":
            _number(path, value, minimum=0, integer=True)
        else:  # width_factor, fc_reduction, fc_max, in_features, in_channels, image_size, num_classes
            _number(path, value, minimum=1, integer=True)
    if network == "conv" and options.get("dropout") is None:
        width = options.get("width_factor", 4)
        if width not in DROPOUT_BY_WIDTH:
            raise config_error("model.width_factor", width, f"no published dropout for this width (known: "
                               f"{_listed(sorted(DROPOUT_BY_WIDTH))}); set model.dropout too")


@dataclasses.dataclass(frozen=True)
class ContrastiveModelConfig:
    """Options of the preset's network (:func:`contrastive_model_options`), checked key by key."""

    network: str
    learning: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        from .contrastive import LEARNING, NETWORKS

        _choice("network", self.network, NETWORKS)
        _choice("learning", self.learning, LEARNING)
        _check_contrastive_model(self.network, self.learning, self.options)
        object.__setattr__(self, "options", _frozen(self.options))


@dataclasses.dataclass(frozen=True)
class ContrastiveOptimizerConfig(_Section):
    """What trains by backprop: the C's of a contrastive network (``adamw``: ``lr``, ``weight_decay``), the
    weights of a backprop one (``sgd``: ``lr``, ``momentum``). A setting the chosen optimiser does not take
    (``momentum`` for AdamW, ``weight_decay`` for SGD) is refused, not ignored."""

    name: str
    lr: float
    weight_decay: float = 0.0
    momentum: float = 0.0
    SECTION = "optimizer"
    REQUIRED = ("name", "lr")

    def validate(self):
        from .contrastive import OPTIMIZERS

        _choice("optimizer.name", self.name, OPTIMIZERS)
        _number("optimizer.lr", self.lr, minimum=0, above=True)
        _number("optimizer.weight_decay", self.weight_decay, minimum=0)
        _number("optimizer.momentum", self.momentum, minimum=0, maximum=1, below=True)
        unused = ("momentum" if self.name == "adamw" else "weight_decay")
        if getattr(self, unused):
            raise config_error(f"optimizer.{unused}", getattr(self, unused),
                               f"not used by {self.name!r} (adamw takes lr and weight_decay, sgd lr and momentum)")


@dataclasses.dataclass(frozen=True)
class ContrastiveTrainingConfig(_Section):
    """``epochs`` over the training images at ``batch_size`` (>= 2: the rule compares the samples of a
    batch), random flips with ``augment``."""

    epochs: int
    batch_size: int = 32
    augment: bool = False
    SECTION = "training"
    REQUIRED = ("epochs", "batch_size")

    def validate(self):
        _number("training.epochs", self.epochs, minimum=1, integer=True)
        _number("training.batch_size", self.batch_size, minimum=2, integer=True)
        _flag("training.augment", self.augment)


@dataclasses.dataclass(frozen=True)
class ContrastivePresetConfig:
    """A contrastive preset (:data:`hebblib.contrastive.CONTRASTIVE_PRESETS`), typed and validated like
    :class:`PresetConfig`: ``network`` ('mlp' or 'conv') and ``learning`` ('contrastive' or 'backprop'), the
    network's ``model`` options, the ``optimizer`` of what backprop trains, ``training`` (epochs, batch size,
    flips), ``data`` (normalisation); ``published`` ± ``published_std`` (test accuracy, %) and ``source``.
    An unknown key, a wrong type or a value out of range is one ``ValueError`` naming the preset, the key
    path, the value and the valid values, before a network is built or an image loaded."""

    network: str
    learning: str
    model: ContrastiveModelConfig
    optimizer: ContrastiveOptimizerConfig
    training: ContrastiveTrainingConfig
    data: DataConfig
    name: str = "custom"
    description: str | None = None
    published: float | None = None
    published_std: float | None = None
    source: str | None = None
    change: Mapping[str, Any] | None = None

    def __post_init__(self):
        _text("name", self.name, optional=False)
        for key in ("description", "source"):
            _text(key, getattr(self, key))
        if self.published is not None:
            _number("published", self.published, minimum=0, maximum=100)
        if self.published_std is not None:
            _number("published_std", self.published_std, minimum=0)
        if (self.model.network, self.model.learning) != (self.network, self.learning):
            raise config_error("model", dict(self.model.options), f"built for a {self.model.learning} "
                               f"{self.model.network!r} network, not {self.learning} {self.network!r}")
        for key, cls in (("optimizer", ContrastiveOptimizerConfig), ("training", ContrastiveTrainingConfig),
                         ("data", DataConfig)):
            if not isinstance(getattr(self, key), cls):
                raise config_error(key, getattr(self, key), f"must be a {cls.__name__}")
        if self.change is not None:
            _check_keys(self.change, CONTRASTIVE_CHANGEABLE, "change", "preset key to change")
            object.__setattr__(self, "change", _frozen(self.change))

    @classmethod
    def from_dict(cls, preset: Mapping) -> "ContrastivePresetConfig":
        """Validate ``preset`` (a dict as :func:`hebblib.contrastive.get_contrastive_preset` returns) and type it."""
        name = preset.get("name", "custom") if isinstance(preset, Mapping) else "custom"
        try:
            _check_keys(preset, CONTRASTIVE_PRESET_KEYS, "preset", "contrastive preset key")
            needed = ("network", "learning", "model", "optimizer", "training", "data")
            missing = [k for k in needed if k not in preset]
            if missing:
                raise ValueError(f"{missing[0]} is missing; a contrastive preset needs {_listed(needed)}")
            from .contrastive import LEARNING, NETWORKS

            _choice("network", preset["network"], NETWORKS)
            _choice("learning", preset["learning"], LEARNING)
            return cls(
                network=preset["network"], learning=preset["learning"],
                model=ContrastiveModelConfig(preset["network"], preset["learning"], preset["model"]),
                optimizer=ContrastiveOptimizerConfig.from_dict(preset["optimizer"]),
                training=ContrastiveTrainingConfig.from_dict(preset["training"]),
                data=DataConfig.from_dict(preset["data"]),
                **{k: preset[k] for k in ("name", "description", "published", "published_std", "source")
                   if k in preset},
                change=None if preset.get("change") is None else _mapping("change", preset["change"]),
            )
        except ValueError as err:
            raise ValueError(f"contrastive preset {name!r}: {err}") from None

    def to_dict(self) -> dict:
        """The preset as a plain dict (round-trips through :meth:`from_dict`)."""
        out = {"name": self.name, "description": self.description, "published": self.published,
               "published_std": self.published_std, "source": self.source, "network": self.network,
               "learning": self.learning, "model": _plain(self.model.options),
               "optimizer": self.optimizer.to_dict(), "training": self.training.to_dict(),
               "data": self.data.to_dict()}
        if self.change is not None:
            out["change"] = _plain(self.change)
        return out

    def changed(self, change: dict) -> "ContrastivePresetConfig":
        """This preset with ``change`` merged in (:func:`apply_contrastive_change`)."""
        return ContrastivePresetConfig.from_dict(apply_contrastive_change(self.to_dict(), change))


def _deep_merge(base, override):
    """``override`` merged into ``base`` key by key (dicts recursively; anything else replaced)."""
    if not isinstance(base, Mapping) or not isinstance(override, Mapping):
        return copy.deepcopy(override)
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        out[key] = _deep_merge(out.get(key), value) if isinstance(value, Mapping) else copy.deepcopy(value)
    return out


def apply_contrastive_change(preset: dict, change: dict) -> dict:
    """``preset`` with ``change`` merged in key by key and recorded under ``"change"`` (a variant with its own
    runs folder and results row), validated by :meth:`ContrastivePresetConfig.from_dict`. Only the recipe may
    change (:data:`CONTRASTIVE_CHANGEABLE`), e.g. ``{"training": {"epochs": 10}}``."""
    name = preset.get("name", "custom")
    if not isinstance(change, Mapping) or not change:
        raise ValueError(f"a preset change must be a non-empty dict, got {change!r}")
    for key in change:
        if key not in CONTRASTIVE_CHANGEABLE:
            raise ValueError(f"contrastive preset {name!r}: change.{key} = {change[key]!r}: not a preset key to "
                             f"change; valid keys: {_listed(CONTRASTIVE_CHANGEABLE)}")
    out = _deep_merge(preset, change)
    out["change"] = _deep_merge(preset.get("change") or {}, change)
    ContrastivePresetConfig.from_dict(out)
    return out
