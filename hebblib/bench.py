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


# ----- what each way of training costs: the Hebbian phase, a backprop step, the α-hybrid (chapter 14) ----------
COST_PATHS = ("hebbian", "backprop", "hybrid")


def _rss_bytes() -> int:
    """The process's resident memory now (Linux ``/proc/self/statm``; 0 elsewhere)."""
    import os

    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _training_cost_worker(path, preset, device, batch_size, batches, alpha, width_factor, seed, threads, queue):
    """One path, in a process of its own: build the network and the batches, note the resident memory, run
    one warm-up step and ``batches`` timed steps, and put images/s and the peak memory the steps added on
    ``queue``. Peak memory: on the CPU ``ru_maxrss`` minus the resident memory before the first step (a
    fresh process, so no other work's peak hides it); on CUDA ``max_memory_allocated`` over the steps."""
    import resource

    import torch.nn.functional as F_  # noqa: N812

    from .data import DeviceDataset, load_cifar
    from .hybrid import HybridHook
    from .runtime import flush_denormals

    try:
        if threads:
            torch.set_num_threads(threads)
        device = get_device(device)
        seed_everything(seed)
        config = resolve_preset(preset)
        if width_factor is not None:
            config["model"] = {**config.get("model", {}), "width_factor": width_factor}
        images, labels = load_cifar(True, source="subset")
        n = (batches + 1) * batch_size
        normalization = config["data"].get("normalization", "none")
        zca = None
        if normalization == "zca":
            from .data import fit_zca
            zca = fit_zca(images, eps=config["data"].get("zca_eps", 1e-3), cache=False)
        data = DeviceDataset(images[:n], labels[:n], normalization, zca, augment=True, device=device)
        steps = list(data.batches(batch_size, shuffle=True, augment=True))[: batches + 1]
        model = build_model(config).to(device)
        model.train()
        hook = optimizer = None
        if path == "hebbian":
            model.set_plastic(True)
        else:
            model.set_plastic(path == "hybrid")
            hook = HybridHook(model, alpha) if path == "hybrid" else None
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(x, y):
            if path == "hebbian":  # phase 1 as train_hebbian runs it (fp32)
                with torch.no_grad():
                    model.features(x)
                model.apply_updates()
                return
            loss = F_.cross_entropy(model(x), y)  # as train_end_to_end runs it
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if hook is not None:
                hook.before_step()
            optimizer.step()
            if hook is not None:
                hook.after_step()

        before = _rss_bytes()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base_cuda = torch.cuda.memory_allocated(device)
        with flush_denormals():
            step(*steps[0])  # warm-up (and the optimiser's state), not timed but in the peak
            _sync(device)
            start = time.perf_counter()
            for x, y in steps[1:]:
                step(x, y)
            _sync(device)
            seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) - base_cuda
        queue.put({"path": path, "images": batches * batch_size, "seconds": seconds, "peak_bytes": max(peak, 0),
                   "memory": "cuda max_memory_allocated" if device.type == "cuda" else "ru_maxrss − RSS before",
                   "device": describe_device(device), "threads": torch.get_num_threads(),
                   "num_parameters": model.num_parameters()})
    except BaseException as err:  # noqa: BLE001 - reported by the parent
        queue.put({"path": path, "error": f"{type(err).__name__}: {err}"})


