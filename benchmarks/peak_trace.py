"""The matrix-product peak of this machine, probed again and again: is the chip's speed steady while you measure?

    python benchmarks/peak_trace.py                          # bf16 and fp32, 2 threads, 60 s each
    python benchmarks/peak_trace.py --dtype bf16 --threads 1 --seconds 30

Each probe is :func:`hebblib.bench.measured_peak` (a square 2048 product, the fastest of 5 after a warm-up),
then a pause of ``--pause`` seconds. Prints every probe in GFLOP/s and their minimum, median and maximum, with
the CPU model and flags. On a machine shared with other tenants the series shows what a single timing cannot:
on the 2-core AMX machine of docs/performance.md the bf16 probes jump between two levels about 2.7x apart
from one second to the next, so timings of minutes there are a mixture of both speeds.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hebblib.bench import measured_peak  # noqa: E402
from hebblib.runtime import PRECISION_DTYPES, cpu_model, describe_cpu  # noqa: E402


def trace(dtype: torch.dtype, seconds: float, pause: float) -> list[float]:
    """GFLOP/s of successive probes for ``seconds``."""
    values, start = [], time.monotonic()
    while time.monotonic() - start < seconds:
        values.append(measured_peak(torch.device("cpu"), dtype) / 1e9)
        time.sleep(pause)
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", choices=sorted(PRECISION_DTYPES), nargs="+", default=["bf16", "fp32"])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to probe each dtype (default 60)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between probes (default 1)")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.seconds <= 0 or args.pause < 0:
        parser.error(f"--threads must be >= 1, --seconds > 0 and --pause >= 0; got {args.threads}, "
                     f"{args.seconds}, {args.pause}")
    torch.set_num_threads(args.threads)
    flags = " ".join(describe_cpu()["flags"])
    print(f"CPU: {cpu_model()}; {flags or 'no flags of note'}; {args.threads} threads; torch {torch.__version__}")
    for name in args.dtype:
        values = trace(PRECISION_DTYPES[name], args.seconds, args.pause)
        print(f"{name}: {len(values)} probes, GFLOP/s min {min(values):,.0f}, median {statistics.median(values):,.0f}, "
              f"max {max(values):,.0f} (max/min {max(values) / min(values):.1f}x)")
        print("  " + " ".join(f"{v:.0f}" for v in values), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
