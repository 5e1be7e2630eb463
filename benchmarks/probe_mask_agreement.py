"""Does the short dropout mask (``hebblib.dropout.field_bits``: one random bit per value at p = 0.5; first
the compiled probe's, FastDropout's default since commit 0b2784a) train the head as well as the 16-bit mask
(``FastDropout(p, bits=16)``, every probe's through f97bf58)? Same Hebbian weights, same cached features,
same head initialisation and batch order; only the mask's reading of the random words differs (both laws
through the compiled probe).

    python benchmarks/probe_mask_agreement.py --preset soft --seed 1 --out runs/compiled --data ROOT \\
        --heads 0 1 --mask-seeds 700 800

The run folder's Hebbian checkpoint is used when it is there (``python -m hebblib reproduce --preset soft
--first-seed 1 --seeds 1 --source full --precision bf16 --compile --out runs/compiled`` makes it), else the
Hebbian phase is trained first. For each head seed ``s`` and mask seed ``m`` both laws train a fresh head
(initialised under seed ``100 + s``, batches drawn from ``200 + s``, masks from the global generator seeded
``m + s``; ``--mask-seeds none`` keeps drawing from the initialisation's stream). Prints each pair's test
accuracy (final epoch and mean of the last five) and each law's mean ± sample std over all its heads: the
spread between mask seeds of one law is the scale any difference between the laws must be read against.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="soft")
    parser.add_argument("--seed", type=int, default=1, help="the run's seed (its Hebbian phase)")
    parser.add_argument("--out", required=True, help="the runs folder holding (or to hold) the run")
    parser.add_argument("--data", default=None, help="the data root (default: $HEBBLIB_DATA)")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--heads", type=int, nargs="+", default=[0, 1], help="head seeds s")
    parser.add_argument("--mask-seeds", nargs="+", default=["700", "800"], help="mask seeds m, or 'none'")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    masks = []
    for value in args.mask_seeds:
        if value != "none" and not value.isdigit():
            parser.error(f"--mask-seeds: {value!r} is neither a non-negative integer nor 'none'")
        masks.append(None if value == "none" else int(value))
    import torch

    from hebblib import classifier
    from hebblib.dropout import field_bits
    from hebblib.runtime import cpu_model, describe_cpu
    from hebblib.training import hebbian_phase, initial_model, plan_run, prepare_data, run_folder, split_features

    if args.threads:
        torch.set_num_threads(args.threads)
    run = plan_run(args.preset, seed=args.seed, source="full", device="cpu", precision=args.precision, compile=True,
                   out=args.out, root=args.data, progress=False)
    prepare_data(run)
    run_folder(run)
    model = initial_model(run)
    hebbian_phase(run, model)
    feats, mirrored = split_features(run, model)
    flags = " ".join(describe_cpu()["flags"])
    print(f"{cpu_model()} ({flags}); {torch.get_num_threads()} thread(s); {run.label}, features "
          f"{run.timings['features']:.0f} s")
    sup, head0 = run.config.supervised, copy.deepcopy(torch.nn.Sequential(model.dropout, model.classifier))
    laws = {16: 16, field_bits(head0[0].p): None}  # FastDropout's bits: 16, or the fewest (its default)
    finals: dict[int, list[float]] = {bits: [] for bits in laws}
    for s in args.heads:
        for m in masks:
            line = []
            for bits, law in laws.items():
                head = copy.deepcopy(head0)
                head[0].bits = law
                torch.manual_seed(100 + s)
                head[1].reset_parameters()
                if m is not None:
                    torch.manual_seed(m + s)
                started = time.perf_counter()
                history = classifier.train_linear_probe(
                    head, (feats["train"], run.train.labels) + ((mirrored,) if sup.augment else ()),
                    (feats["val"], run.val.labels), (feats["test"], run.test.labels), epochs=run.epochs,
                    lr=sup.lr, batch_size=sup.batch_size, schedule=sup.schedule, augment=sup.augment,
                    generator=torch.Generator().manual_seed(200 + s), progress=False, compile=True)
                final = history[-1]["test_acc"]
                last5 = statistics.mean(e["test_acc"] for e in history[-5:])
                finals[bits].append(final)
                line.append(f"{bits:2d}-bit final {final:.2f} last-5 {last5:.2f} "
                            f"({time.perf_counter() - started:.0f} s)")
            print(f"head seed {s}, mask seed {m}: " + " | ".join(line), flush=True)
    for bits, values in finals.items():
        spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
        print(f"{bits:2d}-bit masks: final {statistics.mean(values):.2f}{spread} % over {len(values)} heads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
