"""The parts of the linear probe's work that changed with the short dropout mask, each timed against what it
replaced, interleaved round by round in one process:

    python benchmarks/bench_probe_parts.py --threads 2 --rounds 5

* the dropout of one batch (64 × 24,576 half-precision rows, as the ``soft`` net's cache, to fp32):
  ``FastDropout(0.5, bits=16)`` after ``.float()`` (the 16-bit masks drawn through commit f97bf58) against
  ``FastDropout(0.5)`` widening and dropping out in one product (one random bit a value);
* one step of Adam on the head's 245,770 weights on one thread: multi-tensor (torch's default) against fused;
* scoring 15,000 held-out rows (``soft``'s validation and test splits): 4,096 rows a batch against 128.

Prints the CPU, then each part's median milliseconds over the rounds (each round the mean of ``--reps``
calls) and the ratio. Random data of the same shapes; the values each pair computes are not compared here
(``tests/test_dropout.py`` and ``tests/test_training.py`` check them).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hebblib.classifier import _correct_on_features  # noqa: E402
from hebblib.dropout import FastDropout  # noqa: E402
from hebblib.runtime import cpu_model, describe_cpu, flush_denormals, keep_freed_memory, single_thread  # noqa: E402


def _ms(fn, reps: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=20, help="calls of each part per round (default 20)")
    parser.add_argument("--width", type=int, default=24576)
    args = parser.parse_args(argv)
    for name in ("threads", "rounds", "reps", "width"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    allocator = keep_freed_memory()  # as in a run
    g = torch.Generator().manual_seed(0)
    rows = torch.rand(64, args.width, generator=g).half()
    held = torch.rand(15000, args.width, generator=g).half()
    labels = torch.randint(0, 10, (15000,), generator=g)
    head = torch.nn.Linear(args.width, 10)
    head.weight.grad, head.bias.grad = torch.randn_like(head.weight), torch.randn_like(head.bias)
    adams = {fused: torch.optim.Adam(head.parameters(), lr=1e-3, fused=fused) for fused in (False, True)}
    sixteen, short = FastDropout(0.5, bits=16), FastDropout(0.5)

    def adam(fused):
        with single_thread():
            adams[fused].step()

    pairs = {
        "dropout of a batch": (lambda: sixteen(rows.float()), lambda: short(rows, torch.float32)),
        "Adam step": (lambda: adam(False), lambda: adam(True)),
        "scoring 15,000 rows": (lambda: _correct_on_features(head, held, labels, batch_size=4096),
                                lambda: _correct_on_features(head, held, labels, batch_size=128)),
    }
    reps = {"scoring 15,000 rows": max(1, args.reps // 10)}
    print(f"{cpu_model()} ({' '.join(describe_cpu()['flags'])}); {args.threads} thread(s); allocator {allocator}; "
          f"{args.rounds} rounds")
    times = {name: ([], []) for name in pairs}
    with flush_denormals():
        for _ in range(args.rounds):
            for name, (before, after) in pairs.items():
                n = reps.get(name, args.reps)
                times[name][0].append(_ms(before, n))
                times[name][1].append(_ms(after, n))
    for name, (before, after) in times.items():
        a, b = statistics.median(before), statistics.median(after)
        print(f"{name:22s} before {a:8.2f} ms   now {b:8.2f} ms   {a / b:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
