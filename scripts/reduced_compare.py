"""Compare presets on reduced runs (the machinery of chapters 7–10): same subset images, seed and probe.

    python scripts/reduced_compare.py hard_basic bcm optimal [--original bcm optimal] \
        [--width 0.5] [--blocks 3] [--train 2000] [--test 500] [--source subset|full] [--probe-epochs 10] \
        [--seeds 1] [--change JSON]

Each preset's network at ``--width`` of its width learns in its first ``--blocks`` blocks for one pass over
the first ``--train`` images of the shipped subset (``--source full``: of the full CIFAR-10, for runs with
more updates), then a Dropout + Linear probe is trained on those blocks' features
(``hebblib.experiments.train_reduced``). Presets named after
``--original`` run a second time with the original code's behaviour (their ``original_overrides``).
``--change '{"rule": {"theta_init": 0.0}}'`` merges a JSON dict into every run's shared Hebbian settings
(``hebblib.networks.settings.merge_settings``; the per-layer settings still apply on top of it).
Prints one line per run: max and final probe accuracy (%, mean ± std over seeds), wall time.
Reduced runs rank mechanisms cheaply; their accuracies are far below the full-data ones by design.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time


def main(argv=None) -> int:
    from hebblib.experiments import train_reduced
    from hebblib.networks.settings import merge_settings
    from hebblib.presets import get_preset, list_presets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="+", choices=list_presets(), metavar="PRESET")
    parser.add_argument("--original", nargs="*", default=[], choices=list_presets(), metavar="PRESET",
                        help="also run these presets with their original-code overrides")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--train", type=int, default=2000,
                        help="training images (the subset holds 2,000, the full data 50,000)")
    parser.add_argument("--test", type=int, default=500, help="test images (the subset holds 500)")
    parser.add_argument("--source", choices=("subset", "full"), default="subset",
                        help="the shipped subset or the full CIFAR-10 (data root: $HEBBLIB_DATA)")
    parser.add_argument("--probe-epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--change", type=json.loads, default=None, help="JSON merged into the Hebbian settings")
    args = parser.parse_args(argv)

    def preset_for(name: str, original: bool) -> dict:
        preset = get_preset(name, original)
        if args.change:
            preset["hebbian"] = merge_settings(preset["hebbian"], args.change)
        return preset

    runs = [(name, False) for name in args.presets] + [(name, True) for name in args.original]
    print(f"reduced runs: first {args.blocks} block(s) at width × {args.width}, {args.train} {args.source} images, "
          f"{args.probe_epochs} probe epochs, {args.seeds} seed(s)"
          + (f"; changed: {json.dumps(args.change)}" if args.change else ""))
    for name, original in runs:
        start = time.perf_counter()
        results = [train_reduced(preset_for(name, original), width_factor=args.width, blocks=args.blocks,
                                  n_train=args.train, n_test=args.test, probe_epochs=args.probe_epochs,
                                  seed=seed, source=args.source)
                   for seed in range(args.seeds)]
        best = [r.accuracy for r in results]
        final = [r.history[-1]["test_acc"] for r in results]
        spread = lambda v: f"± {statistics.stdev(v):.1f}" if len(v) > 1 else ""  # noqa: E731
        label = f"{name} (original)" if original else name
        print(f"{label:24s} max {statistics.mean(best):5.1f} {spread(best):7s} final {statistics.mean(final):5.1f} "
              f"{spread(final):7s} ({time.perf_counter() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
