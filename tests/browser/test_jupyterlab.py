"""Every chapter in a real JupyterLab and a real Chromium, as a student meets it.

For each notebook ``NN_*.ipynb``: open it, Run All (quick mode, CPU), wait until every cell has run, then

* no cell shows an error (an ``error`` output, or a traceback in a stderr output, widgets' outputs included);
* the browser logged no error (console messages of type ``error`` and uncaught page errors, less the
  documented ``BENIGN_CONSOLE_ERRORS``);
* each demo (a ``.hebblib-demo`` container, else the output of a cell that shows ipywidgets controls)
  shows a PNG figure;
* each control of each demo set to two values in turn (slider: End/Home keys; dropdown, toggle and radio
  buttons: two other options; checkbox, toggle, button: two clicks) redraws the figure: the image bytes
  (the ``src`` of the demo's ``<img>``) differ from those before the change, and no figure appears
  outside the demo.

Screenshots of the page and of each demo go to ``test-artifacts/browser/`` (see conftest.py).
Run alone with ``make test-browser``.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from .conftest import ARTIFACTS, NOTEBOOKS

pytestmark = pytest.mark.browser

RUN_ALL_TIMEOUT = float(os.environ.get("HEBBLIB_BROWSER_RUN_TIMEOUT", 420))   # s, Run All of one notebook
REDRAW_TIMEOUT = float(os.environ.get("HEBBLIB_BROWSER_REDRAW_TIMEOUT", 120))  # s, one redraw
VIEWPORT = {"width": 1400, "height": 1200}

# Console errors that say nothing about the course, each with why it is harmless. Keep this short.
BENIGN_CONSOLE_ERRORS = [
    # (none yet)
]

TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*\w*(Error|Exception)\b", re.M)


def chapter_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


# --- JavaScript run in the page (JupyterLab's application object is window.jupyterapp) ---------------

FIND_PANEL = """
const findPanel = (path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return null;
  for (const w of app.shell.widgets('main')) if (w.context && w.context.path === path) return w;
  return null;
};
"""

STATE_JS = "(path) => {" + FIND_PANEL + """
  const panel = findPanel(path);
  if (!panel || !panel.context.isReady) return null;
  const session = panel.sessionContext.session;
  const kernel = session && session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code' && c.model.sharedModel.getSource().trim());
  let errors = 0;
  for (const c of cells) for (const o of c.model.outputs.toJSON()) if (o.output_type === 'error') errors++;
  return {
    kernel: kernel ? kernel.status : null,
    busy: window.__hbBusy || 0,
    total: cells.length,
    counted: cells.filter(c => c.model.executionCount !== null).length,
    running: cells.filter(c => c.model.executionState === 'running'
                         || (c.node.querySelector('.jp-InputPrompt') || {}).textContent?.includes('*')).length,
    errors,
  };
}"""

RUN_ALL_JS = "async (path) => {" + FIND_PANEL + """
  const panel = findPanel(path);
  window.__hbBusy = 0;
  panel.sessionContext.statusChanged.connect((_, status) => { if (status === 'busy') window.__hbBusy++; });
  window.jupyterapp.shell.activateById(panel.id);
  window.jupyterapp.shell.collapseLeft();  // the notebook gets the width of the page (screenshots)
  await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
  window.jupyterapp.commands.execute('notebook:run-all-cells');  // not awaited: the test polls
}"""

# Error outputs of the cells (from the model) and tracebacks shown anywhere in the page (widget outputs too).
ERRORS_JS = "({path, pattern}) => {" + FIND_PANEL + """
  const panel = findPanel(path);
  const re = new RegExp(pattern, 'm');
  const found = [];
  const last = (text) => text.trim().split('\\n').slice(-1)[0].slice(0, 300);
  panel.content.widgets.forEach((c, i) => {
    if (c.model.type !== 'code') return;
    for (const o of c.model.outputs.toJSON()) {
      if (o.output_type === 'error') found.push(`cell ${i + 1}: ${o.ename}: ${o.evalue}`);
      const text = Array.isArray(o.text) ? o.text.join('') : (o.text || '');
      if (o.output_type === 'stream' && o.name === 'stderr' && re.test(text)) {
        found.push(`cell ${i + 1} (stderr): ${last(text)}`);
      }
    }
    // what widgets show (an Output widget's outputs are not the cell's)
    c.node.querySelectorAll('.widget-output .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
      .forEach(el => { if (re.test(el.textContent || '')) found.push(`cell ${i + 1} (widget): ${last(el.textContent)}`); });
  });
  return [...new Set(found)];
}"""

# Mark each demo with data-hb-demo=N: every .hebblib-demo element, else the output area of each
# code cell whose output shows ipywidgets controls.
CONTROLS = ('.widget-slider, .widget-dropdown, .widget-toggle-buttons, .widget-toggle-button, '
            '.widget-checkbox, .widget-button, .widget-radio-box, .widget-select')
MARK_DEMOS_JS = "(path) => {" + FIND_PANEL + """
  const panel = findPanel(path);
  const demos = [];
  panel.content.widgets.forEach((c, i) => {
    if (c.model.type !== 'code') return;
    const area = c.node.querySelector('.jp-Cell-outputArea');
    if (!area || !area.querySelector('%s')) return;
    const marked = area.querySelectorAll('.hebblib-demo');
    (marked.length ? Array.from(marked) : [area]).forEach(el => {
      el.setAttribute('data-hb-demo', String(demos.length));
      demos.push({cell: i + 1, marked: marked.length > 0});
    });
  });
  return demos;
}""" % CONTROLS

# The images of the page outside every demo (a figure must not leak out of its demo).
OUTSIDE_IMAGES_JS = """(root) => Array.from(root.querySelectorAll('.jp-OutputArea-output img'))
  .filter(img => !img.closest('[data-hb-demo]')).map(img => img.src.length + ':' + img.src.slice(-64))"""

CLOSE_JS = "(path) => {" + FIND_PANEL + """
  const panel = findPanel(path);
  if (!panel) return null;
  const session = panel.sessionContext.session;
  panel.context.model.dirty = false;  // close without saving: the test never writes a notebook
  panel.dispose();
  return session ? session.id : null;
}"""


def _shut_down(lab_server, session_id: str | None) -> None:
    """Shut the notebook's kernel down (DELETE its session) in the background: the next chapter need
    not wait for it, and kernels do not pile up in memory."""
    if not session_id:
        return
    request = urllib.request.Request(f"{lab_server.url}/api/sessions/{session_id}", method="DELETE",
                                     headers={"Authorization": f"token {lab_server.token}"})

    def delete():
        try:
            urllib.request.urlopen(request, timeout=60).close()
        except OSError:
            pass  # the server's own shutdown stops any kernel left

    threading.Thread(target=delete, daemon=True).start()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Chapter:
    """One notebook open in the page, with what the test has found wrong so far."""

    def __init__(self, page, path: str):
        self.page, self.path, self.problems = page, path, []

    def state(self, opening: bool = False) -> dict | None:
        state = self.page.evaluate(STATE_JS, self.path)
        if state is None and not opening:
            raise AssertionError(f"{self.path} is no longer open in JupyterLab")
        return state

    def wait_for_kernel(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(opening=True)
            if state and state["kernel"] == "idle":
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.path}: the notebook or its kernel did not become ready in {timeout:.0f} s")

    def run_all(self) -> None:
        """Clear outputs, Run All, and wait until the kernel is idle with no cell queued or running."""
        self.page.evaluate(RUN_ALL_JS, self.path)
        deadline, calm = time.monotonic() + RUN_ALL_TIMEOUT, 0
        while True:
            state = self.state()
            finished = state["counted"] == state["total"] or state["errors"] > 0
            calm = calm + 1 if state["kernel"] == "idle" and state["running"] == 0 and finished else 0
            if calm >= 3:  # three polls in a row, 0.5 s apart
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.path}: Run All did not finish in {RUN_ALL_TIMEOUT:.0f} s "
                                     f"({state['counted']} of {state['total']} cells ran; kernel {state['kernel']})")
            time.sleep(0.5)
        if state["counted"] != state["total"]:
            self.problems.append(f"Run All stopped: {state['counted']} of {state['total']} code cells ran")

    def images(self, demo) -> str:
        """The demo's figure: the src (PNG bytes as a data URI) of its images, in page order."""
        return "\n".join(demo.locator("img").evaluate_all("els => els.map(e => e.src)"))

    def wait_for_redraw(self, demo, before: str, busy_before: int) -> tuple[str, str]:
        """After a change of a control: wait until the kernel has run and gone idle and the demo's images
        have changed and held still for half a second (or, when they have not changed, ten seconds more
        for the page to draw what the kernel sent); return (images, what happened)."""
        start = time.monotonic()
        last, still_since, idle_since = self.images(demo), start, None
        while True:
            time.sleep(0.2)
            now, images, state = time.monotonic(), self.images(demo), self.state()
            if images != last:
                last, still_since = images, now
            ran = state["busy"] > busy_before
            idle_since = (idle_since or now) if ran and state["kernel"] == "idle" else None
            if idle_since is not None:
                if last != before and now - still_since >= 0.5:
                    return last, "redrawn"
                if now - idle_since >= 10:
                    return last, "the kernel ran and went idle; the page showed no new figure within 10 s"
            if not ran and now - start > 30:
                return last, "the change never reached the kernel (it did not run within 30 s)"
            if now - start > REDRAW_TIMEOUT:
                return last, f"no new figure within {REDRAW_TIMEOUT:.0f} s (kernel {state['kernel']})"

    def errors(self) -> list[str]:
        return self.page.evaluate(ERRORS_JS, {"path": self.path, "pattern": TRACEBACK.pattern})


