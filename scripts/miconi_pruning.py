"""Chapter 2's pruning curve on real CIFAR-10: Miconi's network with 0 ... 99.9 % of the weights of layers 2 and 3
pruned, transmitting the triangle or the binary WTA output, read out untrained and after Hebbian training.

    python scripts/miconi_pruning.py --limit-train 5000 --limit-test 2000 --hebbian-epochs 1 --threads 1

Writes ``docs/results/chapters/ch02_miconi_pruning.json`` (the rows, the setting, the command, the device, the
wall time), which chapter 2 draws beside its quick-mode curve. A reduced setting by design (the full protocol is
the ``miconi`` preset: 20 epochs over all 45,000 training images, ``python -m hebblib reproduce --preset
miconi``). Needs the full CIFAR-10 under --data / $HEBBLIB_DATA.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", metavar="ROOT", default=None, help="CIFAR-10 root (default $HEBBLIB_DATA or data/)")
    parser.add_argument("--limit-train", type=int, default=5000, help="first N training images (default 5000)")
    parser.add_argument("--limit-test", type=int, default=2000, help="first N test images (default 2000)")
    parser.add_argument("--hebbian-epochs", type=int, default=1)
    parser.add_argument("--probe-epochs", type=int, default=20)
    parser.add_argument("--width", type=float, default=1.0, help="width_factor of the network (default 1)")
    parser.add_argument("--fractions", type=float, nargs="+", default=None, help="default 0 0.5 0.9 0.99 0.999")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.data:
        os.environ["HEBBLIB_DATA"] = args.data
    import torch

    from hebblib.chapters import ch02_updates_as_gradients as ch2
    from hebblib.results import save_chapter_result
    from hebblib.runtime import describe_device
    from hebblib.training import resolve_source

    if args.threads:
        torch.set_num_threads(args.threads)
    source, notice = resolve_source("auto", quick=False)
    if source != "full":
        print(f"the full CIFAR-10 is needed: {notice}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    sweep = ch2.pruning_sweep(tuple(args.fractions or ch2.PRUNE_FRACTIONS), hebbian_epochs=args.hebbian_epochs,
                              width=args.width, limit_train=args.limit_train, limit_test=args.limit_test,
                              probe_epochs=args.probe_epochs, seed=args.seed, source="full", progress=True)
    measured = {f"{r['output'].replace(' ', '_')}_{r['fraction']:g}": r["trained"] for r in sweep["rows"]}
    rows = {f"{kind.replace(' ', '_')}_{f:g}": value for (kind, f), value in ch2.MICONI_PUBLISHED.items()
            if f"{kind.replace(' ', '_')}_{f:g}" in measured}
    record = {"title": "Chapter 2: Miconi's network, accuracy against the pruned fraction (reduced setting)",
              "rows": rows, **measured, "source": ch2.MICONI_SOURCE,
              "setting": (f"{sweep['hebbian_epochs']} Hebbian epoch(s) over the first {sweep['n_train']:,} training "
                          f"images ({sweep['warmup_batches']} burn-in batches), width {sweep['width']:g}, Adam probe "
                          f"{sweep['probe_epochs']} epochs, first {sweep['n_test']:,} test images (Miconi: 20 epochs, "
                          f"all images, Ridge read-out)"),
              "curve": sweep["rows"], "sweep": {k: v for k, v in sweep.items() if k != "rows"},
              "command": "python scripts/miconi_pruning.py " + " ".join(map(shlex.quote, sys.argv[1:] if argv is None
                                                                             else argv)),
              "device": describe_device(), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "wall_s": time.perf_counter() - start}
    path = save_chapter_result(ch2.PRUNING_RESULT, record)
    print(f"wrote {path}")
    for r in sweep["rows"]:
        print(f"  {r['output']:>10}, {r['fraction']:g} pruned: untrained {r['untrained']:.2f} %, trained "
              f"{r['trained']:.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
