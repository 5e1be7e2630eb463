"""hebblib.notebook.live_demo: the one helper behind every chapter's interactive demo.

A demo must show its figure at once and again after every change of every control, as a PNG inside an
``ipywidgets.Output`` of a container with the CSS class ``hebblib-demo``; it must close its figures and
show an error from the drawing function in the Output. The same tests run on the pattern the chapters
used before (``widgets.interactive`` around a function that returns a figure) and fail there: it never
shows the returned figure and leaves every figure open.
"""
from __future__ import annotations

import base64
import re
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from hebblib.notebook import live_demo

SOURCES = sorted((Path(__file__).resolve().parents[1] / "notebooks" / "src").glob("[0-9][0-9]_*.py"))


def outputs_of(container) -> list[dict]:
    """Every output held by the Output widgets inside ``container`` (depth first)."""
    found = []
    if isinstance(container, widgets.Output):
        found.extend(container.outputs)
    for child in getattr(container, "children", ()):
        found.extend(outputs_of(child))
    return found


def pngs(container) -> list[bytes]:
    return [base64.b64decode(o["data"]["image/png"]) for o in outputs_of(container)
            if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]


OPENED: list = []  # every figure draw_values made


def draw_values(number=1, colour="red", flag=False, clicks=0, constant=7.0):
    """A figure that visibly depends on every argument."""
    fig, ax = plt.subplots(figsize=(3, 2))  # through pyplot on purpose: it must be closed
    ax.bar([0, 1, 2], [number, constant, clicks + 1], color=colour, hatch="//" if flag else None)
    ax.set_title(f"{number} {colour} {flag} {clicks} {constant}")
    OPENED.append(fig)
    return fig


def controls():
    return dict(number=widgets.IntSlider(value=1, min=0, max=10),
                colour=widgets.Dropdown(options=["red", "blue", "green"], value="red"),
                flag=widgets.Checkbox(value=False),
                clicks=widgets.Button(description="again"),
                constant=widgets.fixed(7.0))


def old_pattern(draw, **kw):
    """What the chapters did before: the returned figure is never displayed."""
    kw = {name: widgets.fixed(0) if isinstance(c, widgets.Button) else c for name, c in kw.items()}
    return widgets.interactive(draw, **kw)


both = pytest.mark.parametrize("make", [
    live_demo,
    pytest.param(old_pattern, marks=pytest.mark.xfail(strict=True, reason="interactive drops the returned figure")),
])


@pytest.fixture(autouse=True)
def no_open_figures():
    plt.close("all")
    yield
    plt.close("all")


@both
def test_draws_at_creation_and_closes_the_figure(make):
    OPENED.clear()
    demo = make(draw_values, **controls())
    images = pngs(demo)
    assert len(images) == 1 and images[0].startswith(b"\x89PNG")
    assert len(OPENED) == 1 and plt.get_fignums() == []


@both
def test_every_change_gives_a_new_image(make):
    kw = controls()
    demo = make(draw_values, **kw)
    seen = pngs(demo)
    for name, value in (("number", 5), ("colour", "blue"), ("flag", True), ("number", 0), ("clicks", None)):
        kw[name].click() if value is None else setattr(kw[name], "value", value)
        images = pngs(demo)
        assert len(images) == 1 and images[0] not in seen, f"{name} = {value} gave no new image"
        seen.append(images[0])
    assert plt.get_fignums() == []


@both
@pytest.mark.parametrize("name, new_value", [("number", 5), ("colour", "blue"), ("flag", True), ("clicks", None)])
def test_each_control_changes_the_image(make, name, new_value):
    kw = controls()
    demo = make(draw_values, **kw)
    before = pngs(demo)
    assert len(before) == 1
    if new_value is None:
        kw[name].click()
    else:
        kw[name].value = new_value
    after = pngs(demo)
    assert len(after) == 1, "the new figure replaces the old one"
    assert after[0] != before[0], f"moving {name} left the image as it was"
    assert plt.get_fignums() == []


def test_values_reach_draw_including_fixed_and_clicks():
    calls = []

    def draw(**kw):
        calls.append(kw)
        return Figure()

    kw = controls()
    demo = live_demo(draw, **kw)
    kw["clicks"].click()
    kw["clicks"].click()
    kw["number"].value = 3
    assert calls[0] == dict(number=1, colour="red", flag=False, clicks=0, constant=7.0)
    assert calls[-1] == dict(number=3, colour="red", flag=False, clicks=2, constant=7.0)
    assert len(calls) == 4 and demo.values() == calls[-1]


def test_figures_do_not_pile_up():
    extra = []

    def draw(number):
        extra.append(plt.figure())  # a second figure draw forgets about: closed as well
        return draw_values(number)

    slider = widgets.IntSlider(value=0, max=30)
    live_demo(draw, number=slider)
    for value in range(1, 21):
        slider.value = value
    assert plt.get_fignums() == [] and len(extra) == 21


def test_keeps_figures_opened_before():
    mine = plt.figure()
    slider = widgets.IntSlider(value=0)
    live_demo(draw_values, number=slider)
    slider.value = 4
    assert plt.get_fignums() == [mine.number]


def test_error_in_draw_is_shown_and_the_demo_recovers():
    def draw(number):
        if number == 3:
            plt.figure()  # opened before failing: still closed
            raise ValueError("number 3 is not allowed here")
        return draw_values(number)

    slider = widgets.IntSlider(value=0)
    demo = live_demo(draw, number=slider)
    slider.value = 3
    (message,) = outputs_of(demo)
    assert message["output_type"] == "stream" and message["name"] == "stderr"
    assert "ValueError: number 3 is not allowed here" in message["text"] and "number=3" in message["text"]
    assert plt.get_fignums() == []
    slider.value = 4
    assert len(pngs(demo)) == 1


def test_a_draw_that_returns_no_figure_says_so():
    demo = live_demo(lambda number: (Figure(), {}), number=widgets.IntSlider())
    (message,) = outputs_of(demo)
    assert "returned tuple, expected a matplotlib Figure" in message["text"]


def test_container_contract():
    demo = live_demo(draw_values, **controls())
    assert isinstance(demo, widgets.VBox) and "hebblib-demo" in demo._dom_classes
    assert isinstance(demo.output, widgets.Output) and demo.output in demo.children
    bundle = demo._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # display(demo) shows the widget
    shown = [w for box in demo.children for w in getattr(box, "children", ())]
    assert all(not getattr(w, "continuous_update", False) for w in shown)  # slow draws: redraw on release


def test_bad_controls_are_one_clear_error():
    with pytest.raises(TypeError, match=r"number=5 is not a control; valid kinds"):
        live_demo(draw_values, number=5)
    with pytest.raises(TypeError, match="draw must be a function"):
        live_demo("draw", number=widgets.IntSlider())


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_chapter_demo_uses_live_demo(source):
    text = source.read_text()
    assert "widgets.interactive(" not in text and "interact(" not in text
    assert re.search(r"^demo = live_demo\(", text, re.M), f"{source.name} has no live_demo demo cell"
    assert re.search(r"^display\(demo\)", text, re.M)