def bench_training_costs(preset: str = "soft", device=None, batch_size: int = 64, batches: int = 4, rounds: int = 2,
                         alpha: float = 0.5, width_factor: float | None = None, seed: int = 0,
                         threads: int | None = None, print_fn=print) -> dict:
    """Images/s and peak memory of a training step of ``preset``'s network (at ``width_factor`` of its width, or
    its own) three ways, at ``batch_size``: ``hebbian`` (phase 1: a no-grad forward that accumulates every
    layer's ΔW, then ``W += lr·ΔW``), ``backprop`` (forward, backward, Adam: an end-to-end epoch's step) and
    ``hybrid`` (the same with every Hebbian layer's ΔW mixed into its gradient at ``alpha``,
    :mod:`hebblib.hybrid`). Each measurement runs in a fresh process (:func:`_training_cost_worker`), the
    paths interleaved over ``rounds``; images/s over all rounds, peak memory the largest of them. Also the
    time an epoch of 45,000 images would take at that rate. ``python -m hebblib bench --preset soft --phases``."""
    import multiprocessing
    import os

    from .runtime import cpu_model

    check = resolve_preset(preset)  # a bad name or preset fails here, not in a child
    if check["supervised"]["mode"] == "end_to_end":
        raise ValueError(f"preset {preset!r} has no Hebbian layers; use one with a Hebbian phase (soft, optimal, "
                         f"...) or a hybrid preset")
    context = multiprocessing.get_context("spawn")
    totals = {path: {"images": 0, "seconds": 0.0, "peak_bytes": 0} for path in COST_PATHS}
    started, load_before = time.perf_counter(), os.getloadavg() if hasattr(os, "getloadavg") else None
    info = {}
    for r in range(rounds):
        for path in COST_PATHS:
            queue = context.Queue()
            child = context.Process(target=_training_cost_worker, args=(path, preset, device, batch_size, batches,
                                                                         alpha, width_factor, seed, threads, queue))
            child.start()
            result = None
            while result is None:  # a child that dies without a word (killed, crashed) must not hang us
                try:
                    result = queue.get(timeout=5)
                except Exception:  # noqa: BLE001 - queue.Empty
                    if not child.is_alive():
                        result = {"path": path, "error": f"the process exited with code {child.exitcode}"}
            child.join()
            if "error" in result:
                raise RuntimeError(f"bench of the {path} step failed: {result['error']}")
            total = totals[path]
            total["images"] += result["images"]
            total["seconds"] += result["seconds"]
            total["peak_bytes"] = max(total["peak_bytes"], result["peak_bytes"])
            info = {k: result[k] for k in ("memory", "device", "threads", "num_parameters")}
        print_fn(f"  round {r + 1}/{rounds} done")
    rows = {}
    for path, total in totals.items():
        rate = total["images"] / total["seconds"]
        rows[path] = {"img_s": rate, "epoch_45000_s": 45000 / rate, "peak_mib": total["peak_bytes"] / 2**20}
    result = {"preset": preset, "width_factor": width_factor, "alpha": alpha, "batch_size": batch_size,
              "batches": batches, "rounds": rounds, "paths": rows, **info, "cpu_model": cpu_model(),
              "torch": torch.__version__, "load_before": load_before,
              "load_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
              "wall_s": time.perf_counter() - started}
    print_fn(format_training_costs(result))
    return result


def format_training_costs(r: dict) -> str:
    """The report :func:`bench_training_costs` prints."""
    width = "its own width" if r["width_factor"] is None else f"width_factor {r['width_factor']:g}"
    load = lambda v: "n/a" if v is None else " ".join(f"{x:.2f}" for x in v)  # noqa: E731
    lines = [f"training step costs of {r['preset']!r} ({width}, {r['num_parameters']:,} parameters), batch "
             f"{r['batch_size']}, {r['rounds']} rounds × {r['batches']} batches per path, each in its own process",
             f"{r['device']}; CPU {r['cpu_model']}; {r['threads']} threads; load average before "
             f"{load(r['load_before'])}, after {load(r['load_after'])}; peak memory: {r['memory']}",
             f"  {'step':<38} {'img/s':>8} {'45,000-image epoch':>19} {'peak memory':>12}"]
    what = {"hebbian": "Hebbian phase (no grad, W += lr·ΔW)", "backprop": "backprop (forward, backward, Adam)",
            "hybrid": f"α-hybrid, α = {r['alpha']:g} (both, one forward)"}
    for path, row in r["paths"].items():
        lines.append(f"  {what[path]:<38} {row['img_s']:8.1f} {row['epoch_45000_s'] / 60:15.1f} min "
                     f"{row['peak_mib']:8.0f} MiB")
    return "\n".join(lines)
