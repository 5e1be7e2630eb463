"""The notebooks' set-up cell, the one template that scripts/build_notebooks.py inserts into every chapter.

Fast checks: every chapter source has its ``# %% setup`` marker; the install line comes from
``[project.urls]`` in pyproject.toml; the committed notebooks carry the current template.

The end-to-end check (``slow``, about a minute on 2 cores) does what Colab does, offline: a fresh virtual
environment in which hebblib is *not* importable runs the set-up cell, which must ``%pip install`` hebblib
from a ``git+file://`` clone of the repository (committed HEAD), and then chapter 1's first cells and a
quick-mode data load, from a folder outside the repository, so the CIFAR-10 subset must come from the
installed package. It fails if the subset is not package data or the install line is wrong.

Why this environment: torch, jupyter and the other dependencies are not downloaded again (no network in CI,
and minutes of wheels). The new environment is made ``--without-pip`` and sees the project environment's
packages through a ``.pth`` file naming a folder of links to them, *minus hebblib* (``--system-site-packages``
would not help: the project environment is itself a venv, and it would show the editable hebblib). pip then
counts the dependencies as installed and puts only hebblib into the new environment. ``PIP_NO_INDEX=1``
proves that nothing is downloaded; the build uses the setuptools it sees instead of fetching one into an
isolated build environment (``PIP_NO_BUILD_ISOLATION=0``: pip reads this variable inverted).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_build_script(root: Path = ROOT):
    spec = importlib.util.spec_from_file_location(f"build_notebooks_{abs(hash(root))}",
                                                  root / "scripts" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_build_script()


def setup_lines(source: Path) -> str:
    """The chapter's own lines of its set-up cell (what follows ``# %% setup`` up to the next cell)."""
    text = source.read_text()
    body = text.split(build.SETUP_MARKER + "\n", 1)[1]
    return body.split("\n# %%", 1)[0]


# ---------------------------------------------------------------- fast checks


def test_every_chapter_has_one_setup_marker_and_no_copy_of_the_install_line():
    sources = build.chapter_sources()
    assert len(sources) >= 14
    for source in sources:
        text = source.read_text()
        cells = build.parse_cells(text, name=source.name)  # raises without the marker
        first_code = next(c for c in cells if c.cell_type == "code")
        assert first_code.metadata["jupyter"] == {"source_hidden": True}
        assert "%pip" not in text and "git+" not in text, f"{source.name} repeats the set-up template"
        assert "%matplotlib inline" in first_code.source and "%pip install" in first_code.source


def test_install_line_comes_from_project_urls():
    repository = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    assert repository.startswith("https://")
    cell = build.setup_cell_source("x = 1")
    assert f'%pip install --quiet "hebblib @ git+{repository}"' in cell
    assert cell.rstrip().endswith("x = 1")
    local = build.setup_cell_source("x = 1", url="file:///somewhere/hebblib")
    assert '"hebblib @ git+file:///somewhere/hebblib"' in local and repository not in local


def test_a_source_without_the_setup_cell_first_is_refused():
    with pytest.raises(ValueError, match="setup"):
        build.parse_cells("# %% [markdown]\n# # Title\n# %%\nx = 1\n", name="bad.py")
    with pytest.raises(ValueError, match="bad.py"):
        build.parse_cells("# %%\nx = 1\n# %% setup\nimport torch\n", name="bad.py")


