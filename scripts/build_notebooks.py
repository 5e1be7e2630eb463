"""Build the chapter notebooks from their sources in notebooks/src/ and execute them, so that the
committed notebooks carry their outputs (plots and numbers visible before anything is run).

Source format ("percent" cells, as jupytext writes them):

    # %% [markdown]
    # # A title
    # Some *markdown* text.
    # %% setup
    from hebblib.notebook import setup      # the chapter's own imports: the set-up cell, folded
    # %% hide
    import hebblib            # a code cell whose source is folded in JupyterLab/Colab
    # %%
    x = 1                     # an ordinary code cell

Every chapter has exactly one ``# %% setup`` cell, its first code cell. The build puts the one set-up
template, notebooks/src/_setup_cell.py, in front of that cell's lines: it makes hebblib importable (in place
from a clone, else ``%pip install "hebblib @ git+<Repository>"`` with the Repository of ``[project.urls]``
in pyproject.toml, the one place that names the install source) and sets ``%matplotlib inline``.

Usage: python scripts/build_notebooks.py [NAMES...] [--no-execute] [--full]
(quick mode by default: HEBBLIB_QUICK=1, the small shipped subset; --full runs on all the data.)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SRC, OUT = ROOT / "notebooks" / "src", ROOT / "notebooks"
SETUP_TEMPLATE = SRC / "_setup_cell.py"
SETUP_MARKER = "# %% setup"


def chapter_sources() -> list[Path]:
    """The chapter sources, ``notebooks/src/NN_slug.py`` (the set-up template ``_setup_cell.py`` is none)."""
    return sorted(SRC.glob("[0-9][0-9]_*.py"))


def install_requirement(url: str | None = None) -> str:
    """What the set-up cell gives ``%pip install``: ``"<name> @ git+<url>"``, where ``url`` defaults to
    ``[project.urls] Repository`` in pyproject.toml (a test passes a local ``file://`` clone instead)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    if url is None:
        url = project.get("urls", {}).get("Repository")
        if not url:
            raise ValueError("pyproject.toml has no [project.urls] Repository: the notebooks' set-up cell "
                             "installs hebblib from it")
    url = url.rstrip("/")
    return f"{project['name']} @ {url if url.startswith('git+') else 'git+' + url}"


def setup_cell_source(chapter_lines: str, url: str | None = None) -> str:
    """The set-up cell: the template (install line filled in) followed by the chapter's own set-up lines."""
    template = SETUP_TEMPLATE.read_text().replace("{requirement}", install_requirement(url))
    return template.rstrip("\n") + "\n\n" + chapter_lines.strip("\n")


def parse_cells(text: str, url: str | None = None, name: str = "source") -> list:
    """The cells of a percent-format source; ``url`` overrides the install source of the set-up cell."""
    markers = [l for l in text.splitlines() if l.startswith("# %%") and l[4:].strip() != "[markdown]"]
    if not markers or markers[0].rstrip() != SETUP_MARKER or sum(m.rstrip() == SETUP_MARKER for m in markers) != 1:
        raise ValueError(f"{name}: the first code cell must be the one '{SETUP_MARKER}' cell (the chapter's "
                         f"imports, after which {SETUP_TEMPLATE.name} is inserted); found code cells {markers[:3]}")
    cells, kind, flags, lines = [], None, "", []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in body.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(body))
        else:
            if flags == "setup":
                body = setup_cell_source(body, url)
            cell = nbformat.v4.new_code_cell(body)
            if "hide" in flags or flags == "setup":
                cell.metadata["jupyter"] = {"source_hidden": True}
                cell.metadata["cellView"] = "form"  # folded in Colab
            cells.append(cell)

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            flags = line[4:].strip()
            kind = "markdown" if flags.startswith("[markdown]") else "code"
            lines = []
        else:
            lines.append(line)
    flush()
    return cells


def build(source: Path, execute: bool, full: bool) -> float:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = parse_cells(source.read_text(), name=source.name)
    start = time.time()
    if execute:
        os.environ["HEBBLIB_QUICK"] = "0" if full else "1"
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
        NotebookClient(nb, timeout=3600, kernel_name="python3",
                       resources={"metadata": {"path": str(OUT)}}).execute()
    target = OUT / (source.stem + ".ipynb")
    nbformat.write(nb, target)
    return time.time() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="source names or prefixes (default: all)")
    parser.add_argument("--no-execute", action="store_true")
    parser.add_argument("--full", action="store_true", help="execute in full mode instead of quick mode")
    args = parser.parse_args(argv)
    sources = chapter_sources()
    if args.names:
        sources = [s for s in sources if any(s.stem.startswith(n) for n in args.names)]
    if not sources:
        print(f"no notebook sources match {args.names}", file=sys.stderr)
        return 2
    for source in sources:
        seconds = build(source, not args.no_execute, args.full)
        print(f"{source.stem}.ipynb built ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
