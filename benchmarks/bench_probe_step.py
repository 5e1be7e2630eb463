"""The linear probe's epoch on cached features, this checkout against the code of another commit, in one
process, interleaved round by round (so load from other jobs affects both alike).

    python benchmarks/bench_probe_step.py --against 525e554 --threads 2 --rows 9000 --rounds 3 [--compile]

Features: random bf16 rows of the ``soft`` network's width (24,576) and their mirrored cache, batch 64,
flips drawn per sample, FastDropout(0.5) + Linear. Prints each round's seconds per epoch and the ratio
(the other commit / this checkout), and says where the two end with other weights or records (commits that
draw other dropout masks, or sum in another order). After the epoch, validation and test rows (``--held-rows``,
default 5,000 and 10,000 as in ``soft``'s splits) are scored. ``--compile``: both train with ``compile=True``
(the compiled batch on the CPU).
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _module_at(rev: str, path: str, name: str, folder: Path):
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout
    file = folder / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(f"hebblib.{name}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, help="a commit whose classifier.py and dropout.py to time")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=9000, help="cached training rows (default 9,000)")
    parser.add_argument("--width", type=int, default=24576)
    parser.add_argument("--held-rows", type=int, nargs=2, default=(5000, 10000), metavar=("VAL", "TEST"),
                        help="validation and test rows, scored after the epoch (default 5,000 and 10,000, as soft's)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="both commits' compiled probe batch")
    args = parser.parse_args(argv)
    import torch

    import hebblib.classifier as current
    from hebblib.dropout import FastDropout
    from hebblib.runtime import cpu_model, describe_cpu

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        other = _module_at(args.against, "hebblib/classifier.py", "bench_old_classifier", Path(folder))
        other_dropout = _module_at(args.against, "hebblib/dropout.py", "bench_old_dropout", Path(folder))
    g = torch.Generator().manual_seed(0)
    feats = torch.rand(args.rows, args.width, generator=g).bfloat16()
    mirrored = torch.rand(args.rows, args.width, generator=g).bfloat16()
    labels = torch.randint(0, 10, (args.rows,), generator=g)
    val_rows, test_rows = args.held_rows
    val = (torch.rand(val_rows, args.width, generator=g).bfloat16(), torch.randint(0, 10, (val_rows,), generator=g))
    test = (torch.rand(test_rows, args.width, generator=g).bfloat16(), torch.randint(0, 10, (test_rows,), generator=g))

    def epoch(module, dropout):
        torch.manual_seed(5)
        head = torch.nn.Sequential(dropout(0.5), torch.nn.Linear(args.width, 10))
        started = time.perf_counter()
        history = module.train_linear_probe(head, (feats, labels, mirrored), val, test, epochs=1, progress=False,
                                            generator=torch.Generator().manual_seed(1), compile=args.compile)
        return time.perf_counter() - started, head[1].weight.detach().clone(), history

    flags = " ".join(describe_cpu()["flags"])
    print(f"{cpu_model()} ({flags}); {args.threads} thread(s); {args.rows:,} rows × {args.width:,} bf16 features, "
          f"batch 64{', compiled batches' if args.compile else ''}")
    epoch(other, other_dropout.FastDropout)
    epoch(current, FastDropout)  # warm-up
    for r in range(args.rounds):
        a, b = epoch(other, other_dropout.FastDropout), epoch(current, FastDropout)
        same = torch.equal(a[1], b[1]) and a[2] == b[2]
        print(f"round {r + 1}: {args.against} {a[0]:.2f} s, this checkout {b[0]:.2f} s: {a[0] / b[0]:.2f}x"
              f"{'' if same else '  (other weights or records)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
