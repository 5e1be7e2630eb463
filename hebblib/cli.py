"""Command line: ``python -m hebblib list-presets`` and ``python -m hebblib reproduce --preset NAME``.

Both take the Hebbian presets (:data:`hebblib.presets.PRESETS`, run by :func:`hebblib.training.reproduce`) and
Lunelli's contrastive ones (:data:`hebblib.presets.CONTRASTIVE_PRESETS`, run by
:func:`hebblib.contrastive.reproduce_contrastive`): same options, same ``runs/`` layout, same printout.

Exit status: 0 success; 1 the training diverged; 2 a usage error (unknown preset, missing data, no such
device); 130 interrupted (re-run the same command to resume from the last completed phase).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys

from .presets import (CONTRASTIVE_PRESETS, DATASET_NAMES, PRESETS, change_contrastive_preset, change_preset,
                      get_contrastive_preset, get_preset, list_presets, on_dataset)
from .results import default_out, format_accuracy
from .runtime import PRECISIONS

MEASURES = (("max_test_acc", "max over epochs (the README's measure)"),
            ("final_test_acc", "final epoch"),
            ("test_acc_at_best_val", "at the best-validation epoch"))


def preset_table() -> str:
    """One line per preset: name, published accuracy (± std where the source gives one), architecture (or
    network and learning), source; the Hebbian presets first, then the contrastive ones."""
    lines = [f"{'preset':<15} {'published':>9}  {'architecture':<19} source"]
    for name in list_presets():
        p = PRESETS[name]
        published = f"{p['published']:.1f} %" if p.get("published") is not None else "—"
        lines.append(f"{name:<15} {published:>9}  {p['architecture']:<19} {p['source']}")
    lines += ["", "contrastive neuron-centric Hebbian learning (Lunelli 2024; docs/contrastive.md):",
              f"{'preset':<31} {'published':>15}  {'network':<22} source"]
    for name, p in CONTRASTIVE_PRESETS.items():
        published = "—" if p.get("published") is None else (
            f"{p['published']:.2f} ± {p['published_std']:.2f} %" if p.get("published_std") is not None
            else f"{p['published']:.2f} %")
        network = f"{p['network']} F={p['model']['width_factor']}" if p["network"] == "conv" else p["network"]
        lines.append(f"{name:<31} {published:>15}  {network + ', ' + p['learning']:<22} {p['source']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hebblib",
                                     description="Hebbian CNNs: presets and reproduction runs.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list-presets", help="list the presets with their published accuracy and source")
    rep = commands.add_parser("reproduce", help="train and evaluate a preset; print the measured number beside "
                                                "the published one")
    rep.add_argument("--preset", required=True, help="a name from `list-presets`")
    rep.add_argument("--seeds", type=_int_at_least(1), default=1,
                     help="number of seeds (mean ± std when > 1); default 1")
    rep.add_argument("--first-seed", type=_int_at_least(0), default=0, help="the first seed; default 0")
    rep.add_argument("--data", metavar="ROOT", default=None,
                     help="data root holding cifar-10-batches-py/ (or FashionMNIST/raw/, MNIST/raw/, stl10_binary/; "
                          "default: $HEBBLIB_DATA, else data/)")
    rep.add_argument("--dataset", choices=DATASET_NAMES, default=None,
                     help="the images: cifar10 (default), fashion_mnist (Debian: apt-get install dataset-fashion-mnist), "
                          "mnist or stl10; the networks take its image shape, and the run gets its own results row")
    rep.add_argument("--source", choices=("auto", "full", "subset"), default="auto",
                     help="full CIFAR-10, the shipped subset, or auto (full when present, else the subset)")
    rep.add_argument("--quick", action="store_true", help="the shipped subset and at most 3 classifier epochs")
    rep.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    rep.add_argument("--precision", choices=PRECISIONS, default=None,
                     help="arithmetic of the Hebbian phase and the features (of the whole training for backprop): "
                          "bf16, fp32, or auto (bf16 where the hardware is fast at it: AMX CPUs, CUDA GPUs with "
                          "bf16); default: the preset's (fp32); the α-hybrid trains in fp32")
    rep.add_argument("--compile", action="store_true",
                     help="fuse the Hebbian phase's and the feature extraction's passes with torch.compile (needs a "
                          "C++ compiler on the CPU, Triton on CUDA; the first batch compiles, about a minute): the "
                          "same values up to rounding, a run of its own")
    rep.add_argument("--original", action="store_true",
                     help="the original code's behaviour where it produced the published number")
    rep.add_argument("--change", metavar="JSON", type=_json_dict, default=None,
                     help="JSON merged into the preset, e.g. '{\"hebbian\": {\"rule\": {\"theta_init\": 0.0}}}': "
                          "a variant with its own runs folder and results row")
    rep.add_argument("--out", metavar="DIR", default=None, help=f"runs folder (default {default_out()})")
    rep.add_argument("--hebbian-from", metavar="DIR", default=None,
                     help="adopt the Hebbian phase of a finished run (its folder, holding seed<k>/) instead of "
                          "training it again: for variants that differ from it in the classifier only")
    rep.add_argument("--limit-train", type=_int_at_least(20), default=None,
                     help="use only the first N (>= 20) training images")
    rep.add_argument("--limit-test", type=_int_at_least(20), default=None,
                     help="use only the first N (>= 20) test images")
    rep.add_argument("--epochs", type=_int_at_least(1), default=None,
                     help="classifier epochs, >= 1 (default: the preset's); for an end-to-end, hybrid or contrastive "
                          "preset, its training epochs")
    rep.add_argument("--fresh", action="store_true", help="ignore finished runs and checkpoints; train again")
    rep.add_argument("--no-download", action="store_true", help="never try to download CIFAR-10")
    rep.add_argument("--no-progress", action="store_true", help="no progress bars")
    rep.add_argument("--parallel", metavar="K", type=_int_at_least(1), default=1,
                     help="run K seeds at a time, each in its own process (default 1); for one run on several "
                          "processes or GPUs launch with torchrun instead (docs/distributed.md)")
    bench = commands.add_parser("bench", help="images/s of the fast path against a naive baseline, per phase "
                                              "and per layer, with FLOPs and the fraction of peak")
    bench.add_argument("--preset", default="soft", help="a name from `list-presets` (default soft)")
    bench.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    bench.add_argument("--precision", choices=PRECISIONS, default=None,
                       help="the precision of the default path (default: the preset's, fp32); the bench also runs "
                            "fp32 and bf16")
    bench.add_argument("--quick", action="store_true", help="few batches on the shipped subset")
    bench.add_argument("--compile", action="store_true",
                       help="also the default path fused by torch.compile (compiled before the clock starts)")
    bench.add_argument("--batches", type=int, default=None, help="batches per path and round")
    bench.add_argument("--rounds", type=int, default=3, help="interleaved rounds of both paths (default 3)")
    bench.add_argument("--phases", action="store_true",
                       help="instead: images/s and peak memory of a Hebbian-phase step, a backprop step and an "
                            "α-hybrid step on the preset's network, each in its own process (chapter 14)")
    bench.add_argument("--alpha", type=float, default=0.5, help="--phases: the hybrid's α (default 0.5)")
    bench.add_argument("--width", type=float, default=None, help="--phases: width_factor (default the preset's)")
    bench.add_argument("--threads", type=_int_at_least(1), default=None, help="--phases: torch threads per process")
    bench.add_argument("--json", metavar="PATH", default=None, help="--phases: also write the numbers to PATH")
    bench.add_argument("--processes", metavar="N", type=_int_at_least(1), nargs="+", default=None,
                       help="instead: scaling of the data-parallel Hebbian phase with N processes for each N given "
                            "(e.g. 1 2): images/s and efficiency t1/(N·tN) (docs/distributed.md)")
    return parser


def _int_at_least(minimum: int):
    """An argparse type: an int >= ``minimum``, else a usage error naming the value (exit status 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an int >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"int >= {minimum}"
    return parse


def _json_dict(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"hebbian\": {{...}}}}', got {text!r}")
    return value


def cmd_bench(args) -> int:
    from .bench import bench

    if args.preset not in PRESETS:
        print(f"error: unknown preset {args.preset!r}; valid presets:\n{preset_table()}", file=sys.stderr)
        return 2
    if args.compile and (args.processes or args.phases):
        other = "processes" if args.processes else "phases"
        return _error(f"--compile adds a compiled path to the one-process bench; --{other} measures without it: "
                      f"leave one of them out")
    try:
        if args.processes:
            from .distributed import bench_scaling
            from .results import write_json

            command = "python -m hebblib " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else None
            result = bench_scaling(args.preset, args.processes, device=args.device, batches=args.batches or 4,
                                   rounds=args.rounds, threads=args.threads or 1, width_factor=args.width)
            if args.json:
                write_json(args.json, {**result, "command": command})
            return 0
        if args.phases:
            from .bench import bench_training_costs
            from .results import write_json

            command = "python -m hebblib " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else None
            result = bench_training_costs(args.preset, device=args.device, batches=args.batches or 4,
                                          rounds=args.rounds, alpha=args.alpha, width_factor=args.width,
                                          threads=args.threads)
            if args.json:
                write_json(args.json, {**result, "command": command})
            return 0
        bench(args.preset, device=args.device, quick=args.quick, batches=args.batches, rounds=args.rounds,
              precision=args.precision, compile=args.compile)
    except (FileNotFoundError, ValueError) as err:
        return _error(str(err))
    return 0


def _error(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _print_run(result: dict) -> None:
    unsup, mode = result["unsupervised"], result["supervised"]["mode"]
    speed = f"{unsup['images_per_s']:,.0f} images/s" if unsup.get("images_per_s") else "no Hebbian phase"
    seconds = sum(epoch.get("train_seconds", epoch.get("seconds", 0.0)) for epoch in result["epochs"])
    if mode != "linear" and seconds:  # end to end: backprop, hybrid, contrastive (its local rules), one phase
        speed = f"{result['data']['n_train'] * len(result['epochs']) / seconds:,.0f} images/s {mode} training"
    if unsup.get("resumed_from_checkpoint"):
        speed = "Hebbian phase resumed from its checkpoint"
    reused = " (finished earlier; read back)" if result.get("reused") else ""
    print(f"seed {result['seed']}: final {result['final_test_acc']:.2f} %, at best val (epoch "
          f"{result['best_val_epoch']}) {result['test_acc_at_best_val']:.2f} %, max {result['max_test_acc']:.2f} %"
          f"  [{speed}; {result['timings_s']['total']:.0f} s]{reused}")


def cmd_reproduce(args) -> int:
    from .data import CIFAR10NotFoundError, DatasetNotFoundError
    from .contrastive import reproduce_contrastive
    from .errors import HebbianDivergenceError
    from .training import reproduce

    contrastive = args.preset in CONTRASTIVE_PRESETS
    if args.preset not in PRESETS and not contrastive:
        print(f"error: unknown preset {args.preset!r}; valid presets:\n{preset_table()}", file=sys.stderr)
        return 2
    if contrastive and args.original:
        return _error(f"--original does not apply to the contrastive preset {args.preset!r} (it has no "
                      f"original-code variant); leave it out")
    if contrastive and args.dataset not in (None, "cifar10"):
        return _error(f"--dataset {args.dataset} does not apply to the contrastive preset {args.preset!r} (it runs on "
                      f"its own data); valid choices: 'cifar10' (or leave it out)")
    if contrastive and args.precision not in (None, "fp32"):
        return _error(f"--precision {args.precision} does not apply to the contrastive preset {args.preset!r}: its "
                      f"layers compute in fp32 only; valid choices: 'fp32' (or leave it out)")
    if args.compile and (contrastive or "WORLD_SIZE" in os.environ):
        what = f"the contrastive preset {args.preset!r}" if contrastive else "torchrun runs"
        return _error(f"--compile fuses one-process runs of the Hebbian presets (not {what}); leave it out")
    if args.hebbian_from and (contrastive or args.parallel != 1 or "WORLD_SIZE" in os.environ):
        return _error(f"--hebbian-from applies to one-process runs of the Hebbian presets (not to {args.preset!r}"
                      f"{' with --parallel or torchrun' if not contrastive else ''}); leave it out")
    if contrastive and (args.parallel != 1 or "WORLD_SIZE" in os.environ):
        return _error(f"--parallel and torchrun run the Hebbian presets; the contrastive preset {args.preset!r} "
                      f"runs in one process: python -m hebblib reproduce --preset {args.preset}")
    try:
        if contrastive:
            preset = get_contrastive_preset(args.preset)
            if args.change:
                preset = change_contrastive_preset(preset, args.change)
            summary = reproduce_contrastive(preset, seeds=args.seeds, first_seed=args.first_seed, root=args.data,
                                            source=args.source, device=args.device, quick=args.quick or None,
                                            out=args.out, limit_train=args.limit_train, limit_test=args.limit_test,
                                            epochs=args.epochs, resume=not args.fresh, download=not args.no_download,
                                            progress=not args.no_progress)
        else:
            preset = get_preset(args.preset, original=args.original)
            if args.dataset:
                preset = on_dataset(preset, args.dataset)
            if args.change:
                preset = change_preset(preset, args.change)
            summary = _reproducer(args)(preset, seeds=args.seeds, first_seed=args.first_seed, root=args.data,
                                source=args.source, device=args.device, quick=args.quick or None, out=args.out,
                                limit_train=args.limit_train, limit_test=args.limit_test,
                                supervised_epochs=args.epochs, resume=not args.fresh, download=not args.no_download,
                                progress=not args.no_progress, precision=args.precision,
                                **({"hebbian_from": args.hebbian_from} if args.hebbian_from else {}),
                                **({"compile": True} if args.compile else {}))
    except (CIFAR10NotFoundError, DatasetNotFoundError) as err:
        return _error(err.message("cli"))
    except FileNotFoundError as err:
        return _error(str(err))
    except HebbianDivergenceError as err:
        return _error(str(err), 1)
    except ValueError as err:  # a bad option value: the message names it and the valid choices
        return _error(str(err))
    except KeyboardInterrupt:
        return _error("interrupted; run the same command again to resume from the last completed phase", 130)
    if summary.get("rank", 0) != 0:  # a data-parallel run (torchrun): rank 0 reports
        return 0
    for result in summary["runs"]:
        _print_run(result)
    first = summary["runs"][0]
    data = first["data"]
    if contrastive:
        mode = f"{first['learning']} learning"
    else:
        mode = "original code behaviour" if first["original"] else "corrected behaviour"
    if first.get("change"):
        mode += f", changed by {json.dumps(first['change'])}"
    trained = "classifier epochs" if first["supervised"]["mode"] == "linear" else "training epochs"
    dataset = "" if data.get("dataset", "cifar10") == "cifar10" else f"{data['dataset']} "
    print(f"\n{args.preset} ({mode}; {dataset}{data['source']} data: {data['n_train']:,} train / "
          f"{data['n_val']:,} val / "
          f"{data['n_test']:,} test; {first['supervised']['epochs']} {trained}; "
          f"{len(summary['runs'])} seed{'s' if len(summary['runs']) > 1 else ''}; {first['device']})")
    for metric, what in MEASURES:
        print(f"  measured {format_accuracy(summary, metric):>16}   {what}")
    published, spread = summary.get("published"), summary.get("published_std")
    if published is None:
        print("  published: no number", f"  ({summary['source']})")
    else:
        print(f"  published {published:.{2 if spread is not None else 1}f}"
              + (f" ± {spread:.2f}" if spread is not None else "") + " %", f"  ({summary['source']})")
    if data["source"] != "full" or first["quick"] or args.limit_train or args.epochs:
        print("  note: a reduced run (subset, quick mode or limits), not comparable with the published number")
    print(f"  results: {summary['summary_path']}")
    return 0


def _reproducer(args):
    """``training.reproduce`` (``--parallel`` seeds at a time), or under torchrun the data-parallel run
    (:func:`hebblib.distributed.reproduce_distributed`)."""
    from . import distributed
    from .training import reproduce

    if not distributed.launched_by_torchrun():
        return functools.partial(reproduce, parallel=args.parallel)
    if args.parallel != 1:
        raise ValueError(f"--parallel {args.parallel} runs seeds in processes of its own; under torchrun the "
                         f"processes share each run instead: leave --parallel out (or drop torchrun)")
    return distributed.reproduce_distributed


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list-presets":
            print(preset_table())
            return 0
        if args.command == "bench":
            return cmd_bench(args)
        return cmd_reproduce(args)
    except BrokenPipeError:  # output piped into `head`: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
