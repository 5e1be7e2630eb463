"""Test-session settings shared by the unit tests and the notebook runs (nbval)."""
from __future__ import annotations

import os
import time
from collections import defaultdict

# Quick mode (small real data, few epochs) unless the caller asked otherwise; notebooks' kernels inherit it.
os.environ.setdefault("HEBBLIB_QUICK", "1")

_notebook_seconds: dict[str, float] = defaultdict(float)
_notebook_failed: set[str] = set()


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration
        if report.failed:
            _notebook_failed.add(path)


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook durations (quick mode)")
    for path, seconds in sorted(_notebook_seconds.items()):
        flag = "  FAILED" if path in _notebook_failed else ""
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}{flag}")
    terminalreporter.write_line(f"{sum(_notebook_seconds.values()):8.1f} s  all notebooks")
