"""The import structure: chapter modules are leaves. No chapter module imports another chapter module, and
no library module imports a chapter module (issue 19: whatever two chapters need lives in the library)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hebblib"


def imported_modules(path: Path, package: str) -> set[str]:
    """The absolute names of the modules ``path`` imports (top level or inside functions), with relative
    imports resolved against ``package`` (the dotted name of the file's package). ``from X import name``
    counts as importing ``X`` and ``X.name`` (``name`` may be a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def chapter_imports(path: Path, package: str) -> set[str]:
    return {name for name in imported_modules(path, package)
            if name == "hebblib.chapters" or name.startswith("hebblib.chapters.")}


def library_files():
    return [p for p in PACKAGE.rglob("*.py") if "chapters" not in p.relative_to(PACKAGE).parts]


def _package_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1])


CHAPTERS = sorted((PACKAGE / "chapters").glob("ch*.py"))


def test_the_files_are_found():
    assert len(CHAPTERS) >= 14 and len(library_files()) >= 20


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_no_chapter_imports_another_chapter(path):
    own = f"hebblib.chapters.{path.stem}"
    others = {name for name in chapter_imports(path, "hebblib.chapters") if not name.startswith(own)}
    assert not others, f"{path.name} imports chapter module(s) {sorted(others)}; move what they share into the library"


def test_the_library_imports_no_chapter():
    offenders = {str(p.relative_to(PACKAGE.parent)): sorted(chapter_imports(p, _package_of(p)))
                 for p in library_files()}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"library modules import chapter modules: {offenders}"


@pytest.mark.parametrize("source, package, found", [
    ("from .ch07_lateral_inhibition import train_reduced", "hebblib.chapters", True),
    ("from . import ch01_hebb_instar_oja", "hebblib.chapters", True),
    ("def f():\n    from hebblib.chapters.ch11_depthwise import train_run", "hebblib.chapters", True),
    ("import hebblib.chapters.ch03_competition as ch3", "hebblib", True),
    ("from .chapters import ch05_softhebb", "hebblib", True),
    ("from ..experiments import train_reduced", "hebblib.chapters", False),
    ("from ..notebook import print_checks", "hebblib.chapters", False),
])
def test_the_checker_sees_chapter_imports(tmp_path, source, package, found):
    """The parser itself: a relative, absolute, package-level or function-local chapter import is seen; a
    library import is not."""
    path = tmp_path / "module.py"
    path.write_text(source + "\n")
    assert bool(chapter_imports(path, package)) is found
