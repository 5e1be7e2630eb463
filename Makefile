# One command each: `make lab` opens the course, `make test` runs every test and notebook.
# Both create the virtual environment (.venv) first when it is missing or out of date.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: env lab test test-fast test-browser bench clean-env

env:
	@bash scripts/ensure_env.sh

# (--allow-root only when run as root, e.g. in a container)
lab: env
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root,)

# Unit tests, every notebook executed in quick mode on the CPU, and the browser tests (tests/browser).
test: env
	HEBBLIB_QUICK=1 CUDA_VISIBLE_DEVICES= $(PY) -m pytest

# Unit tests only (no notebooks, no browser).
test-fast: env
	HEBBLIB_QUICK=1 $(PY) -m pytest tests -m "not browser"

# Only the browser tests: every chapter run in JupyterLab in headless Chromium (Debian's chromium package,
# driven by playwright; no browser download). Screenshots in test-artifacts/browser/.
test-browser: env
	HEBBLIB_QUICK=1 CUDA_VISIBLE_DEVICES= $(PY) -m pytest tests/browser -m browser

bench: env
	$(PY) -m hebblib bench

clean-env:
	rm -rf $(VENV)
