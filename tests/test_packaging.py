"""The conda environment file lists the same packages as pyproject.toml, and the pins agree."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda's name -> PyPI's name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def _pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    return {_name(r) for r in reqs}


def _conda_packages() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            name = _name(dep.split("=")[0])
            names.add(CONDA_NAMES.get(name, name))
    return names - {"python", "pip"}


def test_environment_yml_parses_and_installs_the_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "hebblib"
    pip_section = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert pip_section and "-e ." in pip_section[0]["pip"]


def test_environment_yml_names_the_same_packages_as_pyproject():
    assert _conda_packages() == _pyproject_packages()


def test_constraints_pin_every_direct_dependency_exactly():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = version
    missing = {p for p in _pyproject_packages() if p.replace("_", "-") not in pins}
    assert not missing, f"constraints.txt lacks pins for {sorted(missing)}"
    assert pins["torch"].startswith("2.14.1") and pins["torchvision"].startswith("0.29.1")
