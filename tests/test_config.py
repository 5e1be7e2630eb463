"""The typed configuration (hebblib/config.py): every preset as frozen dataclasses, validation with key paths,
changes that apply or fail, the layer precedence, and the run options."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from hebblib.config import (ClassifierConfig, DataConfig, HebbianPhaseConfig, LayerSettings, PresetConfig,
                            RunOptions)
from hebblib.networks.settings import SETTING_KEYS
from hebblib.presets import build_model, change_preset, get_preset, list_presets, preset_config
from hebblib.results import variant_stem

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", list_presets())
@pytest.mark.parametrize("original", [False, True])
def test_every_preset_is_a_valid_config_whose_layer_settings_round_trip(name, original):
    preset = get_preset(name, original)
    config = PresetConfig.from_dict(preset)
    assert config.name == name and config.original == original
    assert config.supervised.epochs == preset["supervised"]["epochs"]
    assert config.unsupervised.batch_size == preset["unsupervised"]["batch_size"]
    # the Hebbian levels hold exactly what the preset sets (nothing filled in: inheritance stays intact)
    assert (config.hebbian.to_dict() if config.hebbian else None) == preset["hebbian"]
    assert ([layer.to_dict() for layer in config.layers] if config.layers else None) == preset["layers"]
    assert PresetConfig.from_dict(config.to_dict()) == config


def test_configs_are_frozen():
    config = preset_config("soft")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.unsupervised.epochs = 3
    with pytest.raises(TypeError):
        config.layers[0].competition.options["x"] = 1


def test_layer_settings_cover_every_layer_option():
    # a new HebbianConv2d option must be added to LayerSettings (and validated) to be settable in a preset
    assert set(LayerSettings.keys()) == set(SETTING_KEYS)


@pytest.mark.parametrize("build, message", [
    (lambda: HebbianPhaseConfig(epochs=-1), "unsupervised.epochs = -1: must be an int >= 0"),
    (lambda: HebbianPhaseConfig(batch_size=64.0), "unsupervised.batch_size = 64.0: must be an int >= 1"),
    (lambda: ClassifierConfig(lr=float("nan")), "supervised.lr = nan: must be a finite number > 0"),
    (lambda: ClassifierConfig(dropout=1.0), "supervised.dropout = 1.0: must be a finite number >= 0 and < 1"),
    (lambda: ClassifierConfig(augment="yes"), "supervised.augment = 'yes': must be True or False"),
    (lambda: DataConfig(normalization="whiten"), "data.normalization = 'whiten': valid choices"),
    (lambda: LayerSettings(lr=-1), "layer.lr = -1: must be a finite number >= 0"),
    (lambda: LayerSettings(activation="tanh"), "layer.activation = 'tanh': valid choices: 'dot'"),
])
def test_direct_construction_validates(build, message):
    with pytest.raises(ValueError) as info:
        build()
    assert message in str(info.value)


@pytest.mark.parametrize("change, message", [
    ({"layers": [{}, {"lr": True}, {}]}, "layers[1].lr = True: must be a finite number >= 0"),
    ({"layers": [{}, {}, {"competition": {"inverse_temperature": -1.0}}]}, "layers[2].competition = "),
    ({"layers": [{"competition": {"name": "soft_wta", "temp": 1.0}}, {}, {}]},
     "layers[0].competition.temp = 1.0: unknown option 'temp' for competition 'soft_wta'"),
    ({"hebbian": {"rule": "hebbian"}}, "hebbian.rule = 'hebbian': unknown rule; valid choices: 'anti_hebb'"),
    ({"hebbian": {"surround": {"radius": 2}}}, "hebbian.surround.radius = 2: not a surround option"),
    ({"hebbian": {"presynaptic": {"kind": "relu"}}}, "hebbian.presynaptic.kind = 'relu': valid choices"),
    ({"model": {"width": 0.5}}, "model.width = 0.5: not a softhebb option; valid keys: 'dropout'"),
    ({"model": {"width_factor": 0}}, "model.width_factor = 0: must be a finite number > 0"),
    ({"unsupervised": {"epochs": 0, "batch_size": 0}}, "unsupervised.batch_size = 0"),
])
def test_a_bad_change_names_its_key_path(change, message):
    with pytest.raises(ValueError) as info:
        change_preset(get_preset("soft"), change)
    assert message in str(info.value) and "preset 'soft'" in str(info.value)


def test_a_layer_list_merges_stage_by_stage():
    changed = change_preset(get_preset("soft"), {"layers": [{"lr": 0.2}, {}, {}]})
    assert [layer["lr"] for layer in changed["layers"]] == [0.2, 0.08, 0.05]
    assert changed["layers"][0]["competition"] == {"name": "soft_wta", "inverse_temperature": 1.0}  # kept
    with pytest.raises(ValueError, match=r"layers = \[\{'lr': 0.2\}\]: this preset has 3 stages"):
        change_preset(get_preset("soft"), {"layers": [{"lr": 0.2}]})


def test_a_shared_change_applies_where_no_layer_overrides_it():
    net = build_model(change_preset(get_preset("optimal") | {"model": {"width_factor": 0.125}},
                                    {"hebbian": {"rule": {"theta_init": 0.0}}}))
    layers = list(net.hebbian_layers().values())
    assert [layer.rule.theta_init for layer in layers] == [0.0, 0.0, 0.0]
    assert [layer.rule.theta_rate for layer in layers] == [0.3, 0.35, 0.35]  # the layers' own settings stay


def test_a_shared_change_with_its_layers_changed_too_applies():
    change = {"hebbian": {"lr": 0.01}, "layers": [{"lr": 0.01}, {"lr": 0.01}, {"lr": 0.01}]}
    assert [layer["lr"] for layer in change_preset(get_preset("soft"), change)["layers"]] == [0.01] * 3
    with pytest.raises(ValueError, match=r"hebbian\.lr = 0\.01: not used: layers\[2\]\.lr set their own"):
        change_preset(get_preset("soft"), {"hebbian": {"lr": 0.01}, "layers": [{"lr": 0.01}, {"lr": 0.01}, {}]})


def test_changes_of_a_bare_name_replace_the_choice_and_its_options():
    changed = change_preset(get_preset("bcm"), {"layers": [{"rule": "instar"}, {}, {}]})
    assert changed["layers"][0]["rule"] == "instar"  # the stage's theta_rate went with the BCM choice
    instar = change_preset(get_preset("bcm"), {"layers": [{"rule": "instar"}] * 3})
    with pytest.raises(ValueError, match=r"hebbian\.rule = 'hebb': not used: layers\[0\]\.rule, layers\[1\]\.rule"):
        change_preset(instar, {"hebbian": {"rule": "hebb"}})
    # the other stages' options carry no name: they keep the shared one, so a shared name applies there
    assert change_preset(get_preset("bcm"), {"hebbian": {"rule": "bcm"}})["layers"][1]["rule"] == {"theta_rate": 0.35}
    # a shared rule that the layers' options do not fit: the option is named where it is set
    with pytest.raises(ValueError, match=r"layers\[0\]\.rule\.theta_rate = 0\.3: unknown option 'theta_rate' for "
                                         r"rule 'oja'; valid options: none"):
        change_preset(get_preset("bcm"), {"hebbian": {"rule": "oja"}})


def test_the_committed_variants_still_apply_with_the_same_names():
    for path in sorted((ROOT / "docs" / "results").glob("*-change-*.json")):
        summary = json.loads(path.read_text())
        changed = change_preset(get_preset(summary["preset"], summary["original"]), summary["change"])
        assert variant_stem(summary["preset"], summary["original"], changed["change"]) == path.stem


def test_changed_configs_and_chapter_style_dicts_agree():
    config = preset_config("soft", change={"supervised": {"epochs": 5}})
    assert config.supervised.epochs == 5 and config.change == {"supervised": {"epochs": 5}}
    assert config.changed({"layers": [{}, {}, {"lr": 0.5}]}).layers[2].lr == 0.5


@pytest.mark.parametrize("options, message", [
    ({"seed": -1}, "seed must be an int >= 0, got -1"),
    ({"supervised_epochs": 0}, "supervised_epochs must be an int >= 1"),
    ({"limit_train": 5}, "limit_train must be an int >= 20"),
    ({"source": "cifar"}, "unknown data source 'cifar'"),
    ({"stop_after": "features"}, "unknown stop_after 'features'"),
    ({"val_size": 2.5}, "val_size must be an int >= 10"),
])
def test_run_options_validate(options, message):
    with pytest.raises(ValueError, match=message):
        RunOptions(**options)
