"""The Hebbian step compiled (``--compile``) against the eager one, per preset, in one process.

    python benchmarks/bench_compile.py [PRESET ...] [--threads T] [--batches B]

For each preset (default: every linear read-out preset that ``scripts/seed_runs.py`` runs), from the same
initial weights on the shipped subset: the relative difference of one step's ΔW per layer, compiled against
eager, in fp32 (rounding, or a hard winner flipped by it: a layer whose winners are an argmax can differ by one
unit's update where two responses tie to rounding), and the seconds per training batch (forward and update
of every layer, then the weight step) in bf16, eager and compiled, interleaved batch-window by batch-window,
after the compiled function has compiled (not timed). Prints the CPU model and flags beside the numbers.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hebblib import training  # noqa: E402
from hebblib.layers import compute_precision, one_step_updates  # noqa: E402
from hebblib.runtime import compile_problem, compiled_features, cpu_model, describe_cpu  # noqa: E402

PRESETS = ("soft", "hard_basic", "optimal", "bcm", "temporal", "adaptive", "presynaptic", "dale", "depthwise",
           "residual", "lagani_short", "softhebb_paper")


def seconds_per_batch(model, forward, batches, dtype) -> float:
    start = time.perf_counter()
    with torch.no_grad(), compute_precision(model, dtype):
        for x in batches:
            forward(x)
            model.apply_updates()
    return (time.perf_counter() - start) / len(batches)


def measure(name: str, batches: int, rounds: int) -> dict:
    run = training.plan_run(name, source="subset", device="cpu", limit_train=max(600, 64 * (batches + 2)),
                            precision="bf16", out="/dev/null")
    training.prepare_data(run, notice=None)
    size = run.config.unsupervised.batch_size
    xs = [x for x, _ in run.train.batches(size, shuffle=True, augment=True)][: 2 + batches]
    model = training.initial_model(run)
    model.train()
    start = copy.deepcopy(model.state_dict())
    fused = compiled_features(model, size)
    deltas = {}
    for label, forward in (("eager", model.features), ("compiled", fused)):
        model.load_state_dict(start)
        deltas[label] = one_step_updates(model, forward, xs[0], torch.float32)
    error = {layer: float((deltas["compiled"][layer] - d).norm() / d.norm().clamp_min(1e-30))
             for layer, d in deltas["eager"].items()}
    model.load_state_dict(start)
    seconds_per_batch(model, fused, xs[1:2], torch.bfloat16)  # compiles bf16 here, untimed
    times = {"eager": 0.0, "compiled": 0.0}
    for _ in range(rounds):
        for label, forward in (("eager", model.features), ("compiled", fused)):
            model.load_state_dict(start)
            times[label] += seconds_per_batch(model, forward, xs[2:], torch.bfloat16) / rounds
    return {"preset": name, "batch": size, "error": error, **times}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="*", default=list(PRESETS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--batches", type=int, default=4, help="timed batches per path and round (default 4)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    args = parser.parse_args(argv)
    if problem := compile_problem("cpu"):
        parser.error(f"torch.compile can't run here: {problem}")
    if args.threads:
        torch.set_num_threads(args.threads)
    flags = " ".join(describe_cpu()["flags"])
    print(f"CPU: {cpu_model()}; {flags}; {torch.get_num_threads()} threads; torch {torch.__version__}")
    print(f"{'preset':<15} {'batch':>5} {'eager s':>8} {'compiled s':>10} {'ratio':>6}  fp32 ΔW, compiled vs eager")
    for name in args.presets:
        r = measure(name, args.batches, args.rounds)
        errors = ", ".join(f"{layer} {e:.1e}" for layer, e in r["error"].items())
        print(f"{name:<15} {r['batch']:>5} {r['eager']:8.3f} {r['compiled']:10.3f} {r['eager'] / r['compiled']:5.2f}x  "
              f"{errors}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
