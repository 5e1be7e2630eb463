"""Training throughput of the SoftHebb 3-layer network: the engine's update (one ``conv2d_weight`` call
per layer; on the CPU the third layer's from explicit patches) against a naive baseline that builds every
patch with ``F.unfold`` and multiplies.

    BN(affine=False) → HebbianConv2d 3→96 k5 p2 → Triangle(0.7) → MaxPool(4, 2, 1)
    → BN → HebbianConv2d 96→384 k3 p1 → Triangle(1.4) → MaxPool(4, 2, 1)
    → BN → HebbianConv2d 384→1536 k3 p1 → Triangle(1.0) → AvgPool(2, 2)

soft_wta + softhebb rule, radius learning rates (Nimmo §1.9: 0.08 / 0.005 / 0.01, inverse temperatures
1 / 0.65 / 0.25). One training step = the forward pass plus the update of all three layers. Inputs are
random 3×32×32 tensors (the speed does not depend on the pixels).

The two variants run in ONE process, interleaved round by round (vectorised, naive, vectorised, ...), so
that a busy machine or CPU frequency drift affects both alike; each round times ``--batches`` steps.
Before timing, one batch through two identical networks checks that both compute the same update.

    python benchmarks/bench_layer_update.py --batches 2 --batch-size 64 --rounds 3
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import hebblib.layers  # noqa: E402
from hebblib import HebbianConv2d, Triangle  # noqa: E402
from hebblib.update import unfold_hebbian_term  # noqa: E402


def softhebb_network(seed: int = 0) -> nn.Sequential:
    gen = torch.Generator().manual_seed(seed)

    def hebbian(c_in, c_out, kernel, padding, lr, inverse_temperature):
        return HebbianConv2d(c_in, c_out, kernel, padding=padding, rule="softhebb",
                             competition={"name": "soft_wta", "inverse_temperature": inverse_temperature},
                             lr=lr, lr_schedule="radius", generator=gen)

    return nn.Sequential(
        nn.BatchNorm2d(3, affine=False), hebbian(3, 96, 5, 2, 0.08, 1.0), Triangle(0.7), nn.MaxPool2d(4, 2, 1),
        nn.BatchNorm2d(96, affine=False), hebbian(96, 384, 3, 1, 0.005, 0.65), Triangle(1.4), nn.MaxPool2d(4, 2, 1),
        nn.BatchNorm2d(384, affine=False), hebbian(384, 1536, 3, 1, 0.01, 0.25), Triangle(1.0), nn.AvgPool2d(2, 2),
    )


def hebbian_layers(net):
    return [m for m in net if isinstance(m, HebbianConv2d)]


@contextlib.contextmanager
def naive_update():
    """Swap the layers' Hebbian term for the unfold + matmul baseline (groups = 1 only)."""
    original = hebblib.layers.hebbian_term

    def unfolded(x, r, weight_shape, stride=1, dilation=1, groups=1):
        if groups != 1:
            raise ValueError("the unfold baseline handles groups=1 only")
        return unfold_hebbian_term(x, r, weight_shape, stride, dilation)

    hebblib.layers.hebbian_term = unfolded
    # every layer's update through the Hebbian term swapped above, the wide ones' included (which the engine
    # forms from explicit patches on the CPU: hebblib.layers.FP32_MATMUL_MIN_FAN_IN)
    hebblib.layers.HebbianConv2d.fp32_kernel = "conv"
    try:
        yield
    finally:
        hebblib.layers.hebbian_term = original
        del hebblib.layers.HebbianConv2d.fp32_kernel


def variant(name):
    return naive_update() if name == "naive" else contextlib.nullcontext()


def train_step(net, x):
    with torch.no_grad():
        net(x)
    for layer in hebbian_layers(net):
        layer.apply_update()


def agreement(batch_size, seed):
    """Max over layers of ‖ΔW_naive − ΔW_engine‖ / ‖ΔW_engine‖ for one batch from identical networks."""
    fast = softhebb_network(seed)
    slow = copy.deepcopy(fast)
    x = torch.randn(batch_size, 3, 32, 32, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        fast(x)
        with naive_update():
            slow(x)
    diffs = []
    for a, b in zip(hebbian_layers(fast), hebbian_layers(slow)):
        diffs.append(float((b.delta_w - a.delta_w).norm() / a.delta_w.norm()))
    return diffs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=2, help="timed training steps per variant per round")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, batch {args.batch_size}, {args.batches} batches x {args.rounds} rounds")

    diffs = agreement(args.batch_size, args.seed)
    print("update agreement, naive vs engine (relative L2 diff of ΔW per layer): "
          + ", ".join(f"{d:.1e}" for d in diffs))
    if max(diffs) > 1e-4:
        raise SystemExit("the two updates disagree")

    gen = torch.Generator().manual_seed(args.seed + 2)
    nets = {"engine": softhebb_network(args.seed)}
    nets["naive"] = copy.deepcopy(nets["engine"])
    data = [torch.randn(args.batch_size, 3, 32, 32, generator=gen) for _ in range(args.batches)]
    for name, net in nets.items():  # warm-up: allocator, thread pool, oneDNN primitives
        with variant(name):
            train_step(net, data[0])

    rates = {name: [] for name in nets}
    for round_index in range(args.rounds):
        for name, net in nets.items():
            with variant(name):
                start = time.perf_counter()
                for x in data:
                    train_step(net, x)
                seconds = time.perf_counter() - start
            rates[name].append(args.batches * args.batch_size / seconds)
            print(f"round {round_index + 1}/{args.rounds}  {name:6s}  {rates[name][-1]:8.1f} img/s", flush=True)

    engine, naive = statistics.median(rates["engine"]), statistics.median(rates["naive"])
    print(f"median img/s: engine {engine:.1f}, naive unfold {naive:.1f}; engine / naive = {engine / naive:.2f}x")


if __name__ == "__main__":
    main()
