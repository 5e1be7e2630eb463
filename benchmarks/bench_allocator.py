"""The allocator's share of a phase: bf16/fp32 feature extraction with glibc's malloc kept as hebblib sets it
(``keep_freed_memory``) and as it is by default (``HEBBLIB_KEEP_MEMORY=0``), each in a fresh process, in turn.

    python benchmarks/bench_allocator.py                     # soft, 1,000 subset images, 2 threads, 2 rounds
    python benchmarks/bench_allocator.py --images 500 --precision fp32 --rounds 3

Prints, per setting and round: images/s, user and system CPU seconds and minor page faults of the extraction
alone (after one warm-up split), from ``resource.getrusage``. The features are the same either way.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
import torch
sys.path.insert(0, {root!r})
from hebblib import training
from hebblib.classifier import extract_features
torch.set_num_threads({threads})
run = training.plan_run({preset!r}, source="subset", device="cpu", out="runs/bench-allocator", limit_train={images})
training.prepare_data(run, notice=None)
model = training.initial_model(run).eval()
extract_features(model, run.val, progress=False, precision={precision!r})
before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
extract_features(model, run.train, progress=False, precision={precision!r})
seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"img_s": len(run.train) / seconds, "user_s": after.ru_utime - before.ru_utime,
                  "sys_s": after.ru_stime - before.ru_stime, "minor_faults": after.ru_minflt - before.ru_minflt}}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="soft")
    parser.add_argument("--images", type=int, default=1000, help="training images of the shipped subset (>= 20)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    code = CHILD.format(root=str(ROOT), preset=args.preset, images=args.images, precision=args.precision,
                        threads=args.threads)
    load = os.getloadavg()
    print(f"preset {args.preset!r}, {args.images} subset images, precision {args.precision}, {args.threads} threads; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'allocator':<22}{'img/s':>8}{'user s':>9}{'sys s':>8}{'minor faults':>14}")
    for _ in range(args.rounds):
        for label, keep in (("glibc default", "0"), ("kept (hebblib)", "1")):
            env = {**os.environ, "HEBBLIB_KEEP_MEMORY": keep}
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                print(out.stderr, file=sys.stderr)
                return out.returncode
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{label:<22}{r['img_s']:>8.1f}{r['user_s']:>9.2f}{r['sys_s']:>8.2f}{r['minor_faults']:>14,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
