"""The frozen-feature cache of a preset's network: time and transient memory of ``extract_features``.

    python benchmarks/bench_feature_cache.py --preset soft --images 1000 --rounds 2
    python benchmarks/bench_feature_cache.py --preset residual --images 1000 --memory 500 100

Speed: ``hebblib.classifier.extract_features`` (float16, switching to bfloat16 in place at the first
batch beyond float16's range) against a baseline that checks the range only at the end of the split and
then computes the whole split again in bfloat16 (what the cache did before). The two alternate round by
round in one process on the same images and network, so a busy machine affects both alike, and must
give the same features. For a network whose features fit float16 the two do the same work (ratio ≈ 1);
the ``soft`` preset's (dot-product activations) do not.

Memory (``--memory BATCH ...``; Linux): for each batch size, a fresh process builds the network, resets
its peak resident memory, extracts the features and reports that peak above what it held before, less
the cache itself: the activations of a batch.

The network is the preset's, untrained (weights as initialised); the subset's training images.
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hebblib.classifier import extract_features  # noqa: E402
from hebblib.presets import build_model, resolve_preset  # noqa: E402
from hebblib.training import load_splits  # noqa: E402


def setup(preset_name: str, images: int):
    preset = resolve_preset(preset_name)
    train, _, _ = load_splits(preset["data"], source="subset", limit_train=images, val_size=20)
    torch.manual_seed(0)
    return build_model(preset).eval(), train


def recompute_baseline(model, data, batch_size):
    """Float16 first; only after the whole split, if any value overflowed, all of it again in bfloat16."""
    out = extract_features_fixed(model, data, batch_size, torch.float16)
    if not torch.isfinite(out).all():
        out = extract_features_fixed(model, data, batch_size, torch.bfloat16)
    return out


@torch.no_grad()
def extract_features_fixed(model, data, batch_size, dtype):
    out = torch.empty(len(data), model.num_features, dtype=dtype)
    for start in range(0, len(data), batch_size):
        index = slice(start, min(start + batch_size, len(data)))
        out[index] = model.features(data.get(index)[0]).to(dtype)
    return out


def status_mib(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak) of this process, from Linux's /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def memory_child(preset_name: str, images: int, batch_size: int) -> dict:
    model, data = setup(preset_name, images)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak (VmHWM) to the current size
    before = status_mib("VmRSS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feats = extract_features(model, data, batch_size=batch_size, progress=False)
    cache = feats.numel() * feats.element_size() / 2 ** 20
    return {"batch_size": batch_size, "activations_mib": status_mib("VmHWM") - before - cache, "cache_mib": cache}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="soft")
    parser.add_argument("--images", type=int, default=1000, help="subset training images (at most 2,000)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--memory", type=int, nargs="*", default=[], metavar="BATCH",
                        help="batch sizes whose transient memory to measure, one fresh process each")
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.memory_child is not None:
        print(json.dumps(memory_child(args.preset, args.images, args.memory_child)))
        return 0

    model, data = setup(args.preset, args.images)
    print(f"{args.preset}: features of {len(data)} subset images, batch {args.batch_size}, one thread, "
          f"{model.num_features} features per image")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast_out = extract_features(model, data, batch_size=args.batch_size, progress=False)
    slow_out = recompute_baseline(model, data, args.batch_size)
    same = torch.allclose(fast_out.float(), slow_out.float(), rtol=2 ** -7, atol=1e-3)
    print(f"cache dtype: {fast_out.dtype} (baseline {slow_out.dtype}); same features: {same}")
    times = {"in place": [], "recompute": []}
    for _ in range(args.rounds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            extract_features(model, data, batch_size=args.batch_size, progress=False)
            times["in place"].append(time.perf_counter() - start)
        start = time.perf_counter()
        recompute_baseline(model, data, args.batch_size)
        times["recompute"].append(time.perf_counter() - start)
    fast, slow = (statistics.median(times[k]) for k in ("in place", "recompute"))
    print(f"in place : {fast:6.2f} s  ({len(data) / fast:6.1f} img/s)")
    print(f"recompute: {slow:6.2f} s  ({len(data) / slow:6.1f} img/s)")
    print(f"speed-up: {slow / fast:.2f}x (median of {args.rounds} rounds)")
    for batch_size in args.memory:
        out = subprocess.run([sys.executable, __file__, "--preset", args.preset, "--images", str(args.images),
                              "--memory-child", str(batch_size)], capture_output=True, text=True, check=True)
        m = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"batch {batch_size:4d}: activations {m['activations_mib']:7.0f} MiB above the cache "
              f"({m['cache_mib']:.0f} MiB)")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
