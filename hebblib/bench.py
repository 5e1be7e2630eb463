"""Benchmark of the training pipeline: the fast path against a naive baseline, measured in one process.

``python -m hebblib bench [--preset soft] [--device cpu|cuda] [--quick]`` prints, for the unsupervised
phase and the classifier phase, images/s of both paths and their ratio, the per-layer time split into
forward and update, the FLOPs per image counted from the layer shapes, the FLOP/s achieved and their
fraction of the device's peak (a dense matrix product measured in the same process).

Fast path: the whole dataset on the device as uint8 (``DeviceDataset``), normalisation on the device,
the Hebbian term as one ``conv2d_weight`` call per layer, features computed once and cached (fp16).
Naive baseline: a ``DataLoader`` over float tensors in host memory, the Hebbian term as ``F.unfold`` +
matrix product, and a classifier that recomputes the frozen network's features every epoch.
Both paths run interleaved over several rounds so that a noisy shared machine affects them alike.
"""
from __future__ import annotations

import contextlib
import platform
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from . import layers as layers_module
from .classifier import extract_features, train_linear_probe
from .dropout import FastDropout
from .presets import build_model, resolve_preset
from .runtime import describe_device, get_device, seed_everything
from .update import unfold_hebbian_term


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def naive_update():
    """Swap the layers' Hebbian term for the explicit-patch (unfold + matmul) version."""
    fast = layers_module.hebbian_term

    def unfolded(x, r, weight_shape, stride=1, dilation=1, groups=1):
        if groups != 1:  # the naive version has no grouped form; use the fast one there
            return fast(x, r, weight_shape, stride, dilation, groups)
        return unfold_hebbian_term(x, r, weight_shape, stride, dilation)

    layers_module.hebbian_term = unfolded
    try:
        yield
    finally:
        layers_module.hebbian_term = fast


