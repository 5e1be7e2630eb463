"""Phase 2 and 3 of the protocol: frozen features, computed once, and the supervised head.

The Hebbian blocks are frozen after phase 1, so their features never change: they are computed once per
image (and once more for its mirror image, for flip augmentation) and cached on the device, in float16
by default (a 45,000 × 24,576 cache of both orientations is 4.4 GB). The linear head (Dropout(0.5) +
Linear, Adam) then trains on the cache, which is exactly what training it on images with random flips
would do, at a fraction of the cost. The backprop baseline instead trains the whole network on images.

No per-batch host synchronisation: losses and correct counts accumulate on the device and are read
once per epoch.
"""
from __future__ import annotations

import contextlib
import functools
import time
import warnings

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data.device_dataset import epoch_draws
from .dropout import FastDropout, field_threshold, keep_threshold, packed_fields, packed_words
from .errors import HebbianDivergenceError, check_choice
from .layers import compute_precision
from .results import load_checkpoint, save_checkpoint
from .runtime import cpu_has_bf16_instructions, compiled_features, flush_denormals, resolve_precision, single_thread

SCHEDULES = ("constant", "nimmo_step", "softhebb_step")
OPTIMIZERS = ("adam", "sgd")
SOFTHEBB_STEPS = (0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9)


def set_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    """Every parameter group of ``optimizer`` at the learning rate ``rate`` (this epoch's, from the schedule)."""
    for group in optimizer.param_groups:
        group["lr"] = rate


