"""The temporal competition's threshold: ``torch.median`` over its history against ``lower_median`` (NumPy's
selection along contiguous rows), in the same process, on the history shapes of the ``temporal`` preset's three
layers (500 samples of 96 × 32 × 32, 384 × 16 × 16, 1536 × 8 × 8).

    python benchmarks/bench_temporal_median.py                    # bf16, 1 thread, 3 rounds
    python benchmarks/bench_temporal_median.py --dtype fp32 --threads 2

Prints, per layer: the median seconds of each over the rounds, their ratio, whether the values are equal, and the
seconds of one whole competition forward (history update, threshold, gate, winner) as the library runs it. Then,
with ``--steps N`` (default 3; 0 skips it), the whole Hebbian training step of the ``temporal`` network (forward
of all three layers, competition, update; flush-to-zero, the dtype's products) on N batches of random images after
its histories are full, with the library's ``lower_median`` and with ``torch.median`` in its place.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hebblib import competitions  # noqa: E402
from hebblib.bench import subnormals  # noqa: E402
from hebblib.competitions import TemporalCompetition, lower_median  # noqa: E402
from hebblib.layers import compute_precision  # noqa: E402
from hebblib.presets import build_model, resolve_preset  # noqa: E402
from hebblib.runtime import cpu_model, describe_cpu  # noqa: E402

SHAPES = {"conv1": (96, 32, 32), "conv2": (384, 16, 16), "conv3": (1536, 8, 8)}
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def seconds(fn, rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_seconds(model, batches, dtype, median) -> float:
    """Seconds a Hebbian step of ``model`` over ``batches``, with ``median`` as the competition's median."""
    kept = competitions.lower_median
    competitions.lower_median = median
    try:
        with ExitStack() as stack, torch.no_grad():
            stack.enter_context(subnormals(True, torch.device("cpu")))
            stack.enter_context(compute_precision(model, dtype))
            start = time.perf_counter()
            for x in batches:
                model.features(x)
                model.apply_updates()
            return (time.perf_counter() - start) / len(batches)
    finally:
        competitions.lower_median = kept


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    flags = " ".join(describe_cpu()["flags"])
    print(f"CPU: {cpu_model()} ({flags}); {args.threads} thread(s), {args.dtype}, window {args.window}, "
          f"batch {args.batch}")
    print(f"{'layer':6} {'torch.median s':>15} {'lower_median s':>15} {'ratio':>6} {'equal':>6} {'forward s':>10}")
    g = torch.Generator().manual_seed(0)
    for name, shape in SHAPES.items():
        competition = TemporalCompetition(window=args.window)
        for _ in range(-(-args.window // args.batch)):  # fill the history
            competition(torch.randn((args.batch, *shape), generator=g).to(dtype))
        history = competition.history
        baseline = seconds(lambda: history.median(dim=0).values, args.rounds)
        ours = seconds(lambda: lower_median(history), args.rounds)
        equal = torch.equal(history.median(dim=0).values, lower_median(history))
        u = torch.randn((args.batch, *shape), generator=g).to(dtype)
        forward = seconds(lambda: competition(u), args.rounds)
        print(f"{name:6} {baseline:15.3f} {ours:15.3f} {baseline / ours:5.1f}x {str(equal):>6} {forward:10.3f}")
    if args.steps:
        config = resolve_preset("temporal")
        config["hebbian"]["competition"]["window"] = args.window
        torch.manual_seed(0)
        model = build_model(config)
        fill = [torch.randn(args.batch, 3, 32, 32, generator=g) for _ in range(-(-args.window // args.batch))]
        step_seconds(model, fill, dtype, lower_median)  # histories full, weights past their first updates
        batches = [torch.randn(args.batch, 3, 32, 32, generator=g) for _ in range(args.steps)]
        state = {k: v.clone() for k, v in model.state_dict().items()}
        timed = {}
        for label, median in (("torch.median", lambda x: x.median(dim=0).values), ("lower_median", lower_median)):
            model.load_state_dict(state)
            timed[label] = step_seconds(model, batches, dtype, median)
        print(f"whole Hebbian step of temporal, batch {args.batch}, mean of {args.steps}: torch.median "
              f"{timed['torch.median']:.3f} s, lower_median {timed['lower_median']:.3f} s "
              f"({timed['torch.median'] / timed['lower_median']:.2f}x; "
              f"{args.batch / timed['torch.median']:.1f} -> {args.batch / timed['lower_median']:.1f} img/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
