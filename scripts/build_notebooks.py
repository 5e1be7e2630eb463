"""Build the chapter notebooks from their sources in notebooks/src/ and execute them, so that the
committed notebooks carry their outputs (plots and numbers visible before anything is run).

Source format ("percent" cells, as jupytext writes them):

    # %% [markdown]
    # # A title
    # Some *markdown* text.
    # %% hide
    import hebblib            # a code cell whose source is folded in JupyterLab/Colab
    # %%
    x = 1                     # an ordinary code cell

Usage: python scripts/build_notebooks.py [NAMES...] [--no-execute] [--full]
(quick mode by default: HEBBLIB_QUICK=1, the small shipped subset; --full runs on all the data.)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SRC, OUT = ROOT / "notebooks" / "src", ROOT / "notebooks"


def parse_cells(text: str) -> list:
    cells, kind, flags, lines = [], None, "", []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in body.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(body))
        else:
            cell = nbformat.v4.new_code_cell(body)
            if "hide" in flags:
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
    nb.cells = parse_cells(source.read_text())
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
    sources = sorted(SRC.glob("*.py"))
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