def _label(control, kind: str, number: int) -> str:
    labels = control.locator(".widget-label").all_inner_texts()
    text = labels[0].strip() if labels else ""
    return f"{kind} '{text}'" if text else f"{kind} {number} (no description)"


def _moves(control, kind: str) -> list[tuple[str, Callable[[], None]]]:
    """Two changes of one control, each to a value other than the one before: (description, action)."""
    if kind == "slider":
        handle = control.locator(".noUi-handle").first

        def press(key):
            def act():
                handle.focus()
                handle.press(key)
            return act

        value = handle.get_attribute("aria-valuenow")
        at_max = value is not None and value == handle.get_attribute("aria-valuemax")
        keys = ["Home", "End"] if at_max else ["End", "Home"]
        return [(f"{key} (its {'maximum' if key == 'End' else 'minimum'})", press(key)) for key in keys]
    if kind in ("dropdown", "select"):
        select = control.locator("select").first
        options = select.locator("option").all_inner_texts()
        current = select.evaluate("s => s.options[s.selectedIndex] ? s.options[s.selectedIndex].text : null")
        others = [o for o in options if o != current]
        targets = [others[-1], others[0]] if len(others) >= 2 else others[:1] + [current]
        return [(f"'{t}'", lambda t=t: select.select_option(label=t)) for t in targets if t is not None]
    if kind in ("toggle_buttons", "radio"):
        item = "button" if kind == "toggle_buttons" else "input[type=radio]"
        buttons = control.locator(item)
        texts = (buttons.all_inner_texts() if kind == "toggle_buttons"
                 else control.locator("label").all_inner_texts())
        chosen = buttons.evaluate_all("els => els.map(e => e.classList.contains('mod-active') || e.checked)")
        current = chosen.index(True) if True in chosen else None
        others = [i for i in range(len(texts)) if i != current]
        targets = [others[-1], others[0]] if len(others) >= 2 else others[:1] + [current]
        return [(f"'{texts[i].strip()}'", lambda i=i: buttons.nth(i).click()) for i in targets if i is not None]
    target = control.locator("input[type=checkbox]").first if kind == "checkbox" else control
    return [("clicked", target.click), ("clicked again", target.click)]


