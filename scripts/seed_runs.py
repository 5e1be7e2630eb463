"""Run presets × seeds one after another on the full CIFAR-10, then collect and render the results table.

    python scripts/seed_runs.py --data ROOT --threads 2                 # every preset of SEED_PRESETS, seeds 0 1 2
    python scripts/seed_runs.py soft bcm optimal-original --data ROOT   # some presets ('-original': --original)
    python scripts/seed_runs.py --with-backprop --data ROOT             # backprop too (hours per seed on a CPU)
    python scripts/seed_runs.py --dry-run --data ROOT                   # say what is finished and what would run

Every preset runs with the same three seeds, :data:`SEEDS` = 0, 1, 2 (each a separate ``python -m hebblib
reproduce --first-seed K --seeds 1`` process, so a failure or the memory of one run does not reach the next).
Resumable: a seed whose run has finished (its ``results.json`` under ``--out``, for this very configuration) is
skipped without starting a process; an interrupted one starts again from what it saved (the Hebbian phase's
checkpoint; the backprop preset's last finished epoch). Re-run the same command after an interruption.
Everything the runs print goes to ``--log`` (default ``<out>/seed_runs.log``), with a time-stamped line per run.
At the end ``scripts/results_table.py collect <out>`` and ``render`` update ``docs/results/`` and
``docs/results.md`` (``--no-collect`` leaves them alone). Exit status 0 when every run finished, 1 when some
failed (listed at the end), 130 when interrupted.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEEDS = (0, 1, 2)  # the same three for every preset (issue 21)
SEED_PRESETS = ("soft", "softhebb_paper", "optimal", "optimal-original", "hard_basic", "bcm", "temporal", "adaptive",
                "presynaptic", "dale", "dale_thesis", "depthwise", "residual", "lagani_short", "lagani_deep")


def parse_variant(text: str) -> tuple[str, bool]:
    """``'optimal'`` → ``('optimal', False)``; ``'optimal-original'`` → ``('optimal', True)``; an unknown
    preset is a ValueError listing the valid names."""
    from hebblib.presets import PRESETS

    name, original = (text[: -len("-original")], True) if text.endswith("-original") else (text, False)
    if name not in PRESETS:
        raise ValueError(f"unknown preset {text!r}; valid: {', '.join(sorted(PRESETS))} (each optionally with "
                         f"'-original')")
    return name, original


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python scripts/seed_runs.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="*", default=list(SEED_PRESETS),
                        help=f"preset names, '-original' for the original behaviour (default: {' '.join(SEED_PRESETS)})")
    parser.add_argument("--with-backprop", action="store_true", help="add the end-to-end backprop preset")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help=f"seeds (default {' '.join(map(str, SEEDS))})")
    parser.add_argument("--order", choices=("preset", "seed"), default="preset",
                        help="'preset': all seeds of a preset before the next (default); 'seed': every preset's "
                             "first seed first")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads per run (OMP_NUM_THREADS, MKL_NUM_THREADS; default: torch's own)")
    parser.add_argument("--data", metavar="ROOT", default=None, help="folder holding cifar-10-batches-py/")
    parser.add_argument("--dataset", default=None,
                        help="run every preset on this dataset (reproduce --dataset; default CIFAR-10), e.g. fashion_mnist")
    parser.add_argument("--source", choices=("full", "subset", "auto"), default=None,
                        help="full (the default: the published comparison), or subset (the default with --quick) "
                             "for a check of the driver")
    parser.add_argument("--out", metavar="DIR", default=None, help="runs folder (default: $HEBBLIB_RUNS or runs/)")
    parser.add_argument("--log", metavar="FILE", default=None, help="log file (default <out>/seed_runs.log)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=None,
                        help="the Hebbian phase's and the features' arithmetic (default: the preset's, fp32)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--compile", action="store_true",
                        help="fuse each run's Hebbian phase and features with torch.compile (reproduce --compile)")
    parser.add_argument("--change", metavar="JSON", default=None, help="merged into every preset (reproduce --change)")
    parser.add_argument("--hebbian-from", metavar="DIR", default=None,
                        help="adopt each seed's Hebbian phase from this finished run's folder (reproduce --hebbian-from): "
                             "for variants that differ in the classifier only")
    parser.add_argument("--quick", action="store_true", help="quick mode (a check of the driver, not a result)")
    parser.add_argument("--limit-train", type=int, default=None, help="passed to reproduce (checks only)")
    parser.add_argument("--limit-test", type=int, default=None, help="passed to reproduce (checks only)")
    parser.add_argument("--epochs", type=int, default=None, help="classifier epochs, passed to reproduce (checks only)")
    parser.add_argument("--dry-run", action="store_true", help="list finished and pending runs; run nothing")
    parser.add_argument("--no-collect", action="store_true", help="do not update docs/results/ and docs/results.md")
    return parser


class Log:
    """Time-stamped lines to the log file and to stdout; the file is also where the runs' output goes."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str) -> None:
        line = f"[{datetime.datetime.now().isoformat(timespec='seconds')}] {message}"
        print(line, flush=True)
        with self.path.open("a") as f:
            f.write(line + "\n")


