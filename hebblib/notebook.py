"""Small helpers that keep the chapter notebooks thin: set-up, exercise checks, result lines, widgets."""
from __future__ import annotations

import json
import math
import platform
import traceback
from typing import Callable

import torch

from .results import signed
from .runtime import describe_device, get_device, is_quick, seed_everything


# The chapters' figure settings: panel titles a size below the figure's title, and room between the two.
FIGURE_STYLE = {"figure.dpi": 90, "axes.spines.top": False, "axes.spines.right": False,
                "axes.titlesize": "medium", "figure.constrained_layout.h_pad": 0.08}


def setup(seed: int = 0, device=None) -> torch.device:
    """Seed everything, pick the device, set the figure style; prints one line on what was chosen."""
    import matplotlib.pyplot as plt

    seed_everything(seed)
    device = get_device(device)
    plt.rcParams.update(FIGURE_STYLE)
    mode = "quick mode (HEBBLIB_QUICK=1: small real subset, short runs)" if is_quick() else "full mode"
    print(f"hebblib on {describe_device(device)}, torch {torch.__version__}, python "
          f"{platform.python_version()}; {mode}; seed {seed}")
    return device


class ExerciseNotDone(NotImplementedError):
    """Raised by an exercise function that still contains its placeholder."""


def todo(message: str = "replace this line with your code"):
    """Placeholder inside exercise functions: ``return todo()``."""
    raise ExerciseNotDone(message)


def print_checks(rows) -> None:
    """Print one line per ``(label, measured, target_text, ok)``: ✓ or ✗, the measured value, the target."""
    for label, measured, target, ok in rows:
        print(f"{'✓' if ok else '✗'} {label}: measured {measured} | target {target}")


def print_summary(rows) -> None:
    """Like :func:`print_checks`, with rows whose verdict ``ok`` is None printed as a comparison only."""
    print_checks([r for r in rows if r[3] is not None])
    for label, measured, target, _ in (r for r in rows if r[3] is None):
        print(f"· {label}: measured {measured} | {target}")


def check_exercise(name: str, attempt: Callable, solution: Callable, cases, atol: float = 1e-5) -> Callable:
    """Compare a student's function with the reference solution on ``cases`` (a list of argument
    tuples). Prints a visible verdict and returns the function to use from here on: the student's
    if it is right, else the solution (so the rest of the notebook still runs).

    A wrong answer is explained on the first case where it fails: the case's arguments, then a wrong
    shape, a wrong type, how many values differ and the first one (index, returned, expected), or the
    error the function raised and on which line. Floating-point values match when
    ``torch.isclose(atol=atol)`` does (and its default ``rtol``); integers (counts) must be equal."""
    for number, args in enumerate(cases, 1):
        want = solution(*args)
        try:
            got = attempt(*args)
        except ExerciseNotDone:
            print(f"… {name}: not attempted yet; using the reference solution so the notebook runs on.")
            return solution
        except Exception as error:  # the student's code failed: say where, keep the notebook running
            frame = traceback.extract_tb(error.__traceback__)[-1]
            code = f": {frame.line.strip()}" if frame.line else ""
            problem = f"your function raised {type(error).__name__}: {error} (in {frame.name}, line {frame.lineno}{code})"
        else:
            problem = _mismatch(got, want, atol)
        if problem:
            print(f"✗ {name}: not yet — on case {number} of {len(cases)}, arguments {_describe_args(args)}: "
                  f"{problem}. Using the reference solution below.")
            return solution
    print(f"✓ {name}: correct on {len(cases)} test cases.")
    return attempt