CONTROL_KINDS = [  # (kind, selector within a demo)
    ("slider", ".widget-slider"),
    ("dropdown", ".widget-dropdown"),
    ("select", ".widget-select"),
    ("toggle_buttons", ".widget-toggle-buttons"),
    ("radio", ".widget-radio-box"),
    ("toggle", ".widget-toggle-button:not(.widget-toggle-buttons *)"),
    ("checkbox", ".widget-checkbox"),
    ("button", "button.widget-button"),
]


@pytest.mark.parametrize("notebook", chapter_notebooks(), ids=lambda p: p.stem)
def test_chapter_in_jupyterlab(notebook: Path, lab_server, browser):
    name = notebook.stem
    on_disk = _digest(notebook.read_bytes())
    for old in ARTIFACTS.glob(f"{name}_*.png"):  # no stale screenshot of an earlier run stays beside new ones
        old.unlink()
    console: list[str] = []
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.on("console", lambda m: console.append(f"console: {m.text} ({m.location.get('url', '')})")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(f"page error: {e}"))
    chapter = Chapter(page, notebook.name)
    clock = {"start": time.monotonic()}
    problems: list[str] = []
    passed = False
    try:
        page.goto(f"{lab_server.url}/lab/workspaces/{name}/tree/{notebook.name}?token={lab_server.token}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started", timeout=120_000)
        clock["loaded"] = time.monotonic()
        chapter.wait_for_kernel()
        clock["opened"] = time.monotonic()
        chapter.run_all()
        clock["ran"] = time.monotonic()
        problems += chapter.problems
        seen_errors = chapter.errors()
        problems += [f"error output: {e}" for e in seen_errors]

        demos = page.evaluate(MARK_DEMOS_JS, notebook.name)
        if not demos:
            problems.append("no demo: no cell output shows ipywidgets controls")
        notebook_node = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first
        outside = notebook_node.evaluate(OUTSIDE_IMAGES_JS)
        for index, info in enumerate(demos):
            demo = page.locator(f'[data-hb-demo="{index}"]')
            where = f"demo {index + 1} (cell {info['cell']}{', .hebblib-demo' if info['marked'] else ''})"
            suffix = "" if index == 0 else f"_{index + 1}"
            demo.evaluate("e => e.scrollIntoView({block: 'center'})")
            try:  # widgets render after the kernel is idle: give the figure a moment
                demo.locator("img").first.wait_for(state="attached", timeout=10_000)
            except Exception:
                pass
            page.screenshot(path=str(ARTIFACTS / f"{name}_page{suffix}.png"))
            demo.screenshot(path=str(ARTIFACTS / f"{name}_demo{suffix}.png"))
            images = chapter.images(demo)
            if not images.startswith("data:image/png"):
                problems.append(f"{where}: no figure (no PNG image in the demo's output)")
                continue
            for kind, selector in CONTROL_KINDS:
                controls = demo.locator(selector)
                for k in range(controls.count()):
                    control = controls.nth(k)
                    label = _label(control, kind, k + 1)
                    for what, action in _moves(control, kind):
                        busy = chapter.state()["busy"]
                        action()
                        after, outcome = chapter.wait_for_redraw(demo, images, busy)
                        moved = f"{where}: {label} set to {what}"
                        if not after.startswith("data:image/png"):
                            problems.append(f"{moved}: the figure is gone ({outcome})")
                        elif after == images:
                            problems.append(f"{moved}: the figure did not change ({outcome})")
                        elif outcome != "redrawn":
                            problems.append(f"{moved}: {outcome}")
                        problems += [f"{moved}: error shown: {e}" for e in chapter.errors() if e not in seen_errors]
                        images = after or images
            demo.screenshot(path=str(ARTIFACTS / f"{name}_demo{suffix}_moved.png"))
        clock["moved"] = time.monotonic()
        if demos and notebook_node.evaluate(OUTSIDE_IMAGES_JS) != outside:
            problems.append("a figure appeared or changed outside the demo while its controls moved")
        problems += [c for c in console if not any(re.search(p, c) for p, _why in BENIGN_CONSOLE_ERRORS)]
        assert not problems, f"{notebook.name} in JupyterLab:\n  " + "\n  ".join(problems)
        passed = True
    finally:
        try:
            if not passed:  # what the page showed when it failed
                page.screenshot(path=str(ARTIFACTS / f"{name}_failed.png"))
            _shut_down(lab_server, page.evaluate(CLOSE_JS, notebook.name))
        finally:
            context.close()
        clock["closed"] = time.monotonic()
        with open(ARTIFACTS / "timings.txt", "a") as log:  # seconds per phase, for the record
            marks = list(clock.items())
            log.write(f"{name}\t" + "\t".join(f"{b}={t - marks[i][1]:.1f}" for i, (b, t) in enumerate(marks[1:]))
                      + f"\ttotal={marks[-1][1] - marks[0][1]:.1f}\n")
        assert _digest(notebook.read_bytes()) == on_disk, f"the test changed {notebook} on disk"
