"""The frozen network's forward pass (the feature extraction) three ways, interleaved round by round in one
process, on real CIFAR-10 images:

    python benchmarks/bench_frozen_features.py --threads 2 --rounds 5
    python benchmarks/bench_frozen_features.py --checkpoint runs/seeds/soft/<key>/seed0/unsupervised.pt

* ``channels-first``: the path before the frozen layers kept their activity channels-last (the one through
  commit f37933c): each block's convolution in the usual layout (the wide conv3 channels-last and back), the
  Triangle as ``relu(u − mean_o u) ** p`` (three passes: the channel mean, the subtraction, the ReLU), a
  channels-last copy for the max-pool and back;
* ``channels-last``: the frozen layers' output channels-last from the convolution to the flattening, the
  Triangle still by subtraction;
* ``default``: ``model.features`` as the library runs it (channels-last, and the Triangle's channel mean taken
  out by centring the filters: ``relu(W_c ⊛ x) ** p`` with ``W_c = W − mean_o W``).

Prints the CPU, then per way the median images/s over the rounds, its ratio to ``channels-first``, the
convolutions' GFLOP/s and their fraction of the fp32 matrix peak probed in each round (median), and the
features' relative distance (Frobenius) from the same blocks in float64. The network is the preset's at
initialisation, or the trained Hebbian weights of a run's ``unsupervised.pt`` (``--checkpoint``). Only
networks of plain convolution blocks (``soft``, ``hard_basic``, ``optimal`` and the other presets of their
architectures).
"""
from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hebblib.bench import layer_flops, measured_peak  # noqa: E402
from hebblib.data import DeviceDataset, fit_zca, load_cifar  # noqa: E402
from hebblib.layers import CHANNELS_LAST_MIN_FAN_IN  # noqa: E402
from hebblib.networks.blocks import ConvBlock, activate_and_pool  # noqa: E402
from hebblib.presets import build_model, resolve_preset  # noqa: E402
from hebblib.runtime import cpu_model, describe_cpu, flush_denormals, keep_freed_memory  # noqa: E402

WAYS = ("channels-first", "channels-last", "default")


def channels_first(net, x):
    """The frozen forward pass as the library ran it through f37933c."""
    for stage in net.stages:
        layer = stage.conv
        x_padded, w = layer.pad(stage.norm(x)), layer.effective_weight()
        if w[0].numel() >= CHANNELS_LAST_MIN_FAN_IN:
            cl = torch.channels_last
            u = F.conv2d(x_padded.contiguous(memory_format=cl), w.contiguous(memory_format=cl),
                         stride=layer.stride, dilation=layer.dilation).contiguous()
        else:
            u = F.conv2d(x_padded, w, stride=layer.stride, dilation=layer.dilation)
        x = activate_and_pool(stage.act, stage.pool, u)  # a channel-first u: the pooled map comes back so
    return x.flatten(1)


def channels_last(net, x):
    """Every layer's output channels-last (the layers' eval-mode convolution), the Triangle by subtraction."""
    for stage in net.stages:
        x = activate_and_pool(stage.act, stage.pool, stage.conv(stage.norm(x)))
    return x.flatten(1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="soft")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a run's unsupervised.pt: its trained Hebbian weights (default: the initial network)")
    parser.add_argument("--images", type=int, default=1000, help="test images per round (default 1000)")
    parser.add_argument("--batch", type=int, default=200, help="images a batch (default 200, the CPU's)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--source", choices=("subset", "full"), default="subset",
                        help="the shipped subset (default) or the full CIFAR-10")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("images", "batch", "rounds", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    config = resolve_preset(args.preset)
    net = build_model(config)
    if not all(isinstance(stage, ConvBlock) and stage.act.__class__.__name__ == "Triangle" and not
               stage.subtract_threshold for stage in net.stages):
        parser.error(f"--preset {args.preset}: its network has blocks other than convolution + Triangle + pool; "
                     f"this bench times those only (soft, hard_basic, optimal, ...)")
    if args.checkpoint is not None:
        if not args.checkpoint.is_file():
            parser.error(f"--checkpoint {args.checkpoint}: no such file")
        try:
            net.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True)["model"])
        except (KeyError, TypeError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
            parser.error(f"--checkpoint {args.checkpoint}: not the Hebbian weights of --preset {args.preset} "
                         f"({type(err).__name__}: {str(err).splitlines()[0][:160]})")
    net.eval()
    torch.set_num_threads(args.threads)
    allocator = keep_freed_memory()  # as in a run

    train_images, _ = load_cifar(True, source=args.source)
    images, labels = load_cifar(False, source=args.source)
    normalization = config["data"].get("normalization", "none")
    zca = (fit_zca(train_images, eps=config["data"].get("zca_eps", 1e-3), cache=False)
           if normalization == "zca" else None)
    data = DeviceDataset(images[: args.images], labels[: args.images], normalization, zca, augment=False)
    batches = [data.get(slice(s, min(s + args.batch, len(data))), None)[0] for s in range(0, len(data), args.batch)]
    flops = sum(layer_flops(net, batches[0]).values()) * len(data)  # the forward convolutions

    ways = {"channels-first": lambda x: channels_first(net, x), "channels-last": lambda x: channels_last(net, x),
            "default": net.features}
    with torch.no_grad(), flush_denormals():
        reference = channels_first(net.double(), batches[0].double())
        net.float()
        distance = {name: ((way(batches[0]).double() - reference).norm() / reference.norm()).item()
                    for name, way in ways.items()}
        for way in ways.values():  # warm-up
            way(batches[0])
        seconds, peaks = {name: [] for name in ways}, []
        for r in range(args.rounds):
            peaks.append(measured_peak(torch.device("cpu")))
            for name in (WAYS if r % 2 == 0 else WAYS[::-1]):
                start = time.perf_counter()
                for x in batches:
                    ways[name](x)
                seconds[name].append(time.perf_counter() - start)
    peak = statistics.median(peaks)
    print(f"{cpu_model()} ({' '.join(describe_cpu()['flags'])}); {args.threads} thread(s); allocator {allocator}; "
          f"{args.preset} ({'trained: ' + args.checkpoint.name if args.checkpoint else 'initial weights'}), "
          f"{len(data)} {args.source} test images in batches of {args.batch}; {args.rounds} rounds; fp32 peak "
          f"{peak / 1e9:.0f} GFLOP/s (median of {len(peaks)} probes, {min(peaks) / 1e9:.0f}–{max(peaks) / 1e9:.0f})")
    base = statistics.median(seconds["channels-first"])
    for name in WAYS:
        s = statistics.median(seconds[name])
        print(f"{name:15s} {len(data) / s:7.1f} img/s  {base / s:5.2f}x   convolutions {flops / s / 1e9:6.1f} GFLOP/s "
              f"({100 * flops / s / peak:3.0f} % of peak)   distance from float64 {distance[name]:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
