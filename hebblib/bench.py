"""Benchmark of the training pipeline: every path of the Hebbian phase against a naive baseline, in one process.

``python -m hebblib bench [--preset soft] [--device cpu|cuda] [--precision auto|fp32|bf16] [--quick]``

Unsupervised phase (forward + Hebbian update of every layer), five paths (three on a GPU) run interleaved round by
round, so that a busy machine or a drifting clock affects them alike:

* ``naive``: a ``DataLoader`` over float tensors in host memory, the Hebbian term as ``F.unfold`` + matrix
  product, fp32, subnormal floats as the CPU handles them (the original code's way);
* ``fp32``: device-resident data, the Hebbian term as one ``conv2d_weight`` call, fp32, subnormals not flushed
  (the fast path before subnormals were found);
* ``fp32+ftz``: the same with subnormals flushed to zero on every thread (:func:`hebblib.runtime.flush_denormals`);
* ``fp32+ftz+patches`` (CPU): flushed, and each layer's fp32 products as the library picks them: from explicit
  patches (two matrix products sharing one copy of them) in the wide layers, from
  :data:`hebblib.layers.FP32_MATMUL_MIN_FAN_IN` inputs a filter up, ``conv2d_weight`` below;
* ``bf16``: flushed, the layers' products in bf16 (:func:`hebblib.layers.compute_precision`);
* with ``compile=True`` (``--compile``) also ``<default>+compile``: the default path with the forward pass and
  the update fused by ``torch.compile`` (:func:`hebblib.runtime.compiled_features`), compiled once before the
  clock starts; its per-layer split is not measurable (the layers' passes are fused across layers).

The default path is ``bf16`` or ``fp32+ftz+patches`` (``fp32`` on a GPU), as ``--precision`` resolves on this
machine (:func:`hebblib.runtime.resolve_precision`; the reason is printed). A precision whose matrix product one small
probe finds at less than half fp32's speed is left out of the paths and of the feature extraction unless it is
the default's, and the report says so with the probe's rates (:func:`slow_dtypes`). On a CPU without bf16
instructions the layers' bf16 products are emulated in fp32 (:func:`hebblib.update.emulate_bf16`; PyTorch's own
run about 100x slower there), and so is the bf16 probe; the header says which. Each path is timed over two windows of
batches, each starting from the same weights for every path: the first batches after initialisation, where the
soft winner-take-all's factors underflow most, and a steady-state window later in the epoch (after
``warm_batches`` batches of training). Reported per path and window: images/s over all rounds and in the
fastest round, the ratio to ``naive``, FLOP/s as a fraction of the measured peak of the dtype the path computes
in (a square matrix product of each dtype, the fastest of its probes: before the first round, between rounds
and after the last), and per layer the seconds of the forward and of the update. The fastest round against the
fastest probe is the like-for-like figure on a machine whose speed moves under it: on the 2-core AMX machine
of docs/performance.md the bf16 peak jumps between about 800 and 2,300 GFLOP/s from one second to the next
(most likely another tenant of the chip; not this process), and every rate of a round with it.

Classifier phase: feature extraction in fp32 and bf16 (and compiled, with ``compile``) (images/s), one epoch on
cached features (fp16 cache, flushed) against recomputing the frozen features every epoch (the naive head:
``nn.Dropout``, no flush).

The header names the CPU model, the flags that matter for speed, torch's CPU capability, the threads, the load
average before and after, and whether subnormals flush on every thread.
"""
from __future__ import annotations

import contextlib
import copy
import os
import platform
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from . import layers as layers_module
from .classifier import backward_step, extract_features, train_linear_probe
from .dropout import FastDropout
from .layers import compute_precision
from .presets import build_model, resolve_preset
from .runtime import (PRECISION_DTYPES, SPEED_FLAGS, compile_problem, compiled_features, cpu_flags, cpu_model,
                      denormals_flushed, describe_device, get_device, resolve_precision, seed_everything,
                      set_flush_denormal_everywhere)
from .update import bf16_matmul, emulate_bf16, unfold_hebbian_term

PATHS = ("naive", "fp32", "fp32+ftz", "fp32+ftz+patches", "bf16")
PATH_SETTINGS = {  # precision, Hebbian term, subnormals flushed, input pipeline
    "naive": ("fp32", "unfold", False, "loader"),
    "fp32": ("fp32", "conv2d_weight", False, "device"),
    "fp32+ftz": ("fp32", "conv2d_weight", True, "device"),
    "fp32+ftz+patches": ("fp32", "patches", True, "device"),
    "bf16": ("bf16", "bf16", True, "device"),
}
# the layers' fp32 products per Hebbian term: the convolutions throughout, or as the library picks them (None)
FP32_KERNEL = {"unfold": "conv", "conv2d_weight": "conv", "patches": None, "bf16": None}
COMPILED = "+compile"  # a path's name with this suffix: that path with the forward and update compiled
WINDOWS = ("initial", "steady")


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


