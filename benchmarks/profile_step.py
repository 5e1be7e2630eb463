"""Where a Hebbian step (or a feature batch) spends its time: a ``torch.profiler`` table of a few batches.

    python benchmarks/profile_step.py                                   # soft, training steps, bf16, compiled
    python benchmarks/profile_step.py --mode features --batch 200       # the frozen network's forward pass
    python benchmarks/profile_step.py --preset hard_basic --precision fp32 --eager --batches 4

Builds the preset's network from its initial weights, takes real images of the shipped subset (its full
batches, again from the first when more are asked for), runs
``--warmup`` batches untimed (the compiled function compiles there), then profiles ``--batches`` batches: in
``train`` mode the forward pass with the Hebbian update of every layer and the weight step, in ``features``
mode the forward pass alone (eval mode, as the feature cache runs it). Subnormals are flushed and the
allocator kept as in a run (:func:`hebblib.runtime.flush_denormals`). With ``--compile`` inductor's kernel
profiling is on, so each fused loop is its own row (``graph_0_cpp_fused_...``) instead of one opaque call.
Prints the CPU, the milliseconds per batch and images/s, the matrix products' share and rate (``aten::mm`` and
``aten::addmm``, FLOPs counted from their shapes), and the table sorted by self CPU time.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hebblib import training  # noqa: E402
from hebblib.layers import compute_precision  # noqa: E402
from hebblib.runtime import (PRECISION_DTYPES, compile_problem, compiled_features, cpu_model,  # noqa: E402
                             describe_cpu, flush_denormals)

MODES = ("train", "features")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="soft")
    parser.add_argument("--mode", choices=MODES, default="train")
    parser.add_argument("--precision", choices=sorted(PRECISION_DTYPES), default="bf16")
    parser.add_argument("--eager", action="store_true", help="the eager forward pass (default: compiled)")
    parser.add_argument("--batch", type=int, default=None,
                        help="images per batch (default: the preset's Hebbian batch in train mode, 200 in features)")
    parser.add_argument("--batches", type=int, default=9, help="profiled batches (default 9)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches first (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--rows", type=int, default=25, help="rows of the table (default 25)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("batches", "threads", "rows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 1:
        parser.error(f"--warmup must be >= 1 (the first batch compiles), got {args.warmup}")
    if args.batch is not None and args.batch < 2:
        parser.error(f"--batch must be >= 2, got {args.batch}")
    compiled = not args.eager
    if compiled and (problem := compile_problem("cpu")):
        parser.error(f"torch.compile can't run here: {problem}; pass --eager")
    torch.set_num_threads(args.threads)
    if compiled:
        import torch._inductor.config as inductor_config
        inductor_config.cpp.enable_kernel_profile = True

    train = args.mode == "train"
    run = training.plan_run(args.preset, source="subset", device="cpu", precision=args.precision, out="/dev/null")
    size = args.batch or (run.config.unsupervised.batch_size if train else 200)
    training.prepare_data(run, notice=None)
    torch.manual_seed(0)
    full = [x for x, _ in run.train.batches(size, shuffle=True, augment=False) if x.shape[0] == size]
    if not full:
        parser.error(f"the shipped subset has {len(run.train)} training images: not one batch of {size}")
    xs = [full[i % len(full)] for i in range(args.warmup + args.batches)]  # the subset's batches, again if need be
    model = training.initial_model(run)
    model.train(train)
    forward = compiled_features(model, size) if compiled else model.features

    def step(x):
        forward(x)
        if train:
            model.apply_updates()

    from torch.profiler import ProfilerActivity, profile
    with flush_denormals(), torch.no_grad(), compute_precision(model, PRECISION_DTYPES[args.precision]):
        for x in xs[: args.warmup]:
            step(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            start = time.perf_counter()
            for x in xs[args.warmup:]:
                step(x)
            seconds = time.perf_counter() - start
    flags = " ".join(describe_cpu()["flags"])
    print(f"CPU: {cpu_model()}; {flags or 'no flags of note'}; {args.threads} threads; torch {torch.__version__}")
    print(f"{args.preset} {args.mode}, {args.precision}, {'compiled' if compiled else 'eager'}, batch {size}: "
          f"{1000 * seconds / args.batches:.1f} ms a batch, {size * args.batches / seconds:.1f} img/s")
    products, flops = 0.0, 0.0
    for event in prof.key_averages(group_by_input_shape=True):
        if event.key in ("aten::mm", "aten::addmm") and event.input_shapes:
            first = 0 if event.key == "aten::mm" else 1  # mm(a, b[, out]), addmm(bias, a, b)
            a, b = event.input_shapes[first:first + 2]
            flops += 2 * a[0] * a[1] * b[1] * event.count
            products += event.self_cpu_time_total / 1e6
    if products:
        print(f"matrix products: {1000 * products / args.batches:.1f} ms a batch "
              f"({100 * products / seconds:.0f} % of the wall time), {flops / products / 1e9:,.0f} GFLOP/s")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=60))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
