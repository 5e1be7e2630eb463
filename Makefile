# One command each: `make lab` opens the course, `make test` runs every test and notebook.
# Both create the virtual environment (.venv) first when it is missing or out of date.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: env lab test test-fast bench clean-env

env:
	@bash scripts/ensure_env.sh

# (--allow-root only when run as root, e.g. in a container)
lab: env
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root,)

# Unit tests plus every notebook executed in quick mode on the CPU.
test: env
	HEBBLIB_QUICK=1 CUDA_VISIBLE_DEVICES= $(PY) -m pytest

# Unit tests only (no notebooks).
test-fast: env
	HEBBLIB_QUICK=1 $(PY) -m pytest tests

bench: env
	$(PY) -m hebblib bench

clean-env:
	rm -rf $(VENV)
