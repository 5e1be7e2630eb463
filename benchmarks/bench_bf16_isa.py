"""Is bf16 faster than fp32 on this CPU, and on the CPUs it can stand in for? The basis of ``precision='auto'``.

    python benchmarks/bench_bf16_isa.py                       # oneDNN at this CPU's best, then capped
    python benchmarks/bench_bf16_isa.py --caps ALL AVX512_CORE_BF16 AVX512_CORE

For each ``ONEDNN_MAX_CPU_ISA`` cap (a fresh process each, since oneDNN reads it once), the same process times
fp32 and bf16, interleaved, best of ``--repeats``: a 2048² matrix product, and the two products of SoftHebb's
widest layer (conv3: 384→1536, 3×3, 8×8 outputs, batch 64) as the bf16 path forms them: the forward
convolution (channels-last) and the Hebbian term as a matrix product over explicit patches. With the cap at
``AVX512_CORE_BF16`` an AMX machine runs the kernels of a CPU with AVX512-BF16 but no AMX (Cooper Lake, Zen 4);
at ``AVX512_CORE`` those of one without bf16 arithmetic. (The cap limits oneDNN only; the fp32 matrix product
goes through MKL and is unaffected.)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def measure(repeats: int) -> dict:
    import torch
    import torch.nn.functional as F

    from hebblib.runtime import flush_denormals
    from hebblib.update import hebbian_term_from_patches, unfold_patches

    def best(fn):
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    g = torch.Generator().manual_seed(0)
    a = torch.randn(2048, 2048, generator=g)
    x = torch.randn(64, 384, 10, 10, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(1536, 384, 3, 3, generator=g).contiguous(memory_format=torch.channels_last)
    r = torch.randn(64, 1536, 8, 8, generator=g).contiguous(memory_format=torch.channels_last)
    conv_flop = 2 * 64 * 1536 * 384 * 9 * 64
    out = {}
    with flush_denormals():
        for _ in range(2):  # interleaved: fp32, bf16, fp32, bf16
            for dtype in (torch.float32, torch.bfloat16):
                name = "fp32" if dtype == torch.float32 else "bf16"
                ad, xd, wd = a.to(dtype), x.to(dtype), w.to(dtype)
                patches = unfold_patches(xd, (3, 3))
                rows = {
                    "matmul 2048²": 2 * 2048**3 / best(lambda: ad @ ad),
                    "conv3 forward": conv_flop / best(lambda: F.conv2d(xd, wd)),
                    "conv3 Hebbian term": conv_flop / best(lambda: hebbian_term_from_patches(patches, r, w.shape)),
                }
                for key, value in rows.items():
                    out.setdefault(name, {})[key] = max(out.get(name, {}).get(key, 0.0), value)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--caps", nargs="+", default=["ALL", "AVX512_CORE_BF16", "AVX512_CORE"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.repeats)))
        return 0
    from hebblib.runtime import cpu_model

    import torch
    print(f"CPU: {cpu_model()}; {torch.get_num_threads()} threads; load average {os.getloadavg()}")
    print(f"{'ONEDNN_MAX_CPU_ISA':<20} {'product':<20} {'fp32 GFLOP/s':>13} {'bf16 GFLOP/s':>13} {'bf16/fp32':>10}")
    for cap in args.caps:
        env = {**os.environ, "ONEDNN_MAX_CPU_ISA": cap}
        done = subprocess.run([sys.executable, __file__, "--child", "--repeats", str(args.repeats)], env=env,
                              capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        for key in result["fp32"]:
            fp32, bf16 = result["fp32"][key], result["bf16"][key]
            print(f"{cap:<20} {key:<20} {fp32 / 1e9:13.0f} {bf16 / 1e9:13.0f} {bf16 / fp32:9.2f}x")
    print(f"load average after {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
