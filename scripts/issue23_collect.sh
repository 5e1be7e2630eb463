#!/usr/bin/env bash
# Collect the finished full-data runs of scripts/issue23_runs.sh (and only those) into docs/results/<variant>.json:
# a folder of links to their variant folders under RUNS (default runs/) is handed to
# `python scripts/results_table.py collect`, so other runs in the same runs folder are left alone.
# docs/results.md is not rendered here (`python scripts/results_table.py render` does that).
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
PYTHON=${PYTHON:-.venv/bin/python}
pick=$(mktemp -d)
trap 'rm -rf "$pick"' EXIT
for variant in soft-fashion_mnist optimal-fashion_mnist backprop-fashion_mnist manzali_1 manzali_2 manzali_3 \
               manzali_4 manzali_5 miconi; do
  [ -d "$RUNS/$variant" ] && ln -s "$(cd "$RUNS/$variant" && pwd)" "$pick/$variant"
done
"$PYTHON" scripts/results_table.py collect "$pick"
