"""Fixtures of the browser tests: one JupyterLab server and one headless Chromium for the session.

What they need: Debian's ``chromium`` (``/usr/bin/chromium``, or the path in ``HEBBLIB_CHROMIUM``) and the
``playwright`` Python package, which drives that executable; no browser is ever downloaded. Without
them the tests are skipped with the reason, except on CI (``CI=true``), where a missing tool is an error.

Settings (environment variables):

* ``HEBBLIB_BROWSER_NOTEBOOKS``: the folder of the chapter notebooks (default: ``notebooks/``). The server
  runs in that folder and its kernels import the ``hebblib`` beside it.
* ``HEBBLIB_BROWSER_ARTIFACTS``: where the screenshots go (default: ``test-artifacts/browser/``).
* ``HEBBLIB_CHROMIUM``: the Chromium executable (default: ``chromium`` on the PATH, else ``/usr/bin/chromium``).

The kernels run in quick mode on the CPU (``HEBBLIB_QUICK=1``, ``CUDA_VISIBLE_DEVICES=``);
``HEBBLIB_DATA`` passes through from the environment.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = Path(os.environ.get("HEBBLIB_BROWSER_NOTEBOOKS") or REPO / "notebooks").resolve()
ARTIFACTS = Path(os.environ.get("HEBBLIB_BROWSER_ARTIFACTS") or REPO / "test-artifacts" / "browser").resolve()

# Root in a container needs --no-sandbox; the others keep a headless Chromium off the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
    "--metrics-recording-only", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
]

# JupyterLab settings for the session (user settings in a temporary folder): no news pop-up, no update
# check, no autosave (the tests must never write the notebooks), and every cell kept in the page.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def chromium_executable() -> str | None:
    path = os.environ.get("HEBBLIB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return path if os.access(path, os.X_OK) else None


def _missing_tools() -> list[str]:
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install -c constraints.txt -e '.[dev]')")
    if chromium_executable() is None:
        missing.append("Chromium (apt-get install chromium, or set HEBBLIB_CHROMIUM)")
    return missing


@pytest.fixture(scope="session")
def browser_tools() -> str:
    """The Chromium executable; skips (errors on CI) when it or playwright is missing."""
    missing = _missing_tools()
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: a missing tool is an error, not a skip)", pytrace=False)
        pytest.skip(message)
    return chromium_executable()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    url: str          # http://127.0.0.1:PORT
    token: str
    root: Path        # the folder it serves (the notebooks)
    log: Path


@pytest.fixture(scope="session")
def lab_server(browser_tools) -> LabServer:
    """A JupyterLab server on a free port of 127.0.0.1 with a random token, serving NOTEBOOKS."""
    if not NOTEBOOKS.is_dir():
        pytest.fail(f"notebook folder {NOTEBOOKS} does not exist (HEBBLIB_BROWSER_NOTEBOOKS)", pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.txt").unlink(missing_ok=True)  # seconds per phase and chapter, this session's
    home = Path(tempfile.mkdtemp(prefix="hebblib-lab-"))
    settings = home / "settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = dict(os.environ)
    env.update({
        "HEBBLIB_QUICK": "1", "CUDA_VISIBLE_DEVICES": "",
        "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home / "data"),
    })
    if env.get("HEBBLIB_DATA"):  # the kernels run in the notebook folder: make a relative root absolute
        env["HEBBLIB_DATA"] = str(Path(env["HEBBLIB_DATA"]).resolve())
    tree = NOTEBOOKS.parent
    if (tree / "hebblib").is_dir():  # the kernels import the hebblib beside the notebooks under test
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH")) if p)
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.root_dir={NOTEBOOKS}",
           f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=", "--ServerApp.open_browser=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = ARTIFACTS / "jupyterlab-server.log"
    with open(log, "w") as log_file:
        proc = subprocess.Popen(cmd, cwd=NOTEBOOKS, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {proc.returncode}; see {log}", pytrace=False)
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer on {url} within 120 s; see {log}", pytrace=False)
            time.sleep(0.5)
        yield LabServer(url=url, token=token, root=NOTEBOOKS, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def browser(browser_tools):
    """One headless Chromium (the system executable, a fresh profile) for the session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=browser_tools, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
