#!/usr/bin/env bash
# The full-data runs behind issue 23's numbers, one after another, each through scripts/seed_runs.py (one
# `python -m hebblib reproduce` process per seed, resumable: a finished seed is skipped, an interrupted one goes
# on from its saved Hebbian phase). Re-run the same command after an interruption.
#
#   nice -n 15 nohup scripts/issue23_runs.sh > /dev/null 2>&1 &      # everything, in this order:
#     1. chapter 2's pruning curve (scripts/miconi_pruning.py, a reduced setting), unless already committed
#     2. Manzali's depth sweep manzali_1 ... manzali_5 on CIFAR-10, seed 0
#     3. soft and optimal on Fashion-MNIST, seed 0                      (reproduce --dataset fashion_mnist)
#     4. miconi on CIFAR-10, seed 0 (20 Hebbian epochs)
#     5. soft and optimal on Fashion-MNIST, seeds 1 and 2
#     6. the backprop twin on Fashion-MNIST, seed 0 (end to end, 20 epochs: about a day on one CPU thread)
#   scripts/issue23_runs.sh --dry-run                                    # what is finished, what would run
#
# Environment: HEBBLIB_DATA (the CIFAR-10 root, default data/; Fashion-MNIST is found under it or in Debian's
# /usr/share/datasets/fashion-mnist), THREADS (torch threads per run, default 1), RUNS (runs folder, default
# runs/), LOG (default <RUNS>/issue23_runs.log), PYTHON (default .venv/bin/python). Nothing is collected into
# docs/results/ here: `python scripts/results_table.py collect <RUNS>` does that afterwards.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-runs}
LOG=${LOG:-$RUNS/issue23_runs.log}
THREADS=${THREADS:-1}
common=(--threads "$THREADS" --source full --out "$RUNS" --log "$LOG" --no-collect "$@")
[ -n "${HEBBLIB_DATA:-}" ] && common+=(--data "$HEBBLIB_DATA")
status=0
step() { "$PYTHON" scripts/seed_runs.py "$@" "${common[@]}" || status=$?; [ "$status" = 130 ] && exit 130; }
if [ ! -f docs/results/chapters/ch02_miconi_pruning.json ] && [ "${1:-}" != --dry-run ]; then
  echo "[$(date -Iseconds)] start scripts/miconi_pruning.py --threads $THREADS" >> "$LOG"
  "$PYTHON" scripts/miconi_pruning.py --threads "$THREADS" >> "$LOG" 2>&1 || status=$?
  echo "[$(date -Iseconds)] scripts/miconi_pruning.py exited with $status" >> "$LOG"
fi
step manzali_1 manzali_2 manzali_3 manzali_4 manzali_5 --seeds 0
step soft optimal --dataset fashion_mnist --seeds 0
step miconi --seeds 0
step soft optimal --dataset fashion_mnist --seeds 1 2
step backprop --dataset fashion_mnist --seeds 0
exit "$status"
