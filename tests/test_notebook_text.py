"""The chapters' text as a reader sees it: no control characters in the notebook sources, the built notebooks
or the docs. A backslash sequence written through a non-raw Python string turns LaTeX's ``\\frac``, ``\\bar`` or
``\\big`` into a form feed or a backspace and the rest of the word (chapter 5 showed ``rac{1}{2}`` that way)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_characters(text: str) -> list[str]:
    """Each control character of ``text`` (tab, newline and carriage return allowed) with the 20 characters
    around it, e.g. ``'\\x0c' in '$\\x0crac{1}{2}'``."""
    return [f"{m.group()!r} in {text[max(m.start() - 10, 0):m.end() + 10]!r}" for m in CONTROL.finditer(text)]


def text_files():
    files = sorted((ROOT / "notebooks" / "src").glob("*.py")) + sorted((ROOT / "docs").glob("*.md"))
    return files + [ROOT / "README.md", ROOT / "notebooks" / "README.md"]


@pytest.mark.parametrize("path", text_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_sources_and_docs_have_no_control_characters(path):
    assert not control_characters(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_cells_have_no_control_characters(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    found = [f"cell {i}: {c}" for i, cell in enumerate(cells) for c in control_characters("".join(cell["source"]))]
    assert not found, "\n".join(found)


def test_a_form_feed_and_a_backspace_are_found():
    assert control_characters("$\\frac{1}{2}\\big(x\\big)$\tand a tab\n") == []
    found = control_characters("$\frac{1}{2}\big(x\big)$")  # the Python escapes: \f and \b
    assert len(found) == 3 and "'\\x0c'" in found[0] and "'\\x08'" in found[1]
