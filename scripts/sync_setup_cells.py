"""Rewrite a line in the source of already-built notebooks without re-executing them (outputs kept).

Usage: python scripts/sync_setup_cells.py OLD NEW [NOTEBOOK ...]
"""
import sys
from pathlib import Path

import nbformat

old, new, *paths = sys.argv[1:]
for path in paths or sorted(Path("notebooks").glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if old in cell.source:
            cell.source = cell.source.replace(old, new)
            changed = True
    if changed:
        nbformat.write(nb, path)
        print(f"updated {path}")