def test_committed_notebooks_carry_the_current_setup_template():
    for source in build.chapter_sources():
        notebook = build.OUT / f"{source.stem}.ipynb"
        if not notebook.exists():
            continue  # a new chapter not built yet
        first_code = next(c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code")
        assert first_code.source == build.setup_cell_source(setup_lines(source)), (
            f"{notebook.name}: its set-up cell differs from notebooks/src/_setup_cell.py + its source; "
            f"rebuild it with python scripts/build_notebooks.py {source.stem[:2]}")


def test_the_subset_is_package_data():
    from hebblib.data import subset_path

    path = subset_path()
    package = Path(importlib.util.find_spec("hebblib").origin).parent
    assert path.is_file() and path.parent == package / "data"
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["hebblib"]
    assert any(path.relative_to(package).match(p) for p in patterns), patterns


def test_default_data_root_is_the_clones_data_folder_or_the_users_cache(tmp_path, monkeypatch):
    from hebblib.data import cifar

    monkeypatch.delenv("HEBBLIB_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cifar.data_root() == ROOT / "data"  # this clone (an editable install)
    site_packages = tmp_path / "site-packages"  # a plain pip install: no pyproject.toml beside the package
    site_packages.mkdir()
    monkeypatch.setattr(cifar, "repo_root", lambda: site_packages)
    assert cifar.data_root() == tmp_path / "home" / ".cache" / "hebblib" / "data"


# ---------------------------------------------------------------- end to end (what Colab does)


def _fresh_venv(where: Path) -> Path:
    """A virtual environment without hebblib that sees the project environment's other packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where / "venv")], check=True)
    python = where / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    shared = where / "project-packages"
    shared.mkdir()
    for entry in Path(sysconfig.get_path("purelib")).iterdir():
        name = entry.name.lower()
        if name.startswith(("hebblib", "__editable__")) or name.endswith(".pth") or name == "__pycache__":
            continue
        (shared / entry.name).symlink_to(entry)
    (site / "_project_packages.pth").write_text(f"{shared}\n")
    return python


def _kernel(where: Path, python: Path, monkeypatch) -> str:
    name = "hebblib-fresh-venv"
    spec = where / "jupyter" / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh venv", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(where / "jupyter"))
    return name


def _run(cells, kernel: str, cwd: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    NotebookClient(nb, timeout=600, kernel_name=kernel, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


PROBE = """\
import json, sys, hebblib
from hebblib.data import load_cifar, subset_path
from hebblib.runtime import is_quick
images, labels = load_cifar(train=True)
print(json.dumps({"prefix": sys.prefix, "hebblib": hebblib.__file__, "subset": str(subset_path()),
                  "quick": is_quick(), "images": list(images.shape)}))
"""


def _probe(nb) -> dict:
    return json.loads(nb.cells[-1].outputs[-1]["text"].strip().splitlines()[-1])


@pytest.mark.slow
def test_setup_cell_installs_hebblib_from_a_git_clone_and_chapter_1_runs_in_quick_mode(tmp_path, monkeypatch):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the project")
    start = time.perf_counter()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", ROOT.as_uri(), str(clone)], check=True)  # committed HEAD
    python = _fresh_venv(tmp_path)
    kernel = _kernel(tmp_path, python, monkeypatch)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no full CIFAR-10 under ~/.cache/hebblib/data to fall back on
    monkeypatch.setenv("HEBBLIB_QUICK", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")  # inverted: means --no-build-isolation
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    for name in ("HEBBLIB_DATA", "PIP_FIND_LINKS", "PYTHONPATH", "MPLBACKEND"):
        monkeypatch.delenv(name, raising=False)
    clone_build = load_build_script(clone)
    cells = clone_build.parse_cells((clone / "notebooks" / "src" / "01_hebb_instar_oja.py").read_text(),
                                    url=clone.as_uri())
    code = [c for c in cells if c.cell_type == "code"]
    assert f'"hebblib @ git+{clone.as_uri()}"' in code[0].source

    # 1. In a clone (the project's own JupyterLab without an install): used in place, nothing installed.
    nb = _run([code[0], nbformat.v4.new_code_cell(PROBE)], kernel, clone / "notebooks")
    probe = _probe(nb)
    assert Path(probe["prefix"]) == tmp_path / "venv"
    assert Path(probe["hebblib"]).parent == clone / "hebblib"
    assert not list((tmp_path / "venv").glob("lib/python*/site-packages/hebblib"))

    # 2. Colab: nothing importable, no clone one level up: the cell installs hebblib from the URL.
    content = tmp_path / "colab" / "content"
    content.mkdir(parents=True)
    nb = _run(code[:3] + [nbformat.v4.new_code_cell(PROBE)], kernel, content)
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    installed = next((tmp_path / "venv").glob("lib/python*/site-packages/hebblib"))
    probe = _probe(nb)
    assert Path(probe["hebblib"]).parent == installed
    assert Path(probe["subset"]) == installed / "data" / "cifar10_subset.npz"
    assert probe["quick"] is True and probe["images"] == [2000, 3, 32, 32]
    assert "guard fired at step" in "".join(o.get("text", "") for o in nb.cells[2].outputs)
    print(f"fresh venv + pip install from git+file:// + chapter 1's first cells: "
          f"{time.perf_counter() - start:.0f} s")