@contextlib.contextmanager
def fp32_products(model, kernel):
    """Every Hebbian layer's ``fp32_kernel`` set to ``kernel`` for the duration; restored afterwards."""
    layers = list(model.hebbian_layers().values())
    saved = [layer.__dict__.get("fp32_kernel", "class") for layer in layers]
    for layer in layers:
        layer.fp32_kernel = kernel
    try:
        yield
    finally:
        for layer, value in zip(layers, saved):
            if value == "class":
                layer.__dict__.pop("fp32_kernel", None)
            else:
                layer.fp32_kernel = value


@contextlib.contextmanager
def subnormals(flush: bool, device):
    """Subnormal floats flushed to zero (on every thread) or not, for the duration; restored afterwards."""
    if device.type != "cpu":
        yield
        return
    before = denormals_flushed()
    set_flush_denormal_everywhere(flush)
    try:
        yield
    finally:
        set_flush_denormal_everywhere(before)


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
    """FLOP/s of a dense ``size × size`` matrix product of ``dtype`` on ``device`` as the layers form it (bf16:
    :func:`hebblib.update.bf16_matmul`, emulated in fp32 where the CPU has no bf16 instructions) (the practical
    peak: the fastest of ``repeats`` products, after one warm-up)."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    product = bf16_matmul if dtype == torch.bfloat16 else torch.matmul
    product(a, b)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        product(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def slow_dtypes(device, probe=None, size: int = 1024, ratio: float = 0.5) -> dict:
    """``{name: reason}`` for each reduced precision whose matrix product runs at less than ``ratio`` times
    fp32's on ``device``, measured with one small product of each (``probe(device, dtype, size, repeats)``,
    default :func:`measured_peak`, which forms bf16 products as the layers do). A path this slow would take
    hours of a bench that measures minutes: PyTorch's own bf16 products on a CPU without bf16 instructions
    (the 2-core AMD EPYC of docs/performance.md: about 1 GFLOP/s against fp32's 100; with
    ``hebblib.update.bf16_products = 'native'``)."""
    probe = probe or measured_peak
    fp32 = probe(device, torch.float32, size, 2)
    slow = {}
    for name, dtype in PRECISION_DTYPES.items():
        if dtype == torch.float32:
            continue
        rate = probe(device, dtype, size, 2)
        if rate < ratio * fp32:
            slow[name] = (f"a {size}² {name} product ran at {rate / 1e9:,.1f} GFLOP/s here against fp32's "
                          f"{fp32 / 1e9:,.1f} ({rate / fp32:.2f}x)")
    return slow


@contextlib.contextmanager
def layer_timers(model, device):
    """Per-layer seconds of the forward (patches + activation) and of the update (competition, rule,
    Hebbian term), accumulated into the yielded dict while the block runs."""
    timings = {name: {"forward": 0.0, "update": 0.0} for name in model.hebbian_layers()}

    def timed(fn, name, part):
        def run(*args):
            _sync(device)
            start = time.perf_counter()
            out = fn(*args)
            _sync(device)
            timings[name][part] += time.perf_counter() - start
            return out
        return run

    layers = model.hebbian_layers()
    for name, layer in layers.items():
        layer._patches = timed(layer._patches, name, "forward")
        layer._activation = timed(layer._activation, name, "forward")
        layer._accumulate_update = timed(layer._accumulate_update, name, "update")
    try:
        yield timings
    finally:
        for layer in layers.values():
            del layer._patches, layer._activation, layer._accumulate_update  # back to the class methods


def path_settings(path: str) -> tuple:
    """:data:`PATH_SETTINGS` of ``path``; a compiled path (``<path>+compile``) has those of its eager path."""
    return PATH_SETTINGS[path.removesuffix(COMPILED)]


def _train_window(model, batches, path, device, batch_size=None) -> tuple[float, int, dict]:
    """Seconds, images and per-layer split of training ``model`` on ``batches`` the way ``path`` does (a
    compiled path: no split, the layers' passes being fused)."""
    precision, update, flush, _ = path_settings(path)
    swap = naive_update() if update == "unfold" else contextlib.nullcontext()
    fused = path.endswith(COMPILED)
    forward = compiled_features(model, batch_size) if fused else model.features
    timers = contextlib.nullcontext({}) if fused else layer_timers(model, device)
    model.train()
    images = 0
    with (subnormals(flush, device), swap, timers as split, compute_precision(model, PRECISION_DTYPES[precision]),
          fp32_products(model, FP32_KERNEL[update])):
        _sync(device)
        start = time.perf_counter()
        for x in batches:
            x = x.to(device, non_blocking=True)
            with torch.no_grad():
                forward(x)
            model.apply_updates()
            images += x.shape[0]
        _sync(device)
        seconds = time.perf_counter() - start
    return seconds, images, split


def _bench_unsupervised(model, fast_data, loader, paths, device, batch_size, batches, rounds, warm_batches,
                        default, print_fn, before_round=lambda: None) -> dict:
    """Images/s (over all rounds and in the fastest) and per-layer split of every path, in the initial and the
    steady-state window. ``before_round()`` runs before each round (the peak's probes)."""
    initial = copy.deepcopy(model.state_dict())
    # the steady state: the default path trained for warm_batches from the same initial weights
    warm = list(x for x, _ in fast_data.batches(batch_size, shuffle=True, augment=True))[:warm_batches]
    _train_window(model, warm, default, device)
    steady = copy.deepcopy(model.state_dict())
    for path in paths:  # compiled paths compile here, on one batch, before any clock runs
        if path.endswith(COMPILED):
            _train_window(model, warm[:1], path, device, batch_size)
    starts = {"initial": initial, "steady": steady}
    totals = {(w, p): [0.0, 0, {}, 0.0] for w in WINDOWS for p in paths}
    for r in range(rounds):
        before_round()
        for window in WINDOWS:
            for path in paths:
                model.load_state_dict(starts[window])
                if path_settings(path)[3] == "loader":
                    source = (x for i, (x, _) in zip(range(batches), loader))
                else:
                    source = (x for i, (x, _) in zip(range(batches), fast_data.batches(
                        batch_size, shuffle=True, augment=True)))
                seconds, images, split = _train_window(model, source, path, device, batch_size)
                total = totals[(window, path)]
                total[0] += seconds
                total[1] += images
                total[3] = max(total[3], images / seconds)
                for name, t in split.items():
                    acc = total[2].setdefault(name, {"forward": 0.0, "update": 0.0})
                    acc["forward"] += t["forward"] / (batches * rounds)
                    acc["update"] += t["update"] / (batches * rounds)
        print_fn(f"  round {r + 1}/{rounds} done")
    model.load_state_dict(initial)
    return {window: {path: {"img_s": totals[(window, path)][1] / totals[(window, path)][0],
                            "best_img_s": totals[(window, path)][3],
                            "seconds": totals[(window, path)][0], "layers": totals[(window, path)][2]}
                     for path in paths} for window in WINDOWS}


def bench(preset: str = "soft", device=None, quick: bool = False, batches: int | None = None,
          batch_size: int | None = None, rounds: int = 3, classifier_epochs: int = 2, seed: int = 0,
          print_fn=print, precision: str | None = None, warm_batches: int | None = None,
          compile: bool = False) -> dict:
    """Run the benchmark (see the module docstring); returns the numbers it printed. ``precision``: that of
    the default path (None: the preset's ``unsupervised.precision``, as a run would use). ``compile``: also
    the default path fused by ``torch.compile``."""
    device = get_device(device)
    if compile and (problem := compile_problem(device)):
        raise ValueError(f"compile=True: {problem}; leave --compile out")
    config = resolve_preset(preset)
    chosen = resolve_precision(precision or config["unsupervised"].get("precision", "fp32"), device)
    seed_everything(seed)
    batch_size = batch_size or config["unsupervised"]["batch_size"]
    batches = batches or (2 if quick else 5)
    warm_batches = warm_batches if warm_batches is not None else (2 if quick else 100)
    n = max(batches, warm_batches, 2) * batch_size
    normalization = config["data"].get("normalization", "none")
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None

    from .data import DeviceDataset, load_cifar
    images, labels = load_cifar(True, source="subset" if quick else "auto")
    images, labels = images[:n], labels[:n]
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
    flops_per_image = 2 * sum(flops.values())  # forward conv + Hebbian term of every layer
    # no subnormal question on a GPU, and its fp32 products are the convolutions (cuDNN)
    paths = PATHS if device.type == "cpu" else ("naive", "fp32", "bf16")
    default = "bf16" if chosen.name == "bf16" else ("fp32+ftz+patches" if device.type == "cpu" else "fp32")
    # a precision the hardware is very slow at is left out (said in the report), unless it is the default's
    left_out = {name: why for name, why in slow_dtypes(device).items() if name != chosen.name}
    for name, why in left_out.items():
        print_fn(f"the {name} path is left out: {why}; `--precision {name}` runs it")
    paths = tuple(p for p in paths if path_settings(p)[0] not in left_out)
    if compile:
        paths = paths + (default + COMPILED,)
    probes = {name: [] for name in PRECISION_DTYPES if name not in left_out}

    def probe_peaks():  # before every round and after the last: the fastest probe is the peak
        for name in probes:
            probes[name].append(measured_peak(device, PRECISION_DTYPES[name]))

    print_fn(f"bench {preset!r}: {len(paths)} paths × 2 windows × {rounds} rounds × {batches} batches of {batch_size}")
    unsup = _bench_unsupervised(model, fast_data, loader, paths, device, batch_size, batches, rounds, warm_batches,
                                default, print_fn, before_round=probe_peaks)
    probe_peaks()
    peaks = {name: max(values) for name, values in probes.items()}
    for window in WINDOWS:
        naive = unsup[window]["naive"]["img_s"]
        for path, row in unsup[window].items():
            dtype_name = path_settings(path)[0]
            row["speedup"] = row["img_s"] / naive
            row["flop_s"] = flops_per_image * row["img_s"]
            row["peak_dtype"] = dtype_name
            row["fraction_of_peak"] = row["flop_s"] / peaks[dtype_name]
            row["best_fraction_of_peak"] = flops_per_image * row["best_img_s"] / peaks[dtype_name]

    # Classifier phase: feature extraction per precision; cached-feature epochs vs recomputing the features.
    model.eval()
    extract = {}
    variants = tuple(v for v in ("fp32", "bf16") if v not in left_out) + ((chosen.name + COMPILED,) if compile else ())
    if compile:  # compiled before the clock, on one batch of the size extract_features uses
        first = fast_data.subset(torch.arange(min(200, len(fast_data))))
        extract_features(model, first, progress=False, precision=chosen.name, compile=True)
    for _ in range(max(1, rounds - 1)):
        for name in variants:
            _sync(device)
            start = time.perf_counter()
            feats = extract_features(model, fast_data, progress=False, precision=name.removesuffix(COMPILED),
                                     compile=name.endswith(COMPILED))
            _sync(device)
            extract[name] = extract.get(name, 0.0) + time.perf_counter() - start
    extract_img_s = {name: max(1, rounds - 1) * len(fast_data) / s for name, s in extract.items()}
    head = torch.nn.Sequential(FastDropout(0.5), torch.nn.Linear(model.num_features, 10)).to(device)
    pair = (feats, fast_data.labels)
    _sync(device)
    start = time.perf_counter()
    train_linear_probe(head, pair, pair, pair, epochs=classifier_epochs, progress=False)
    _sync(device)
    epoch_fast = (time.perf_counter() - start) / classifier_epochs
    epoch_compiled = None
    if compile:  # the same epochs with the batches assembled in one compiled pass (compiled before the clock)
        train_linear_probe(head, pair, pair, pair, epochs=1, progress=False, compile=True)
        _sync(device)
        start = time.perf_counter()
        train_linear_probe(head, pair, pair, pair, epochs=classifier_epochs, progress=False, compile=True)
        _sync(device)
        epoch_compiled = (time.perf_counter() - start) / classifier_epochs
    # the naive head is the original code's: nn.Dropout draws one Bernoulli sample per element
    head = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(model.num_features, 10)).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    with subnormals(False, device):
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
    default_extract = "bf16" if chosen.name == "bf16" else "fp32"
    fast_total = len(fast_data) / extract_img_s[default_extract] + epochs * epoch_fast
    naive_total = epochs * epoch_naive

    flags = cpu_flags() if device.type == "cpu" else frozenset()
    result = {
        "preset": preset, "device": describe_device(device), "torch": torch.__version__,
        "python": platform.python_version(), "cpu_model": cpu_model(),
        "cpu_flags": sorted(f for f in SPEED_FLAGS if f in flags),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
        "load_before": load_before, "load_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "subnormals_flush_everywhere": _flush_works(device),
        "precision": chosen.as_dict(), "default_path": default, "paths": list(paths), "left_out": left_out,
        "bf16_products": "emulated in fp32" if emulate_bf16(device) else "native",
        "batch_size": batch_size, "batches": batches, "rounds": rounds, "warm_batches": warm_batches,
        "flops_per_image": flops_per_image, "peak_flop_s": peaks, "peak_probes_flop_s": probes,
        "unsupervised": unsup,
        "classifier_extract_img_s": extract_img_s, "classifier_images": len(fast_data),
        "classifier_epoch_fast_s": epoch_fast, "classifier_epoch_naive_s": epoch_naive,
        "classifier_epoch_compiled_s": epoch_compiled,
        "classifier_epochs": epochs, "classifier_phase_fast_s": fast_total, "classifier_phase_naive_s": naive_total,
        "classifier_speedup": naive_total / fast_total,
    }
    print_fn(format_report(result))
    return result