def _mismatch(got, want, atol: float) -> str | None:
    """None when ``got`` equals ``want`` within ``atol``; else what differs, in words."""
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"you return {_short(got)}, expected {len(want)} values"
        for i, (g, w) in enumerate(zip(got, want)):
            problem = _mismatch(g, w, atol)
            if problem:
                return f"value {i + 1} of {len(want)}: {problem}"
        return None
    want_t = torch.as_tensor(want).detach().cpu()
    exact = not (want_t.is_floating_point() or want_t.is_complex())  # counts, indices: no tolerance
    want_t = want_t.to(torch.float64)
    try:
        got_t = torch.as_tensor(got).detach().cpu().to(torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return f"you return {_short(got)} (a {type(got).__name__}), expected {_describe(want)}"
    if got_t.shape != want_t.shape:
        return f"you return shape {tuple(got_t.shape)}, expected shape {tuple(want_t.shape)}"
    wrong = got_t != want_t if exact else ~torch.isclose(got_t, want_t, atol=atol)
    if not wrong.any():
        return None
    if want_t.dim() == 0:
        return f"you return {_short(got)}, expected {_short(want)}"
    index = tuple(int(i) for i in wrong.nonzero()[0])
    return (f"{int(wrong.sum())} of {wrong.numel()} values differ{'' if exact else f' by more than atol={atol:g}'}; the first, at "
            f"index {index}: you return {got_t[index].item():.6g}, expected {want_t[index].item():.6g}")


def _describe(value) -> str:
    if isinstance(value, torch.Tensor) and value.numel() > 6:
        return f"tensor of shape {tuple(value.shape)}"
    return _short(value)


def _describe_args(args) -> str:
    return "(" + ", ".join(_describe(a) for a in args) + ")"


def _short(value, limit: int = 80) -> str:
    text = repr(value.tolist() if isinstance(value, torch.Tensor) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def report(label: str, measured: float, published: float | None = None, source: str = "",
           note: str = "") -> str:
    """One line: the measured number beside the published one (percentages)."""
    line = f"{label}: measured {measured:.1f}%"
    if published is not None and not math.isnan(published):
        line += f" | published {published:.1f}%" + (f" ({source})" if source else "")
        line += f" | difference {signed(measured - published)} points"
    if note:
        line += f" — {note}"
    print(line)
    return line


def print_full_result(name: str, label: str, published: float | None = None, source: str = "",
                      key: str = "final_test_acc") -> None:
    """The committed full-data figure of a chapter experiment (``docs/results/chapters/<name>.json``,
    written by ``scripts/chapter_full.py``) beside the published one, or a line saying it is missing."""
    from .results import chapter_result

    record = chapter_result(name)
    if record is None:
        print(f"{label}, all of CIFAR-10: not measured yet (python scripts/chapter_full.py {name.split('_')[0]})")
        return
    report(f"{label}, all of CIFAR-10 (committed run: {record['setting']})", record[key], published, source,
           f"docs/results/chapters/{name}.json, {record['device']}, {record['wall_s'] / 60:.0f} min")


def report_full_data(preset_name: str, full: dict, published: float | None = None, source: str = "") -> str:
    """The committed full-data runs of a preset (:func:`hebblib.results.full_data_accuracy`) beside a
    published figure: the final epoch, with max and best-validation beside it. With several seeds, mean ±
    sample std over them (``measured 76.1 ± 0.3% (mean ± sample std of 3 seeds)``); one seed is said to be
    one, with no spread; runs of an earlier protocol (:data:`hebblib.results.PROTOCOLS`) are marked so."""
    from .data.datasets import dataset_info
    from .results import PROTOCOL_VERSION

    n, version = full["seeds"], full.get("protocol")
    title = dataset_info(full.get("dataset", "cifar10")).title  # a hand-made ``full`` without it: CIFAR-10
    protocol = ""  # a hand-made ``full`` without the protocol says nothing about it
    if version is not None and version < PROTOCOL_VERSION:
        zca = full.get("zca_fit", "none")
        protocol = (f"old protocol v{version}, " + ("run before the ZCA fit changed; " if zca == "none" else
                                                    f"ZCA fitted on {zca} images, the validation split's included; "))
    elif version is not None:
        protocol = f"protocol v{version}, {full.get('precision', 'fp32')}; "
    if n < 2 or full.get("final_std") is None:
        return report(f"{preset_name} on all of {title}, committed full-data run (one seed), final epoch",
                      full["final"], published, source,
                      f"max over epochs {full['max']:.1f}, at the best validation epoch {full['at_best_val']:.1f}; "
                      f"{protocol}{full['file']}")
    line = (f"{preset_name} on all of {title}, committed full-data runs ({n} seeds), final epoch: measured "
            f"{full['final']:.1f} ± {full['final_std']:.1f}% (mean ± sample std of {n} seeds)")
    if published is not None and not math.isnan(published):
        line += f" | published {published:.1f}%" + (f" ({source})" if source else "")
        line += f" | difference of the mean {signed(full['final'] - published)} points"
    line += (f" — max over epochs {full['max']:.1f} ± {full['max_std']:.1f}, at the best validation epoch "
             f"{full['at_best_val']:.1f} ± {full['at_best_val_std']:.1f}; {protocol}{full['file']}")
    print(line)
    return line


def report_committed_preset(preset_name: str, published: float | None = None, source: str = "",
                            original: bool = False, change: dict | None = None, directory=None) -> dict | None:
    """:func:`report_full_data` for ``preset_name``'s committed full-data run (docs/results/, or
    ``directory``; with ``original``, its run with the original code's behaviour; with ``change``, the run of
    ``reproduce --change``), or a line saying it is not measured yet. Returns the record it printed
    (:func:`hebblib.results.full_data_accuracy`), None when there is none. Chapters 7–17 print it beside
    their own reduced or quick run."""
    from .results import full_data_accuracy

    label = preset_name + (" --original" if original else "") + (
        f" --change '{json.dumps(change)}'" if change else "")
    full = full_data_accuracy(preset_name, original, directory=directory, change=change)
    if full is None:
        print(f"{label} on all of CIFAR-10 (committed in docs/results): full-data figure not measured yet")
        return None
    report_full_data(label, full, published, source)
    return full


def committed_difference(first: dict, second: dict) -> tuple[float, str]:
    """``first`` minus ``second``, two committed full-data records (:func:`hebblib.results.full_data_accuracy`):
    the difference of their final-epoch means (points) and what backs it, e.g. ``3 seeds each, spreads ± 0.18
    and ± 0.60`` or ``means of 3 and 1 seed: a rough comparison`` when the seed counts differ."""
    counts = first["seeds"], second["seeds"]
    plural = "s" if counts[1] > 1 else ""
    seeds = (f"{counts[0]} seed{plural} each" if counts[0] == counts[1] else
             f"means of {counts[0]} and {counts[1]} seed{plural}: a rough comparison")
    if first.get("final_std") is not None and second.get("final_std") is not None:
        seeds += f", spreads ± {first['final_std']:.2f} and ± {second['final_std']:.2f}"
    return first["final"] - second["final"], seeds


# ----- interactive demos ------------------------------------------------------------------------------
DEMO_CSS_CLASS = "hebblib-demo"


def _figure_output(fig) -> dict:
    """``fig`` as one notebook output: a PNG (cropped like the inline backend's) and its text form."""
    import base64
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"output_type": "display_data", "metadata": {}, "data": {"image/png": png, "text/plain": repr(fig)}}


def _error_output(error: BaseException, values: dict) -> dict:
    """A readable message (what failed, for which control values) and the traceback, as stderr text."""
    import traceback

    settings = ", ".join(f"{name}={value!r}" for name, value in values.items())
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    text = f"The demo could not draw for {settings}:\n{type(error).__name__}: {error}\n\n{trace}"
    return {"output_type": "stream", "name": "stderr", "text": text}


def live_demo(draw: Callable, **controls):
    """Controls and the figure they drive, as one widget: ``display(live_demo(draw, a=slider, ...))``.

    ``draw(**values)`` must return a matplotlib ``Figure``; it is called once at creation and again
    whenever a control changes. Each keyword is a control whose value is passed under that name: any
    value widget (slider, dropdown, toggle, ...), ``widgets.fixed(x)`` for a constant, or a
    ``widgets.Button``, which redraws when clicked and passes the number of clicks so far.

    The figure is rendered to a PNG and put into the state of an ``ipywidgets.Output`` (its
    ``outputs``), which every front end (JupyterLab, Notebook 7, Colab, VS Code) draws from, whatever
    matplotlib's backend is called; then the figure is closed, with any other figure ``draw`` opened,
    so nothing spills into other cells or piles up in memory. An exception inside ``draw`` is shown in
    the Output as a message with the control values and the traceback. Sliders and text boxes redraw
    when released (``continuous_update=False``): a drawing can take a second.

    Returns a ``widgets.VBox`` with the CSS class ``hebblib-demo``: the controls, then the Output
    (``.output``); ``.values()`` gives the current values and ``.redraw()`` draws again."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
    from ipywidgets.widgets.interaction import fixed

    if not callable(draw):
        raise TypeError(f"draw must be a function returning a matplotlib Figure, got {draw!r}")
    for name, control in controls.items():
        if not isinstance(control, (widgets.ValueWidget, widgets.Button, fixed)):
            raise TypeError(f"control {name}={control!r} is not a control; valid kinds: a value widget "
                            f"(slider, dropdown, toggle, ...), a widgets.Button, or widgets.fixed(value)")
    clicks = {name: 0 for name, control in controls.items() if isinstance(control, widgets.Button)}

    def values() -> dict:
        return {name: clicks[name] if name in clicks else control.value for name, control in controls.items()}

    output = widgets.Output()
    shown = [control for control in controls.values() if isinstance(control, widgets.Widget)]

    def redraw(*_):
        current = values()
        open_before = set(plt.get_fignums())
        fig = None
        try:
            fig = draw(**current)
            if not isinstance(fig, Figure):
                raise TypeError(f"{getattr(draw, '__name__', 'draw')} returned {type(fig).__name__}, "
                                f"expected a matplotlib Figure")
            output.outputs = (_figure_output(fig),)
        except Exception as error:  # the student sees it in the demo instead of losing it in a log
            output.outputs = (_error_output(error, current),)
        finally:
            if isinstance(fig, Figure):
                plt.close(fig)
            for number in set(plt.get_fignums()) - open_before:
                plt.close(number)

    for name, control in controls.items():
        if isinstance(control, widgets.Button):
            def clicked(_, name=name):
                clicks[name] += 1
                redraw()
            control.on_click(clicked)
        elif isinstance(control, widgets.Widget):
            if hasattr(control, "continuous_update"):
                control.continuous_update = False
            control.observe(redraw, names="value")

    demo = widgets.VBox([widgets.Box(shown, layout=widgets.Layout(flex_flow="row wrap")), output])
    demo.add_class(DEMO_CSS_CLASS)
    demo.output, demo.values, demo.redraw = output, values, redraw
    redraw()
    return demo