def run_options(args, seed: int) -> dict:
    """The options of :func:`hebblib.training.plan_run` that the reproduce command below gets."""
    return dict(seed=seed, root=args.data, source=args.source, device=args.device, quick=args.quick or None,
                out=args.out, limit_train=args.limit_train, limit_test=args.limit_test,
                supervised_epochs=args.epochs, precision=args.precision, progress=False,
                **({"compile": True} if args.compile else {}))


def finished(preset: dict, args, seed: int) -> dict | None:
    """The finished record of this run, found as ``reproduce`` finds it (the run folder of this preset, data
    and options; :func:`hebblib.training.finished_result`), else None. Loads the data to know the folder."""
    from hebblib import training

    run = training.plan_run(preset, **run_options(args, seed))
    training.prepare_data(run, notice=None)
    training.run_folder(run)
    return training.finished_result(run)


def command(name: str, original: bool, args, seed: int) -> list[str]:
    cmd = [sys.executable, "-m", "hebblib", "reproduce", "--preset", name, "--first-seed", str(seed), "--seeds", "1",
           "--source", args.source, "--device", args.device, "--no-progress"]
    for flag, value in (("--data", args.data), ("--dataset", args.dataset), ("--out", args.out),
                        ("--precision", args.precision),
                        ("--change", args.change), ("--hebbian-from", args.hebbian_from),
                        ("--limit-train", args.limit_train),
                        ("--limit-test", args.limit_test), ("--epochs", args.epochs)):
        if value is not None:
            cmd += [flag, str(value)]
    return (cmd + (["--original"] if original else []) + (["--quick"] if args.quick else [])
            + (["--compile"] if args.compile else []))


def _collect_and_render(out: Path, log: Log) -> None:
    spec = importlib.util.spec_from_file_location("results_table", Path(__file__).with_name("results_table.py"))
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    written = table.collect(out)
    table.render()
    log(f"collected {len(written)} variant(s) into docs/results/ and rendered docs/results.md")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from hebblib.data import CIFAR10NotFoundError, DatasetNotFoundError
    from hebblib.presets import change_preset, get_preset, on_dataset
    from hebblib.results import default_out

    try:
        variants = [parse_variant(p) for p in args.presets] + ([("backprop", False)] if args.with_backprop else [])
        change = json.loads(args.change) if args.change else None

        def resolved(name, original):  # as reproduce builds it: the dataset first, then the change
            preset = get_preset(name, original=original)
            preset = on_dataset(preset, args.dataset) if args.dataset else preset
            return change_preset(preset, change) if change else preset

        presets = {(n, o): resolved(n, o) for n, o in variants}
    except (ValueError, json.JSONDecodeError) as err:
        parser.error(str(err))
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    if any(s < 0 for s in args.seeds):
        parser.error(f"seeds must be >= 0, got {args.seeds}")
    args.out = str(args.out or default_out())
    args.source = args.source or ("subset" if args.quick else "full")
    log = Log(Path(args.log) if args.log else Path(args.out) / "seed_runs.log")
    env = dict(os.environ)  # this clone's hebblib first, whatever the working directory
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    if args.threads is not None:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    plan = ([(v, s) for v in variants for s in args.seeds] if args.order == "preset"
            else [(v, s) for s in args.seeds for v in variants])
    log(f"seed runs: {len(plan)} run(s), presets {' '.join(n + ('-original' if o else '') for n, o in variants)}, "
        f"seeds {args.seeds}, threads {args.threads or 'default'}, out {args.out}"
        + (f", change {args.change}" if args.change else ""))
    failed, done, ran = [], 0, 0
    for (name, original), seed in plan:
        label = f"{name}{' --original' if original else ''} seed {seed}"
        try:
            record = finished(presets[(name, original)], args, seed)
        except (CIFAR10NotFoundError, DatasetNotFoundError) as err:
            log(f"error: {err.message('cli')}")
            return 2
        if record is not None:
            done += 1
            log(f"skip {label}: finished earlier (final {record['final_test_acc']:.2f} %, {record['run_dir']})")
            continue
        cmd = command(name, original, args, seed)
        if args.dry_run:
            log(f"would run {label}: {shlex.join(cmd[1:])}")
            continue
        log(f"start {label}: {shlex.join(cmd[1:])}")
        start = time.perf_counter()
        with log.path.open("a") as out:
            try:
                code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
            except KeyboardInterrupt:
                code = 130
        minutes = (time.perf_counter() - start) / 60
        if code == 130:
            log(f"interrupted {label} after {minutes:.1f} min; run the same command again to resume")
            return 130
        ran += 1
        if code != 0:
            failed.append(label)
            log(f"FAILED {label} (exit status {code}) after {minutes:.1f} min; see the output above in {log.path}")
        else:
            log(f"done {label} in {minutes:.1f} min")
    log(f"{done} finished earlier, {ran} run now, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    if not args.dry_run and not args.no_collect:
        _collect_and_render(Path(args.out), log)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
