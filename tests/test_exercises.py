"""Every chapter's exercises, checked both ways.

The notebooks run with the placeholders (``return todo()``), so executing them only shows the fallback to
the reference solution. Here every ``check_exercise(...)`` call in notebooks/src/NN_*.py (found by parsing
the sources, so a new chapter is covered without editing this file) is evaluated with the chapter's own
imports, solution and cases, and fed

* the notebook's own placeholder: "not attempted yet", the solution is used;
* the reference solution as the attempt: "✓", the attempt is returned;
* wrong answers that differ from the solution only on the last case (one value moved, the sign flipped,
  a wrong shape, None, an exception): "✗" naming the case, what was returned and what was expected, and
  the solution is used from then on.
A chapter without an exercise fails.
"""
from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from hebblib.notebook import check_exercise

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))


@dataclass
class Exercise:
    chapter: str
    name: str
    attempt: str          # the source of each argument of the call, as written in the notebook
    solution: str
    cases: str
    atol: str | None
    before: str           # the statements of the same cell before the call (e.g. ``cases = [...]``)


def code_cells(text: str) -> list[tuple[str, str]]:
    """(flags, source) of each code cell of a percent-format source."""
    cells = []
    for chunk in re.split(r"^(?=# %%)", text, flags=re.M):
        header, _, body = chunk.partition("\n")
        if header.startswith("# %%") and not header[4:].strip().startswith("[markdown]"):
            cells.append((header[4:].strip(), body))
    return cells


def _parse(body: str) -> ast.Module:
    # IPython magics (%..., !...) are not Python; they never hold an exercise
    return ast.parse("\n".join("" if l.lstrip().startswith(("%", "!")) else l for l in body.splitlines()))


def setup_code(text: str) -> str:
    """The chapter's own set-up lines (its ``# %% setup`` cell: imports, ``setup(seed=0)``)."""
    setup = [body for flags, body in code_cells(text) if flags == "setup"]
    assert len(setup) == 1, "a chapter source has one '# %% setup' cell"
    return setup[0]


def student_functions(text: str) -> str:
    """The ``def``s whose body returns ``todo()``: the placeholders the student fills in."""
    defs = []
    for _, body in code_cells(text):
        for node in _parse(body).body:
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(n, ast.Call) and getattr(n.func, "id", None) == "todo" for n in ast.walk(node)):
                defs.append(ast.get_source_segment(body, node))
    return "\n\n".join(defs)


def find_exercises(source: Path) -> list[Exercise]:
    found = []
    for flags, body in code_cells(source.read_text()):
        statements = _parse(body).body
        for i, statement in enumerate(statements):
            for node in ast.walk(statement):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check_exercise":
                    args = [ast.get_source_segment(body, a) for a in node.args]
                    kwargs = {k.arg: ast.get_source_segment(body, k.value) for k in node.keywords}
                    assert len(args) == 4 and set(kwargs) <= {"atol"}, (
                        f"{source.name}: check_exercise(name, attempt, solution, cases[, atol=]) expected")
                    found.append(Exercise(
                        source.stem, ast.literal_eval(node.args[0]), *args[1:], kwargs.get("atol"),
                        "\n".join(ast.get_source_segment(body, s) for s in statements[:i])))
    return found


def test_every_chapter_source_is_found():
    assert len(SOURCES) >= 14 and SOURCES[0].stem.startswith("00_")


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_chapter_has_an_exercise(source):
    assert find_exercises(source), f"{source.name} has no check_exercise(...) call: every chapter has an exercise"


EXERCISES = [e for s in SOURCES for e in find_exercises(s)]


def load(exercise: Exercise, capsys):
    """The chapter's namespace after its set-up, placeholders and the statements before the check."""
    text = (ROOT / "notebooks" / "src" / f"{exercise.chapter}.py").read_text()
    namespace: dict = {}
    exec(textwrap.dedent(setup_code(text)), namespace)
    exec(student_functions(text), namespace)
    exec(exercise.before, namespace)
    capsys.readouterr()
    solution, cases = eval(exercise.solution, namespace), list(eval(exercise.cases, namespace))
    options = {"atol": eval(exercise.atol, namespace)} if exercise.atol else {}
    return namespace, solution, cases, options


def only_on_last_case(solution, cases, wrong):
    """An attempt that agrees with ``solution`` except on the last case, where it returns ``wrong(answer)``."""
    last = cases[-1]

    def attempt(*args):
        answer = solution(*args)
        is_last = len(args) == len(last) and all(a is b for a, b in zip(args, last))
        return wrong(answer) if is_last else answer
    return attempt


def moved_first_value(answer):
    if isinstance(answer, torch.Tensor):
        moved = answer.clone()
        flat = moved.view(-1)
        flat[0] = flat[0] + (1 if not moved.is_floating_point() else 0.5 + abs(float(flat[0])))
        return moved
    return answer + 1


@pytest.mark.parametrize("exercise", EXERCISES, ids=[f"{e.chapter}:{e.name}" for e in EXERCISES])
def test_exercise_check_both_ways(exercise, capsys):
    namespace, solution, cases, options = load(exercise, capsys)
    name, n = exercise.name, len(cases)
    assert n >= 2, f"{name}: test it on several cases"

    # the notebook as shipped: the placeholder, and the fallback to the solution
    assert check_exercise(name, eval(exercise.attempt, namespace), solution, cases, **options) is solution
    assert capsys.readouterr().out.startswith(f"… {name}: not attempted yet")

    # the reference solution plugged in as the student's answer
    def right(*args):
        return solution(*args)
    assert check_exercise(name, right, solution, cases, **options) is right
    assert capsys.readouterr().out.strip() == f"✓ {name}: correct on {n} test cases."

    # wrong answers, wrong only on the last case: the check must go through every case
    last = solution(*cases[-1])
    want = torch.as_tensor(last).double().reshape(-1)
    got = torch.as_tensor(moved_first_value(last)).double().reshape(-1)
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(0), torch.as_tensor(last).shape))
    wrongs = {"moved value": (moved_first_value,
                              [f"you return {got[0].item():.6g}, expected {want[0].item():.6g}"]
                              + ([f"index {index}"] if torch.as_tensor(last).dim() else []))}
    if isinstance(last, torch.Tensor):
        wrongs["sign flipped"] = (lambda a: -a - (a == 0).to(a.dtype), ["values differ", "the first, at index"])
        wrongs["wrong shape"] = (lambda a: a.reshape(-1)[1:],
                                 [f"you return shape ({last.numel() - 1},), expected shape {tuple(last.shape)}"])
    wrongs["None"] = (lambda a: None, ["you return None"])
    wrongs["raises"] = (lambda a: 1 / 0, ["raised ZeroDivisionError: division by zero"])
    for kind, (wrong, phrases) in wrongs.items():
        attempt = only_on_last_case(solution, cases, wrong)
        assert check_exercise(name, attempt, solution, cases, **options) is solution, kind
        message = capsys.readouterr().out.strip()
        assert message.startswith(f"✗ {name}: not yet — on case {n} of {n}, arguments ("), (kind, message)
        assert message.endswith("Using the reference solution below."), (kind, message)
        for phrase in phrases:
            assert phrase in message, (kind, phrase, message)
