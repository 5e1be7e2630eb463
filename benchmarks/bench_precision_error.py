"""How far the bf16 path's update is from fp32's: the relative error of ΔW per layer, on real CIFAR-10 batches.

    python benchmarks/bench_precision_error.py --preset soft hard_basic --at 0 50 200

For each preset, a network trained in fp32 for ``--at`` batches (0: as initialised) is given the next batch;
its ΔW (after the layer's update normalisation) is computed five ways from the same weights and images, and
each compared with fp32's as ``‖ΔW − ΔW_fp32‖ / ‖ΔW_fp32‖`` per layer:

* ``bf16``: the bf16 path as the pipeline runs it (forward and update products in bf16, every layer);
* ``bf16 update``: fp32 forward (by the convolutions), only the Hebbian term in bf16 (the same kernel the layer
  uses);
* ``fp64``: the whole network in float64: how much the fp32 engine itself differs from exact arithmetic;
* ``fp32, 1 thread``: fp32 on one thread instead of several (other summation orders, same precision);
* ``fp32 convs``: fp32 with every layer's products by the convolutions (``conv2d_weight`` for the Hebbian term),
  where the default forms a wide learning layer's from explicit patches on the CPU
  (:data:`hebblib.layers.FP32_MATMUL_MIN_FAN_IN`); ``convs − fp64`` is its distance from float64, to set beside
  ``fp64`` (the default's, relative to fp32's ΔW instead of float64's: the same to the digits shown);
* ``next batch``: fp32 on the following batch: how much ΔW changes from one batch to the next anyway.

Hard winner-take-all updates are discontinuous (a near tie decides which unit learns at a position), so any
change of rounding moves them by more than a smooth rule's; the last three rows measure that scale.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import hebblib.layers as layers_module  # noqa: E402
from hebblib.bench import fp32_products  # noqa: E402
from hebblib.layers import compute_precision  # noqa: E402
from hebblib.presets import build_model, resolve_preset  # noqa: E402
from hebblib.runtime import cpu_model, flush_denormals, single_thread  # noqa: E402
from hebblib.training import load_splits, resolve_source  # noqa: E402
from hebblib.update import hebbian_term_from_patches, low_precision_kernel, unfold_patches  # noqa: E402


@contextlib.contextmanager
def bf16_hebbian_term_only():
    """fp32 forward; the Hebbian term from bf16 operands, formed the way the bf16 path forms it."""
    exact = layers_module.hebbian_term

    def bf16_term(x, r, weight_shape, stride=1, dilation=1, groups=1):
        if groups != 1 or x.dtype != torch.float32:
            return exact(x, r, weight_shape, stride, dilation, groups)
        kernel = weight_shape[-2:]
        if low_precision_kernel(x.device.type, weight_shape[1] * kernel[0] * kernel[1]) == "matmul":
            patches = unfold_patches(x.to(torch.bfloat16), kernel, stride, dilation)
            return hebbian_term_from_patches(patches, r.contiguous(memory_format=torch.channels_last), weight_shape)
        cl = torch.channels_last
        return exact(x.to(torch.bfloat16, memory_format=cl), r.to(torch.bfloat16, memory_format=cl), weight_shape,
                     stride, dilation, groups).float()

    layers_module.hebbian_term = bf16_term
    try:
        yield
    finally:
        layers_module.hebbian_term = exact


HOWS = ("bf16", "bf16 update", "fp64", "fp32, 1 thread", "fp32 convs")  # each against fp32's ΔW


def delta_w(model, x, how: str) -> dict:
    """ΔW of every Hebbian layer for batch ``x``, computed ``how``; the model's state is left unchanged."""
    net = copy.deepcopy(model)
    if how == "fp64":
        net, x = net.double(), x.double()
    for layer in net.hebbian_layers().values():
        layer.delta_w.zero_()
    net.train()
    dtype = torch.bfloat16 if how == "bf16" else torch.float32
    swap = bf16_hebbian_term_only() if how == "bf16 update" else contextlib.nullcontext()
    threads = single_thread() if how == "fp32, 1 thread" else contextlib.nullcontext()
    # the convolutions in every layer (the bf16 update's swap replaces their Hebbian term)
    kernels = fp32_products(net, "conv") if how in ("fp32 convs", "bf16 update") else contextlib.nullcontext()
    with torch.no_grad(), compute_precision(net, dtype), swap, threads, kernels:
        net.features(x)
    return {name: layer.delta_w.double() for name, layer in net.hebbian_layers().items()}


def relative(a: dict, b: dict) -> dict:
    return {name: float((a[name] - b[name]).norm() / b[name].norm().clamp_min(1e-300)) for name in b}


def measure(preset: str, at: list[int], root, batch_size: int | None, print_fn=print) -> list[dict]:
    config = resolve_preset(preset)
    source, notice = resolve_source("auto", root)
    if notice:
        print_fn(notice)
    train, _, _ = load_splits(config["data"], root=root, source=source, limit_train=(max(at) + 3) * 64 * 10 // 9 + 64)
    batch_size = batch_size or config["unsupervised"]["batch_size"]
    torch.manual_seed(0)
    model = build_model(config)
    batches = [x for x, _ in train.batches(batch_size, shuffle=True, augment=True,
                                          generator=torch.Generator().manual_seed(1))]
    rows, step = [], 0
    with flush_denormals(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for target in sorted(at):
            while step < target:  # train in fp32 up to the measuring point
                model.train()
                with torch.no_grad():
                    model.features(batches[step])
                model.apply_updates()
                step += 1
            x, following = batches[step], batches[step + 1]
            exact = delta_w(model, x, "fp32")
            row = {"preset": preset, "batch": target}
            computed = {how: delta_w(model, x, how) for how in HOWS}
            for how in HOWS:
                row[how] = relative(computed[how], exact)
            row["convs − fp64"] = relative(computed["fp32 convs"], computed["fp64"])
            row["next batch"] = relative(delta_w(model, following, "fp32"), exact)
            rows.append(row)
            print_fn(format_row(row))
    return rows


def format_row(row: dict) -> str:
    names = list(row["bf16"])
    lines = [f"{row['preset']} after {row['batch']} batches: relative error of ΔW per layer ({', '.join(names)})"]
    for how in (*HOWS, "convs − fp64", "next batch"):
        lines.append(f"  {how:<15}" + "".join(f"{row[how][n]:11.2e}" for n in names))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", nargs="+", default=["soft", "hard_basic"])
    parser.add_argument("--at", nargs="+", type=int, default=[0, 50, 200], help="fp32 training batches before")
    parser.add_argument("--data", default=None, help="CIFAR-10 root (default $HEBBLIB_DATA)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_model()}; {torch.get_num_threads()} threads; torch {torch.__version__}")
    for preset in args.preset:
        measure(preset, args.at, args.data, args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