def backward_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, hook=None) -> None:
    """One gradient step on ``loss``: gradients cleared, back-propagated, the optimiser's step; the α-hybrid's
    ``hook`` (``before_step`` / ``after_step``) around the step when given."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if hook is not None:
        hook.before_step()
    optimizer.step()
    if hook is not None:
        hook.after_step()


def save_epoch_checkpoint(path, key: str, model, optimizer, history: list, generator) -> None:
    """What an end-to-end trainer needs to go on after this epoch bit for bit (:func:`_resume_end_to_end` reads
    it): the network, the optimiser's state, the history so far and every random generator's state."""
    save_checkpoint(path, {"config_hash": key, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                           "history": history, "random": _random_states(generator)})


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """Multiplier of the base lr in epoch ``epoch`` (counting from 0).

    * ``constant``: 1.
    * ``nimmo_step``: ``0.5 ** max(0, (epoch − 10) // 2)``, the 2025 code's LambdaLR (spec nimmo-thesis §3.3):
      ×1 for epochs 0–11, then halved every two epochs.
    * ``softhebb_step``: halved at 20, 35, 50, 60, 70, 80 and 90 % of the epochs (SoftHebb's CustomStepLR).
    """
    check_choice("schedule", schedule, SCHEDULES)
    if schedule == "constant":
        return 1.0
    if schedule == "nimmo_step":
        return 0.5 ** max(0, (epoch - 10) // 2)
    steps = {int(epochs * r) for r in SOFTHEBB_STEPS}
    return 0.5 ** sum(1 for s in steps if s <= epoch)


FEATURE_BATCH_GPU, FEATURE_BATCH_CPU = 500, 200
FLOAT16_MAX = torch.finfo(torch.float16).max


@torch.no_grad()
@flush_denormals()
def extract_features(model, data, *, batch_size: int | None = None, flip: bool = False, dtype=torch.float16,
                     progress: bool = True, desc: str = "features", precision: str = "fp32",
                     compile: bool = False) -> torch.Tensor:
    """``model.features`` of every image of ``data`` (eval mode, no Hebbian update), on the data's device.

    ``flip=True`` mirrors every image first (before normalisation, as the training-time augmentation).
    ``batch_size`` defaults to 500 on the GPU and 200 on the CPU (the soft net's bf16 features on 2 cores:
    1.22x faster than 100, 1.3x faster than 400; its fp32 features, channels-last with centred filters, as fast
    at 100, 200 and 400 on a 2-core AVX2 CPU; the same values at each). The frozen network runs in eval
    mode under ``torch.no_grad()``: its activity channels-last on the CPU, and each Triangle after a
    convolution from centred filters (:func:`hebblib.networks.blocks.centred_triangle`). In float16 each batch
    is checked against float16's range (one host sync per batch): from the first batch beyond it on, the cache is
    bfloat16 (float32's range), the rows already written converted in place, so nothing is computed twice.
    The result's dtype says which; :func:`cache_split_features` passes it on to the next split.
    ``precision``: the arithmetic of the Hebbian layers' products (:func:`hebblib.runtime.resolve_precision`);
    subnormal floats count as 0 meanwhile (:func:`hebblib.runtime.flush_denormals`). ``compile``: the network's
    forward pass of every full batch fused by ``torch.compile`` (:func:`hebblib.runtime.compiled_features`).
    """

    if batch_size is None:
        batch_size = FEATURE_BATCH_GPU if data.device.type == "cuda" else FEATURE_BATCH_CPU
    model.eval()
    n, device = len(data), data.device
    compute_dtype = resolve_precision(precision, device).dtype
    forward = compiled_features(model, batch_size) if compile else model.features
    out = torch.empty(n, model.num_features, dtype=dtype, device=device)
    finite = torch.ones((), dtype=torch.bool, device=device)
    for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress, leave=False):
        index = slice(start, min(start + batch_size, n))
        mirror = torch.ones(index.stop - start, dtype=torch.bool, device=device) if flip else None
        x, _ = data.get(index, mirror)
        with compute_precision(model, compute_dtype):
            feats = forward(x)
        # one pass for both checks: the largest |feature| is NaN or inf exactly when a feature is (aminmax
        # propagates NaN); isfinite's passes, all() and abs().amax() took 7x longer (51 vs 7 ms a batch)
        low, high = torch.aminmax(feats)
        largest = torch.maximum(high, -low)
        finite &= torch.isfinite(largest)
        if out.dtype == torch.float16 and bool(largest > FLOAT16_MAX):
            warnings.warn(f"{desc}: features exceed the float16 range; caching them as bfloat16 instead")
            out = _float16_to_bfloat16_in_place(out, start)
        out[index] = feats.to(out.dtype)
    if not bool(finite):  # one host sync per split, after the loop
        raise HebbianDivergenceError(f"{desc}: the frozen network produced non-finite features (NaN/inf); "
                                     f"its weights are too large or diverged")
    return out


def cache_split_features(model, train, val, test, *, dtype=torch.float16, mirrored: bool = False,
                         progress: bool = True, prefix: str = "", precision: str = "fp32",
                         mirrored_eval: bool = False, compile: bool = False) -> tuple[dict, torch.Tensor | None]:
    """:func:`extract_features` of the three splits (``{"train", "val", "test"}``), and of the mirrored
    training images when ``mirrored``; with ``mirrored_eval`` also of the mirrored validation and test images
    (``"val_flip"``, ``"test_flip"``, for flip averaging). Each split starts in the dtype the previous one ended
    in, so once a split's features exceeded float16 the rest are bfloat16 from their first batch. Progress
    bars and warnings are named ``f"{prefix}{split} features"``. ``precision``, ``compile``: see
    :func:`extract_features`."""
    feats = {}
    for name, data in (("train", train), ("val", val), ("test", test)):
        feats[name] = extract_features(model, data, dtype=dtype, progress=progress, desc=f"{prefix}{name} features",
                                       precision=precision, compile=compile)
        dtype = feats[name].dtype
    for name, data in ((("val", val), ("test", test)) if mirrored_eval else ()):
        feats[f"{name}_flip"] = extract_features(model, data, flip=True, dtype=dtype, progress=progress,
                                                 desc=f"{prefix}mirrored {name} features", precision=precision,
                                                 compile=compile)
        dtype = feats[f"{name}_flip"].dtype
    flipped = (extract_features(model, train, flip=True, dtype=dtype, progress=progress,
                                desc=f"{prefix}mirrored features", precision=precision,
                                compile=compile) if mirrored else None)
    return feats, flipped


def _float16_to_bfloat16_in_place(cache: torch.Tensor, rows: int, chunk: int = 1024) -> torch.Tensor:
    """The same storage read as bfloat16, its first ``rows`` rows converted chunk by chunk (both types are 2
    bytes wide, so no second cache of the full size is ever allocated)."""
    as_bf16 = cache.view(torch.bfloat16)
    for start in range(0, rows, chunk):
        part = slice(start, min(start + chunk, rows))
        as_bf16[part] = cache[part].to(torch.bfloat16)
    return as_bf16


EVAL_BATCH_CPU, EVAL_BATCH_GPU = 128, 4096


@torch.no_grad()
def _correct_on_features(head, features, labels, mirrored=None, batch_size: int | None = None):
    """Correct predictions of ``head`` (in eval mode) on cached features; with ``mirrored`` (the features of
    the mirrored images), ``(correct of the logits averaged over both views, correct of the one view)``.
    ``batch_size``: by default 128 rows on the CPU (their widened copy stays in the cache: the validation and
    test splits of the ``soft`` net's 24,576 features in 0.40 instead of 1.12 s with 4,096 rows on a 2-core
    AVX2 CPU, ``benchmarks/bench_probe_parts.py``), 4,096 elsewhere."""
    if batch_size is None:
        batch_size = EVAL_BATCH_CPU if features.device.type == "cpu" else EVAL_BATCH_GPU
    correct = torch.zeros((), dtype=torch.long, device=features.device)
    averaged = torch.zeros((), dtype=torch.long, device=features.device)
    for start in range(0, len(features), batch_size):
        part = slice(start, start + batch_size)
        logits = head(features[part].float())
        correct += (logits.argmax(1) == labels[part]).sum()
        if mirrored is not None:
            both = (logits + head(mirrored[part].float())) / 2
            averaged += (both.argmax(1) == labels[part]).sum()
    return correct if mirrored is None else (averaged, correct)


def _dropped_batch(feats, mirrored, index, flip_rows, words, bits: int, threshold: int, scale: float):
    """A training batch of the probe in one pass: rows ``index`` of the cache (of the mirrored cache where
    ``flip_rows``), widened to fp32, times a dropout mask decided by ``bits`` random bits per value from
    ``words`` (kept where they are at least ``threshold``: :func:`_mask_threshold`), times ``scale`` =
    1/(1 − p). The mask is :class:`~hebblib.dropout.FastDropout`'s of the same ``bits`` (its default
    :func:`~hebblib.dropout.field_bits`: 1 for p = 0.5; the kept values are the eager product's bits, and a
    dropped one is +0 here); with 16 bits each step is that of the eager batch and dropout (a gather, a choice,
    an exact widening, a product with 0 or 1, one rounded product with the scale): the same bits."""
    n, width = index.shape[0], feats.shape[1]
    x = feats[index] if mirrored is None else torch.where(flip_rows.unsqueeze(1), mirrored[index], feats[index])
    if bits == 16:  # FastDropout's signed 16-bit pieces, and its two products
        keep = (words.view(torch.int16)[: n * width].view(n, width) >= threshold).view(torch.uint8)
        return (x.float() * keep) * scale
    # a choice instead of a product with the mask's bytes: 18x faster compiled (a bool read as bytes makes
    # inductor's loop scalar), the same kept values, and +0 where a value is dropped
    keep = packed_fields(words, n * width, bits).view(n, width) >= threshold
    return torch.where(keep, x.float() * scale, 0.0)


def _plain_batch(feats, mirrored, flips, index, device):
    """Rows ``index`` of the cache, those drawn mirrored (``flips``) from the mirrored cache, in its dtype."""
    x = feats.index_select(0, index)  # a copy (rows may be overwritten); 2.6x faster than feats[index]
    if flips is not None and device.type == "cpu":
        # overwrite the rows drawn mirrored: gathers a third less than torch.where over both caches
        # (3.4x faster per batch on one thread, same values); the mask's nonzero is no host sync here
        rows = flips.index_select(0, index).nonzero().squeeze(1)
        x.index_copy_(0, rows, mirrored.index_select(0, index.index_select(0, rows)))
    elif flips is not None:
        x = torch.where(flips[index].unsqueeze(1), mirrored[index], x)
    return x


def _mask_threshold(p: float, bits: int) -> int:
    """What a ``bits``-bit piece must reach to keep its value: FastDropout's signed threshold for 16 bits
    (:func:`~hebblib.dropout.keep_threshold`), else the unsigned field's (:func:`~hebblib.dropout.field_threshold`)."""
    return keep_threshold(p) if bits == 16 else field_threshold(p, bits)


@functools.cache
def _fused_batch_function():
    """:func:`_dropped_batch` compiled (once per process)."""
    return torch.compile(_dropped_batch, dynamic=False)


def probe_optimizer(params, name: str, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """The read-out's optimizer: ``'adam'``, fused on the CPU and CUDA (all of its elementwise steps in one
    kernel: a step of the ``soft`` head's 245,770 weights in 0.34 instead of 0.83 ms on one thread of a 2-core
    AVX2 CPU, ``benchmarks/bench_probe_parts.py``; the same update up to rounding), or ``'sgd'`` with momentum 0.9."""
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    return torch.optim.Adam(params, lr=lr, fused=torch.device(device).type in ("cpu", "cuda"))


@flush_denormals()
def train_linear_probe(head, train, val, test, *, epochs: int, lr: float = 1e-3, batch_size: int = 64,
                       schedule: str = "nimmo_step", augment: bool = True, generator=None,
                       progress: bool = True, desc: str = "classifier", optimizer: str = "adam",
                       compile: bool = False) -> list[dict]:
    """Train ``head`` (an ``nn.Module`` such as ``Sequential(Dropout, Linear)``) on cached features.

    ``train`` is ``(features, labels)`` or ``(features, labels, mirrored_features)``; with ``augment`` and
    mirrored features, each sample is drawn mirrored with probability 1/2 every epoch. ``val`` and ``test``
    are ``(features, labels)``, or ``(features, labels, mirrored_features)`` for flip averaging: then
    ``val_acc`` and ``test_acc`` are those of the logits averaged over each image and its mirror image, and
    ``val_acc_plain``, ``test_acc_plain`` those of the image alone. Returns one record per epoch: ``epoch``,
    ``lr``, ``train_loss``, ``train_acc``, ``val_acc``, ``test_acc`` (accuracies in %). ``optimizer``:
    ``'adam'`` (default) or ``'sgd'`` (momentum 0.9), at ``lr`` times the ``schedule``'s factor.
    ``compile``: on the CPU, with a head that starts with :class:`~hebblib.dropout.FastDropout`, each full batch
    is gathered, widened and dropped out in one compiled pass (:func:`_dropped_batch`), from the same random
    words as the eager mask (the dropout's ``bits``, by default as few as its probability needs:
    :func:`~hebblib.dropout.field_bits`, one for 0.5). Without it, a CPU head that starts with FastDropout
    widens and drops out each batch in one product (:meth:`FastDropout.forward <hebblib.dropout.FastDropout>`).
    """
    feats, labels = train[0], train[1]
    mirrored = train[2] if len(train) > 2 else None
    n, device = len(feats), feats.device
    dropout = head[0] if isinstance(head, torch.nn.Sequential) and len(head) > 1 else None
    fused = (compile and device.type == "cpu" and isinstance(dropout, FastDropout) and dropout.p > 0
             and (mirrored is None or mirrored.dtype == feats.dtype))
    batch = _fused_batch_function() if fused else None
    if fused:  # the mask's reading, fixed for the whole run
        bits = dropout.mask_bits
        threshold, scale = _mask_threshold(dropout.p, bits), 1.0 / (1.0 - dropout.p)
    optimizer = probe_optimizer(head.parameters(), optimizer, lr, device)
    history = []
    for epoch in tqdm(range(epochs), desc=desc, disable=not progress, leave=False):
        rate = lr * lr_factor(schedule, epoch, epochs)
        set_rate(optimizer, rate)
        head.train()
        order, flips = epoch_draws(n, device, generator, flip=augment and mirrored is not None)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            if fused and len(index) == batch_size:  # the dropout's one draw, then one compiled pass
                words = packed_words(batch_size * feats.shape[1], bits, device=device)
                x = batch(feats, mirrored if flips is not None else None, index,
                          flips.index_select(0, index) if flips is not None else None, words, bits,
                          threshold, scale)
                logits = head[1:](x)
            elif isinstance(dropout, FastDropout):  # the cache's rows widened and dropped out in one product
                logits = head[1:](dropout(_plain_batch(feats, mirrored, flips, index, device), torch.float32))
            else:
                logits = head(_plain_batch(feats, mirrored, flips, index, device).float())
            loss = F.cross_entropy(logits, labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # the step's elementwise ops on the head's few weights on one thread (the same bits: each element
            # is computed alone); on a busy 2-core machine an Adam step took 9 instead of 106 ms
            with single_thread() if device.type == "cpu" else contextlib.nullcontext():
                optimizer.step()
            loss_sum += loss.detach() * len(index)
            correct += (logits.argmax(1) == labels[index]).sum()
        head.eval()
        val_correct = _correct_on_features(head, *val)
        test_correct = _correct_on_features(head, *test)
        if isinstance(val_correct, tuple):  # flip averaging: the averaged views select; the one view is kept
            (val_correct, val_plain), (test_correct, test_plain) = val_correct, test_correct
            record = _record(epoch, rate, loss_sum, correct, n, val_plain, len(val[0]), test_plain, len(test[0]))
            plain = {"val_acc_plain": record["val_acc"], "test_acc_plain": record["test_acc"]}
        else:
            plain = {}
        history.append({**_record(epoch, rate, loss_sum, correct, n, val_correct, len(val[0]), test_correct,
                                  len(test[0])), **plain})
    return history


def _record(epoch, rate, loss_sum, correct, n, val_correct, n_val, test_correct, n_test) -> dict:
    # One host sync per epoch: everything is read together.
    loss, train_c, val_c, test_c = torch.stack([loss_sum.float(), correct.float(), val_correct.float(),
                                                test_correct.float()]).tolist()
    return {"epoch": epoch + 1, "lr": rate, "train_loss": loss / n, "train_acc": 100.0 * train_c / n,
            "val_acc": 100.0 * val_c / max(n_val, 1), "test_acc": 100.0 * test_c / max(n_test, 1)}


@torch.no_grad()
def _correct_on_images(model, data, batch_size: int = 500) -> torch.Tensor:
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=data.device)
    for x, y in data.batches(batch_size, shuffle=False, augment=False):
        correct += (model(x).argmax(1) == y).sum()
    return correct


@flush_denormals()
def train_end_to_end(model, train, val, test, *, epochs: int, lr: float = 1e-3, batch_size: int = 64,
                     schedule: str = "nimmo_step", augment: bool = True, generator=None, progress: bool = True,
                     desc: str = "backprop", checkpoint=None, checkpoint_key: str | None = None,
                     hook=None, precision: str = "fp32") -> list[dict]:
    """Train the whole ``model`` by backprop on the images of ``train`` (a ``DeviceDataset``) with Adam;
    evaluate on ``val`` and ``test`` after every epoch. Returns records as :func:`train_linear_probe`,
    each with the epoch's wall time (``seconds``).

    ``hook``: an object whose ``before_step()`` runs between ``loss.backward()`` and ``optimizer.step()``
    (it may rewrite the gradients), ``after_step()`` after the step, and ``epoch_summary()`` (a dict) is
    merged into each epoch's record; :class:`hebblib.hybrid.HybridHook` is the α-hybrid's.

    ``checkpoint``: a file that receives the model, the optimiser, the random states and the records after
    every epoch. When it holds a checkpoint written for ``checkpoint_key``, training goes on after its last
    finished epoch and ends as an uninterrupted run would (an end-to-end run is many epochs of hours on a
    CPU; the Hebbian presets' phases are checkpointed by :func:`hebblib.training.run_preset`). Subnormal
    floats count as 0 meanwhile (:func:`hebblib.runtime.flush_denormals`).

    ``precision``: ``'fp32'``, or ``'bf16'`` (or ``'auto'``, :func:`hebblib.runtime.resolve_precision`): the
    forward pass and the loss, in training and in evaluation, under ``torch.autocast`` in bf16 (products in
    bf16 with fp32 accumulation, their gradients likewise); the weights, the gradients the optimiser sees
    and Adam's state stay fp32. About 2.1-2.3x fp32's images/s for the ``backprop`` network on a 2-core CPU
    with AMX (``benchmarks/bench_backprop_precision.py``, docs/performance.md). The α-hybrid (``hook``) trains in fp32 only: its layers' ΔW, formed
    inside the forward, has no bf16 path under autocast."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n, device = len(train), train.device
    dtype = resolve_precision(precision, device).dtype
    if hook is not None and dtype != torch.float32:
        raise ValueError(f"precision={precision!r}: the α-hybrid (hook) trains in fp32 only; valid choice: 'fp32'")
    if dtype == torch.bfloat16 and device.type == "cpu" and not cpu_has_bf16_instructions():
        # the Hebbian layers emulate bf16 products there (hebblib.update.bf16_products); autocast cannot
        warnings.warn(f"precision={precision!r} on a CPU without bf16 instructions (none of the flags amx_bf16, "
                      "avx512_bf16, bf16): autocast's bf16 products run a generic loop here (a backprop step "
                      "measured at a twentieth of fp32's speed: docs/performance.md); 'fp32' or 'auto' is the "
                      "fast choice on this CPU", stacklevel=3)  # past the flush_denormals wrapper: the caller's line

    def cast():  # a fresh context each time
        return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    history = _resume_end_to_end(checkpoint, checkpoint_key, model, optimizer, generator) if checkpoint else []
    epoch_bar = tqdm(range(len(history), epochs), desc=desc, disable=not progress, leave=False,
                     initial=len(history), total=epochs)
    for epoch in epoch_bar:
        started = time.perf_counter()
        rate = lr * lr_factor(schedule, epoch, epochs)
        set_rate(optimizer, rate)
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        batches = train.batches(batch_size, shuffle=True, augment=augment, generator=generator)
        for x, y in tqdm(batches, total=-(-n // batch_size), desc=f"{desc} epoch {epoch + 1}", disable=not progress,
                         leave=False):
            with cast():
                logits = model(x)
                loss = F.cross_entropy(logits, y)
            backward_step(loss, optimizer, hook)
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
        with cast():
            val_correct, test_correct = _correct_on_images(model, val), _correct_on_images(model, test)
        record = _record(epoch, rate, loss_sum, correct, n, val_correct, len(val), test_correct, len(test))
        history.append({**record, **(hook.epoch_summary() if hook is not None else {}),
                        "seconds": time.perf_counter() - started})
        if checkpoint:
            save_epoch_checkpoint(checkpoint, checkpoint_key, model, optimizer, history, generator)
    return history


def _random_states(generator) -> dict:
    """Every random stream an epoch draws from: the data order and flips (``generator``), dropout (torch's
    CPU generator, or the GPU's)."""
    return {"cpu": torch.get_rng_state(), "generator": None if generator is None else generator.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _resume_end_to_end(path, key, model, optimizer, generator) -> list[dict]:
    """Load the checkpoint at ``path`` (if it was written for ``key``) into ``model``, ``optimizer`` and the
    random streams; return its records (empty when there is nothing to resume)."""
    state = load_checkpoint(path, key)
    if state is None:
        return []
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["random"]["cpu"])
    if generator is not None and state["random"]["generator"] is not None:
        generator.set_state(state["random"]["generator"])
    if state["random"]["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["random"]["cuda"])
    return list(state["history"])


def linear_probe(model, train, val, test, *, epochs: int = 10, lr: float = 1e-3, batch_size: int = 64,
                 dropout: float = 0.5, head=None, mirrored: bool = False, schedule: str = "constant",
                 optimizer: str = "adam", seed: int | None = None, generator=None, dtype: torch.dtype | None = None,
                 progress: bool = True) -> list[dict]:
    """The read-out of every chapter: freeze ``model``, cache its features of the three ``DeviceDataset``
    splits once, and train a head on them (:func:`train_linear_probe`). ``model`` needs ``features(x)``
    and ``num_features`` (any :class:`hebblib.HebbianNet` has them). Returns the per-epoch records
    (accuracies in %; :func:`probe_summary` condenses them).

    * ``head``: the module trained on the features; default ``Dropout(dropout) → Linear(num_features, 10)``.
    * ``optimizer`` (``'adam'`` or ``'sgd'``, momentum 0.9) at ``lr``; ``schedule``: :func:`lr_factor`.
    * ``mirrored``: also cache the features of the mirrored training images and draw one of the two per
      sample and epoch (flip augmentation).
    * ``seed``: a repeatable read-out. ``torch.manual_seed(seed)``, then the head is (re)initialised
      (``reset_parameters`` of each of its modules, so a head that was trained before starts afresh), its
      batches are drawn from ``Generator().manual_seed(seed + 1)`` unless ``generator`` is given, and it is
      trained on one thread (small tensors; the same sums in the same order every time). Without ``seed``
      the head is trained as it is, with the global generator state (dropout) and ``generator``.
    * ``dtype`` of the cache: default float32 on the CPU (its float16 arithmetic is slow), float16 on the
      GPU (memory).
    """
    if dtype is None:
        dtype = torch.float32 if train.device.type == "cpu" else torch.float16
    feats, flipped = cache_split_features(model, train, val, test, dtype=dtype, mirrored=mirrored,
                                          progress=progress)
    train_set = (feats["train"], train.labels) + ((flipped,) if mirrored else ())
    if seed is not None:
        torch.manual_seed(seed)
        if head is not None:
            for module in head.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        generator = torch.Generator().manual_seed(seed + 1) if generator is None else generator
    if head is None:
        head = torch.nn.Sequential(FastDropout(dropout), torch.nn.Linear(model.num_features, 10))
    head = head.to(train.device)
    with single_thread() if seed is not None else contextlib.nullcontext():
        return train_linear_probe(head, train_set, (feats["val"], val.labels), (feats["test"], test.labels),
                                  epochs=epochs, lr=lr, batch_size=batch_size, schedule=schedule,
                                  optimizer=optimizer, augment=mirrored, generator=generator, progress=progress)


def probe_summary(history: list[dict]) -> dict:
    """A read-out's records condensed: the final test accuracy, the test accuracy at the epoch of the best
    validation accuracy, the best validation accuracy (in %) and the ``history`` itself."""
    best = max(history, key=lambda h: h["val_acc"])
    return {"final_test_acc": history[-1]["test_acc"], "test_acc_at_best_val": best["test_acc"],
            "best_val_acc": best["val_acc"], "history": history}
