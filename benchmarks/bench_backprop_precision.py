"""A backprop training step (forward, loss, backward, Adam) of an end-to-end preset's network in fp32 and
under bf16 autocast (``reproduce --precision bf16`` for an end-to-end preset), interleaved in one process.

    python benchmarks/bench_backprop_precision.py --preset backprop --threads 2 --rounds 3

Random images of the preset's dataset shape, batch 64; subnormals flushed as in training. Prints images/s
of each precision per round and the ratio bf16 / fp32, with the CPU model and flags.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="backprop")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="steps per precision and round")
    args = parser.parse_args(argv)
    import torch
    import torch.nn.functional as F

    from hebblib import training
    from hebblib.runtime import cpu_model, describe_cpu, flush_denormals

    torch.set_num_threads(args.threads)
    run = training.plan_run(args.preset, source="subset", device="cpu", quick=True, progress=False)
    model = training.initial_model(run)
    shape = model.input_shape if hasattr(model, "input_shape") else (3, 32, 32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(64, *shape), torch.randint(0, 10, (64,))

    def step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    flags = " ".join(describe_cpu()["flags"])
    print(f"{cpu_model()} ({flags}); {args.threads} thread(s); preset {args.preset}, batch 64")
    with flush_denormals():
        step(False), step(True)  # warm-up
        for r in range(args.rounds):
            rate = {}
            for bf16 in (False, True):
                started = time.perf_counter()
                for _ in range(args.steps):
                    step(bf16)
                rate[bf16] = args.steps * 64 / (time.perf_counter() - started)
            print(f"round {r + 1}: fp32 {rate[False]:.1f} img/s, bf16 {rate[True]:.1f} img/s: {rate[True] / rate[False]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
