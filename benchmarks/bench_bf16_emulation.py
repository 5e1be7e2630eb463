"""bf16 matrix products three ways on this CPU: fp32, PyTorch's bf16 kernel, and hebblib's emulation.

    python benchmarks/bench_bf16_emulation.py                      # sizes 256 512 1024, 2 threads
    python benchmarks/bench_bf16_emulation.py --sizes 1024 2048 --native-up-to 512

Square products, the three timed interleaved in one process, each the fastest of ``--repeats`` after a
warm-up (:func:`hebblib.bench.measured_peak`, with ``hebblib.update.bf16_products`` set to ``native`` or
``emulated``). On a CPU without bf16 instructions PyTorch's bf16 product is a generic loop (on the 2-core AMD
EPYC of docs/performance.md about 1 GFLOP/s), which is why hebblib emulates it there: the bf16 operands
widened to fp32, an fp32 product, the result rounded to bf16. ``--native-up-to`` skips the native kernel above
that size (it can take minutes there).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hebblib import update  # noqa: E402
from hebblib.bench import measured_peak  # noqa: E402
from hebblib.runtime import cpu_model, describe_cpu  # noqa: E402


def rates(size: int, repeats: int, native: bool) -> dict:
    """GFLOP/s of fp32, native bf16 (when ``native``) and emulated bf16 products of ``size``."""
    cpu, before, out = torch.device("cpu"), update.bf16_products, {}
    try:
        out["fp32"] = measured_peak(cpu, torch.float32, size, repeats) / 1e9
        if native:
            update.bf16_products = "native"
            out["bf16 native"] = measured_peak(cpu, torch.bfloat16, size, repeats) / 1e9
        update.bf16_products = "emulated"
        out["bf16 emulated"] = measured_peak(cpu, torch.bfloat16, size, repeats) / 1e9
    finally:
        update.bf16_products = before
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=3, help="timed products per kind and size (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--native-up-to", type=int, default=1024,
                        help="time PyTorch's own bf16 kernel only up to this size (default 1024)")
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.repeats < 1 or args.threads < 1:
        parser.error(f"--sizes, --repeats and --threads must be >= 1; got {args.sizes}, {args.repeats}, "
                     f"{args.threads}")
    torch.set_num_threads(args.threads)
    flags = " ".join(describe_cpu()["flags"])
    print(f"CPU: {cpu_model()}; {flags or 'no flags of note'}; torch CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; {args.threads} threads; torch {torch.__version__}; "
          f"bf16 products by default: {'emulated' if update.emulate_bf16(torch.device('cpu')) else 'native'}")
    print(f"{'size':>6} {'fp32':>10} {'bf16 native':>12} {'bf16 emulated':>14}   GFLOP/s (emulated/fp32)")
    for size in args.sizes:
        r = rates(size, args.repeats, size <= args.native_up_to)
        native = f"{r['bf16 native']:12.1f}" if "bf16 native" in r else f"{'(skipped)':>12}"
        print(f"{size:6d} {r['fp32']:10.1f} {native} {r['bf16 emulated']:14.1f}   "
              f"({r['bf16 emulated'] / r['fp32']:.2f}x)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