def _flush_works(device) -> bool | None:
    if device.type != "cpu":
        return None
    with subnormals(True, device):
        return denormals_flushed()


def format_report(r: dict) -> str:
    load = lambda v: "n/a" if v is None else " ".join(f"{x:.2f}" for x in v)  # noqa: E731
    p = r["precision"]
    lines = [
        f"preset {r['preset']!r} on {r['device']}, torch {r['torch']}, batch {r['batch_size']}, "
        f"{r['rounds']} rounds × {r['batches']} batches per path and window",
        f"CPU: {r['cpu_model']}; flags: {' '.join(r['cpu_flags']) or 'none of note'}; torch CPU capability "
        f"{r['cpu_capability']}; {r['threads']} threads; load average before {load(r['load_before'])}, after "
        f"{load(r['load_after'])}",
        f"subnormals flushed on every thread when asked: {r['subnormals_flush_everywhere']}",
        f"precision {p['requested']} → {p['name']} ({p['reason']}); default path: {r['default_path']}",
        *(f"left out: the {k} path ({why})" for k, why in r.get("left_out", {}).items()),
        f"bf16 products: {r['bf16_products']}" + (" (this CPU has no bf16 instructions: "
                                                 "hebblib.update.bf16_products)" if "emulated" in r["bf16_products"]
                                                 else ""),
        "matrix-product peak measured here (the fastest of the probes; their range): " + ", ".join(
            f"{k} {v / 1e9:,.0f} GFLOP/s ({min(r['peak_probes_flop_s'][k]) / 1e9:,.0f}–"
            f"{max(r['peak_probes_flop_s'][k]) / 1e9:,.0f} over {len(r['peak_probes_flop_s'][k])})"
            for k, v in r["peak_flop_s"].items()),
        "",
        f"unsupervised phase (forward + Hebbian update of every layer; {r['flops_per_image'] / 1e9:.2f} GFLOP per "
        f"image)",
    ]
    for window in WINDOWS:
        rows = r["unsupervised"][window]
        what = ("the first batches after initialisation" if window == "initial"
                else f"after {r['warm_batches']} batches of training")
        lines.append(f"  {window} window ({what}):")
        lines.append(f"    {'path':<24} {'img/s':>8} {'vs naive':>9} {'GFLOP/s':>8} {'of peak':>8}   "
                     f"{'fastest round: img/s':>20} {'of peak':>8}")
        for path, row in rows.items():
            mark = "  ← default" if path == r["default_path"] else ""
            lines.append(f"    {path:<24} {row['img_s']:8.1f} {row['speedup']:8.2f}x {row['flop_s'] / 1e9:8.1f} "
                         f"{100 * row['fraction_of_peak']:6.0f} %   {row['best_img_s']:20.1f} "
                         f"{100 * row['best_fraction_of_peak']:6.0f} % ({row['peak_dtype']}){mark}")
        lines.append("    per layer, seconds per batch (forward / update):")
        names = list(next(iter(rows.values()))["layers"])
        lines.append("      " + f"{'':<24}" + "".join(f"{n:>20}" for n in names))
        for path, row in rows.items():
            cells = "".join(f"{row['layers'][n]['forward']:9.3f} /{row['layers'][n]['update']:8.3f}"
                            if n in row["layers"] else f"{'(fused)':>18}" for n in names)
            lines.append(f"      {path:<24}{cells}")
    ex = r["classifier_extract_img_s"]
    lines += [
        "",
        "classifier phase",
        f"  feature extraction: fp32 {ex['fp32']:.1f} img/s" + "".join(
            f", {k} {v:.1f} img/s ({v / ex['fp32']:.2f}x)" for k, v in ex.items() if k != "fp32"),
        f"  one epoch on cached features ({r['classifier_images']} images): {r['classifier_epoch_fast_s']:.3f} s; "
        f"recomputing features: {r['classifier_epoch_naive_s']:.3f} s"
        + (f"; compiled batches: {r['classifier_epoch_compiled_s']:.3f} s "
           f"({r['classifier_epoch_fast_s'] / r['classifier_epoch_compiled_s']:.2f}x)"
           if r.get("classifier_epoch_compiled_s") else ""),
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
            backward_step(F_.cross_entropy(model(x), y), optimizer, hook)  # as train_end_to_end runs it

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