def layer_flops(model, x) -> dict:
    """Multiply-adds ×2 per image of each Hebbian layer's forward convolution (the update's Hebbian
    term costs the same again), from shapes recorded by a forward hook."""
    flops, hooks = {}, []
    for name, layer in model.hebbian_layers().items():
        def hook(module, inputs, output, name=name):
            out = output.shape
            spatial = out[2] * out[3] if output.dim() == 4 else 1
            kh, kw = module.kernel_size
            flops[name] = 2 * out[1] * (module.in_channels // module.groups) * kh * kw * spatial
        hooks.append(layer.register_forward_hook(hook))
    with torch.no_grad():
        model.eval()
        model.features(x[:1])
    for h in hooks:
        h.remove()
    return flops


def measured_peak(device, dtype=torch.float32, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a dense ``size × size`` matrix product on ``device`` (the practical peak)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def _hebbian_pass(model, batches, device) -> float:
    """Seconds for forward + update on every batch."""
    model.train()
    _sync(device)
    start = time.perf_counter()
    for x in batches():
        with torch.no_grad():
            model.features(x)
        model.apply_updates()
    _sync(device)
    return time.perf_counter() - start


def _split_times(model, x, device, repeats: int = 2) -> dict:
    """Per-layer seconds per batch in the forward (activation) and in the update (competition, rule,
    Hebbian term), by timing the two halves of each layer's work separately."""
    timings = {name: {"forward": 0.0, "update": 0.0} for name in model.hebbian_layers()}
    originals = {}
    for name, layer in model.hebbian_layers().items():
        originals[name] = (layer._activation, layer._accumulate_update)

        def timed(fn, name, part):
            def run(*args):
                _sync(device)
                start = time.perf_counter()
                out = fn(*args)
                _sync(device)
                timings[name][part] += time.perf_counter() - start
                return out
            return run

        layer._activation = timed(layer._activation, name, "forward")
        layer._accumulate_update = timed(layer._accumulate_update, name, "update")
    try:
        model.train()
        for _ in range(repeats):
            with torch.no_grad():
                model.features(x)
            for layer in model.hebbian_layers().values():
                layer.delta_w.zero_()
    finally:
        for name, layer in model.hebbian_layers().items():
            del layer._activation, layer._accumulate_update  # back to the class methods
    return {name: {k: v / repeats for k, v in t.items()} for name, t in timings.items()}


def bench(preset: str = "soft", device=None, quick: bool = False, batches: int | None = None,
          batch_size: int | None = None, rounds: int = 3, classifier_epochs: int = 2, seed: int = 0,
          print_fn=print, precision: str = "auto") -> dict:
    """Run the benchmark; returns the numbers it printed."""
    device = get_device(device)
    seed_everything(seed)
    config = resolve_preset(preset)
    batch_size = batch_size or config["unsupervised"]["batch_size"]
    batches = batches or (3 if quick else 10)
    n = batches * batch_size
    normalization = config["data"].get("normalization", "none")

    from .data import DeviceDataset, load_cifar
    images, labels = load_cifar(True, source="subset" if quick else "auto")
    images, labels = images[: max(n, 2 * batch_size)], labels[: max(n, 2 * batch_size)]
    zca = None
    if normalization == "zca":
        from .data import fit_zca
        zca = fit_zca(images, eps=config["data"].get("zca_eps", 1e-3), cache=False)
    fast_data = DeviceDataset(images, labels, normalization, zca, augment=True, device=device)
    # The naive input pipeline: normalised float tensors in host memory, a DataLoader, a copy per batch.
    host_float = torch.cat([x.cpu() for x, _ in fast_data.batches(256, shuffle=False, augment=False)])
    loader = DataLoader(TensorDataset(host_float, labels[: len(host_float)]), batch_size=batch_size, shuffle=True)

    model = build_model(config).to(device)
    flops = layer_flops(model, host_float[:1].to(device))
    fast_batches = lambda: (x for x, _ in fast_data.batches(batch_size, shuffle=True, augment=True))
    naive_batches = lambda: (x.to(device) for x, _ in loader)

    fast_s = naive_s = 0.0
    for _ in range(rounds):
        fast_s += _hebbian_pass(model, fast_batches, device)
        with naive_update():
            naive_s += _hebbian_pass(model, naive_batches, device)
    images_done = rounds * len(fast_data)
    fast_rate, naive_rate = images_done / fast_s, images_done / naive_s
    split = _split_times(model, next(fast_batches()), device)
    flops_per_image = 2 * sum(flops.values())  # forward conv + Hebbian term of every layer
    peak = measured_peak(device)

    # Classifier phase: cached features (fast) vs recomputing the frozen features every epoch (naive).
    model.eval()
    n_cls = len(fast_data)
    _sync(device)
    start = time.perf_counter()
    feats = extract_features(model, fast_data, progress=False)
    extract_s = time.perf_counter() - start
    head = torch.nn.Sequential(FastDropout(0.5), torch.nn.Linear(model.num_features, 10)).to(device)
    pair = (feats, fast_data.labels)
    _sync(device)
    start = time.perf_counter()
    train_linear_probe(head, pair, pair, pair, epochs=classifier_epochs, progress=False)
    _sync(device)
    epoch_fast = (time.perf_counter() - start) / classifier_epochs
    # the naive head is the original code's: nn.Dropout draws one Bernoulli sample per element
    head = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(model.num_features, 10)).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    _sync(device)
    start = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        with torch.no_grad():
            f = model.features(x)
        loss = F.cross_entropy(head(f), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _sync(device)
    epoch_naive = time.perf_counter() - start
    epochs = config["supervised"]["epochs"]
    fast_total = extract_s + epochs * epoch_fast
    naive_total = epochs * epoch_naive

    result = {
        "preset": preset, "device": describe_device(device), "torch": torch.__version__,
        "python": platform.python_version(), "batch_size": batch_size, "images_per_round": len(fast_data),
        "rounds": rounds, "unsupervised_fast_img_s": fast_rate, "unsupervised_naive_img_s": naive_rate,
        "unsupervised_speedup": fast_rate / naive_rate, "layers": split, "flops_per_image": flops_per_image,
        "achieved_flop_s": flops_per_image * fast_rate, "peak_flop_s": peak,
        "classifier_extract_img_s": n_cls / extract_s, "classifier_epoch_fast_s": epoch_fast,
        "classifier_epoch_naive_s": epoch_naive, "classifier_epochs": epochs,
        "classifier_phase_fast_s": fast_total, "classifier_phase_naive_s": naive_total,
        "classifier_speedup": naive_total / fast_total,
    }
    print_fn(format_report(result))
    return result


def format_report(r: dict) -> str:
    lines = [
        f"preset {r['preset']!r} on {r['device']}, torch {r['torch']}, batch {r['batch_size']}, "
        f"{r['rounds']} rounds × {r['images_per_round']} images per path",
        "",
        "unsupervised phase (forward + Hebbian update of every layer)",
        f"  fast : {r['unsupervised_fast_img_s']:9.1f} img/s   (device-resident data, conv2d_weight update)",
        f"  naive: {r['unsupervised_naive_img_s']:9.1f} img/s   (DataLoader from host tensors, unfold + matmul)",
        f"  speed-up: {r['unsupervised_speedup']:.2f}x",
        f"  FLOPs per image: {r['flops_per_image'] / 1e9:.2f} GFLOP; achieved "
        f"{r['achieved_flop_s'] / 1e9:.1f} GFLOP/s = {100 * r['achieved_flop_s'] / r['peak_flop_s']:.0f}% of the "
        f"measured fp32 matmul peak ({r['peak_flop_s'] / 1e9:.0f} GFLOP/s)",
        "  per layer, seconds per batch:   forward   update",
    ]
    for name, t in r["layers"].items():
        lines.append(f"    {name:<26} {t['forward']:8.3f} {t['update']:8.3f}")
    lines += [
        "",
        "classifier phase",
        f"  feature extraction (once): {r['classifier_extract_img_s']:.1f} img/s",
        f"  one epoch on cached features: {r['classifier_epoch_fast_s']:.3f} s; recomputing features: "
        f"{r['classifier_epoch_naive_s']:.3f} s",
        f"  {r['classifier_epochs']} epochs: fast {r['classifier_phase_fast_s']:.1f} s vs naive "
        f"{r['classifier_phase_naive_s']:.1f} s → speed-up {r['classifier_speedup']:.1f}x",
    ]
    return "\n".join(lines)
